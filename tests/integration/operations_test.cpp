// Operations around the calls: /metrics, /healthz, /readyz, /status and the bearer token on
// the HTTP API; who may connect (allow list, per-peer rate and call limits); pre-registration
// and routes choosing each call's agent. The server on port 0, real sockets, real calls from
// the simulator; every wait is bounded.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <future>
#include <regex>
#include <thread>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "support/http_client.hpp"
#include "support/running_server.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/server/server.hpp"
#include "voxbridge/sim/sim_call.hpp"
#include "voxbridge/webhooks/webhooks.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using testing::RunningServer;

constexpr const char* kToken = "s3cret-token-for-tests";

config::Config ops_config(const std::string& extra = "") {
  config::Config c = config::parse_config(
      "[general]\n"
      "threads = 2\n"
      "log_level = warning\n"
      "http_listen = 127.0.0.1:0\n"
      "handshake_timeout_ms = 1000\n"
      "hangup_grace_ms = 500\n"
      "[listener-main]\n"
      "bind = 127.0.0.1:0\n"
      "agent = echo\n" +
          extra,
      "ops.conf");
  return c;
}

struct HttpReply {
  int status = 0;
  std::string body;
};

HttpReply request(unsigned short port, http::verb method, const std::string& target,
                  const std::string& body = "", const std::string& token = "") {
  auto [status, text] = testing::http_request(port, method, target, body, token);
  return {status, std::move(text)};
}

HttpReply get(unsigned short port, const std::string& target, const std::string& token = "") {
  return request(port, http::verb::get, target, "", token);
}

