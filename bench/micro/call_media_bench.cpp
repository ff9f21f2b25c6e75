// The whole per-frame media path of one call with the echo agent, no I/O: CallMedia::on_audio
// (decode, resample to 16 kHz, agent queues it) plus CallMedia::on_tick (pace, resample back,
// encode the reply) for one 20 ms frame. A call does this 50 times a second, so the time per
// iteration in microseconds times 0.005 is one call's share of a core in percent.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "test_audio.hpp"
#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/session/call_media.hpp"

namespace voxbridge::micro {
namespace {

using audiosocket::Kind;
using namespace std::chrono_literals;

enum Leg : std::int64_t { kSlin8, kUlaw, kSlin16 };

struct LegFrames {
  Kind kind;
  std::vector<std::vector<std::uint8_t>> payloads;  // one second of 20 ms frames
};

LegFrames leg_frames(Leg leg) {
  const int rate = leg == kSlin16 ? 16000 : 8000;
  const std::size_t frame = static_cast<std::size_t>(rate / 50);
  const auto pcm = speech_like(frame * 50, rate);
  LegFrames f{leg == kSlin16 ? Kind::slin16 : Kind::slin8, {}};
  for (std::size_t i = 0; i < 50; ++i) {
    const std::vector<std::int16_t> piece(
        pcm.begin() + static_cast<std::ptrdiff_t>(i * frame),
        pcm.begin() + static_cast<std::ptrdiff_t>((i + 1) * frame));
    if (leg == kUlaw) {
      std::vector<std::uint8_t> codes(frame);
      audio::ulaw_encode(piece, codes);
      f.payloads.push_back(std::move(codes));
    } else {
      f.payloads.push_back(to_slin_bytes(piece));
    }
  }
  return f;
}

// Args: leg (0 slin8 as the dialplan app sends, 1 ulaw on a c(ulaw) leg, 2 slin16), resampler
// quality. One iteration = one frame in and one frame out.
void BM_CallMediaEchoFrame(benchmark::State& state) {
  const auto leg = static_cast<Leg>(state.range(0));
  const auto quality = static_cast<int>(state.range(1));
  session::MediaOptions options;
  options.resampler_quality = quality;
  const agent::AgentFactory factory(agent::AgentSpec{}, options.internal_rate_hz, quality);
  session::CallMedia media(options, factory.create());
  auto now = session::Clock::time_point{} + 100s;
  agent::CallInfo info;
  info.uuid = "00000000-0000-4000-8000-000000000000";
  info.peer = info.listener = "bench";
  media.start(now, std::move(info));
  const LegFrames frames = leg_frames(leg);
  std::string why;
  std::size_t i = 0;
  std::size_t bytes_out = 0;
  for (auto _ : state) {
    if (!media.on_audio(frames.kind, frames.payloads[i], why)) {
      state.SkipWithError(why.c_str());
      break;
    }
    now = media.next_deadline();
    const auto reply = media.on_tick(now);
    benchmark::DoNotOptimize(reply.data());
    bytes_out += reply.size();
    i = (i + 1) % frames.payloads.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["reply_bytes"] =
      static_cast<double>(bytes_out) /
      static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
}
BENCHMARK(BM_CallMediaEchoFrame)
    ->ArgNames({"leg", "quality"})
    ->Args({kSlin8, 3})
    ->Args({kSlin8, 5})
    ->Args({kUlaw, 3})
    ->Args({kSlin16, 3});

}  // namespace
}  // namespace voxbridge::micro
