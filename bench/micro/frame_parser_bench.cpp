// FrameParser on a stream of 323-byte messages (kind 0x10, 320 bytes of slin8: what Asterisk's
// dialplan app sends every 20 ms), fed the way a session feeds it: bytes copied into
// writable(), commit(), then next() until it runs dry.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "test_audio.hpp"
#include "voxbridge/audiosocket/protocol.hpp"

namespace voxbridge::micro {
namespace {

using audiosocket::FrameParser;
using audiosocket::Kind;

constexpr std::size_t kPayloadBytes = 320;
constexpr std::size_t kMessageBytes = audiosocket::kHeaderBytes + kPayloadBytes;
constexpr std::size_t kStreamMessages = 64;

/// kStreamMessages audio messages back to back; the benchmark loops over them.
std::vector<std::uint8_t> audio_stream() {
  const auto payload = to_slin_bytes(speech_like(kPayloadBytes / 2, 8000));
  std::vector<std::uint8_t> stream(kStreamMessages * kMessageBytes);
  for (std::size_t i = 0; i < kStreamMessages; ++i) {
    audiosocket::encode(Kind::slin8, payload,
                        std::span<std::uint8_t>(stream).subspan(i * kMessageBytes, kMessageBytes));
  }
  return stream;
}

/// A parser past the UUID, as on an established call.
FrameParser established_parser() {
  FrameParser parser(8192);  // the server's default max_payload_bytes
  std::uint8_t uuid_message[audiosocket::kHeaderBytes + audiosocket::kUuidBytes];
  const std::uint8_t uuid[audiosocket::kUuidBytes] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                      9, 10, 11, 12, 13, 14, 15, 16};
  const std::size_t n = audiosocket::encode(Kind::uuid, uuid, uuid_message);
  std::memcpy(parser.writable().data(), uuid_message, n);
  parser.commit(n);
  std::error_code ec;
  if (!parser.next(ec) || ec) throw std::runtime_error("UUID not accepted");
  return parser;
}

// Arg(0): bytes per read. 323 = one whole message per read (a session keeping up with 20 ms
// frames); 4096 = a backlog read in one go, so messages are batched and split across reads.
void BM_FrameParser(benchmark::State& state) {
  const auto read_bytes = static_cast<std::size_t>(state.range(0));
  const auto stream = audio_stream();
  FrameParser parser = established_parser();
  std::size_t pos = 0;
  std::uint64_t messages = 0;
  std::error_code ec;
  for (auto _ : state) {
    // One "read": copy the next read_bytes of the endless stream into the parser.
    std::size_t left = read_bytes;
    while (left > 0) {
      auto dst = parser.writable();
      const std::size_t n = std::min({left, dst.size(), stream.size() - pos});
      std::memcpy(dst.data(), stream.data() + pos, n);
      parser.commit(n);
      pos = (pos + n) % stream.size();
      left -= n;
      while (auto m = parser.next(ec)) {
        benchmark::DoNotOptimize(m->payload.data());
        ++messages;
      }
    }
    if (ec) state.SkipWithError("parse error");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * read_bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(messages));
  state.counters["time_per_message"] = benchmark::Counter(
      static_cast<double>(messages), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FrameParser)->ArgName("read_bytes")->Arg(323)->Arg(4096);

}  // namespace
}  // namespace voxbridge::micro
