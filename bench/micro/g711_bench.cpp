// G.711 mu-law and A-law encode/decode of one 20 ms frame (160 samples at 8 kHz), what a
// c(ulaw)/c(alaw) leg costs per frame.
#include <benchmark/benchmark.h>

#include <array>
#include <span>

#include "test_audio.hpp"
#include "voxbridge/audio/g711.hpp"

namespace voxbridge::micro {
namespace {

constexpr std::size_t kFrame = 160;
using Encode = void (*)(std::span<const std::int16_t>, std::span<std::uint8_t>);
using Decode = void (*)(std::span<const std::uint8_t>, std::span<std::int16_t>);

void encode_frame(benchmark::State& state, Encode encode) {
  const auto pcm = speech_like(kFrame, 8000);
  std::array<std::uint8_t, kFrame> codes{};
  for (auto _ : state) {
    encode(pcm, codes);
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kFrame));
}

void decode_frame(benchmark::State& state, Encode encode, Decode decode) {
  const auto pcm = speech_like(kFrame, 8000);
  std::array<std::uint8_t, kFrame> codes{};
  encode(pcm, codes);
  std::array<std::int16_t, kFrame> out{};
  for (auto _ : state) {
    decode(codes, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kFrame));
}

void BM_UlawEncode160(benchmark::State& s) {
  encode_frame(s, audio::ulaw_encode);
}
void BM_UlawDecode160(benchmark::State& s) {
  decode_frame(s, audio::ulaw_encode, audio::ulaw_decode);
}
void BM_AlawEncode160(benchmark::State& s) {
  encode_frame(s, audio::alaw_encode);
}
void BM_AlawDecode160(benchmark::State& s) {
  decode_frame(s, audio::alaw_encode, audio::alaw_decode);
}
BENCHMARK(BM_UlawEncode160);
BENCHMARK(BM_UlawDecode160);
BENCHMARK(BM_AlawEncode160);
BENCHMARK(BM_AlawDecode160);

}  // namespace
}  // namespace voxbridge::micro
