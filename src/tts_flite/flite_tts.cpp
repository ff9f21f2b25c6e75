#include "voxbridge/tts_flite/flite_tts.hpp"

extern "C" {
#include <flite/flite.h>
cst_voice* register_cmu_us_slt(const char* voxdir);
cst_voice* register_cmu_us_rms(const char* voxdir);
cst_voice* register_cmu_us_awb(const char* voxdir);
cst_voice* register_cmu_us_kal16(const char* voxdir);
cst_voice* register_cmu_us_kal(const char* voxdir);
}

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <span>
#include <stdexcept>

#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/net/io_pool.hpp"

namespace voxbridge::tts_flite {

namespace {
std::mutex g_init_mu;
std::map<std::string, cst_voice*> g_voices;  // registered on first use, kept for the process

/// The voice named `name` (registered on first use); null if unknown.
cst_voice* voice(const std::string& name) {
  using Register = cst_voice* (*)(const char*);
  static const std::map<std::string, Register> kRegister = {{"slt", register_cmu_us_slt},
                                                            {"rms", register_cmu_us_rms},
                                                            {"awb", register_cmu_us_awb},
                                                            {"kal16", register_cmu_us_kal16},
                                                            {"kal", register_cmu_us_kal}};
  const auto r = kRegister.find(name.empty() ? "slt" : name);
  if (r == kRegister.end()) return nullptr;
  std::lock_guard lock(g_init_mu);
  if (g_voices.empty()) flite_init();
  auto& v = g_voices[r->first];
  if (v == nullptr) v = r->second(nullptr);
  return v;
}
}  // namespace

const std::vector<std::string>& FliteEngine::voices() {
  static const std::vector<std::string> kVoices = {"slt", "rms", "awb", "kal16", "kal"};
  return kVoices;
}

bool FliteEngine::has_voice(const std::string& name) {
  return name.empty() || std::find(voices().begin(), voices().end(), name) != voices().end();
}

DeadlineGate::Pass DeadlineGate::enter(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  const auto me = waiting_.emplace(deadline, arrivals_++).first;
  cv_.wait(lock, [&] { return !busy_ && waiting_.begin() == me; });
  waiting_.erase(me);
  busy_ = true;
  return Pass(*this);
}

void DeadlineGate::leave() {
  {
    std::lock_guard lock(mu_);
    busy_ = false;
  }
  cv_.notify_all();
}

std::size_t DeadlineGate::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

FliteEngine::FliteEngine(std::size_t cache_bytes) : cache_bytes_(cache_bytes) {
  voice("slt");
}

FliteEngine::Audio FliteEngine::cached(const Key& k) {
  std::lock_guard lock(cache_mu_);
  const auto it = index_.find(k);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.cache_hits;
  return it->second->second;
}

void FliteEngine::keep(const Key& k, Audio a) {
  const std::size_t bytes = a->size() * sizeof(std::int16_t);
  std::lock_guard lock(cache_mu_);
  ++stats_.syntheses;
  if (cache_bytes_ == 0) return;
  if (bytes > cache_bytes_ / 4 || index_.count(k) != 0) return;  // a long text does not evict all
  lru_.emplace_front(k, std::move(a));
  index_[k] = lru_.begin();
  stats_.cached_bytes += bytes;
  while (stats_.cached_bytes > cache_bytes_) {
    stats_.cached_bytes -= lru_.back().second->size() * sizeof(std::int16_t);
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

FliteEngine::Stats FliteEngine::stats() const {
  std::lock_guard lock(cache_mu_);
  return stats_;
}

std::vector<std::int16_t> FliteEngine::synthesize(const std::string& text,
                                                  const std::string& voice_name,
                                                  Clock::time_point needed_by) {
  cst_voice* v = voice(voice_name);
  if (v == nullptr) throw std::invalid_argument("no Flite voice '" + voice_name + "'");
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return {};
  const Key key(voice_name.empty() ? "slt" : voice_name, text);
  if (cache_bytes_ > 0) {
    if (const Audio hit = cached(key)) return *hit;
  }
  auto out = std::make_shared<std::vector<std::int16_t>>();
  {
    const auto pass = gate_.enter(needed_by);
    // The voice draws noise for unvoiced excitation from rand(): seed it, so the same text
    // gives the same audio every time (reproducible calls and tests, and a cache that changes
    // nothing that is heard).
    std::srand(1);
    cst_wave* w = flite_text_to_wave(text.c_str(), v);
    if (w == nullptr) return {};
    const std::span<const std::int16_t> speech(w->samples,
                                               static_cast<std::size_t>(w->num_samples));
    if (w->sample_rate == kRateHz) {
      out->assign(speech.begin(), speech.end());
    } else {
      // Our resampler, not Flite's cst_wave_resample: that one memcpy()s overlapping ranges
      // (ASan: memcpy-param-overlap in cst_rateconv_out), for kal's 8 kHz.
      audio::Resampler rs(w->sample_rate, kRateHz, 5, false);
      out->resize(rs.max_output(speech.size()));
      out->resize(rs.process(speech, *out));
    }
    delete_wave(w);
  }
  keep(key, out);
  return *out;
}

grpc::Status FliteSynthesizer::StreamingSynthesize(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<tts::v1::SynthesizeResponse, tts::v1::SynthesizeRequest>* stream) {
  tts::v1::SynthesizeRequest req;
  if (!stream->Read(&req) || !req.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  const auto& fmt = req.config().format();
  const int rate =
      fmt.sample_rate_hz() == 0 ? FliteEngine::kRateHz : static_cast<int>(fmt.sample_rate_hz());
  if (fmt.encoding() != common::v1::LINEAR16 &&
      fmt.encoding() != common::v1::AUDIO_ENCODING_UNSPECIFIED) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the built-in TTS speaks LINEAR16 only"};
  }
  if (rate < 8000 || rate > 48000) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "sample_rate_hz must be 8000 to 48000"};
  }
  const std::string voice_name = req.config().voice();
  if (!FliteEngine::has_voice(voice_name)) {
    std::string all;
    for (const auto& v : FliteEngine::voices()) all += (all.empty() ? "" : ", ") + v;
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "the built-in TTS has no voice '" + voice_name + "' (one of " + all + ")"};
  }
  net::yield_to_io_threads();
  audio::Resampler resampler(FliteEngine::kRateHz, rate, 5, false);
  const auto per_msg = static_cast<std::size_t>(rate / 10);  // 100 ms
  std::vector<std::int16_t> converted;
  std::uint64_t total = 0;  // samples sent at `rate`
  tts::v1::SynthesizeResponse r;
  FliteEngine::Clock::time_point first_audio{};
  while (stream->Read(&req)) {
    if (!req.has_text()) continue;
    // This text's audio is needed once what was sent before it has played.
    const auto now = FliteEngine::Clock::now();
    const auto needed_by =
        total == 0 ? now
                   : std::max(now, first_audio + std::chrono::milliseconds(total * 1000 / rate));
    const auto speech = engine_.synthesize(req.text().text(), voice_name, needed_by);
    if (total == 0 && !speech.empty()) first_audio = FliteEngine::Clock::now();
    converted.resize(resampler.max_output(speech.size()));
    converted.resize(resampler.process(speech, converted));
    for (std::size_t at = 0; at < converted.size(); at += per_msg) {
      if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
      const std::size_t n = std::min(per_msg, converted.size() - at);
      r.Clear();
      r.set_audio(reinterpret_cast<const char*>(converted.data() + at), n * 2);
      if (!stream->Write(r)) return grpc::Status::CANCELLED;
    }
    total += converted.size();
    r.Clear();
    r.mutable_chunk_done()->set_chunk_id(req.text().chunk_id());
    r.mutable_chunk_done()->set_audio_ms(static_cast<std::uint32_t>(total * 1000 / rate));
    if (!stream->Write(r)) return grpc::Status::CANCELLED;
  }
  return grpc::Status::OK;
}

}  // namespace voxbridge::tts_flite
