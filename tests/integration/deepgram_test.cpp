// Deepgram through real calls: a voxbridge server with a pipeline agent whose recognizer is the
// in-process Deepgram backend (the replies from the built-in receptionist rules and Flite), a
// simulated Asterisk placing AudioSocket calls, and the mock of Deepgram's Live Audio protocol
// (tests/support/mock_deepgram.hpp, written from Deepgram's reference) recording every request.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.hpp"
#include "support/mock_deepgram.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/asr_deepgram/backend.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using testing::MockDeepgram;
namespace http = boost::beast::http;

constexpr const char* kAgent =
    "[agent-bot]\ntype = pipeline\nllm = builtin\ntts = builtin\nrules = receptionist\n"
    "greeting = none\nasr_encoding = mulaw\nlanguage = en-US\nphrase_hints = sales, support\n";

/// A server whose agent `bot` recognizes with [deepgram-dg] at the mock (`asr` overrides where).
config::Config deepgram_config(const MockDeepgram& m, const std::string& extra = "",
                               const std::string& asr = "asr = dg\n",
                               const std::string& sections = "") {
  ::setenv("VB_TEST_DEEPGRAM_KEY", m.api_key().c_str(), 1);
  const std::string text = "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n" +
                           std::string(kAgent) + asr + "[deepgram-dg]\nurl = " + m.url() +
                           "\napi_key = ${VB_TEST_DEEPGRAM_KEY}\n" + extra + sections;
  config::Config c = config::parse_config(text, "deepgram_test.conf");
  c.general.http_listen = "127.0.0.1:0";
  c.general.log_level = "warning";
  return c;
}

/// The caller: `lead_s` of silence, then for each utterance `voice_s` of voice and `gap_s` of
/// silence.
std::vector<std::int16_t> caller(double lead_s, std::vector<std::pair<double, double>> turns) {
  auto a = testing::silence(8000, lead_s);
  for (const auto& [voice_s, gap_s] : turns) {
    testing::append(a, testing::voice(8000, voice_s));
    testing::append(a, testing::silence(8000, gap_s));
  }
  return a;
}

sim::CallPlan plan(unsigned short port, std::vector<std::int16_t> audio) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse("ulaw");
  p.audio = std::move(audio);
  p.tail = 0ms;
  p.hangup_at_end = true;
  p.max_duration = 30s;
  p.uuid = sim::random_uuid();
  return p;
}

/// The server's transcript of a call that has ended (GET /v1/calls/UUID/events).
std::string events_of(const testing::RunningServer& s, const sim::CallPlan& p) {
  std::string body;
  for (int i = 0; i < 100 && body.find("\"ended\":true") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(30ms);
    body = testing::http_request(s.server.http_port(), http::verb::get,
                                 "/v1/calls/" + std::string(p.uuid->text().data()) + "/events")
               .second;
  }
  return body;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

/// The value of the sample `name{labels}` in a /metrics text (-1 when it is not there).
double metric(const std::string& text, const std::string& sample) {
  const auto at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 2));
}

