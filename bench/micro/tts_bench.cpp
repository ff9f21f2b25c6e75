// The built-in TTS (Flite, voice slt): one sentence of the receptionist's fallback, synthesized
// whole at 16 kHz, what a reply's first audio waits for; and the same on several threads at
// once, which shows whether syntheses run in parallel or queue.
#include <benchmark/benchmark.h>

#include <string>

#include "voxbridge/tts_flite/flite_tts.hpp"

namespace voxbridge::micro {
namespace {

tts_flite::FliteEngine& engine() {
  static tts_flite::FliteEngine e;
  return e;
}

void flite_sentence(benchmark::State& state, const std::string& text) {
  auto& e = engine();
  std::size_t samples = 0;
  for (auto _ : state) {
    const auto pcm = e.synthesize(text);
    samples = pcm.size();
    benchmark::DoNotOptimize(pcm.data());
  }
  // Seconds of speech made per second of work, per thread.
  state.counters["speech_s"] = static_cast<double>(samples) / tts_flite::FliteEngine::kRateHz;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * samples));
}

BENCHMARK_CAPTURE(flite_sentence, short, std::string("Sorry, I did not catch that."))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ThreadRange(1, 2);
BENCHMARK_CAPTURE(flite_sentence, long,
                  std::string("Say sales or press 1, support or press 2, or say goodbye."))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ThreadRange(1, 2);

}  // namespace
}  // namespace voxbridge::micro
