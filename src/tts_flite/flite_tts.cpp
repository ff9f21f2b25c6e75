#include "voxbridge/tts_flite/flite_tts.hpp"

extern "C" {
#include <flite/flite.h>
cst_voice* register_cmu_us_slt(const char* voxdir);
}

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "voxbridge/audio/resampler.hpp"

namespace voxbridge::tts_flite {

namespace {
std::mutex g_init_mu;
cst_voice* g_voice = nullptr;

cst_voice* voice_once() {
  std::lock_guard lock(g_init_mu);
  if (g_voice == nullptr) {
    flite_init();
    g_voice = register_cmu_us_slt(nullptr);
  }
  return g_voice;
}
}  // namespace

FliteEngine::FliteEngine() : voice_(voice_once()) {}

std::vector<std::int16_t> FliteEngine::synthesize(const std::string& text) {
  std::vector<std::int16_t> out;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return out;
  std::lock_guard lock(mu_);
  // The voice draws noise for unvoiced excitation from rand(): seed it, so the same text gives
  // the same audio every time (reproducible calls and tests).
  std::srand(1);
  cst_wave* w = flite_text_to_wave(text.c_str(), static_cast<cst_voice*>(voice_));
  if (w == nullptr) return out;
  if (w->sample_rate != kRateHz) cst_wave_resample(w, kRateHz);
  out.assign(w->samples, w->samples + w->num_samples);
  delete_wave(w);
  return out;
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
  audio::Resampler resampler(FliteEngine::kRateHz, rate, 5, false);
  const auto per_msg = static_cast<std::size_t>(rate / 10);  // 100 ms
  std::vector<std::int16_t> converted;
  std::uint64_t total = 0;  // samples sent at `rate`
  tts::v1::SynthesizeResponse r;
  while (stream->Read(&req)) {
    if (!req.has_text()) continue;
    const auto speech = engine_.synthesize(req.text().text());
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
