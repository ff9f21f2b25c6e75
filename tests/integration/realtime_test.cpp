// OpenAI Realtime through real calls: a voxbridge server with an s2s agent on the in-process
// Realtime backend, a simulated Asterisk placing AudioSocket calls, and the mock of the
// Realtime wire protocol (tests/support/mock_realtime.hpp, written from OpenAI's reference)
// recording every client event voxbridge sends.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "support/http_client.hpp"
#include "support/mock_realtime.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "support/tool_server.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/realtime_openai/backend.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using testing::MockRealtime;

/// The mock's URL without the query (voxbridge adds ?model=).
std::string base_url(const MockRealtime& m) {
  const std::string u = m.url();
  return u.substr(0, u.find('?'));
}

config::Config realtime_config(const MockRealtime& m, const std::string& extra = "",
                               const std::string& listener_extra = "") {
  ::setenv("VB_TEST_RT_KEY", "sk-mock-0123456789", 1);
  const std::string text = "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n" + listener_extra +
                           "[agent-bot]\ntype = s2s\nrealtime = mock\n"
                           "[realtime-mock]\nurl = " +
                           base_url(m) + "\napi_key = ${VB_TEST_RT_KEY}\n" + extra;
  return config::parse_config(text, "realtime_test.conf");
}

sim::CallPlan plan(unsigned short port, const std::string& codec, double seconds) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse(codec);
  p.audio = testing::silence(p.format.rate_hz(), seconds);
  p.max_duration = 20s;
  return p;
}

/// Milliseconds of the received audio whose 20 ms blocks carry the tone (RMS over 1000); with
/// `first_only`, of the first run of them (one reply).
double tone_ms(const sim::CallResult& r, bool first_only = false) {
  const int rate = r.reply_rate_hz();
  const std::size_t block = static_cast<std::size_t>(rate / 50);
  double ms = 0;
  for (std::size_t i = 0; i + block <= r.received.size(); i += block) {
    double e = 0;
    for (std::size_t k = i; k < i + block; ++k) e += double(r.received[k]) * r.received[k];
    if (std::sqrt(e / double(block)) > 1000) {
      ms += 20;
    } else if (first_only && ms > 0) {
      break;
    }
  }
  return ms;
}

std::vector<json::object> events_of(const MockRealtime& m, std::size_t conn,
                                    const std::string& type) {
  std::vector<json::object> out;
  for (const auto& e : m.received(conn)) {
    if (e.type == type && e.json.is_object()) out.push_back(e.json.as_object());
  }
  return out;
}

TEST(Realtime, ACallOnAWidebandLegTalksPcmAt24kHzAndHearsTheGreeting) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Hello, Example Plumbing.", 1000));
  testing::RunningServer s(realtime_config(mock));
  const auto r = sim::place_call(plan(s.port, "slin16", 2.5));
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_GE(mock.connection_count(), 1u);
  const auto types = mock.types(0);
  ASSERT_GE(types.size(), 2u);
  EXPECT_EQ(types[0], "session.update");
  EXPECT_EQ(types[1], "response.create");
  const auto session = mock.session(0);
  EXPECT_EQ(session.at("audio").at("input").at("format"),
            (json::object{{"type", "audio/pcm"}, {"rate", 24000}}));
  EXPECT_EQ(session.at("audio").at("output").at("format"),
            (json::object{{"type", "audio/pcm"}, {"rate", 24000}}));
  // The greeting's second of tone reached the caller (a frame either way for the edges).
  EXPECT_NEAR(tone_ms(r), 1000, 40);
  // Caller audio went out in appends of 40 ms at 24 kHz (1920 bytes each).
  const auto appends = events_of(mock, 0, "input_audio_buffer.append");
  ASSERT_GE(appends.size(), 40u);  // 2.5 s of audio, less the connect time
  EXPECT_EQ(mock.appended_bytes(0), appends.size() * 1920);
}

