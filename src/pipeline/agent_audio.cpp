#include "voxbridge/pipeline/agent_audio.hpp"

#include <algorithm>
#include <cstring>

#include "voxbridge/audio/g711.hpp"

namespace voxbridge::pipeline {

namespace {

void set_format(common::v1::AudioFormat& f, common::v1::AudioEncoding e, int rate_hz) {
  f.set_encoding(e);
  f.set_sample_rate_hz(static_cast<std::uint32_t>(rate_hz));
}

/// Once the caller is heard over the agent (double talk), the gate stays open this many 10 ms
/// blocks after the last block louder than the echo: the agent's VAD then hears the caller's
/// words whole, not only their loud middles (a Geigel detector's hangover).
constexpr long kTalkHangoverBlocks = 10;

std::span<std::uint8_t> as_bytes(std::string& s) {
  return {reinterpret_cast<std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

AgentAudio::AgentAudio(const Options& options)
    : o_(options),
      to_agent_(options.internal_rate_hz, options.input_rate_hz, options.quality),
      far_(options.internal_rate_hz) {}

void AgentAudio::choose(std::string_view leg_codec) {
  if (chosen()) return;
  if (o_.leg_codec && leg_codec == "ulaw") law_ = audio::G711Law::ulaw;
  if (o_.leg_codec && leg_codec == "alaw") law_ = audio::G711Law::alaw;
  if (law_) {
    const auto e = *law_ == audio::G711Law::ulaw ? common::v1::MULAW : common::v1::ALAW;
    set_format(in_format_, e, 8000);
    set_format(out_format_, e, 8000);
    output_ = 8000;
  } else {
    set_format(in_format_, common::v1::LINEAR16, o_.input_rate_hz);
    set_format(out_format_, common::v1::LINEAR16, o_.output_rate_hz);
    output_ = o_.output_rate_hz;
  }
  from_agent_.emplace(*output_, o_.internal_rate_hz, o_.quality, false);
}

std::span<const std::int16_t> AgentAudio::gate(std::span<const std::int16_t> x, int rate_hz,
                                               std::size_t waiting) {
  if (!o_.echo_gate) return x;
  gate_buf_.assign(x.begin(), x.end());
  const auto n10 = static_cast<std::size_t>(std::max(1, rate_hz / 100));
  for (std::size_t at = 0; at < gate_buf_.size(); at += n10) {
    // The agent is audible while its audio is queued, and its echo for echo_window after.
    if (waiting > 0) {
      tail_blocks_ = static_cast<long>(o_.echo_window.count() / 10);
    } else if (tail_blocks_ > 0) {
      --tail_blocks_;
    } else {
      talk_blocks_ = 0;  // the next reply starts with no double talk
      continue;
    }
    const std::span<std::int16_t> block{gate_buf_.data() + at,
                                        std::min(n10, gate_buf_.size() - at)};
    if (louder_than_echo(block, far_, waiting, o_.echo_ratio, o_.echo_window)) {
      talk_blocks_ = kTalkHangoverBlocks;
    } else if (talk_blocks_ > 0) {
      --talk_blocks_;  // the quiet end of a syllable of the caller's: it passes too
    } else {
      std::fill(block.begin(), block.end(), std::int16_t{0});
      ++gated_;
    }
  }
  return gate_buf_;
}

bool AgentAudio::caller_leg(std::span<const std::int16_t> leg, int rate_hz, std::size_t waiting,
                            std::string_view& bytes) {
  if (!law_ || rate_hz != 8000) return false;
  const auto x = gate(leg, rate_hz, waiting);
  bytes_.resize(x.size());
  if (*law_ == audio::G711Law::ulaw) {
    audio::ulaw_encode(x, as_bytes(bytes_));
  } else {
    audio::alaw_encode(x, as_bytes(bytes_));
  }
  bytes = bytes_;
  return true;
}

bool AgentAudio::caller(std::span<const std::int16_t> internal, std::size_t waiting,
                        std::string_view& bytes) {
  if (!chosen() || law_) return false;
  const auto x = gate(internal, o_.internal_rate_hz, waiting);
  pcm_.resize(to_agent_.max_output(x.size()));
  const std::size_t n = to_agent_.process(x, pcm_);
  bytes_.resize(n * 2);
  std::memcpy(bytes_.data(), pcm_.data(), n * 2);  // LINEAR16 is little-endian, as we are
  bytes = bytes_;
  return true;
}

void AgentAudio::agent(std::string_view bytes, std::vector<std::int16_t>& out) {
  if (!chosen()) return;
  const std::span<const std::uint8_t> b{reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                        bytes.size()};
  if (law_) {
    pcm_.resize(b.size());
    if (*law_ == audio::G711Law::ulaw) {
      audio::ulaw_decode(b, pcm_);
    } else {
      audio::alaw_decode(b, pcm_);
    }
  } else {
    pcm_.resize(b.size() / 2);
    std::memcpy(pcm_.data(), b.data(), pcm_.size() * 2);
  }
  const std::size_t at = out.size();
  out.resize(at + from_agent_->max_output(pcm_.size()));
  out.resize(at + from_agent_->process(pcm_, {out.data() + at, out.size() - at}));
}

void AgentAudio::cleared() {
  if (from_agent_) from_agent_->reset();
  tail_blocks_ = 0;
  talk_blocks_ = 0;
}

}  // namespace voxbridge::pipeline