/// How many times `needle` occurs in `text`.
std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(Deepgram, ACallersWordsReachTheAgentThroughDeepgramWithTheExactRequest) {
  MockDeepgram::Options mo;
  mo.tls = true;  // as the service: wss://, the certificate checked against the test CA
  MockDeepgram mock(mo);
  mock.push_transcript("I would like to talk to sales");
  testing::RunningServer s(
      deepgram_config(mock, "ca_file = " + mock.ca_file() + "\nkeepalive_ms = 500\n"));
  auto p = plan(s.port, caller(0.5, {{1.2, 4.5}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  // What Deepgram heard is what the agent acted on: the receptionist sends sales to 100.
  EXPECT_TRUE(has(ev, R"("type":"user","text":"I would like to talk to sales")")) << ev;
  EXPECT_TRUE(has(ev, R"("action":"transfer","target":"100")")) << ev;
  ASSERT_TRUE(mock.wait_for([&] { return mock.open_connections() == 0; }, 5s));
  const auto conns = mock.connections();
  ASSERT_EQ(conns.size(), 1u);
  const auto& c = conns[0];
  // The socket for a G.711 leg: mu-law at 8 kHz, the turn options, the agent's hints.
  EXPECT_EQ(c.target,
            "/v1/listen?model=nova-3&encoding=mulaw&sample_rate=8000&channels=1"
            "&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true"
            "&smart_format=true&language=en-US&keyterm=sales&keyterm=support");
  EXPECT_EQ(c.status, 101);
  EXPECT_EQ(c.authorization, "Token " + mock.api_key());
  // The audio is the caller's own mu-law bytes (no resampling, no second transcoding): the
  // utterance from its pre-roll on is one contiguous run of what the caller sent. (Mu-law's
  // negative zero, 0x7F, comes back as its positive zero, 0xFF: both decode to 0.)
  std::vector<std::uint8_t> sent(p.audio.size());
  audio::ulaw_encode(p.audio, sent);
  std::replace(sent.begin(), sent.end(), std::uint8_t{0x7F}, std::uint8_t{0xFF});
  ASSERT_GE(c.audio.size(), 9600u);  // at least the 1.2 s of voice
  EXPECT_EQ(c.audio.size(), c.audio_bytes);
  EXPECT_NE(std::search(sent.begin(), sent.end(), c.audio.begin(), c.audio.begin() + 9600),
            sent.end());
  // Control messages are text frames, exactly as the reference spells them; the last one is
  // CloseStream at the call's end, which Deepgram answers with its Metadata and a close.
  for (const auto& m : c.received) {
    if (m.binary) continue;
    EXPECT_TRUE(m.data == R"({"type":"KeepAlive"})" || m.data == R"({"type":"Finalize"})" ||
                m.data == R"({"type":"CloseStream"})")
        << m.data;
  }
  ASSERT_FALSE(c.texts().empty());
  EXPECT_EQ(c.texts().back(), R"({"type":"CloseStream"})");
  ASSERT_FALSE(c.sent.empty());
  EXPECT_TRUE(has(c.sent.back(), R"("type":"Metadata")")) << c.sent.back();
  EXPECT_EQ(c.end, MockDeepgram::End::closed_by_mock);
  EXPECT_EQ(c.close_code, 1000);
}

TEST(Deepgram, TheCallsUtterancesShareOneSocketKeptAliveBetweenThem) {
  // The mock closes a socket that hears nothing for 2.5 s (Deepgram: 10 s): only the KeepAlive
  // messages keep it through the caller's silence between the utterances.
  MockDeepgram::Options mo;
  mo.idle_timeout = 2500ms;
  MockDeepgram mock(mo);
  mock.push_transcript("I have a question");
  mock.push_transcript("sales please");
  testing::RunningServer s(deepgram_config(mock, "keepalive_ms = 1000\n"));
  // The rules do not know the first words (their reprompt plays, about 7 s), the second go to
  // sales.
  auto p = plan(s.port, caller(0.5, {{1.0, 9.0}, {1.0, 4.0}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  const auto first = ev.find(R"("type":"user","text":"I have a question")");
  const auto second = ev.find(R"("type":"user","text":"sales please")");
  ASSERT_NE(first, std::string::npos) << ev;
  ASSERT_NE(second, std::string::npos) << ev;
  EXPECT_LT(first, second);
  EXPECT_TRUE(has(ev, R"("action":"transfer","target":"100")")) << ev;
  ASSERT_TRUE(mock.wait_for([&] { return mock.open_connections() == 0; }, 5s));
  const auto conns = mock.connections();
  ASSERT_EQ(conns.size(), 1u);  // no new socket (nor TLS handshake) per utterance
  std::size_t keepalives = 0;
  for (const auto& t : conns[0].texts()) keepalives += t == R"({"type":"KeepAlive"})" ? 1 : 0;
  EXPECT_GE(keepalives, 5u);  // over 7 s without an utterance, one a second
  EXPECT_LE(keepalives, 10u);
  const std::string metrics =
      testing::http_request(s.server.http_port(), http::verb::get, "/metrics").second;
  // Utterances: the two, and any opened while voxbridge's VAD still heard the end of one that
  // Deepgram's endpointing had already ended (empty); all of them on the one socket.
  const double utterances =
      metric(metrics, R"(voxbridge_deepgram_events_total{recognizer="dg",event="utterance"})");
  EXPECT_GE(utterances, 2);
  EXPECT_EQ(
      metric(metrics,
             R"(voxbridge_deepgram_events_total{recognizer="dg",event="utterance_reused_socket"})"),
      utterances - 1);
  EXPECT_EQ(
      metric(metrics, R"(voxbridge_deepgram_events_total{recognizer="dg",event="socket_opened"})"),
      1);
  EXPECT_EQ(
      metric(metrics, R"(voxbridge_deepgram_events_total{recognizer="dg",event="keepalive"})"),
      static_cast<double>(keepalives));
  // The socket is let go once its close has been handled (the mock may see it a moment before).
  std::string after = metrics;
  for (int i = 0; i < 100 && !has(after, R"(voxbridge_deepgram_sockets{recognizer="dg"} 0)"); ++i) {
    std::this_thread::sleep_for(20ms);
    after = testing::http_request(s.server.http_port(), http::verb::get, "/metrics").second;
  }
  EXPECT_TRUE(has(after, R"(voxbridge_deepgram_sockets{recognizer="dg"} 0)")) << after;
}

TEST(Deepgram, ARefusedKeyIsRetriedOnceThenTheCallerHearsTheFallback) {
  MockDeepgram mock;
  ::setenv("VB_TEST_DEEPGRAM_WRONG", "not-the-key", 1);
  testing::RunningServer s(deepgram_config(
      mock, "", "asr = wrong\n",
      "[deepgram-wrong]\nurl = " + mock.url() + "\napi_key = ${VB_TEST_DEEPGRAM_WRONG}\n"));
  auto p = plan(s.port, caller(0.5, {{1.2, 6.0}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  // The fallback prompt, then the server's own hangup.
  EXPECT_TRUE(r.server_sent_hangup);
  const std::string ev = events_of(s, p);
  EXPECT_FALSE(has(ev, R"("type":"user")")) << ev;
  const auto conns = mock.connections();
  ASSERT_EQ(conns.size(), 2u);  // the stream's one retry, then the fallback
  for (const auto& c : conns) {
    EXPECT_EQ(c.status, 401);
    EXPECT_EQ(c.authorization, "Token not-the-key");
    EXPECT_EQ(c.audio_bytes, 0u);
  }
}

TEST(Deepgram, ASocketThatBreaksMidUtteranceIsReplacedAndTheUtteranceSentAgain) {
  MockDeepgram mock;
  mock.push_transcript("sales");  // the first socket's utterance, lost with it
  mock.push_transcript("sales");
  testing::RunningServer s(deepgram_config(mock));
  auto p = plan(s.port, caller(0.5, {{1.5, 4.5}}));
  std::thread breaker([&] {
    // Half a second into the voice, the socket breaks.
    if (mock.wait_for([&] { return mock.connection(0).audio_bytes >= 4000; }, 10s)) {
      mock.drop_all();
    }
  });
  const auto r = sim::place_call(p);
  breaker.join();
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  EXPECT_EQ(count(ev, R"("type":"user","text":"sales")"), 1u) << ev;
  EXPECT_TRUE(has(ev, R"("action":"transfer","target":"100")")) << ev;
  const auto conns = mock.connections();
  ASSERT_EQ(conns.size(), 2u);
  EXPECT_EQ(conns[0].end, MockDeepgram::End::dropped_by_mock);
  // The new socket got the utterance from its start: what the broken one had, then the rest.
  ASSERT_GE(conns[0].audio.size(), 4000u);
  ASSERT_GE(conns[1].audio.size(), 8000u);
  EXPECT_TRUE(
      std::equal(conns[0].audio.begin(), conns[0].audio.begin() + 4000, conns[1].audio.begin()));
}

TEST(Deepgram, ServedOverGrpcByTheProviderHostASocketLingersThenCloses) {
  MockDeepgram mock;
  mock.push_transcript("I would like to talk to sales");
  asr_deepgram::DeepgramOptions o;
  o.name = "remote";
  o.url = mock.url();
  o.api_key = mock.api_key();
  o.linger = 400ms;  // the end of the call is not known over gRPC
  provider_host::BuiltinOptions bo;
  bo.listen = "127.0.0.1:0";
  bo.asr = bo.llm = bo.tts = false;
  bo.asr_backend = std::make_shared<asr_deepgram::DeepgramBackend>(o);
  bo.asr_target.name = "remote";
  bo.asr_target.backend = "deepgram:remote";
  provider_host::BuiltinProviders host(std::move(bo));
  testing::RunningServer s(deepgram_config(
      mock, "", "asr = remote\n", "[provider-remote]\naddress = " + host.address() + "\n"));
  auto p = plan(s.port, caller(0.5, {{1.2, 4.5}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  EXPECT_TRUE(has(ev, R"("type":"user","text":"I would like to talk to sales")")) << ev;
  EXPECT_TRUE(has(ev, R"("action":"transfer","target":"100")")) << ev;
  ASSERT_TRUE(mock.wait_for([&] { return mock.open_connections() == 0; }, 5s));
  const auto conns = mock.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].target.rfind("/v1/listen?model=nova-3&encoding=mulaw&sample_rate=8000", 0), 0u)
      << conns[0].target;
  ASSERT_FALSE(conns[0].texts().empty());
  EXPECT_EQ(conns[0].texts().back(), R"({"type":"CloseStream"})");
  host.shutdown();
}

}  // namespace
}  // namespace voxbridge