TEST(Realtime, ACallerOnAMuLawLegIsHeardInItsOwnBytes) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Hi.", 200));
  testing::RunningServer s(realtime_config(mock, "", "codec = ulaw\n"));
  // The caller speaks once the short greeting (and the echo gate's window after it) is over.
  sim::CallPlan p = plan(s.port, "ulaw", 1.0);
  testing::append(p.audio, testing::voice(8000, 1.0, 6000));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const auto session = mock.session(0);
  EXPECT_EQ(session.at("audio").at("input").at("format"), (json::object{{"type", "audio/pcmu"}}));
  EXPECT_EQ(session.at("audio").at("output").at("format"), (json::object{{"type", "audio/pcmu"}}));
  // What the mock got of the caller's words is exactly the caller's mu-law bytes.
  std::vector<std::uint8_t> sent(p.audio.size());
  audio::ulaw_encode(p.audio, sent);
  // voxbridge decodes the leg and encodes again: mu-law's negative zero (0x7f) comes back as
  // its positive zero (0xff), the same silence.
  for (auto& b : sent) b = b == 0x7f ? 0xff : b;
  const auto voice_at = static_cast<std::size_t>(
      std::find_if(sent.begin(), sent.end(), [](std::uint8_t b) { return b != 0xff; }) -
      sent.begin());
  const auto got = mock.appended_audio(0);
  const auto got_at = static_cast<std::size_t>(
      std::find_if(got.begin(), got.end(), [](std::uint8_t b) { return b != 0xff; }) - got.begin());
  ASSERT_GE(got.size(), got_at + 6400) << "less than 0.8 s of the caller's words arrived";
  EXPECT_TRUE(std::equal(got.begin() + static_cast<std::ptrdiff_t>(got_at),
                         got.begin() + static_cast<std::ptrdiff_t>(got_at + 6400),
                         sent.begin() + static_cast<std::ptrdiff_t>(voice_at)))
      << "the appended audio is not the caller's bytes";
  EXPECT_EQ(mock.appended_bytes(0) % 320, 0u);  // 40 ms appends of 8 kHz G.711
}

TEST(Realtime, BargeInTruncatesTheReplyToWhatTheCallerHeard) {
  MockRealtime mock;
  // A long greeting, and the caller starts talking into it.
  mock.set_default_script(MockRealtime::Script::speech("A long greeting.", 4000));
  testing::RunningServer s(realtime_config(mock));
  sim::CallPlan p = plan(s.port, "slin16", 1.5);
  testing::append(p.audio, testing::voice(16000, 1.5, 20000));  // over the echo gate
  testing::append(p.audio, testing::silence(16000, 1.0));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  mock.wait_until([&] { return !events_of(mock, 0, "conversation.item.truncate").empty(); }, 3s);
  ASSERT_FALSE(events_of(mock, 0, "conversation.item.truncate").empty());
  const auto t = events_of(mock, 0, "conversation.item.truncate").at(0);
  EXPECT_EQ(t.at("content_index"), 0);
  const double heard = tone_ms(r, true);  // the greeting, until it was cut
  const double end_ms = static_cast<double>(t.at("audio_end_ms").to_number<std::int64_t>());
  // What the model keeps is what the caller heard, to one 20 ms frame.
  EXPECT_NEAR(end_ms, heard, 20.0 + 1e-9) << "heard " << heard << " ms";
  EXPECT_LT(heard, 2500);  // the greeting was cut, not played out
}

TEST(Realtime, DtmfBecomesAConversationItemTheModelAnswers) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Hi.", 200));
  testing::RunningServer s(realtime_config(mock));
  sim::CallPlan p = plan(s.port, "slin16", 2.0);
  p.dtmf = {{1000ms, '5'}};
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(
      mock.wait_until([&] { return events_of(mock, 0, "conversation.item.create").size() >= 1; }));
  const auto item = events_of(mock, 0, "conversation.item.create").at(0).at("item");
  EXPECT_EQ(item.at("role"), "user");
  EXPECT_EQ(item.at("content").at(0).at("text"), "The caller pressed 5 on the phone keypad.");
  EXPECT_GE(events_of(mock, 0, "response.create").size(), 2u);  // the greeting's, then this one
}

