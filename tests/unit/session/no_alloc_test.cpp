// The per-frame path allocates nothing: parse -> decode -> resample -> agent -> resample ->
// encode -> pace, counted over 1,000 steady-state frames with a replaced global operator new.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/alloc_counter.hpp"
#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audiosocket/protocol.hpp"
#include "voxbridge/session/call_media.hpp"

namespace voxbridge::session {
namespace {

using namespace std::chrono_literals;
using audiosocket::Kind;

struct Leg {
  const char* name;
  Kind kind;
  bool ulaw;
  std::size_t payload_bytes;
};

class NoAllocation : public ::testing::TestWithParam<Leg> {};

TEST_P(NoAllocation, SteadyStateFramesAllocateNothing) {
  const Leg leg = GetParam();
  agent::AgentFactory factory(agent::AgentSpec{}, 16000, 3);  // echo
  MediaOptions opts;
  CallMedia media(opts, factory.create());
  audiosocket::FrameParser parser(8192);

  // One wire message per frame: a tone, encoded as the leg carries it.
  std::vector<std::uint8_t> msg(3 + leg.payload_bytes);
  msg[0] = static_cast<std::uint8_t>(leg.kind);
  msg[1] = static_cast<std::uint8_t>(leg.payload_bytes >> 8);
  msg[2] = static_cast<std::uint8_t>(leg.payload_bytes & 0xFF);
  for (std::size_t i = 3; i < msg.size(); ++i) msg[i] = static_cast<std::uint8_t>(i * 37);

  std::vector<std::uint8_t> uuid{0x01, 0x00, 0x10};
  uuid.resize(19, 0xAB);
  auto w = parser.writable();
  std::memcpy(w.data(), uuid.data(), uuid.size());
  parser.commit(uuid.size());
  std::error_code ec;
  ASSERT_TRUE(parser.next(ec));

  auto now = Clock::time_point{} + 1000s;
  voxbridge::agent::CallInfo info;
  info.uuid = "u";
  info.peer = "p";
  info.listener = "l";
  media.start(now, info);
  std::size_t bytes_out = 0;
  auto run_frames = [&](int n) {
    for (int i = 0; i < n; ++i) {
      // Bytes arrive split in two reads, as TCP may deliver them.
      const std::size_t half = msg.size() / 2;
      for (auto [off, len] :
           {std::pair{std::size_t{0}, half}, std::pair{half, msg.size() - half}}) {
        auto buf = parser.writable();
        std::memcpy(buf.data(), msg.data() + off, len);
        parser.commit(len);
        while (auto m = parser.next(ec)) {
          std::string why;
          if (!media.on_audio(m->kind, m->payload, why)) FAIL() << why;
        }
        ASSERT_FALSE(ec);
      }
      now = media.next_deadline();
      bytes_out += media.on_tick(now).size();
    }
  };
  run_frames(100);  // warm-up: format detection and DSP state creation happen here
  bytes_out = 0;
  testing::AllocationCounter allocations;
  run_frames(1000);
  EXPECT_EQ(allocations.stop(), 0u);
  // The path really ran: 1000 frames went out with the caller's audio in them.
  EXPECT_EQ(media.stats().frames_out, 1100u);
  EXPECT_GT(bytes_out, 1000u * 300u);
}

INSTANTIATE_TEST_SUITE_P(Legs, NoAllocation,
                         ::testing::Values(Leg{"slin8", Kind::slin8, false, 320},
                                           Leg{"ulaw", Kind::slin8, true, 160},
                                           Leg{"slin16", Kind::slin16, false, 640},
                                           Leg{"slin48", Kind::slin48, false, 1920}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(NoAllocationCounter, CountsAllocations) {
  // The counter itself works (a test that cannot fail proves nothing).
  testing::AllocationCounter allocations;
  auto* v = new std::vector<int>(100);
  const std::size_t counted = allocations.stop();
  delete v;
  EXPECT_GE(counted, 2u);
}

}  // namespace
}  // namespace voxbridge::session
