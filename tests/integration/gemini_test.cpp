// Gemini Live through real calls: a voxbridge server with an s2s agent on the in-process Gemini
// backend, a simulated Asterisk placing AudioSocket calls, and the mock of the Live API's wire
// protocol (tests/support/mock_gemini_live.hpp, written from Google's reference) recording every
// client message voxbridge sends.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>

#include "support/http_client.hpp"
#include "support/mock_gemini_live.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "support/tool_server.hpp"
#include "voxbridge/base64/base64.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/realtime_gemini/backend.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using testing::MockGeminiLive;

config::Config gemini_config(const MockGeminiLive& m, const std::string& extra = "",
                             const std::string& listener_extra = "",
                             const std::string& general = "", const std::string& sections = "") {
  ::setenv("VB_TEST_GEMINI_KEY", m.api_key().c_str(), 1);
  const std::string text = general + "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n" +
                           listener_extra +
                           "[agent-bot]\ntype = s2s\ngemini = mock\n"
                           "[gemini-mock]\nurl = " +
                           m.url() + "\napi_key = ${VB_TEST_GEMINI_KEY}\n" + extra + sections;
  return config::parse_config(text, "gemini_test.conf");
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

std::vector<json::object> messages(const MockGeminiLive& m, std::size_t conn,
                                   const std::string& kind) {
  std::vector<json::object> out;
  for (const auto& e : m.received(conn)) {
    if (e.kind == kind && e.json.is_object())
      out.push_back(e.json.as_object().at(kind).as_object());
  }
  return out;
}

bool sent_contains(const MockGeminiLive& m, std::size_t conn, const std::string& needle) {
  for (const auto& s : m.sent(conn)) {
    if (s.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(Gemini, TheSetupCarriesModelVoiceInstructionsWithTheCallersFactsToolsAndResumption) {
  MockGeminiLive mock;
  mock.set_default_script(MockGeminiLive::Script::speech("Hello.", 200));
  config::Config c = gemini_config(mock,
                                   "model = gemini-live-test\nvoice = Kore\nlanguage = en-GB\n"
                                   "instructions = Plumbing line. Caller {caller_number}, "
                                   "call {call_id}.\nvad_silence_ms = 700\n"
                                   "vad_end_sensitivity = low\n");
  c.general.http_listen = "127.0.0.1:0";
  testing::RunningServer s(c);
  const std::string id = "a1b2c3d4-0000-4000-8000-00000000be01";
  ASSERT_EQ(testing::http_request(s.server.http_port(), boost::beast::http::verb::post,
                                  "/v1/calls/" + id, R"({"caller_number": "+15551234567"})")
                .first,
            201);
  sim::CallPlan p = plan(s.port, "slin16", 1.0);
  p.uuid = audiosocket::Uuid::parse(id);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_GE(mock.kinds(0).size(), 2u);
  EXPECT_EQ(mock.kinds(0)[0], "setup");
  const json::value expected = json::parse(R"({
    "model": "models/gemini-live-test",
    "generationConfig": {"responseModalities": ["AUDIO"],
      "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
                       "languageCode": "en-GB"}},
    "systemInstruction": {"parts": [{"text":
      "Plumbing line. Caller +15551234567, call a1b2c3d4-0000-4000-8000-00000000be01."}]},
    "tools": [{"functionDeclarations": [
      {"name":"transfer","description":"Transfer the caller to another extension or phone number. Say that you are transferring them first.","parameters":{"type":"OBJECT","properties":{"target":{"type":"STRING","description":"Extension or phone number, digits only"},"context":{"type":"STRING","description":"Dialplan context, if the business told you one"}},"required":["target"]}},
      {"name":"hang_up","description":"End the call, after saying goodbye.","parameters":{"type":"OBJECT","properties":{"final_words":{"type":"STRING","description":"What to say before hanging up"},"reason":{"type":"STRING"}}}},
      {"name":"send_dtmf","description":"Press keys on the phone line (for an IVR menu): 0-9, *, #.","parameters":{"type":"OBJECT","properties":{"digits":{"type":"STRING"}},"required":["digits"]}},
      {"name":"set_variable","description":"Record a fact about the call for the business's phone system.","parameters":{"type":"OBJECT","properties":{"name":{"type":"STRING"},"value":{"type":"STRING"}},"required":["name","value"]}}]}],
    "realtimeInputConfig": {"automaticActivityDetection":
      {"endOfSpeechSensitivity": "END_SENSITIVITY_LOW", "silenceDurationMs": 700}},
    "inputAudioTranscription": {}, "outputAudioTranscription": {},
    "sessionResumption": {},
    "contextWindowCompression": {"slidingWindow": {}}
  })");
  EXPECT_EQ(json::value(mock.setup(0)), expected) << json::serialize(mock.setup(0));
  // The key went in the header, never in the URL.
  ASSERT_FALSE(mock.upgrades().empty());
  EXPECT_EQ(mock.upgrades()[0].auth, "header");
  // The greeting is a user turn right after setupComplete.
  EXPECT_EQ(mock.kinds(0)[1], "clientContent");
  EXPECT_EQ(json::value(messages(mock, 0, "clientContent").at(0)), json::parse(R"({"turns":[
    {"role":"user","parts":[{"text":"The call has just been answered. Greet the caller briefly and ask how you can help."}]}],
    "turnComplete":true})"));
}

TEST(Gemini, CallerAudioGoesOutAs16kHzPcmAndTheModels24kHzAudioIsHeard) {
  MockGeminiLive mock;
  mock.set_default_script(MockGeminiLive::Script::speech("Hello, Example Plumbing.", 1000));
  testing::RunningServer s(gemini_config(mock, "", "codec = ulaw\n"));
  // A mu-law leg: voxbridge decodes it and gives the service 16 kHz PCM.
  sim::CallPlan p = plan(s.port, "ulaw", 2.5);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  // The greeting's second of 24 kHz tone reached the caller (a frame either way for the edges).
  EXPECT_NEAR(tone_ms(r), 1000, 40);
  const auto inputs = messages(mock, 0, "realtimeInput");
  ASSERT_GE(inputs.size(), 40u);  // 2.5 s in 40 ms messages, less the connect time
  for (const auto& in : inputs) {
    EXPECT_EQ(in.at("audio").at("mimeType"), "audio/pcm;rate=16000");
    std::vector<std::uint8_t> pcm;
    ASSERT_TRUE(base64::decode(std::string_view(in.at("audio").at("data").as_string()), pcm));
    EXPECT_EQ(pcm.size(), 1280u);  // 40 ms at 16 kHz, 2 bytes a sample
  }
  EXPECT_EQ(mock.audio_bytes(0), inputs.size() * 1280);
  // Audio went out only after setupComplete: setup, then the greeting, then audio.
  EXPECT_EQ(mock.kinds(0).at(0), "setup");
}

TEST(Gemini, TheCallersVoiceReachesTheServiceAtItsLevel) {
  MockGeminiLive mock;
  mock.set_default_script(MockGeminiLive::Script::speech("Hi.", 200));
  testing::RunningServer s(gemini_config(mock));
  sim::CallPlan p = plan(s.port, "slin16", 1.0);
  testing::append(p.audio, testing::voice(16000, 1.0, 6000));
  testing::append(p.audio, testing::silence(16000, 0.5));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const auto got = mock.audio(0);
  std::vector<std::int16_t> pcm(got.size() / 2);
  for (std::size_t i = 0; i < pcm.size(); ++i) {
    pcm[i] = static_cast<std::int16_t>(got[2 * i] | (got[2 * i + 1] << 8));
  }
  // The voice's second is in what arrived, at the caller's level (within the resampler's loss).
  const double sent_level = testing::rms(p.audio, 16000, 1.0, 2.0);
  double best = 0;
  for (double t = 0; t + 0.5 <= double(pcm.size()) / 16000; t += 0.1) {
    best = std::max(best, testing::rms(pcm, 16000, t, t + 0.5));
  }
  EXPECT_NEAR(best, sent_level, sent_level * 0.15);
}

TEST(Gemini, InterruptedFlushesThePlayoutWithinATick) {
  MockGeminiLive mock;
  // A long greeting, and the caller starts talking into it.
  mock.set_default_script(MockGeminiLive::Script::speech("A long greeting.", 4000));
  testing::RunningServer s(gemini_config(mock));
  sim::CallPlan p = plan(s.port, "slin16", 1.5);
  testing::append(p.audio, testing::voice(16000, 1.0, 20000));
  testing::append(p.audio, testing::silence(16000, 1.5));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(sent_contains(mock, 0, R"("interrupted":true)"));
  // The greeting's tone stops for the caller right after the service heard the voice (at 1.5 s
  // of the call, found after 60 ms of it, sent in 40 ms messages): the queued rest is flushed,
  // not played out. The last tone frame's arrival, from the call's start:
  const std::size_t block = static_cast<std::size_t>(r.reply_rate_hz() / 50);
  double last_tone_at = -1;
  bool in_tone = false;
  for (std::size_t f = 0; (f + 1) * block <= r.received.size() && f < r.arrival_ms.size(); ++f) {
    const double level =
        testing::rms(r.received, r.reply_rate_hz(), double(f) * 0.02, double(f + 1) * 0.02);
    if (level > 1000) {
      in_tone = true;
      last_tone_at = r.arrival_ms[f];
    } else if (in_tone) {
      break;
    }
  }
  EXPECT_GT(last_tone_at, 1500) << "the tone stopped before the caller spoke";
  EXPECT_LT(last_tone_at, 1900) << "the greeting played on after the interruption";
  EXPECT_LT(tone_ms(r, true), 2000);  // of the 4 s greeting
}

TEST(Gemini, ATransferToolCallGoesThroughTheActionRunnerAndAHostileOneIsDenied) {
  MockGeminiLive mock;
  mock.push_script(
      MockGeminiLive::Script::tool_call("transfer", R"({"target":"0900123"})", "fc_fraud"));
  mock.set_default_script(MockGeminiLive::Script::speech("Sorry, I cannot do that.", 300));
  testing::RunningServer s(gemini_config(mock, "", "", ""));
  const auto r = sim::place_call(plan(s.port, "slin16", 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(mock.wait_until([&] { return !messages(mock, 0, "toolResponse").empty(); }));
  EXPECT_EQ(json::value(messages(mock, 0, "toolResponse").at(0)), json::parse(R"({
    "functionResponses": [{"id": "fc_fraud", "name": "transfer", "response": {"ok": false,
      "error": "denied: '0900123' matches neither allow_extensions nor allow_numbers"}}]})"));
  EXPECT_FALSE(r.server_sent_hangup);  // the call went on
  EXPECT_NEAR(tone_ms(r), 300, 40);    // and the model's answer to the refusal was heard
}

TEST(Gemini, ABusinessToolThroughARealCallAnswersTheModel) {
  // The call's business tool is declared in setup; the model's toolCall for it is run by
  // voxbridge's tool runner (the exact request asserted), and the tool's JSON body goes back as
  // the functionResponse's output.
  MockGeminiLive mock;
  mock.push_script(
      MockGeminiLive::Script::tool_call("order_status", R"({"order":"A-17"})", "fc_order"));
  mock.set_default_script(MockGeminiLive::Script::speech("It shipped.", 300));
  testing::ToolServer tools;
  tools.script("/orders/A-17", {200, R"({"status":"shipped"})"});
  const std::string tool =
      "[tool-order_status]\ndescription = Where an order is.\nparameters = "
      R"({"type":"object","properties":{"order":{"type":"string"}}})"
      "\nurl = " +
      tools.url("/orders/{order}") + "\nagents = bot\n";
  testing::RunningServer s(gemini_config(mock, "", "", "", tool));
  const auto r = sim::place_call(plan(s.port, "slin16", 2.5));
  ASSERT_TRUE(r.connected) << r.error;
  const auto decls =
      messages(mock, 0, "setup").at(0).at("tools").at(0).at("functionDeclarations").as_array();
  ASSERT_EQ(decls.size(), 5u);  // the four actions, then the business tool
  EXPECT_EQ(decls.at(4).at("name"), "order_status");
  ASSERT_TRUE(tools.wait_for(1));
  const auto req = tools.requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/orders/A-17");
  EXPECT_EQ(json::parse(req.body).at("arguments"), json::parse(R"({"order":"A-17"})"));
  ASSERT_TRUE(mock.wait_until([&] { return !messages(mock, 0, "toolResponse").empty(); }));
  EXPECT_EQ(json::value(messages(mock, 0, "toolResponse").at(0)), json::parse(R"({
    "functionResponses": [{"id": "fc_order", "name": "order_status",
      "response": {"output": {"status": "shipped"}}}]})"));
  EXPECT_NEAR(tone_ms(r), 300, 40);  // the model's answer was heard
}

TEST(Gemini, AnAllowedTransferIsCarriedOut) {
  MockGeminiLive mock;
  mock.push_script(MockGeminiLive::Script::tool_call("transfer", R"({"target":"100"})", "fc_1"));
  config::Config c = gemini_config(mock);
  c.general.http_listen = "127.0.0.1:0";
  testing::RunningServer s(c);
  sim::CallPlan p = plan(s.port, "slin16", 5.0);
  p.hangup_at_end = false;
  const std::string id = "a1b2c3d4-0000-4000-8000-0000000c0101";
  p.uuid = audiosocket::Uuid::parse(id);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);  // without a control path: noted, the dialplan goes on
  const auto [st, body] = testing::http_request(s.server.http_port(), boost::beast::http::verb::get,
                                                "/v1/calls/" + id + "/transfer");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "100");
}

TEST(Gemini, GoAwayResumesOnANewSocketWithTheHandleAndTheCallGoesOn) {
  MockGeminiLive mock;
  mock.push_script(MockGeminiLive::Script::speech("Welcome.", 300));
  mock.set_default_script(MockGeminiLive::Script::speech("After the move.", 500));
  testing::RunningServer s(gemini_config(mock));
  std::thread t([&] {
    // Once the greeting's turn is complete (its handle issued), the service moves the session.
    mock.wait_until([&] { return mock.handles(0).size() >= 2; });
    mock.go_away(0, 200ms);
  });
  sim::CallPlan p = plan(s.port, "slin16", 3.0);
  p.dtmf = {{2000ms, '7'}};  // asks for a reply on the new socket
  const auto r = sim::place_call(p);
  t.join();
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_GE(mock.connection_count(), 2u);
  const auto handles = mock.handles(0);
  const auto setup = mock.setup(1);
  EXPECT_EQ(setup.at("sessionResumption"), (json::object{{"handle", handles.back()}}));
  EXPECT_EQ(mock.resumed_handle(1), handles.back());
  // The resumed session is not greeted again; the DTMF went to it and its reply was heard.
  const auto turns = messages(mock, 1, "clientContent");
  ASSERT_EQ(turns.size(), 1u);
  EXPECT_EQ(turns[0].at("turns").at(0).at("parts").at(0).at("text"),
            "The caller pressed 7 on the phone keypad.");
  EXPECT_GT(mock.audio_bytes(1), 0u);  // the caller's audio went on to the new socket
  EXPECT_NEAR(tone_ms(r), 800, 60);    // the greeting, then the reply after the move
  EXPECT_FALSE(r.server_sent_hangup);
}

TEST(Gemini, ASocketThatDropsIsResumedTheSameWay) {
  MockGeminiLive mock;
  mock.push_script(MockGeminiLive::Script::speech("Welcome.", 300));
  mock.set_default_script(MockGeminiLive::Script::speech("Still here.", 400));
  testing::RunningServer s(gemini_config(mock));
  std::thread t([&] {
    mock.wait_until([&] { return mock.handles(0).size() >= 2; });
    mock.drop(0);
  });
  sim::CallPlan p = plan(s.port, "slin16", 3.0);
  p.dtmf = {{2000ms, '1'}};
  const auto r = sim::place_call(p);
  t.join();
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_GE(mock.connection_count(), 2u);
  // A handle the first socket issued (the drop may overtake the newest one on its way: then
  // the one before it), sent in the new setup and accepted.
  const auto handles = mock.handles(0);
  const std::string resumed = mock.resumed_handle(1);
  EXPECT_NE(std::find(handles.begin(), handles.end(), resumed), handles.end()) << resumed;
  EXPECT_EQ(mock.setup(1).at("sessionResumption"), (json::object{{"handle", resumed}}));
  EXPECT_NEAR(tone_ms(r), 700, 60);
  EXPECT_FALSE(r.server_sent_hangup);
}

TEST(Gemini, ARateLimitedUpgradeGivesTheFallbackAndACleanEnd) {
  MockGeminiLive mock;
  mock.refuse_next(
      429,
      R"({"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}})",
      "7");
  testing::RunningServer s(gemini_config(mock));
  sim::CallPlan p = plan(s.port, "slin16", 4.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_GT(testing::rms(r.received, r.reply_rate_hz(), 0, 3.0), 100);  // the fallback prompt
  EXPECT_EQ(mock.upgrades().at(0).status, 429);
  EXPECT_EQ(mock.connection_count(), 0u);
}