TEST(Realtime, ARefusedTransferGoesBackToTheModelAsAnErrorOutput) {
  MockRealtime mock;
  mock.push_script(
      MockRealtime::Script::function_call("transfer", R"({"target":"0900123"})", "call_fraud"));
  mock.set_default_script(MockRealtime::Script::speech("Sorry, I cannot do that.", 300));
  testing::RunningServer s(realtime_config(mock));
  const auto r = sim::place_call(plan(s.port, "slin16", 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(
      mock.wait_until([&] { return !events_of(mock, 0, "conversation.item.create").empty(); }));
  const auto item = events_of(mock, 0, "conversation.item.create").at(0).at("item");
  EXPECT_EQ(item.at("type"), "function_call_output");
  EXPECT_EQ(item.at("call_id"), "call_fraud");
  const auto out = json::parse(item.at("output").as_string());
  EXPECT_EQ(out.at("ok"), false);
  EXPECT_EQ(out.at("error"),
            "denied: '0900123' matches neither allow_extensions nor allow_numbers");
  EXPECT_FALSE(r.server_sent_hangup);  // the call went on
}

TEST(Realtime, ARateLimitedSessionGivesTheFallbackAndACleanEnd) {
  MockRealtime mock;
  mock.refuse_next(
      429,
      R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})",
      "7");
  testing::RunningServer s(realtime_config(mock));
  sim::CallPlan p = plan(s.port, "slin16", 4.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_GT(testing::rms(r.received, r.reply_rate_hz(), 0, 3.0), 100);  // the fallback prompt
  EXPECT_EQ(mock.upgrades().at(0).status, 429);
}

TEST(Realtime, AnErrorEventTheSessionCannotSurviveEndsTheCallCleanly) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Hi.", 200));
  testing::RunningServer s(realtime_config(mock));
  std::thread t([&] {
    mock.wait_until([&] { return mock.types(0).size() >= 2; });
    mock.send(
        0,
        R"({"type":"error","event_id":"event_x","error":{"type":"insufficient_quota","code":"insufficient_quota","message":"You exceeded your current quota.","param":null,"event_id":null}})");
  });
  sim::CallPlan p = plan(s.port, "slin16", 5.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  t.join();
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 4500);
}

TEST(Realtime, ASocketThatBreaksIsReopenedOnceAndTheConversationReplayed) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Welcome to Example.", 300));
  testing::RunningServer s(realtime_config(mock));
  std::thread t([&] {
    mock.wait_until([&] {
      for (const auto& ty : mock.sent_types(0)) {
        if (ty == "response.done") return true;
      }
      return false;
    });
    mock.drop(0);
  });
  const auto r = sim::place_call(plan(s.port, "slin16", 3.0));
  t.join();
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(
      mock.wait_until([&] { return mock.connection_count() == 2 && mock.types(1).size() >= 2; }));
  const auto types = mock.types(1);
  EXPECT_EQ(types[0], "session.update");
  EXPECT_EQ(types[1], "conversation.item.create");
  const auto item = events_of(mock, 1, "conversation.item.create").at(0).at("item");
  EXPECT_EQ(item.at("role"), "assistant");
  EXPECT_EQ(item.at("content").at(0).at("text"), "Welcome to Example.");
  EXPECT_FALSE(r.server_sent_hangup);
}

TEST(Realtime, CallsBeyondMaxSessionsGetTheFallback) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Hi.", 200));
  testing::RunningServer s(realtime_config(mock, "max_sessions = 1\n"));
  sim::CallPlan first = plan(s.port, "slin16", 3.0);
  sim::CallResult a;
  std::thread t([&] { a = sim::place_call(first); });
  ASSERT_TRUE(mock.wait_until([&] { return mock.open_count() == 1; }));
  sim::CallPlan second = plan(s.port, "slin16", 4.0);
  second.hangup_at_end = false;
  const auto b = sim::place_call(second);
  t.join();
  EXPECT_TRUE(b.server_sent_hangup);
  EXPECT_FALSE(a.server_sent_hangup);
  EXPECT_EQ(mock.connection_count(), 1u);
}

