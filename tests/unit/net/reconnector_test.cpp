#include "voxbridge/net/reconnector.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace voxbridge::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

/// Captures warnings logged while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(text_));
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(text_.str());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

/// A link whose every connection ends at once, as scripted; the fake clock advances by
/// `lasted[i]` during attempt i.
struct FakeLink : Reconnector::Link {
  Reconnector* loop = nullptr;
  Backoff::Clock::time_point now{};
  std::vector<Backoff::Clock::duration> lasted;
  std::vector<bool> was_up;  // what lost() answers for each attempt (false past the end)
  int stop_at = -1;          // attempt (1-based) during which stop() is called
  int attempts = 0;
  std::vector<std::pair<std::string, bool>> losses;  // (why, stopping)

  asio::awaitable<std::string> connect_once() override {
    ++attempts;
    const auto i = static_cast<std::size_t>(attempts - 1);
    if (i < lasted.size()) now += lasted[i];
    if (attempts == stop_at) loop->stop();
    co_return "refused " + std::to_string(attempts);
  }
  bool lost(const std::string& why, bool stopping) override {
    losses.emplace_back(why, stopping);
    const auto i = static_cast<std::size_t>(attempts - 1);
    return i < was_up.size() && was_up[i];
  }
};

/// Runs `link` under a Reconnector with Backoff(1 ms, 8 ms, seed 42) on the fake clock.
void run(FakeLink& link) {
  asio::io_context io;
  Reconnector loop(io.get_executor(), "Peer x:1", Backoff(1ms, 8ms, 42),
                   [&link] { return link.now; });
  link.loop = &loop;
  loop.start();
  asio::co_spawn(io, loop.run(link), asio::detached);
  io.run_for(5s);
}

TEST(Reconnector, RetriesEachFailedAttemptAfterBackoffsNextWaitUntilStopped) {
  LogCapture log;
  FakeLink link;
  link.stop_at = 4;
  run(link);
  EXPECT_EQ(link.attempts, 4);
  ASSERT_EQ(link.losses.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(link.losses[i].first, "refused " + std::to_string(i + 1));
    EXPECT_FALSE(link.losses[i].second);
  }
  EXPECT_TRUE(link.losses[3].second) << "the attempt stop() interrupted is reported as stopping";
  // The waits are Backoff's, in order; none after the last attempt.
  Backoff expected(1ms, 8ms, 42);
  const auto lines = log.lines();
  ASSERT_EQ(lines.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(lines[i], "Peer x:1: refused " + std::to_string(i + 1) + "; retrying in " +
                            std::to_string(expected.next().count()) + " ms");
  }
}

TEST(Reconnector, SaysReconnectingAfterALinkThatWasUpAndStartsOverAfterOneThatHeld) {
  LogCapture log;
  FakeLink link;
  link.stop_at = 5;
  link.was_up = {false, true, true, false};
  link.lasted = {0s, 2s, Backoff::kHeld + 1s, 0s};
  run(link);
  EXPECT_EQ(link.attempts, 5);
  Backoff expected(1ms, 8ms, 42);
  std::vector<milliseconds> waits;
  for (const auto d : link.lasted) waits.push_back(expected.after(d));
  // The third connection held over kHeld: its wait is drawn from the first step again.
  EXPECT_LE(waits[2], 1ms);
  const auto lines = log.lines();
  ASSERT_EQ(lines.size(), 4u);
  const char* words[] = {"retrying", "reconnecting", "reconnecting", "retrying"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(lines[i], "Peer x:1: refused " + std::to_string(i + 1) + "; " + words[i] + " in " +
                            std::to_string(waits[i].count()) + " ms");
  }
}

TEST(Reconnector, StopDuringAWaitEndsTheLoopAtOnce) {
  asio::io_context io;
  FakeLink link;
  Reconnector loop(io.get_executor(), "Peer", Backoff(60s, 60s, 1));
  link.loop = &loop;
  loop.start();
  bool finished = false;
  asio::co_spawn(io, loop.run(link), [&](std::exception_ptr) { finished = true; });
  asio::steady_timer later(io, 20ms);
  later.async_wait([&](const boost::system::error_code&) { loop.stop(); });
  const auto started = std::chrono::steady_clock::now();
  io.run_for(10s);
  EXPECT_TRUE(finished);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(link.attempts, 1);
  EXPECT_FALSE(loop.running());
}

TEST(Reconnector, AStopBeforeTheLoopRunsMeansNoAttempt) {
  asio::io_context io;
  FakeLink link;
  Reconnector loop(io.get_executor(), "Peer", Backoff(1ms, 1ms, 1));
  link.loop = &loop;
  loop.start();
  asio::co_spawn(io, loop.run(link), asio::detached);
  loop.stop();
  io.run_for(1s);
  EXPECT_EQ(link.attempts, 0);
  EXPECT_TRUE(link.losses.empty());
}

}  // namespace
}  // namespace voxbridge::net