/// The value of one sample line of the exposition ("name{labels} value"); NaN if absent.
double sample(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  std::size_t at = 0;
  while ((at = text.find(prefix, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const auto end = text.find('\n', at);
      return std::stod(text.substr(at + prefix.size(), end - at - prefix.size()));
    }
    at += prefix.size();
  }
  return std::nan("");
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 3000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

/// True if the server closed a fresh connection without sending a byte (a refusal).
bool refused_at_once(unsigned short port) {
  asio::io_context io;
  tcp::socket sock(io);
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  pollfd p{sock.native_handle(), POLLIN, 0};
  if (::poll(&p, 1, 1000) <= 0) return false;
  char c;
  return ::recv(sock.native_handle(), &c, 1, 0) <= 0;
}

sim::CallPlan call_to(unsigned short port, double seconds, std::int16_t level = 0) {
  sim::CallPlan plan;
  plan.port = port;
  plan.audio.assign(static_cast<std::size_t>(8000 * seconds), level);
  plan.tail = 0ms;
  return plan;
}

audiosocket::Uuid uuid_of(const std::string& text) {
  auto u = audiosocket::Uuid::parse(text);
  EXPECT_TRUE(u.has_value()) << text;
  return *u;
}

TEST(Operations, MetricsCountACallsFramesAndEndExactly) {
  RunningServer s(ops_config());
  const unsigned short api = s.server.http_port();
  const auto r = sim::place_call(call_to(s.port, 1.0));
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(eventually([&] { return s.server.totals().ended == 1; }));
  const auto m = get(api, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(sample(m.body, R"(voxbridge_calls_started_total{listener="main"})"), 1);
  EXPECT_EQ(sample(m.body, R"(voxbridge_calls_ended_total{listener="main",reason="caller"})"), 1);
  EXPECT_EQ(sample(m.body, R"(voxbridge_calls_active{listener="main"})"), 0);
  EXPECT_EQ(sample(m.body, R"(voxbridge_frames_received_total{listener="main"})"),
            static_cast<double>(r.frames_sent));
  EXPECT_EQ(sample(m.body, R"(voxbridge_frames_sent_total{listener="main"})"),
            static_cast<double>(s.server.totals().frames_out));
  EXPECT_GE(sample(m.body, R"(voxbridge_frames_sent_total{listener="main"})"), 45);
  EXPECT_EQ(sample(m.body, R"(voxbridge_sockets{state="call"})"), 0);
  EXPECT_NE(m.body.find("# TYPE voxbridge_turn_phase_seconds histogram\n"), std::string::npos);
  EXPECT_EQ(sample(m.body, R"(voxbridge_turn_phase_seconds_bucket{phase="asr",le="+Inf"})"), 0);
  EXPECT_GT(sample(m.body, "process_open_fds"), 0);
  // Low cardinality: no call's UUID (or peer) is ever a label.
  EXPECT_EQ(m.body.find("uuid=\""), std::string::npos);
  EXPECT_EQ(m.body.find("peer=\""), std::string::npos);
}

TEST(Operations, BadInputIsCountedByReason) {
  RunningServer s(ops_config());
  {
    asio::io_context io;
    tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), s.port});
    const std::uint8_t bad_kind[] = {0x42, 0x00, 0x01, 0x00};
    asio::write(sock, asio::buffer(bad_kind));
    pollfd p{sock.native_handle(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1);
  }
  ASSERT_TRUE(eventually([&] { return s.server.totals().bad_input == 1; }));
  const auto m = get(s.server.http_port(), "/metrics").body;
  EXPECT_EQ(sample(m, R"(voxbridge_input_errors_total{listener="main",reason="unknown_kind"})"), 1);
  EXPECT_EQ(sample(m, R"(voxbridge_input_errors_total{listener="main",reason="bad_dtmf"})"), 0);
}

TEST(Operations, HealthzAndReadyzAnswerAndReadinessEndsWithTheDrain) {
  RunningServer s(ops_config());
  const unsigned short api = s.server.http_port();
  EXPECT_EQ(get(api, "/healthz").status, 200);
  const auto ready = get(api, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready\n");
  s.server.begin_drain();
  const auto draining = get(api, "/readyz");
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(draining.body, "draining\n");
  EXPECT_EQ(get(api, "/healthz").status, 200);  // alive, just not taking calls
  EXPECT_EQ(sample(get(api, "/metrics").body, "voxbridge_ready"), 0);
}

TEST(Operations, ReadyzIsFalseWhileARequiredProviderIsDown) {
  // A pipeline agent whose providers point at a port nobody listens on.
  RunningServer s(
      ops_config("[provider-gone]\naddress = 127.0.0.1:1\n"
                 "[agent-bot]\ntype = pipeline\nasr = gone\nllm = gone\ntts = gone\n"
                 "[route-bot]\nvariable = VB_AGENT=bot\nagent = bot\n"));
  const unsigned short api = s.server.http_port();
  // Not ready from the start (nothing checked yet), then because the provider is down.
  EXPECT_EQ(get(api, "/readyz").status, 503);
  ASSERT_TRUE(eventually(
      [&] { return get(api, "/readyz").body.find("provider gone") != std::string::npos; },
      10000ms));
  EXPECT_EQ(get(api, "/readyz").status, 503);
}

TEST(Operations, StatusListsLiveCallsWithTheirFacts) {
  RunningServer s(ops_config());
  auto plan = call_to(s.port, 2.0);
  plan.format = *sim::LegFormat::parse("slin16");
  plan.audio.assign(32000, 0);
  const std::string id = "5e3c3b8e-1d2f-4c1a-9b0a-2f6f3c0d9e11";
  plan.uuid = uuid_of(id);
  auto call = std::async(std::launch::async, [plan] { return sim::place_call(plan); });
  std::string body;
  ASSERT_TRUE(eventually([&] {
    body = get(s.server.http_port(), "/status").body;
    return body.find("\"rate_hz\":16000") != std::string::npos;
  }));
  EXPECT_NE(body.find("\"codec\":\"slin\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"uuid\":\"" + id + "\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"listener\":\"main\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"rate_hz\":16000"), std::string::npos) << body;
  EXPECT_NE(body.find("\"agent\":\"echo\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"peer\":\"127.0.0.1:"), std::string::npos) << body;
  EXPECT_TRUE(call.get().connected);
  EXPECT_TRUE(eventually([&] { return get(s.server.http_port(), "/status").body == "[]\n"; }));
}

TEST(Operations, TheApiWantsTheBearerTokenExceptForProbes) {
  RunningServer s(ops_config());
  auto cfg = ops_config();
  cfg.general.http_token = kToken;
  RunningServer t(cfg);
  const unsigned short api = t.server.http_port();
  EXPECT_EQ(get(api, "/metrics").status, 401);
  EXPECT_EQ(get(api, "/metrics", "wrong-token-of-the-same-size!").status, 401);
  EXPECT_EQ(get(api, "/status").status, 401);
  EXPECT_EQ(
      request(api, http::verb::post, "/v1/calls/5e3c3b8e-1d2f-4c1a-9b0a-2f6f3c0d9e11", "{}").status,
      401);
  EXPECT_EQ(get(api, "/metrics", kToken).status, 200);
  EXPECT_EQ(get(api, "/healthz").status, 200);
  EXPECT_EQ(get(api, "/readyz").status, 200);
  // Without a token (loopback) everything is open.
  EXPECT_EQ(get(s.server.http_port(), "/metrics").status, 200);
}

TEST(Operations, PeersOutsideTheAllowListAreRefusedAndOthersServed) {
  RunningServer s(ops_config(
      "[listener-office]\nbind = 127.0.0.1:0\nagent = echo\nallow = 10.0.0.0/8, 192.168.0.0/16\n"));
  const unsigned short office = s.server.ports().at(1);
  EXPECT_TRUE(refused_at_once(office));
  EXPECT_TRUE(refused_at_once(office));
  // The other listener (default allow list: loopback and private ranges) serves the call.
  const auto r = sim::place_call(call_to(s.port, 0.5));
  EXPECT_TRUE(r.connected);
  EXPECT_GE(r.received.size(), 3000u);
  const auto t = s.server.totals();
  EXPECT_EQ(t.rejected[static_cast<std::size_t>(server::Rejection::not_allowed)], 2u);
  EXPECT_EQ(t.started, 1u);
  EXPECT_EQ(sample(get(s.server.http_port(), "/metrics").body,
                   R"(voxbridge_connections_rejected_total{reason="not_allowed"})"),
            2);
}

TEST(Operations, APeerGetsAtMostItsShareOfCalls) {
  RunningServer s(ops_config("max_calls_per_peer = 1\n"));
  auto first =
      std::async(std::launch::async, [&] { return sim::place_call(call_to(s.port, 1.5)); });
  ASSERT_TRUE(eventually([&] { return s.server.totals().started == 1; }));
  EXPECT_TRUE(refused_at_once(s.port));
  EXPECT_EQ(s.server.totals().rejected[static_cast<std::size_t>(server::Rejection::peer_limit)],
            1u);
  EXPECT_TRUE(first.get().connected);
  ASSERT_TRUE(eventually([&] { return s.server.active_calls() == 0; }));
  // The slot is back once the call is over.
  const auto again = sim::place_call(call_to(s.port, 0.2));
  EXPECT_TRUE(again.connected);
  EXPECT_EQ(s.server.totals().started, 2u);
}

TEST(Operations, ConnectionsBeyondThePeersRateAreRefused) {
  RunningServer s(ops_config("connect_rate = 1\nconnect_burst = 2\n"));
  asio::io_context io;  // before the sockets: they must go first
  std::vector<std::unique_ptr<tcp::socket>> open;
  for (int i = 0; i < 2; ++i) {
    open.push_back(std::make_unique<tcp::socket>(io));
    open.back()->connect({asio::ip::make_address("127.0.0.1"), s.port});
  }
  EXPECT_TRUE(refused_at_once(s.port));
  EXPECT_EQ(s.server.totals().rejected[static_cast<std::size_t>(server::Rejection::rate_limited)],
            1u);
}

TEST(Operations, AListenerCanRefuseUuidsThatWereNotPreRegistered) {
  RunningServer s(ops_config("require_registration = yes\n"));
  const unsigned short api = s.server.http_port();
  auto plan = call_to(s.port, 1.0);
  plan.hangup_at_end = false;
  plan.uuid = uuid_of("0f0e0d0c-0b0a-4908-8706-050403020100");
  const auto refused = sim::place_call(plan);
  EXPECT_TRUE(refused.server_sent_hangup);
  EXPECT_LT(refused.duration_ms, 800);
  EXPECT_EQ(s.server.totals().unregistered, 1u);

  const auto reg = request(api, http::verb::post, "/v1/calls/0F0E0D0C-0B0A-4908-8706-050403020100",
                           R"({"ttl": 30})");
  EXPECT_EQ(reg.status, 201) << reg.body;
  plan.hangup_at_end = true;
  const auto admitted = sim::place_call(plan);
  EXPECT_TRUE(admitted.connected);
  EXPECT_FALSE(admitted.server_sent_hangup);
  EXPECT_GE(admitted.received.size(), 7000u);
  EXPECT_EQ(s.server.totals().unregistered, 1u);
  // A registration is used once.
  plan.hangup_at_end = false;
  EXPECT_TRUE(sim::place_call(plan).server_sent_hangup);
  EXPECT_EQ(request(api, http::verb::post, "/v1/calls/not-a-uuid", "{}").status, 400);
  EXPECT_EQ(request(api, http::verb::post, "/v1/calls/0f0e0d0c-0b0a-4908-8706-050403020100",
                    R"({"ttl": "soon"})")
                .status,
            400);
}

/// Mean absolute sample value of the middle of what came back.
double level_of(const std::vector<std::int16_t>& x) {
  if (x.size() < 4000) return 0;
  double sum = 0;
  for (std::size_t i = 2000; i < x.size() - 1000; ++i) sum += std::abs(x[i]);
  return sum / static_cast<double>(x.size() - 3000);
}

TEST(Operations, ALiveCallsTranscriptEventsCanBeFollowed) {
  RunningServer s(ops_config());
  const unsigned short api = s.server.http_port();
  auto plan = call_to(s.port, 1.5);
  plan.uuid = uuid_of("22222222-3333-4444-8555-666666666666");
  plan.dtmf = {{200ms, '5'}};
  auto call = std::async(std::launch::async, [&] { return sim::place_call(plan); });
  const std::string path = "/v1/calls/22222222-3333-4444-8555-666666666666/events";
  std::string all;
  ASSERT_TRUE(eventually([&] {
    const auto r = get(api, path);
    all = r.body;
    return r.status == 200 && all.find("\"type\":\"dtmf\"") != std::string::npos;
  })) << all;
  // Start, then the digit, in order; `next` says where the following poll begins.
  EXPECT_EQ(all.rfind("{\"uuid\":\"22222222-3333-4444-8555-666666666666\",\"ended\":false,"
                      "\"next\":2,\"events\":[{",
                      0),
            0u)
      << all;
  EXPECT_LT(all.find("\"type\":\"start\""), all.find("\"type\":\"dtmf\",\"digit\":\"5\"")) << all;
  // The answer and the start event say which event schema they follow.
  EXPECT_TRUE(all.ends_with("}],\"schema\":2}\n")) << all;
  EXPECT_NE(all.find("\"type\":\"start\",\"schema\":2,"), std::string::npos) << all;
  const auto from1 = get(api, path + "?from=1");
  EXPECT_EQ(from1.status, 200);
  EXPECT_NE(from1.body.find("\"next\":2,\"events\":[{\"t_ms\":"), std::string::npos) << from1.body;
  EXPECT_EQ(from1.body.find("\"type\":\"start\""), std::string::npos) << from1.body;
  const auto from2 = get(api, path + "?from=2");
  EXPECT_NE(from2.body.find("\"next\":2,\"events\":[]"), std::string::npos) << from2.body;
  EXPECT_EQ(get(api, "/v1/calls/22222222-3333-4444-8555-777777777777/events").status, 404);
  EXPECT_EQ(request(api, http::verb::post, path).status, 405);
  EXPECT_TRUE(call.get().connected);
  // Once the call is gone its whole transcript, end included, stays for a minute.
  std::string after;
  EXPECT_TRUE(eventually([&] {
    after = get(api, path + "?from=1").body;
    return after.find("\"ended\":true") != std::string::npos;
  })) << after;
  EXPECT_NE(after.find("\"next\":3,\"events\":[{\"t_ms\":"), std::string::npos) << after;
  EXPECT_LT(after.find("\"type\":\"dtmf\""), after.find("\"type\":\"end\",\"by\":\"caller\""))
      << after;
}

TEST(Operations, RoutesPickTheAgentFromPreRegisteredMetadata) {
  // Silence in: the echo agent answers silence, the tone agent a 440 Hz tone.
  RunningServer s(
      ops_config("[agent-tone]\ntype = playback\ntone_hz = 440\ntone_ms = 5000\n"
                 "[route-vip]\nvariable = VB_AGENT=tone\nagent = tone\n"
                 "[route-uk]\ncaller = _44X.\nagent = tone\n"));
  const unsigned short api = s.server.http_port();
  auto plan = call_to(s.port, 1.0);

  plan.uuid = uuid_of("11111111-2222-4333-8444-555555555555");
  ASSERT_EQ(request(api, http::verb::post, "/v1/calls/11111111-2222-4333-8444-555555555555",
                    R"({"VB_AGENT": "tone"})")
                .status,
            201);
  const auto routed = sim::place_call(plan);
  EXPECT_GT(level_of(routed.received), 1000);

  plan.uuid = uuid_of("11111111-2222-4333-8444-666666666666");
  ASSERT_EQ(request(api, http::verb::post, "/v1/calls/11111111-2222-4333-8444-666666666666",
                    R"({"caller_number": "4420795551234"})")
                .status,
            201);
  EXPECT_GT(level_of(sim::place_call(plan).received), 1000);

  // Form data, as Asterisk's CURL() sends it (dialplan/extensions_voxbridge.conf).
  plan.uuid = uuid_of("11111111-2222-4333-8444-888888888888");
  ASSERT_EQ(request(api, http::verb::post, "/v1/calls/11111111-2222-4333-8444-888888888888",
                    "VB_AGENT=tone&caller_number=%2B15551234&ttl=30")
                .status,
            201);
  EXPECT_GT(level_of(sim::place_call(plan).received), 1000);
  EXPECT_EQ(request(api, http::verb::post, "/v1/calls/11111111-2222-4333-8444-888888888888",
                    "VB_AGENT=tone&ttl=0")
                .status,
            400);
  EXPECT_EQ(request(api, http::verb::post, "/v1/calls/11111111-2222-4333-8444-888888888888",
                    "VB_AGENT=%zz")
                .status,
            400);

  plan.uuid = uuid_of("11111111-2222-4333-8444-777777777777");
  ASSERT_EQ(request(api, http::verb::post, "/v1/calls/11111111-2222-4333-8444-777777777777",
                    R"({"VB_AGENT": "sales", "caller_number": "15551234"})")
                .status,
            201);
  const auto fallthrough = sim::place_call(plan);
  EXPECT_TRUE(fallthrough.connected);
  EXPECT_LT(level_of(fallthrough.received), 1);  // the listener's echo agent: silence
}

TEST(Operations, AReloadAppliesToNewCallsAndRefusesWhatNeedsARestart) {
  auto cfg = ops_config("[agent-tone]\ntype = playback\ntone_hz = 440\ntone_ms = 5000\n");
  RunningServer s(cfg);
  auto during =
      std::async(std::launch::async, [&] { return sim::place_call(call_to(s.port, 1.5)); });
  ASSERT_TRUE(eventually([&] { return s.server.totals().started == 1; }));
  auto next = cfg;
  next.listeners[0].agent = "tone";
  next.listeners[0].peer_limits.max_calls = 5;
  std::string why;
  ASSERT_TRUE(s.server.reload(next, why)) << why;
  EXPECT_GT(level_of(sim::place_call(call_to(s.port, 1.0)).received), 1000);
  EXPECT_LT(level_of(during.get().received), 1);
  auto moved = next;
  moved.listeners[0].port = 1;
  EXPECT_FALSE(s.server.reload(moved, why));
  EXPECT_EQ(why, "the listeners (names and addresses) cannot change without a restart");
  auto hooks = next;
  hooks.webhook.url = "http://127.0.0.1:9/x";
  EXPECT_FALSE(s.server.reload(hooks, why));
  EXPECT_EQ(why, "[webhook] url and secret cannot change without a restart");
  EXPECT_GT(level_of(sim::place_call(call_to(s.port, 1.0)).received), 1000);  // unchanged
}

TEST(Operations, AThousandConnectionsThatNeverSendAUuidCostTheCallsNothing) {
  // Both ends of 1,000 connections live in this process.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = std::max<rlim_t>(lim.rlim_cur, std::min<rlim_t>(lim.rlim_max, 4096));
  ::setrlimit(RLIMIT_NOFILE, &lim);
  ASSERT_GE(lim.rlim_cur, 2200u) << "needs ulimit -n of at least 2200";
  auto cfg = ops_config();
  cfg.general.limits.handshake_timeout = 1500ms;
  // 1,001 connections from one address in well under a second: past the default connect
  // burst (1,000), which is not what this test is about.
  cfg.listeners[0].peer_limits.rate_per_second = 0;
  RunningServer s(cfg);
  // A call that runs through the flood, with a known signal, at the internal rate (16 kHz:
  // no resampling, so the echo is bit-exact).
  auto plan = call_to(s.port, 3.0);
  plan.format = *sim::LegFormat::parse("slin16");
  plan.audio.resize(48000);
  for (std::size_t i = 0; i < plan.audio.size(); ++i) {
    plan.audio[i] = static_cast<std::int16_t>((i % 80) * 200 - 8000);
  }
  auto call = std::async(std::launch::async, [plan] { return sim::place_call(plan); });
  ASSERT_TRUE(eventually([&] { return s.server.totals().started == 1; }));
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> silent;
  for (int i = 0; i < 1000; ++i) {
    silent.push_back(std::make_unique<tcp::socket>(io));
    boost::system::error_code ec;
    silent.back()->connect({asio::ip::make_address("127.0.0.1"), s.port}, ec);
    ASSERT_FALSE(ec) << i << ": " << ec.message();
  }
  EXPECT_TRUE(eventually([&] { return s.server.active_calls() == 1001; }));
  const auto r = call.get();
  EXPECT_TRUE(r.connected);
  EXPECT_FALSE(r.server_closed);
  // Every frame came back, and came back exactly (the echo of a known ramp).
  EXPECT_EQ(r.frames_sent, 150u);
  ASSERT_GE(r.received.size(), 150u * 320u - 320u);
  std::size_t off = 0;
  while (off < r.received.size() && r.received[off] == 0) ++off;
  ASSERT_LT(off, r.received.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i + off < r.received.size() && i < plan.audio.size(); ++i) {
    if (r.received[i + off] != plan.audio[i]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u);
  // The silent ones are closed by the handshake timeout and counted.
  EXPECT_TRUE(eventually([&] { return s.server.active_calls() == 0; }, 5000ms));
  const auto m = get(s.server.http_port(), "/metrics").body;
  EXPECT_EQ(
      sample(m, R"(voxbridge_input_errors_total{listener="main",reason="handshake_timeout"})"),
      1000);
  EXPECT_EQ(sample(m, R"(voxbridge_sockets{state="handshake"})"), 0);
}

TEST(Operations, RandomBytesCloseOnlyTheirConnection) {
  RunningServer s(ops_config());
  auto call = std::async(std::launch::async, [&] { return sim::place_call(call_to(s.port, 1.5)); });
  ASSERT_TRUE(eventually([&] { return s.server.totals().started == 1; }));
  std::uint32_t seed = 12345;
  for (int c = 0; c < 50; ++c) {
    asio::io_context io;
    tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), s.port});
    std::vector<std::uint8_t> junk(4096);
    for (auto& b : junk) {
      seed = seed * 1664525u + 1013904223u;
      b = static_cast<std::uint8_t>(seed >> 24);
    }
    boost::system::error_code ec;
    asio::write(sock, asio::buffer(junk), ec);  // may fail once the server has closed
  }
  const auto r = call.get();
  EXPECT_TRUE(r.connected);
  EXPECT_FALSE(r.server_closed);
  EXPECT_GE(r.received.size(), 11000u);
  EXPECT_TRUE(eventually([&] { return s.server.totals().bad_input == 50; }));
  // The caller's close is seen on the call's next tick (later under ASan): wait for it.
  EXPECT_TRUE(eventually([&] { return s.server.totals().ended == 1; }));
  EXPECT_EQ(s.server.totals().ended, 1u);
}