TEST(Realtime, ADurationCapHasTheModelSayGoodbyeThenHangsUp) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Hi.", 200));
  testing::RunningServer s(realtime_config(mock, "max_call_s = 1\ngoodbye = Time is up, bye.\n"));
  sim::CallPlan p = plan(s.port, "slin16", 6.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  const auto creates = events_of(mock, 0, "response.create");
  ASSERT_GE(creates.size(), 2u);
  EXPECT_EQ(creates.back().at("response").at("instructions"),
            "Say exactly this to the caller, and nothing else: \"Time is up, bye.\"");
  EXPECT_LT(r.duration_ms, 4000);
}

TEST(Realtime, OverWssWithThePrivateCaAndNotWithAWrongHostCertificate) {
  MockRealtime::Options o;
  o.tls = true;
  MockRealtime mock(o);
  mock.set_default_script(MockRealtime::Script::speech("Secure hello.", 400));
  {
    testing::RunningServer s(realtime_config(mock, "ca_file = " + mock.ca_file() + "\n"));
    const auto r = sim::place_call(plan(s.port, "slin16", 2.0));
    ASSERT_TRUE(r.connected) << r.error;
    EXPECT_NEAR(tone_ms(r), 400, 40);
    EXPECT_EQ(mock.types(0).at(0), "session.update");
  }
  o.cert_host = "wrong.example";
  MockRealtime wrong(o);
  // Its certificate names another host than the one voxbridge dials.
  config::Config c = realtime_config(wrong, "ca_file = " + wrong.ca_file() + "\n");
  c.realtime.at("mock").url = "wss://localhost:" + std::to_string(wrong.port()) + "/v1/realtime";
  testing::RunningServer s(c);
  sim::CallPlan p = plan(s.port, "slin16", 4.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  EXPECT_TRUE(r.server_sent_hangup);  // the fallback, then a clean end
  for (const auto& u : wrong.upgrades()) EXPECT_NE(u.status, 101);
}

TEST(Realtime, TranscriptsAndUsageGoIntoTheCallsEvents) {
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Thanks for calling Example.", 300));
  mock.push_transcript("I need a plumber");
  config::Config c = realtime_config(mock);
  c.general.http_listen = "127.0.0.1:0";  // the calls' events are kept
  testing::RunningServer s(c);
  sim::CallPlan p = plan(s.port, "slin16", 1.0);
  testing::append(p.audio, testing::voice(16000, 0.8, 20000));
  testing::append(p.audio, testing::silence(16000, 1.5));
  const std::string id = "a1b2c3d4-0000-4000-8000-0000000be7a1";
  p.uuid = audiosocket::Uuid::parse(id);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  std::optional<std::string> ev;
  ASSERT_TRUE(mock.wait_until(
      [&] {
        ev = s.server.events_json(id, 0);
        return ev && ev->find("\"type\":\"end\"") != std::string::npos;
      },
      3s));
  EXPECT_NE(ev->find(R"("type":"agent","text":"Thanks for calling Example.")"), std::string::npos)
      << *ev;
  EXPECT_NE(ev->find(R"("type":"user","text":"I need a plumber")"), std::string::npos) << *ev;
  // Usage: the mock's deterministic counts (its header), at least the greeting's audio tokens.
  const auto u = ev->find(R"("type":"usage","input_tokens":)");
  ASSERT_NE(u, std::string::npos) << *ev;
  EXPECT_LT(u, ev->find("\"type\":\"end\""));
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find("voxbridge_realtime_sessions_total{backend=\"mock\",outcome=\"opened\"} 1"),
            std::string::npos)
      << m;
}

