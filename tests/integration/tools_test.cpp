// Business tools through real calls: a voxbridge server whose s2s agent (the scripted fake
// Agent service over gRPC) asks for [tool-NAME] calls, a simulated Asterisk placing the
// AudioSocket call, and a local tool endpoint (tests/support/tool_server, HTTP or HTTPS with a
// throwaway CA) that records every request exactly as voxbridge sent it.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdlib>
#include <string>

#include "support/fake_providers.hpp"
#include "support/http_client.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "support/tool_server.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using testing::ToolServer;

constexpr int kRate = 16000;

/// An s2s agent `bot` (and `other`) on the fake agent service, the HTTP API on (for the events),
/// then the [tool-*] sections.
config::Config tools_config(const std::string& agent_address, const std::string& tools) {
  const std::string text =
      "[general]\nthreads = 2\nlog_level = warning\nhttp_listen = 127.0.0.1:0\n"
      "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n"
      "[provider-fake]\naddress = " +
      agent_address +
      "\n[agent-bot]\ntype = s2s\nprovider = fake\n"
      "[agent-other]\ntype = s2s\nprovider = fake\n" +
      tools;
  return config::parse_config(text, "tools_test.conf");
}

common::v1::ToolCall tool_call(const std::string& id, const std::string& name,
                               const std::string& arguments) {
  common::v1::ToolCall c;
  c.set_id(id);
  c.set_name(name);
  c.set_arguments_json(arguments);
  return c;
}

/// The call: `seconds` of silence from the caller, then it hangs up.
struct Call {
  sim::CallResult result;
  std::string uuid;
  Clock::time_point started;  // just before the UUID went out
};

Call place(testing::RunningServer& s, double seconds,
           const std::map<std::string, std::string>& registered = {}) {
  sim::CallPlan p;
  p.port = s.port;
  p.format = *sim::LegFormat::parse("slin16");
  p.audio = testing::silence(kRate, seconds);
  p.max_duration = 20s;
  p.uuid = sim::random_uuid();
  Call c;
  c.uuid = p.uuid->text().data();
  if (!registered.empty()) {
    EXPECT_TRUE(s.server.registrations()->add(c.uuid, registered, 60s));
  }
  c.started = Clock::now();
  c.result = sim::place_call(p);
  EXPECT_TRUE(c.result.connected) << c.result.error;
  return c;
}

/// The fake agent with no greeting (the caller hears only what the tools make it hear).
struct Agent {
  Agent() { fake.greeting_ms = 0; }
  testing::FakeSpeechAgent fake;
  testing::FakeProviderServer server{&fake};
};

std::string tool_section(const std::string& name, const std::string& url,
                         const std::string& extra = "") {
  return "[tool-" + name + "]\ndescription = The " + name + " tool.\nurl = " + url +
         "\nagents = bot\nfiller_after_ms = 0\n" + extra;
}