TEST(Gemini, AWrongKeyClosedWith1007GivesTheFallbackAndIsNotResumed) {
  MockGeminiLive mock;
  config::Config c = gemini_config(mock);
  ::setenv("VB_TEST_GEMINI_WRONG", "AIza-wrong", 1);
  c.gemini.at("mock").api_key = "AIza-wrong";
  testing::RunningServer s(c);
  sim::CallPlan p = plan(s.port, "slin16", 4.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 3500);
  EXPECT_EQ(mock.closed(0).code, 1007);
  EXPECT_EQ(mock.connection_count(), 1u);  // a refusal is not retried
}

TEST(Gemini, AServiceFailureMidCallEndsTheCallCleanly) {
  MockGeminiLive mock;
  mock.set_default_script(MockGeminiLive::Script::speech("Hi.", 200));
  testing::RunningServer s(gemini_config(mock));
  std::thread t([&] {
    mock.wait_until([&] { return mock.kinds(0).size() >= 3; });
    mock.close(0, 1011, "Internal error encountered.");
  });
  sim::CallPlan p = plan(s.port, "slin16", 5.0);
  p.hangup_at_end = false;
  const auto r = sim::place_call(p);
  t.join();
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 4500);
  EXPECT_EQ(mock.connection_count(), 1u);
}