TEST(Realtime, TheSameBackendServedOverGrpcByVoxbridgeProvider) {
  // voxbridge-provider --realtime NAME: the backend behind voxbridge.agent.v1.Agent, reached by
  // another voxbridge as an ordinary s2s [provider-NAME].
  MockRealtime mock;
  mock.set_default_script(MockRealtime::Script::speech("Hello over gRPC.", 600));
  const config::Config rt = realtime_config(mock);
  provider_host::BuiltinOptions o;
  o.listen = "127.0.0.1:0";
  o.asr = o.llm = o.tts = false;
  o.agent_backend =
      std::make_shared<realtime_openai::RealtimeBackend>(config::realtime_backend(rt, "mock"), 2);
  o.agent_target.name = "mock";
  o.agent_target.backend = "realtime:mock";
  provider_host::BuiltinProviders host(o);
  const config::Config c = config::parse_config(
      "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n[provider-remote]\naddress = " +
          host.address() +
          "\n[agent-bot]\ntype = s2s\nprovider = remote\ninput_rate = 24000\n"
          "output_rate = 24000\n",
      "realtime_test.conf");
  testing::RunningServer s(c);
  const auto r = sim::place_call(plan(s.port, "slin16", 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_NEAR(tone_ms(r), 600, 40);
  ASSERT_GE(mock.types(0).size(), 2u);
  EXPECT_EQ(mock.types(0)[0], "session.update");
  EXPECT_EQ(mock.session(0).at("audio").at("input").at("format"),
            (json::object{{"type", "audio/pcm"}, {"rate", 24000}}));
  host.shutdown();
}

TEST(Realtime, AFailedSessionCanEndInAConfiguredTransferInsteadOfAHangup) {
  MockRealtime mock;
  mock.refuse_next(503, R"({"error":{"message":"overloaded","type":"server_error"}})");
  config::Config c = realtime_config(mock, "", "");
  c.general.http_listen = "127.0.0.1:0";
  c.speech_agents.at("bot").failure_transfer = "100";  // as `failure_transfer = 100`
  testing::RunningServer s(c);
  sim::CallPlan p = plan(s.port, "slin16", 5.0);
  p.hangup_at_end = false;
  const std::string id = "a1b2c3d4-0000-4000-8000-00000000fa11";
  p.uuid = audiosocket::Uuid::parse(id);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);  // no control path: noted for the dialplan, then hung up
  EXPECT_GT(testing::rms(r.received, r.reply_rate_hz(), 0, 2.0), 100);  // the fallback first
  const auto [st, body] = testing::http_request(s.server.http_port(), boost::beast::http::verb::get,
                                                "/v1/calls/" + id + "/transfer");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "100");
}

TEST(Realtime, HangUpWithFinalWordsIsSpokenByTheModelThenTheCallEnds) {
  MockRealtime mock;
  mock.push_script(MockRealtime::Script::function_call(
      "hang_up", R"({"final_words":"Thanks for calling, goodbye!","reason":"caller is done"})",
      "call_bye"));
  mock.set_default_script(MockRealtime::Script::speech("Thanks for calling, goodbye!", 700));
  testing::RunningServer s(realtime_config(mock));
  sim::CallPlan p = plan(s.port, "slin16", 6.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 4000);
  EXPECT_NEAR(tone_ms(r), 700, 40);  // the final words were played before the hangup
  const auto outputs = events_of(mock, 0, "conversation.item.create");
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].at("item").at("call_id"), "call_bye");
  EXPECT_EQ(json::parse(outputs[0].at("item").at("output").as_string()),
            (json::object{{"ok", true}}));
  const auto creates = events_of(mock, 0, "response.create");
  ASSERT_EQ(creates.size(), 2u);
  EXPECT_EQ(creates[1].at("response").at("instructions"),
            "Say exactly this to the caller, and nothing else: \"Thanks for calling, goodbye!\"");
}