/// A temporary directory, removed at the end.
struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/vb-ops-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

/// The interleaved 16-bit samples of a WAV's data chunk, and its channel count.
std::pair<int, std::vector<std::int16_t>> read_stereo(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  if (bytes.size() < 44 || bytes.compare(0, 4, "RIFF") != 0) return {0, {}};
  const int channels = static_cast<unsigned char>(bytes[22]);
  const auto data = bytes.find("data");
  if (data == std::string::npos) return {0, {}};
  std::uint32_t len = 0;
  std::memcpy(&len, bytes.data() + data + 4, 4);
  std::vector<std::int16_t> s(len / 2);
  std::memcpy(s.data(), bytes.data() + data + 8, s.size() * 2);
  return {channels, s};
}

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

TEST(Operations, ACallIsRecordedAsAStereoWavAndAJsonlTranscript) {
  TempDir dir;
  RunningServer s(ops_config("[recording]\ndirectory = " + dir.path.string() + "\n"));
  auto plan = call_to(s.port, 1.0, 1000);
  plan.format = *sim::LegFormat::parse("slin16");  // the internal rate: no resampling
  plan.audio.assign(16000, 1000);
  plan.tail = 200ms;
  plan.dtmf = {{500ms, '5'}};
  const std::string id = "a1b2c3d4-0000-4000-8000-000000000001";
  plan.uuid = uuid_of(id);
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected);
  ASSERT_TRUE(eventually([&] { return s.server.totals().ended == 1; }));
  s.server.recorder()->flush();
  std::filesystem::path wav, jsonl;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path)) {
    if (e.path().filename() == id + ".wav") wav = e.path();
    if (e.path().filename() == id + ".jsonl") jsonl = e.path();
  }
  ASSERT_FALSE(wav.empty());
  ASSERT_FALSE(jsonl.empty());
  const auto [channels, pcm] = read_stereo(wav);
  ASSERT_EQ(channels, 2);
  // Left: the caller's 1 s of 1000s then silence; right: the echo of it, a little later.
  std::size_t left_1000 = 0, right_1000 = 0, left_first = pcm.size(), right_first = pcm.size();
  for (std::size_t i = 0; i + 1 < pcm.size(); i += 2) {
    if (pcm[i] == 1000) {
      ++left_1000;
      left_first = std::min(left_first, i / 2);
    }
    if (pcm[i + 1] == 1000) {
      ++right_1000;
      right_first = std::min(right_first, i / 2);
    }
  }
  EXPECT_EQ(left_1000, 16000u);   // every caller sample, exactly
  EXPECT_GE(right_1000, 15000u);  // the echo (its tail may be cut by the hangup)
  // The echo agent answers on the tick that read the frame: the same place on the call's clock
  // (a jitter of a frame or two at most).
  EXPECT_GE(right_first, left_first);
  EXPECT_LE(right_first - left_first, 16000u / 50 * 2);
  const auto lines = lines_of(jsonl);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_NE(lines.front().find("\"type\":\"start\""), std::string::npos) << lines.front();
  EXPECT_NE(lines.front().find("\"uuid\":\"" + id + "\""), std::string::npos);
  EXPECT_NE(lines[1].find("\"type\":\"dtmf\",\"digit\":\"5\""), std::string::npos) << lines[1];
  EXPECT_NE(lines.back().find("\"type\":\"end\",\"by\":\"caller\""), std::string::npos)
      << lines.back();
  const auto m = get(s.server.http_port(), "/metrics").body;
  EXPECT_EQ(sample(m, "voxbridge_recordings_total"), 1);
  EXPECT_EQ(sample(m, "voxbridge_recordings_failed_total"), 0);
}

