// Voice activity detection of one 20 ms frame at the internal 16 kHz, what the pipeline pays per
// frame of caller audio: WebRTC's high-pass filter, noise suppression and detector, on the full
// band or on the telephone band after a 2:1 decimation (VadOptions::narrowband).
#include <benchmark/benchmark.h>

#include <span>

#include "test_audio.hpp"
#include "voxbridge/vad/vad.hpp"

namespace voxbridge::micro {
namespace {

constexpr int kRate = 16000;
constexpr std::size_t kFrame = kRate / 50;

void vad_frame(benchmark::State& state, bool narrowband, bool noise_suppression) {
  const auto pcm = speech_like(kFrame * 50, kRate);  // 1 s, cycled
  vad::Vad v({kRate, 2, noise_suppression, narrowband});
  std::size_t at = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(v.process(std::span<const std::int16_t>(pcm).subspan(at, kFrame)));
    at = at + 2 * kFrame <= pcm.size() ? at + kFrame : 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kFrame));
}

BENCHMARK_CAPTURE(vad_frame, narrowband_ns, true, true);
BENCHMARK_CAPTURE(vad_frame, fullband_ns, false, true);
BENCHMARK_CAPTURE(vad_frame, narrowband_no_ns, true, false);

}  // namespace
}  // namespace voxbridge::micro