TEST(Realtime, AnAllowedTransferWithoutAControlPathIsNotedForTheDialplan) {
  MockRealtime mock;
  mock.push_script(
      MockRealtime::Script::function_call("transfer", R"({"target":"100"})", "call_sales"));
  config::Config c = realtime_config(mock);
  c.general.http_listen = "127.0.0.1:0";
  testing::RunningServer s(c);
  sim::CallPlan p = plan(s.port, "slin16", 5.0);
  p.hangup_at_end = false;
  const std::string id = "a1b2c3d4-0000-4000-8000-0000000c0100";
  p.uuid = audiosocket::Uuid::parse(id);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);  // the socket ends so that the dialplan goes on
  const auto [st, body] = testing::http_request(s.server.http_port(), boost::beast::http::verb::get,
                                                "/v1/calls/" + id + "/transfer");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "100");
}

}  // namespace
}  // namespace voxbridge

namespace voxbridge {
namespace {

/// The call's side of one Realtime stream, played by the test: the backend's posts are run on
/// the test's thread by pump().
struct StreamRig {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> posted;
  std::vector<agent::v1::AgentResponse> got;
  bool closed = false;

  providers::Poster poster() {
    return [this](std::function<void()> f) {
      std::lock_guard lock(mu);
      posted.push_back(std::move(f));
      cv.notify_one();
    };
  }
  providers::AgentEvents events() {
    providers::AgentEvents ev;
    ev.response = [this](agent::v1::AgentResponse& r) { got.push_back(r); };
    ev.closed = [this](const providers::StreamStatus&) { closed = true; };
    return ev;
  }
  /// Runs what the backend posted until `done` holds (or 5 s passed).
  bool pump(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      std::function<void()> f;
      {
        std::unique_lock lock(mu);
        if (!cv.wait_until(lock, until, [&] { return !posted.empty(); })) return done();
        f = std::move(posted.front());
        posted.pop_front();
      }
      f();
    }
    return true;
  }
};

agent::v1::AgentConfig tools_config() {
  agent::v1::AgentConfig cfg;
  cfg.mutable_call()->set_call_id("7e2d5a8c-0000-4000-8000-0000000000aa");
  for (auto* f : {cfg.mutable_input_format(), cfg.mutable_output_format()}) {
    f->set_encoding(common::v1::LINEAR16);
    f->set_sample_rate_hz(16000);
  }
  auto* t = cfg.add_tools();
  t->set_name("order_status");
  t->set_description("Where an order is.");
  t->set_parameters_json(
      R"({"type":"object","properties":{"order":{"type":"string"}},"required":["order"]})");
  return cfg;
}

TEST(Realtime, BusinessToolsGoIntoTheSessionAfterTheActionsAndACallsResultBackAsAnOutput) {
  // The backend as the s2s agent opens it (ProviderClients::open_agent) with AgentConfig.tools:
  // the session offers the tool, the model's call of it reaches the agent's side as
  // AgentResponse.tool_call, and the result the agent sends goes back to the model.
  MockRealtime mock;
  mock.push_script(
      MockRealtime::Script::function_call("order_status", R"({"order":"A-17"})", "call_biz_1"));
  mock.set_default_script(MockRealtime::Script::speech("It shipped yesterday.", 200));
  const config::Config c = realtime_config(mock);
  realtime_openai::RealtimeBackend backend(config::realtime_backend(c, "mock"), 2);
  StreamRig rig;
  providers::ProviderTarget target;
  target.name = "mock";
  auto stream = backend.open_agent(target, tools_config(), rig.poster(), rig.events(), 50);
  ASSERT_TRUE(rig.pump([&] {
    return std::any_of(rig.got.begin(), rig.got.end(), [](auto& r) { return r.has_tool_call(); });
  }));
  // session.update: the four actions, then the business tool exactly as configured.
  const auto updates = events_of(mock, 0, "session.update");
  ASSERT_EQ(updates.size(), 1u);
  const auto& tools = updates[0].at("session").at("tools").as_array();
  ASSERT_EQ(tools.size(), 5u);
  EXPECT_EQ(
      tools[4],
      json::parse(
          R"({"type":"function","name":"order_status","description":"Where an order is.","parameters":{"type":"object","properties":{"order":{"type":"string"}},"required":["order"]}})"));
  EXPECT_EQ(mock.session(0).at("tools").as_array().size(), 5u);  // the service took them
  const auto call = std::find_if(rig.got.begin(), rig.got.end(), [](auto& r) {
                      return r.has_tool_call();
                    })->tool_call();
  EXPECT_EQ(call.id(), "call_biz_1");
  EXPECT_EQ(call.name(), "order_status");
  EXPECT_EQ(call.arguments_json(), R"({"order":"A-17"})");
  EXPECT_TRUE(events_of(mock, 0, "conversation.item.create").empty());  // nothing before it

  agent::v1::AgentRequest res;
  auto* tr = res.mutable_event()->mutable_tool_result();
  tr->set_id("call_biz_1");
  tr->set_name("order_status");
  tr->set_ok(true);
  tr->set_output(R"({"status":"shipped"})");
  ASSERT_TRUE(stream->send(std::move(res)));
  ASSERT_TRUE(mock.wait_until([&] {
    const auto t = mock.types(0);
    const auto at = std::find(t.begin(), t.end(), "conversation.item.create");
    return at != t.end() && std::find(at, t.end(), "response.create") != t.end();
  }));
  const auto items = events_of(mock, 0, "conversation.item.create");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("item"), (json::object{{"type", "function_call_output"},
                                               {"call_id", "call_biz_1"},
                                               {"output", R"({"status":"shipped"})"}}));
  // The service took the output (no error event) and answered with the spoken reply.
  ASSERT_TRUE(rig.pump([&] {
    return std::any_of(rig.got.begin(), rig.got.end(), [](auto& r) {
      return r.has_transcript() && r.transcript().text() == "It shipped yesterday.";
    });
  }));
  for (const auto& t : mock.sent_types(0)) EXPECT_NE(t, "error");
  stream->cancel();
  rig.pump([&] { return rig.closed; });
}