TEST(Gemini, CallsBeyondMaxSessionsGetTheFallback) {
  MockGeminiLive mock;
  mock.set_default_script(MockGeminiLive::Script::speech("Hi.", 200));
  testing::RunningServer s(gemini_config(mock, "max_sessions = 1\n"));
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

TEST(Gemini, OverWssWithThePrivateCaAndTheKeyAsAQueryParameter) {
  MockGeminiLive::Options o;
  o.tls = true;
  MockGeminiLive mock(o);
  mock.set_default_script(MockGeminiLive::Script::speech("Secure hello.", 400));
  testing::RunningServer s(
      gemini_config(mock, "ca_file = " + mock.ca_file() + "\napi_key_in = query\n"));
  const auto r = sim::place_call(plan(s.port, "slin16", 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_NEAR(tone_ms(r), 400, 40);
  EXPECT_EQ(mock.upgrades().at(0).auth, "query");
  EXPECT_EQ(mock.kinds(0).at(0), "setup");
}

TEST(Gemini, TranscriptsAndUsageGoIntoTheCallsEvents) {
  MockGeminiLive mock;
  mock.set_default_script(MockGeminiLive::Script::speech("Thanks for calling Example.", 300));
  mock.push_transcript("I need a plumber");
  config::Config c = gemini_config(mock);
  c.general.http_listen = "127.0.0.1:0";
  testing::RunningServer s(c);
  sim::CallPlan p = plan(s.port, "slin16", 1.0);
  testing::append(p.audio, testing::voice(16000, 0.8, 20000));
  testing::append(p.audio, testing::silence(16000, 1.5));
  const std::string id = "a1b2c3d4-0000-4000-8000-0000000be7a2";
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
  EXPECT_NE(ev->find(R"("type":"usage","input_tokens":)"), std::string::npos) << *ev;
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find("voxbridge_gemini_sessions_total{backend=\"mock\",outcome=\"opened\"} 1"),
            std::string::npos)
      << m;
}

TEST(Gemini, TheSameBackendServedOverGrpcByVoxbridgeProvider) {
  MockGeminiLive mock;
  mock.set_default_script(MockGeminiLive::Script::speech("Hello over gRPC.", 600));
  const config::Config g = gemini_config(mock);
  provider_host::BuiltinOptions o;
  o.listen = "127.0.0.1:0";
  o.asr = o.llm = o.tts = false;
  o.agent_backend =
      std::make_shared<realtime_gemini::GeminiBackend>(config::gemini_backend(g, "mock"), 2);
  o.agent_target.name = "mock";
  o.agent_target.backend = "gemini:mock";
  provider_host::BuiltinProviders host(o);
  const config::Config c = config::parse_config(
      "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n[provider-remote]\naddress = " +
          host.address() + "\n[agent-bot]\ntype = s2s\nprovider = remote\noutput_rate = 24000\n",
      "gemini_test.conf");
  testing::RunningServer s(c);
  const auto r = sim::place_call(plan(s.port, "slin16", 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_NEAR(tone_ms(r), 600, 40);
  EXPECT_EQ(mock.kinds(0).at(0), "setup");
  host.shutdown();
}

}  // namespace
}  // namespace voxbridge