TEST(Operations, ARouteCanTurnRecordingOffForItsCalls) {
  TempDir dir;
  RunningServer s(ops_config("[recording]\ndirectory = " + dir.path.string() +
                             "\n[route-private]\nvariable = VB_PRIVATE=yes\nagent = echo\n"
                             "record = no\n"));
  const unsigned short api = s.server.http_port();
  auto plan = call_to(s.port, 0.3);
  plan.uuid = uuid_of("a1b2c3d4-0000-4000-8000-000000000002");
  ASSERT_EQ(request(api, http::verb::post, "/v1/calls/a1b2c3d4-0000-4000-8000-000000000002",
                    R"({"VB_PRIVATE": "yes"})")
                .status,
            201);
  ASSERT_TRUE(sim::place_call(plan).connected);
  plan.uuid = uuid_of("a1b2c3d4-0000-4000-8000-000000000003");
  ASSERT_TRUE(sim::place_call(plan).connected);
  ASSERT_TRUE(eventually([&] { return s.server.totals().ended == 2; }));
  s.server.recorder()->flush();
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path)) {
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a1b2c3d4-0000-4000-8000-000000000003.jsonl",
                                             "a1b2c3d4-0000-4000-8000-000000000003.wav"}));
}

/// A webhook receiver: answers 200 to every POST and keeps them.
struct Receiver {
  Receiver() : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread = std::thread([this] {
      for (;;) {
        boost::system::error_code ec;
        tcp::socket sock(io);
        acceptor.accept(sock, ec);
        if (ec || stopping) return;
        boost::beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::read(sock, buf, req, ec);
        if (ec) continue;
        {
          std::lock_guard lock(mu);
          got.push_back(req);
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.prepare_payload();
        http::write(sock, res, ec);
      }
    });
  }
  ~Receiver() {
    stopping = true;
    boost::system::error_code ec;
    tcp::socket poke(io);
    poke.connect(acceptor.local_endpoint(), ec);
    thread.join();
  }
  std::vector<http::request<http::string_body>> requests() {
    std::lock_guard lock(mu);
    return got;
  }
  unsigned short port() const { return acceptor.local_endpoint().port(); }
  asio::io_context io;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::vector<http::request<http::string_body>> got;
  std::thread thread;
};