TEST(Realtime, ParallelCallsInOneResponseAreAllAnsweredBeforeOneResponseCreate) {
  MockRealtime mock;
  auto both =
      MockRealtime::Script::function_call("order_status", R"({"order":"A-17"})", "call_biz_3");
  both.more_calls.push_back({"set_variable", R"({"name":"VB_ORDER","value":"A-17"})", "call_var"});
  mock.push_script(both);
  mock.set_default_script(MockRealtime::Script::speech("Done.", 200));
  const config::Config c = realtime_config(mock);
  realtime_openai::RealtimeBackend backend(config::realtime_backend(c, "mock"), 2);
  StreamRig rig;
  providers::ProviderTarget target;
  target.name = "mock";
  auto stream = backend.open_agent(target, tools_config(), rig.poster(), rig.events(), 50);
  auto seen = [&](auto pred) { return std::any_of(rig.got.begin(), rig.got.end(), pred); };
  ASSERT_TRUE(rig.pump([&] {
    return seen([](auto& r) { return r.has_tool_call(); }) &&
           seen([](auto& r) { return r.has_action(); });
  }));
  const auto action = std::find_if(rig.got.begin(), rig.got.end(), [](auto& r) {
                        return r.has_action();
                      })->action();
  EXPECT_EQ(action.tool_call_id(), "call_var");
  EXPECT_EQ(action.set_variable().name(), "VB_ORDER");
  // The action's result: its output goes, the model waits for the other call.
  agent::v1::AgentRequest ar;
  *ar.mutable_event()->mutable_action_result()->mutable_action() = action;
  ar.mutable_event()->mutable_action_result()->set_ok(true);
  ASSERT_TRUE(stream->send(std::move(ar)));
  ASSERT_TRUE(
      mock.wait_until([&] { return events_of(mock, 0, "conversation.item.create").size() == 1; }));
  agent::v1::AgentRequest tr;
  auto* t = tr.mutable_event()->mutable_tool_result();
  t->set_id("call_biz_3");
  t->set_name("order_status");
  t->set_ok(true);
  t->set_output("shipped");
  ASSERT_TRUE(stream->send(std::move(tr)));
  ASSERT_TRUE(mock.wait_until([&] {
    return events_of(mock, 0, "response.create").size() == 2;  // the greeting's, then one
  }));
  std::vector<std::string> after;  // the client events after session.update and the greeting
  for (const auto& e : mock.received(0)) {
    if (e.type == "conversation.item.create" || e.type == "response.create") {
      after.push_back(e.type == "response.create"
                          ? "response.create"
                          : std::string(e.json.at("item").at("call_id").as_string()));
    }
  }
  EXPECT_EQ(after, (std::vector<std::string>{"response.create", "call_var", "call_biz_3",
                                             "response.create"}));
  for (const auto& ty : mock.sent_types(0)) EXPECT_NE(ty, "error");
  stream->cancel();
  rig.pump([&] { return rig.closed; });
}

