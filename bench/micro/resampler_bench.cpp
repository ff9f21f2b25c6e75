// The SpeexDSP resampler per 20 ms frame, both directions of an app-mode call: 8 kHz -> 16 kHz
// (the caller's audio to the internal rate) and 16 kHz -> 8 kHz (replies back to the leg), at
// quality 3 (the server's default) and 5.
#include <benchmark/benchmark.h>

#include <vector>

#include "test_audio.hpp"
#include "voxbridge/audio/resampler.hpp"

namespace voxbridge::micro {
namespace {

// Args: in rate, out rate, quality. One iteration = one 20 ms input frame.
void BM_Resampler(benchmark::State& state) {
  const auto in_rate = static_cast<int>(state.range(0));
  const auto out_rate = static_cast<int>(state.range(1));
  const auto quality = static_cast<int>(state.range(2));
  // As CallMedia uses them: inbound skips the filter's leading zeros, outbound does not.
  audio::Resampler rs(in_rate, out_rate, quality, in_rate < out_rate);
  const auto in = speech_like(static_cast<std::size_t>(in_rate / 50), in_rate);
  std::vector<std::int16_t> out(rs.max_output(in.size()));
  for (auto _ : state) {
    benchmark::DoNotOptimize(rs.process(in, out));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
  state.SetLabel("samples in per frame: " + std::to_string(in.size()));
}
BENCHMARK(BM_Resampler)
    ->ArgNames({"in_hz", "out_hz", "quality"})
    ->Args({8000, 16000, 2})  // voxbridge's default quality: the half-band filter
    ->Args({8000, 16000, 6})  // SpeexDSP
    ->Args({16000, 8000, 2})
    ->Args({16000, 8000, 6})
    ->Args({8000, 24000, 2});  // not 2:1: SpeexDSP

}  // namespace
}  // namespace voxbridge::micro