TEST(Tools, PostsTheCallFactsAndArgumentsAndGivesTheModelTheBody) {
  ::setenv("VB_TEST_TOOL_TOKEN", "tok-123", 1);
  ToolServer tools;
  tools.script("/orders/A%2F1%20%3Fx", {200, R"({"status":"shipped"})"});
  Agent a;
  a.fake.tool_calls = {
      tool_call("call_1", "order_status", R"({"order_id":"A/1 ?x","verbose":true})")};
  testing::RunningServer s(tools_config(
      a.server.address(),
      tool_section("order_status", tools.url("/orders/{order_id}"),
                   "parameters = {\"type\":\"object\",\"properties\":{\"order_id\":{\"type\":"
                   "\"string\"}}}\nheader = Authorization: Bearer ${VB_TEST_TOOL_TOKEN}\n"
                   "header = X-Api-Version: 2\n") +
          "[tool-admin]\ndescription = Not for bot.\nurl = " + tools.url("/admin") +
          "\nagents = other\n"));
  const Call c = place(s, 1.0,
                       {{"caller_number", "+15551234"},
                        {"caller_name", "Ann\r\nX-Evil: 1"},
                        {"called_number", "800"},
                        {"VB_LANGUAGE", "en"},
                        {"OTHER", "not sent"}});

  // The agent was offered bot's tools only, as configured.
  const auto cfg = a.fake.config();
  ASSERT_EQ(cfg.tools_size(), 1);
  EXPECT_EQ(cfg.tools(0).name(), "order_status");
  EXPECT_EQ(cfg.tools(0).description(), "The order_status tool.");
  EXPECT_EQ(cfg.tools(0).parameters_json(),
            R"({"type":"object","properties":{"order_id":{"type":"string"}}})");

  ASSERT_EQ(tools.requests().size(), 1u);
  const auto r = tools.requests().at(0);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/orders/A%2F1%20%3Fx");  // the value cannot add a segment or a query
  EXPECT_EQ(r.header("Host"), "127.0.0.1:" + std::to_string(tools.port()));
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.header("User-Agent"), "voxbridge");
  EXPECT_EQ(r.header("X-Voxbridge-Call-Id"), c.uuid);
  EXPECT_EQ(r.header("X-Voxbridge-Tool"), "order_status");
  EXPECT_EQ(r.header("Authorization"), "Bearer tok-123");
  EXPECT_EQ(r.header("X-Api-Version"), "2");
  EXPECT_FALSE(r.has("X-Evil"));
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"tool":"order_status",
      "arguments":{"order_id":"A/1 ?x","verbose":true},
      "call":{"uuid":")" + c.uuid + R"(","caller_number":"+15551234",
              "caller_name":"Ann\r\nX-Evil: 1","called_number":"800",
              "variables":{"VB_LANGUAGE":"en"}}})"));

  const auto results = a.fake.tool_results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id(), "call_1");
  EXPECT_EQ(results[0].name(), "order_status");
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[0].output(), R"({"status":"shipped"})");

  // The transcript's `tool` event, and the metrics.
  const auto [status, body] = testing::http_request(
      s.server.http_port(), boost::beast::http::verb::get, "/v1/calls/" + c.uuid + "/events");
  ASSERT_EQ(status, 200) << body;
  bool found = false;
  const json::value doc = json::parse(body);
  for (const auto& e : doc.at("events").as_array()) {
    if (e.at("type") != "tool") continue;
    found = true;
    EXPECT_EQ(e.at("name"), "order_status");
    EXPECT_EQ(e.at("id"), "call_1");
    EXPECT_EQ(e.at("ok"), true);
    EXPECT_EQ(e.at("bytes"), 20);
    EXPECT_EQ(e.at("output"), R"({\"status\":\"shipped\"})");  // log-escaped
    EXPECT_GE(e.at("duration_ms").as_int64(), 0);
  }
  EXPECT_TRUE(found) << body;
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find(R"(voxbridge_tool_calls_total{tool="order_status",outcome="ok"} 1)"),
            std::string::npos);
  EXPECT_NE(m.find(R"(voxbridge_tool_duration_seconds_count{tool="order_status"} 1)"),
            std::string::npos);
  // The secret is never in the events or the metrics.
  EXPECT_EQ(body.find("tok-123"), std::string::npos);
  EXPECT_EQ(m.find("tok-123"), std::string::npos);
  ::unsetenv("VB_TEST_TOOL_TOKEN");
}

TEST(Tools, GetSendsTheArgumentsInTheQueryAndTheCallInHeaders) {
  ToolServer tools;
  Agent a;
  a.fake.tool_calls = {tool_call("g1", "find", R"({"q":"a b&c=d","n":7})")};
  testing::RunningServer s(tools_config(
      a.server.address(), tool_section("find", tools.url("/find?v=1"), "method = GET\n")));
  const Call c = place(s, 0.8, {{"caller_number", "+1555"}, {"VB_X", "y\"z"}});
  ASSERT_EQ(tools.requests().size(), 1u);
  const auto r = tools.requests().at(0);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/find?v=1&q=a%20b%26c%3Dd&n=7");
  EXPECT_EQ(r.body, "");
  EXPECT_FALSE(r.has("Content-Type"));
  EXPECT_EQ(r.header("X-Voxbridge-Call-Id"), c.uuid);
  EXPECT_EQ(r.header("X-Voxbridge-Caller-Number"), "+1555");
  EXPECT_EQ(r.header("X-Voxbridge-Variables"), R"({"VB_X":"y\"z"})");
  ASSERT_EQ(a.fake.tool_results().size(), 1u);
  EXPECT_TRUE(a.fake.tool_results()[0].ok());
}

