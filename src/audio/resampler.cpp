#include "voxbridge/audio/resampler.hpp"

#include <speex/speex_resampler.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "halfband.hpp"

namespace voxbridge::audio {

Resampler::Resampler(int in_rate_hz, int out_rate_hz, int quality, bool skip_leading_zeros)
    : in_rate_(in_rate_hz), out_rate_(out_rate_hz), skip_zeros_(skip_leading_zeros) {
  if (in_rate_ != out_rate_ && quality <= kHalfBandMaxQuality &&
      (out_rate_ == 2 * in_rate_ || in_rate_ == 2 * out_rate_)) {
    hb_ = std::make_unique<detail::HalfBand>(
        out_rate_ > in_rate_ ? detail::HalfBand::Direction::up : detail::HalfBand::Direction::down,
        skip_zeros_);
  } else if (in_rate_ != out_rate_) {
    int err = 0;
    st_ = speex_resampler_init(1, static_cast<spx_uint32_t>(in_rate_),
                               static_cast<spx_uint32_t>(out_rate_), std::clamp(quality, 0, 10),
                               &err);
    if (st_ == nullptr || err != RESAMPLER_ERR_SUCCESS) {
      throw std::runtime_error("resampler " + std::to_string(in_rate_) + " -> " +
                               std::to_string(out_rate_) + ": " + speex_resampler_strerror(err));
    }
    // Without this the first output samples are the filter's zero history shifted in, which
    // delays the stream by half the filter length.
    if (skip_zeros_) speex_resampler_skip_zeros(st_);
  }
}

Resampler::~Resampler() {
  if (st_ != nullptr) speex_resampler_destroy(st_);
}

Resampler::Resampler(Resampler&& o) noexcept
    : st_(o.st_),
      hb_(std::move(o.hb_)),
      in_rate_(o.in_rate_),
      out_rate_(o.out_rate_),
      skip_zeros_(o.skip_zeros_) {
  o.st_ = nullptr;
}

Resampler& Resampler::operator=(Resampler&& o) noexcept {
  if (this != &o) {
    if (st_ != nullptr) speex_resampler_destroy(st_);
    st_ = o.st_;
    hb_ = std::move(o.hb_);
    in_rate_ = o.in_rate_;
    out_rate_ = o.out_rate_;
    skip_zeros_ = o.skip_zeros_;
    o.st_ = nullptr;
  }
  return *this;
}

std::size_t Resampler::max_output(std::size_t in_samples) const {
  // ceil(in * out / in_rate) plus slack for the fractional phase the state carries.
  return (in_samples * static_cast<std::size_t>(out_rate_) + static_cast<std::size_t>(in_rate_) -
          1) /
             static_cast<std::size_t>(in_rate_) +
         2;
}

std::size_t Resampler::process(std::span<const std::int16_t> in, std::span<std::int16_t> out) {
  if (hb_) return hb_->process(in, out);
  if (st_ == nullptr) {
    const std::size_t n = std::min(in.size(), out.size());
    if (n != 0) std::memcpy(out.data(), in.data(), n * sizeof(std::int16_t));
    return n;
  }
  std::size_t done_in = 0;
  std::size_t done_out = 0;
  // SpeexDSP may stop early when the output is full; loop until all input is consumed.
  while (done_in < in.size() && done_out < out.size()) {
    auto in_len = static_cast<spx_uint32_t>(in.size() - done_in);
    auto out_len = static_cast<spx_uint32_t>(out.size() - done_out);
    speex_resampler_process_int(st_, 0, in.data() + done_in, &in_len, out.data() + done_out,
                                &out_len);
    if (in_len == 0 && out_len == 0) break;
    done_in += in_len;
    done_out += out_len;
  }
  return done_out;
}

void Resampler::reset() {
  if (hb_) hb_->reset();
  if (st_ != nullptr) {
    speex_resampler_reset_mem(st_);
    if (skip_zeros_) speex_resampler_skip_zeros(st_);
  }
}

int Resampler::output_latency() const {
  if (hb_) return hb_->output_latency();
  return st_ == nullptr ? 0 : speex_resampler_get_output_latency(st_);
}

}  // namespace voxbridge::audio
