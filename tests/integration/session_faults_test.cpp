// Calls whose agent fails, beside calls that must not notice: sessions on one io thread (one
// pacing clock, one mailbox, as the server wires them), real sockets, the call simulator.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <future>
#include <stdexcept>
#include <thread>

#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/session/call_session.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

/// Echoes the caller; on its `fail_at`-th frame it throws, in the tick (`in_callback` false) or
/// in a function posted to the call's io thread, as a provider's message would be.
class FailingEcho : public agent::Agent {
 public:
  FailingEcho(int fail_at, bool in_callback) : fail_at_(fail_at), in_callback_(in_callback) {}
  void on_start(agent::CallControl& control, const agent::CallInfo&) override {
    control_ = &control;
  }
  void on_audio(std::span<const std::int16_t> samples) override {
    if (++frames_ == fail_at_) {
      if (!in_callback_) throw std::runtime_error("test agent failed in the tick");
      control_->poster()([] { throw std::runtime_error("test agent failed in a callback"); });
    }
    control_->play(samples);
  }
  void on_dtmf(char) override {}
  void on_end(std::string_view) override {}

 private:
  agent::CallControl* control_ = nullptr;
  int frames_ = 0;
  int fail_at_;
  bool in_callback_;
};

/// Makes each call's agent; observes nothing else.
class AgentMaker : public session::CallObserver {
 public:
  explicit AgentMaker(std::function<std::unique_ptr<agent::Agent>()> make)
      : make_(std::move(make)) {}
  std::unique_ptr<agent::Agent> make_agent() override { return make_(); }
  session::CallPlan start(agent::CallInfo&) override { return {}; }

 private:
  std::function<std::unique_ptr<agent::Agent>()> make_;
};

/// One io thread serving AudioSocket calls on a port, wired as the server wires its threads.
class OneThreadServer {
 public:
  explicit OneThreadServer(std::function<std::unique_ptr<agent::Agent>()> make_agent)
      : acceptor_(pool_.context(0), {asio::ip::make_address("127.0.0.1"), 0}) {
    spdlog::set_level(spdlog::level::warn);
    auto sc = std::make_shared<session::SessionConfig>();
    sc->listener = "test";
    sc->observer = std::make_shared<AgentMaker>(std::move(make_agent));
    config_ = sc;
    mailbox_->attach(&clock_.next_wake());
    clock_.on_wake([m = mailbox_] { m->drain(); });
    port = acceptor_.local_endpoint().port();
    accept();
    pool_.start();
  }
  ~OneThreadServer() {
    pool_.stop_now();
    mailbox_->close();
    for (auto& s : calls_) keep_.push_back(s.shared_from_this());
    for (auto& s : keep_) s->abandon();
  }
  unsigned short port = 0;

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
      if (ec) return;
      session::CallSession::start(std::move(s), config_, clock_, &calls_, mailbox_);
      accept();
    });
  }
  net::IoPool pool_{1};
  playout::PacingClock clock_{pool_.context(0).get_executor()};
  std::shared_ptr<session::Mailbox> mailbox_ =
      std::make_shared<session::Mailbox>(pool_.context(0).get_executor());
  tcp::acceptor acceptor_;
  std::shared_ptr<const session::SessionConfig> config_;
  session::SessionList calls_;
  std::vector<std::shared_ptr<session::CallSession>> keep_;
};

sim::CallPlan two_seconds(unsigned short port, std::uint8_t id) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse("slin8");
  p.audio.assign(8000 * 2, 1000);
  p.tail = 200ms;
  p.max_duration = 8s;
  audiosocket::Uuid u{};
  u.bytes.fill(id);
  p.uuid = u;
  return p;
}

void expect_failing_agent_ends_only_its_call(bool in_callback) {
  // The first call's agent fails on its 25th frame; the other three echo throughout.
  std::atomic<int> made{0};
  OneThreadServer server([&]() -> std::unique_ptr<agent::Agent> {
    return std::make_unique<FailingEcho>(made++ == 0 ? 25 : 0, in_callback);
  });
  auto failing = std::async(std::launch::async,
                            [&] { return sim::place_call(two_seconds(server.port, 0x11)); });
  std::this_thread::sleep_for(100ms);  // accepted (and its agent made) first
  std::vector<std::future<sim::CallResult>> others;
  for (std::uint8_t i = 0; i < 3; ++i) {
    others.push_back(std::async(std::launch::async, [&, i] {
      return sim::place_call(two_seconds(server.port, static_cast<std::uint8_t>(0x21 + i)));
    }));
  }
  const auto f = failing.get();
  ASSERT_TRUE(f.connected);
  EXPECT_TRUE(f.server_sent_hangup);  // the server ended the failing call ...
  EXPECT_LT(f.arrival_ms.size(), 60u);
  for (auto& o : others) {
    const auto r = o.get();
    ASSERT_TRUE(r.connected);
    EXPECT_FALSE(r.server_sent_hangup);  // ... and only that one
    EXPECT_FALSE(r.server_closed);
    // Frames every 20 ms to the end: 2.2 s of call (silence, then the echo).
    EXPECT_GE(r.arrival_ms.size(), 100u);
    const auto g = sim::gap_stats(r.arrival_ms);
    EXPECT_NEAR(g.p50, 20.0, 1.0);
    EXPECT_LT(g.max, 60.0);
  }
}

TEST(CallSession, AnAgentThatThrowsInTheTickEndsOnlyItsCallOthersOnTheThreadKeepTheirCadence) {
  expect_failing_agent_ends_only_its_call(false);
}

TEST(CallSession, AProviderCallbackThatThrowsEndsOnlyItsCallOthersOnTheThreadKeepTheirCadence) {
  expect_failing_agent_ends_only_its_call(true);
}

}  // namespace
}  // namespace voxbridge
