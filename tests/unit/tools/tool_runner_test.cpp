// The ToolRunner on its own, against the local tool endpoint: the caps shared by every call
// (max_concurrent, max_per_minute), stop() cancelling what runs and dropping its results, a
// handle that goes away without stop(), the definitions and fillers it hands out, and
// percent_encode.
#include "voxbridge/tools/tools.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "support/tool_server.hpp"

namespace voxbridge::tools {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// The call's io thread, played by the test thread: posted functions wait here until drained.
class CallThread {
 public:
  agent::CallControl::Poster poster() {
    return [q = q_](std::function<void()> fn) {
      {
        std::lock_guard lock(q->mu);
        q->fns.push_back(std::move(fn));
      }
      q->cv.notify_all();
    };
  }
  /// Runs what was posted until `done()` holds or `limit` passes; false if it never held.
  template <class F>
  bool run_until(F done, std::chrono::milliseconds limit = 5s) {
    const auto end = Clock::now() + limit;
    while (!done()) {
      std::function<void()> fn;
      {
        std::unique_lock lock(q_->mu);
        if (!q_->cv.wait_until(lock, end, [&] { return !q_->fns.empty(); })) return done();
        fn = std::move(q_->fns.front());
        q_->fns.pop_front();
      }
      fn();
    }
    return true;
  }
  /// Runs what was posted within `d`.
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }

 private:
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> fns;
  };
  std::shared_ptr<Queue> q_ = std::make_shared<Queue>();
};

ToolOptions tool(const std::string& name, const std::string& url) {
  ToolOptions o;
  o.name = name;
  o.description = "The " + name + " tool.";
  o.url = url;
  o.agents = {"bot"};
  return o;
}

common::v1::ToolCall call(const std::string& id, const std::string& name) {
  common::v1::ToolCall c;
  c.set_id(id);
  c.set_name(name);
  c.set_arguments_json("{}");
  return c;
}

agent::CallInfo info(const std::string& uuid) {
  agent::CallInfo i;
  i.uuid = uuid;
  return i;
}

TEST(ToolRunner, HandsOutTheAgentsToolsAndFillers) {
  ToolOptions a = tool("a", "http://127.0.0.1:1/a");
  a.filler = "Hold on.";
  a.filler_after = 700ms;
  ToolOptions b = tool("b", "http://127.0.0.1:1/b");
  b.agents = {"other"};
  b.filler = "Hold on.";
  RunnerOptions o;
  o.tools = {a, b};
  int spoken = 0;
  o.voice = [&](const std::string& phrase) {
    ++spoken;
    return std::vector<std::int16_t>(phrase.size(), 7);
  };
  ToolRunner runner(o);
  EXPECT_EQ(spoken, 1);  // once per distinct phrase, at construction
  EXPECT_TRUE(runner.offers("bot"));
  EXPECT_FALSE(runner.offers("nobody"));
  EXPECT_EQ(runner.for_call("nobody", info("u"), [](std::function<void()>) {}), nullptr);
  CallThread t;
  auto h = runner.for_call("bot", info("u"), t.poster());
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(h->definitions().size(), 1u);
  EXPECT_EQ(h->definitions()[0].name(), "a");
  EXPECT_EQ(h->definitions()[0].description(), "The a tool.");
  EXPECT_EQ(h->definitions()[0].parameters_json(), R"({"type":"object","properties":{}})");
  const auto f = h->filler("a");
  EXPECT_EQ(f.after, 700ms);
  EXPECT_EQ(f.phrase, "Hold on.");
  ASSERT_NE(f.audio, nullptr);
  EXPECT_EQ(f.audio->size(), 8u);
  EXPECT_EQ(h->filler("b").after, 0ms);  // not offered here: no filler
  h->stop();
}