TEST(Tools, ASlowToolGivesATimeoutResultOnTime) {
  ToolServer tools;
  tools.script("/slow", {.delay = 3000ms});
  Agent a;
  a.fake.tool_calls = {tool_call("s1", "slow", "{}")};
  testing::RunningServer s(tools_config(
      a.server.address(), tool_section("slow", tools.url("/slow"), "timeout_ms = 300\n")));
  place(s, 1.2);
  ASSERT_EQ(tools.requests().size(), 1u);
  const auto results = a.fake.tool_results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].output(), "the tool did not answer within 300 ms");
  const auto took = a.fake.tool_result_times()[0] - tools.requests()[0].at;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 900ms);  // the deadline, not the tool's 3 s
}

TEST(Tools, FailingOversizedRefusedAndUnreachableToolsGiveErrorResults) {
  ToolServer tools;
  tools.script("/down", {503, "down for maintenance \xE2\x80\x94 back soon"});
  tools.script("/big", {.size = 5000});
  Agent a;
  a.fake.tool_calls = {
      tool_call("f1", "down", "{}"),
      tool_call("f2", "big", "{}"),
      tool_call("f3", "item", R"({"host":"127.0.0.1","id":"a/../admin"})"),
      tool_call("f4", "item", R"({"host":"localhost","id":"1"})"),
      tool_call("f5", "item", R"({"host":"127.0.0.1","id":".."})"),
      tool_call("f6", "item", R"(["not", "an", "object"])"),
      tool_call("f7", "closed", "{}"),
  };
  const std::string port = std::to_string(tools.port());
  testing::RunningServer s(
      tools_config(a.server.address(),
                   tool_section("down", tools.url("/down")) +
                       tool_section("big", tools.url("/big"), "max_response_bytes = 1000\n") +
                       tool_section("item", "http://{host}:" + port + "/items/{id}",
                                    "allowed_host = 127.0.0.1\n") +
                       tool_section("closed", "http://127.0.0.1:1/x")));
  place(s, 1.0);
  std::map<std::string, common::v1::ToolResult> by_id;
  for (const auto& r : a.fake.tool_results()) by_id[r.id()] = r;
  ASSERT_EQ(by_id.size(), 7u);
  for (const auto& [id, r] : by_id) EXPECT_EQ(r.ok(), id == "f3") << id << ": " << r.output();
  EXPECT_EQ(by_id["f1"].output(),
            "HTTP 503 from the tool: down for maintenance \xE2\x80\x94 back soon");
  EXPECT_EQ(by_id["f2"].output(),
            "the tool's response is larger than 1000 bytes (max_response_bytes)");
  EXPECT_EQ(by_id["f4"].output(), "these arguments would make the tool reach another host");
  EXPECT_EQ(by_id["f5"].output(), "the argument 'id' cannot be empty, '.' or '..'");
  EXPECT_EQ(by_id["f6"].output(), "the arguments are not a JSON object");
  EXPECT_EQ(by_id["f7"].output(), "cannot reach the tool: Connection refused");
  // Requests: the failing, the oversized and the one with a harmless (encoded) path only.
  std::vector<std::string> targets;
  for (const auto& r : tools.requests()) targets.push_back(r.target);
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, (std::vector<std::string>{"/big", "/down", "/items/a%2F..%2Fadmin"}));
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find(R"(voxbridge_tool_calls_total{tool="item",outcome="refused"} 3)"),
            std::string::npos);
  EXPECT_NE(m.find(R"(voxbridge_tool_calls_total{tool="big",outcome="too_large"} 1)"),
            std::string::npos);
  EXPECT_NE(m.find(R"(voxbridge_tool_calls_total{tool="down",outcome="http_error"} 1)"),
            std::string::npos);
}

TEST(Tools, HttpsWithTheTestCaAndNotWithoutIt) {
  ToolServer tools(true);
  tools.script("/secure", {200, R"({"secret":"42"})"});
  Agent a;
  a.fake.tool_calls = {tool_call("t1", "secure", "{}"), tool_call("t2", "untrusted", "{}")};
  testing::RunningServer s(tools_config(
      a.server.address(),
      tool_section("secure", tools.url("/secure"), "ca_file = " + tools.ca_file() + "\n") +
          tool_section("untrusted", tools.url("/secure"))));
  place(s, 1.0);
  std::map<std::string, common::v1::ToolResult> by_id;
  for (const auto& r : a.fake.tool_results()) by_id[r.id()] = r;
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_TRUE(by_id["t1"].ok());
  EXPECT_EQ(by_id["t1"].output(), R"({"secret":"42"})");
  EXPECT_FALSE(by_id["t2"].ok());
  EXPECT_EQ(by_id["t2"].output().rfind("TLS with the tool failed: ", 0), 0u)
      << by_id["t2"].output();
  ASSERT_EQ(tools.requests().size(), 1u);  // the untrusted server never got the request
  EXPECT_EQ(tools.requests()[0].header("Host"), "localhost:" + std::to_string(tools.port()));
}