// Needs the tool runner's server wiring ([tool-NAME] sections, CallInfo.tools, the s2s agent
// answering AgentResponse.tool_call): enable after merging it. A business tool through a real
// call: the model calls it, voxbridge runs it against a local HTTP tool server, and its answer
// goes back to the model as function_call_output, then response.create.
TEST(Realtime, ABusinessToolThroughARealCallAnswersTheModel) {
  // The model calls a business tool: voxbridge's tool runner makes the HTTP request (the call's
  // facts and the model's arguments, the secret header from the environment), and the tool's
  // body goes back to the model as the call's function_call_output, then a response.create.
  MockRealtime mock;
  mock.push_script(
      MockRealtime::Script::function_call("order_status", R"({"order":"A-17"})", "call_biz_2"));
  mock.set_default_script(MockRealtime::Script::speech("It shipped.", 300));
  testing::ToolServer tools;
  tools.script("/orders/A-17", {200, R"({"status":"shipped"})"});
  ::setenv("VB_TEST_TOOL_KEY", "tk-0123456789", 1);
  testing::RunningServer s(realtime_config(
      mock, "[tool-order_status]\ndescription = Where an order is.\nparameters = " +
                std::string(R"({"type":"object","properties":{"order":{"type":"string"}}})") +
                "\nurl = " + tools.url("/orders/{order}") +
                "\nheader = X-Api-Key: ${VB_TEST_TOOL_KEY}\nagents = bot\n"));
  const auto r = sim::place_call(plan(s.port, "slin16", 2.5));
  ASSERT_TRUE(r.connected) << r.error;
  // The model was offered the tool after the four actions.
  const auto setup = events_of(mock, 0, "session.update").at(0).at("session").at("tools");
  ASSERT_EQ(setup.as_array().size(), 5u);
  EXPECT_EQ(setup.at(4).at("name"), "order_status");
  EXPECT_EQ(setup.at(4).at("parameters"),
            json::parse(R"({"type":"object","properties":{"order":{"type":"string"}}})"));
  // The exact request.
  ASSERT_TRUE(tools.wait_for(1));
  const auto req = tools.requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/orders/A-17");
  EXPECT_EQ(req.header("X-Api-Key"), "tk-0123456789");
  EXPECT_EQ(req.header("X-Voxbridge-Tool"), "order_status");
  const auto body = json::parse(req.body).as_object();
  EXPECT_EQ(body.at("tool"), "order_status");
  EXPECT_EQ(body.at("arguments"), json::parse(R"({"order":"A-17"})"));
  EXPECT_EQ(body.at("call").at("uuid"), json::value(req.header("X-Voxbridge-Call-Id")));
  // Its body is the model's answer.
  ASSERT_TRUE(
      mock.wait_until([&] { return !events_of(mock, 0, "conversation.item.create").empty(); }));
  const auto item = events_of(mock, 0, "conversation.item.create").at(0).at("item");
  EXPECT_EQ(item, (json::object{{"type", "function_call_output"},
                                {"call_id", "call_biz_2"},
                                {"output", R"({"status":"shipped"})"}}));
  EXPECT_GE(events_of(mock, 0, "response.create").size(), 2u);
}

}  // namespace
}  // namespace voxbridge