TEST(ToolRunner, CapsConcurrentRequestsAndRequestsPerMinuteOverAllCalls) {
  testing::ToolServer server;
  server.script("/slow", {.delay = 300ms});
  ToolOptions o = tool("slow", server.url("/slow"));
  o.max_concurrent = 2;
  o.max_per_minute = 3;
  ToolRunner runner({{o}, 1, {}});
  runner.start();
  CallThread t;
  auto first = runner.for_call("bot", info("u1"), t.poster());
  auto second = runner.for_call("bot", info("u2"), t.poster());
  std::vector<common::v1::ToolResult> got;
  auto keep = [&](const common::v1::ToolResult& r) { got.push_back(r); };
  first->run(call("1", "slow"), keep);
  second->run(call("2", "slow"), keep);
  second->run(call("3", "slow"), keep);  // a third at once: busy
  ASSERT_TRUE(t.run_until([&] { return got.size() == 3; }));
  EXPECT_EQ(got[0].id(), "3");
  EXPECT_EQ(got[0].output(),
            "tool 'slow' is busy (2 requests at once, max_concurrent); try again later");
  EXPECT_TRUE(got[1].ok());
  EXPECT_TRUE(got[2].ok());
  first->run(call("4", "slow"), keep);   // the third request this minute
  second->run(call("5", "slow"), keep);  // the fourth: refused
  ASSERT_TRUE(t.run_until([&] { return got.size() == 5; }));
  EXPECT_EQ(got[3].id(), "5");
  EXPECT_EQ(got[3].output(),
            "tool 'slow' was used 3 times in the last minute (max_per_minute); try again later");
  EXPECT_TRUE(got[4].ok());
  EXPECT_EQ(server.requests().size(), 3u);
  first->stop();
  second->stop();
}

TEST(ToolRunner, StopCancelsTheRequestAndDropsItsResult) {
  testing::ToolServer server;
  server.script("/slow", {.delay = 3000ms});
  ToolRunner runner({{tool("slow", server.url("/slow"))}, 1, {}});
  runner.start();
  CallThread t;
  auto h = runner.for_call("bot", info("u1"), t.poster());
  int results = 0;
  h->run(call("1", "slow"), [&](const common::v1::ToolResult&) { ++results; });
  ASSERT_TRUE(server.wait_for(1));
  h->stop();
  h->run(call("2", "slow"), [&](const common::v1::ToolResult&) { ++results; });  // ignored
  t.run_for(300ms);
  EXPECT_EQ(results, 0);
  // The request was cancelled, not left to run out its 5 s deadline: the tool is free again.
  const std::string m = [&] {
    metrics::Writer w;
    runner.write_metrics(w);
    return w.take();
  }();
  EXPECT_NE(m.find(R"(voxbridge_tool_calls_total{tool="slow",outcome="failed"} 1)"),
            std::string::npos)
      << m;
}

TEST(ToolRunner, AHandleDroppedWithoutStopDeliversNothingAndARunnerStoppedRefuses) {
  testing::ToolServer server;
  server.script("/slow", {.delay = 200ms});
  ToolRunner runner({{tool("slow", server.url("/slow"))}, 1, {}});
  runner.start();
  CallThread t;
  int results = 0;
  {
    auto h = runner.for_call("bot", info("u1"), t.poster());
    h->run(call("1", "slow"), [&](const common::v1::ToolResult&) { ++results; });
    ASSERT_TRUE(server.wait_for(1));
  }
  t.run_for(400ms);
  EXPECT_EQ(results, 0);
  auto h = runner.for_call("bot", info("u2"), t.poster());
  runner.stop();
  std::string why;
  h->run(call("2", "slow"), [&](const common::v1::ToolResult& r) { why = r.output(); });
  ASSERT_TRUE(t.run_until([&] { return !why.empty(); }));
  EXPECT_EQ(why, "the tools are stopped (server shutdown)");
}

TEST(PercentEncode, LeavesOnlyUnreservedCharacters) {
  EXPECT_EQ(percent_encode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(percent_encode("a/b?c#d@e:f%g h"), "a%2Fb%3Fc%23d%40e%3Af%25g%20h");
  EXPECT_EQ(percent_encode("\xC3\xA9\r\n"), "%C3%A9%0D%0A");
}

}  // namespace
}  // namespace voxbridge::tools