TEST(Tools, AHostileModelGetsRefusalsForToolsItsAgentMayNotUseAndThePerCallCap) {
  ToolServer tools;
  Agent a;
  a.fake.tool_calls = {
      tool_call("h1", "admin", "{}"),     // configured, but for agent `other` only
      tool_call("h2", "transfer", "{}"),  // a built-in action, not a tool
      tool_call("h3", "lookup", "{}"),    // max_per_call = 2
      tool_call("h4", "lookup", "{}"),
      tool_call("h5", "lookup", "{}"),
      tool_call("h6", "lookup", std::string(9000, ' ') + "{}"),
  };
  testing::RunningServer s(tools_config(
      a.server.address(), tool_section("lookup", tools.url("/lookup"), "max_per_call = 2\n") +
                              "[tool-admin]\ndescription = Admin.\nurl = " + tools.url("/admin") +
                              "\nagents = other\n"));
  place(s, 1.0);
  std::map<std::string, common::v1::ToolResult> by_id;
  for (const auto& r : a.fake.tool_results()) by_id[r.id()] = r;
  ASSERT_EQ(by_id.size(), 6u);
  EXPECT_EQ(by_id["h1"].output(), "tool 'admin' is not available on this call");
  EXPECT_EQ(by_id["h2"].output(), "tool 'transfer' is not available on this call");
  EXPECT_TRUE(by_id["h3"].ok());
  EXPECT_TRUE(by_id["h4"].ok());
  EXPECT_EQ(by_id["h5"].output(),
            "tool 'lookup' was used 2 times on this call, its limit (max_per_call)");
  EXPECT_EQ(by_id["h6"].output(), "the arguments are larger than 8192 bytes");
  ASSERT_EQ(tools.requests().size(), 2u);
  for (const auto& r : tools.requests()) EXPECT_EQ(r.target, "/lookup");
}

/// Arrival times (steady clock) of the received 20 ms frames with speech in them.
std::vector<Clock::time_point> voiced_frames(const Call& c) {
  std::vector<Clock::time_point> out;
  const auto& r = c.result;
  const std::size_t block = kRate / 50;
  for (std::size_t f = 0; (f + 1) * block <= r.received.size() && f < r.arrival_ms.size(); ++f) {
    double e = 0;
    for (std::size_t k = f * block; k < (f + 1) * block; ++k)
      e += double(r.received[k]) * r.received[k];
    if (std::sqrt(e / double(block)) > 200) {
      out.push_back(c.started +
                    std::chrono::microseconds(static_cast<std::int64_t>(r.arrival_ms[f] * 1000)));
    }
  }
  return out;
}

TEST(Tools, TheCallerHearsTheFillerWhileASlowToolRunsAndItStopsWithTheResult) {
  ToolServer tools;
  tools.script("/slow", {.delay = 900ms});
  Agent a;
  a.fake.tool_calls = {tool_call("w1", "slow", "{}")};
  testing::RunningServer s(tools_config(
      a.server.address(),
      "[tool-slow]\ndescription = Slow.\nurl = " + tools.url("/slow") +
          "\nagents = bot\nfiller = Please hold the line while I look that up for you.\n"
          "filler_after_ms = 200\n"));
  const Call c = place(s, 2.2);
  ASSERT_EQ(tools.requests().size(), 1u);
  ASSERT_EQ(a.fake.tool_result_times().size(), 1u);
  ASSERT_TRUE(a.fake.tool_results()[0].ok());
  const auto asked = tools.requests()[0].at;
  const auto result = a.fake.tool_result_times()[0];
  const auto voiced = voiced_frames(c);
  ASSERT_FALSE(voiced.empty()) << "no filler heard";
  // Heard once filler_after_ms had passed (the tool was asked a moment after the model asked)...
  EXPECT_GE(voiced.front(), asked + 150ms);
  EXPECT_LT(voiced.front(), asked + 600ms);
  // ... and not past the result: 60 ms of it queued, a frame or two of socket and scheduling.
  EXPECT_LT(voiced.back(), result + 200ms);
  // The phrase (about 3 s) was cut: it played for about the tool's 900 ms less 200.
  EXPECT_LT(voiced.back() - voiced.front(), 1200ms);
}

}  // namespace
}  // namespace voxbridge
