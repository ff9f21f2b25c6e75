// HoldMusic against a fake control path: the exact requests (start with the class, stop), a
// refusal that reaches the owner only through the call's poster, refusals that come too late
// (stopped, or the HoldMusic gone) dropped, the music stopped when its owner goes, and nothing
// asked of a call without a control path.
#include "voxbridge/pipeline/hold_music.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/fake_clients.hpp"

namespace voxbridge::pipeline {
namespace {

using Kind = agent::ActionRequest::Kind;

using FakeActions = testing::FakeCallActions;

struct Fixture {
  std::shared_ptr<FakeActions> actions = std::make_shared<FakeActions>();
  agent::CallInfo info;
  testing::ManualPoster poster;
  std::vector<std::string> refusals;
  Fixture() { info.actions = actions; }
  std::function<void(const std::string&)> on_refused() {
    return [this](const std::string& why) { refusals.push_back(why); };
  }
};

TEST(HoldMusic, StartsTheClassAndStopsIt) {
  Fixture f;
  HoldMusic m(f.info, f.poster.poster());
  EXPECT_TRUE(m.available());
  m.start("hold-music", f.on_refused());
  EXPECT_TRUE(m.on());
  m.start("other", f.on_refused());  // already on: nothing more
  ASSERT_EQ(f.actions->calls.size(), 1u);
  EXPECT_EQ(f.actions->calls[0].request.kind, Kind::start_moh);
  EXPECT_EQ(f.actions->calls[0].request.name, "hold-music");
  f.actions->calls[0].done("");  // started
  EXPECT_EQ(f.poster.run(), 0u);
  m.stop();
  EXPECT_FALSE(m.on());
  m.stop();  // once
  ASSERT_EQ(f.actions->calls.size(), 2u);
  EXPECT_EQ(f.actions->calls[1].request.kind, Kind::stop_moh);
  EXPECT_TRUE(f.refusals.empty());
}

TEST(HoldMusic, ARefusalReachesTheOwnerThroughThePosterAndNeedsNoStop) {
  Fixture f;
  HoldMusic m(f.info, f.poster.poster());
  m.start("hold-music", f.on_refused());
  f.actions->calls[0].done("denied: music on hold needs [control] mode = ari");
  EXPECT_TRUE(f.refusals.empty());  // not inside the control path's callback
  EXPECT_EQ(f.poster.run(), 1u);
  ASSERT_EQ(f.refusals.size(), 1u);
  EXPECT_EQ(f.refusals[0], "denied: music on hold needs [control] mode = ari");
  EXPECT_FALSE(m.on());
  m.stop();
  EXPECT_EQ(f.actions->calls.size(), 1u);  // nothing to stop
}

TEST(HoldMusic, ARefusalAfterStopOrAfterTheOwnerIsGoneIsDropped) {
  Fixture f;
  {
    HoldMusic m(f.info, f.poster.poster());
    m.start("a", f.on_refused());
    m.stop();
    f.actions->calls[0].done("ARI: 409 Conflict");
    f.poster.run();
    EXPECT_TRUE(f.refusals.empty());
    m.start("b", f.on_refused());  // a second wait: its own refusal only
  }
  // Gone while on: it stopped the music on its way out; the late refusal is dropped.
  ASSERT_EQ(f.actions->calls.size(), 4u);
  EXPECT_EQ(f.actions->calls[2].request.name, "b");
  EXPECT_EQ(f.actions->calls[3].request.kind, Kind::stop_moh);
  f.actions->calls[2].done("ARI: 404 Not Found");
  f.poster.run();
  EXPECT_TRUE(f.refusals.empty());
}

TEST(HoldMusic, WithoutAControlPathNothingIsAskedAndTheOwnerIsToldAtOnce) {
  agent::CallInfo info;
  testing::ManualPoster poster;
  HoldMusic m(info, poster.poster());
  EXPECT_FALSE(m.available());
  std::optional<std::string> why;
  m.start("hold-music", [&](const std::string& w) { why = w; });
  EXPECT_EQ(why, "no Asterisk control path");
  EXPECT_FALSE(m.on());
}

}  // namespace
}  // namespace voxbridge::pipeline