TEST(Operations, WebhooksTellCallStartAndEndWithTheTranscriptSigned) {
  Receiver rx;
  RunningServer s(ops_config("[webhook]\nurl = http://127.0.0.1:" + std::to_string(rx.port()) +
                             "/hooks\nsecret = webhook-secret-123\n"));
  auto plan = call_to(s.port, 0.6);
  plan.dtmf = {{200ms, '7'}};
  const std::string id = "a1b2c3d4-0000-4000-8000-0000000000aa";
  plan.uuid = uuid_of(id);
  ASSERT_TRUE(sim::place_call(plan).connected);
  ASSERT_TRUE(eventually([&] { return rx.requests().size() == 2; }, 5000ms));
  const auto reqs = rx.requests();
  EXPECT_EQ(reqs[0]["X-Voxbridge-Event"], "call_started");
  EXPECT_EQ(reqs[1]["X-Voxbridge-Event"], "call_ended");
  EXPECT_EQ(reqs[0].target(), "/hooks");
  EXPECT_NE(reqs[0].body().find("\"uuid\":\"" + id + "\""), std::string::npos) << reqs[0].body();
  const std::string& ended = reqs[1].body();
  EXPECT_EQ(reqs[0].body().rfind("{\"event\":\"call_started\",\"schema\":2,", 0), 0u)
      << reqs[0].body();
  EXPECT_EQ(ended.rfind("{\"event\":\"call_ended\",\"schema\":2,", 0), 0u) << ended;
  EXPECT_NE(ended.find("\"by\":\"caller\""), std::string::npos) << ended;
  const auto start = ended.find("\"type\":\"start\"");
  const auto dtmf = ended.find("\"type\":\"dtmf\",\"digit\":\"7\"");
  const auto end = ended.find("\"type\":\"end\"");
  ASSERT_NE(start, std::string::npos) << ended;
  ASSERT_NE(dtmf, std::string::npos) << ended;
  ASSERT_NE(end, std::string::npos) << ended;
  EXPECT_LT(start, dtmf);
  EXPECT_LT(dtmf, end);
  for (const auto& r : reqs) {
    const std::string ts(r["X-Voxbridge-Timestamp"]);
    EXPECT_EQ(std::string(r["X-Voxbridge-Signature"]),
              "sha256=" + webhooks::sign("webhook-secret-123", ts, r.body()));
  }
}

}  // namespace
}  // namespace voxbridge
