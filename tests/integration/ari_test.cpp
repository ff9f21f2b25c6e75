// The ARI control path end to end, against FakeAri, a fake Asterisk that speaks the real REST
// and events wire and connects the externalMedia AudioSocket leg to voxbridge itself: the
// server on port 0 from a config text ([control] mode = ari), the echo agent or a pipeline
// agent driven by the scripted fake providers. Each call must be answered, bridged to its own
// AudioSocket leg and torn down to zero channels and bridges; the agent's actions must come
// out as the right ARI requests, refused ones never reach Asterisk.

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <future>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_ari.hpp"
#include "support/fake_providers.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "support/tool_server.hpp"
#include "voxbridge/config/config.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using testing::FakeAri;
using testing::RunningServer;
constexpr int kRate = 16000;

/// The server's configuration: one listener on port 0 with `agent`, ARI to `ari`.
/// `providers` (host:port of the fake providers) adds the pipeline agent "bot"; `more` is
/// appended (sections of the test's own).
config::Config ari_config(const FakeAri& ari, const std::string& agent,
                          const std::string& providers = "", const std::string& more = "") {
  std::string text =
      "[general]\nthreads = 2\nlog_level = warning\n"
      "[listener-main]\nbind = 127.0.0.1:0\nagent = " +
      agent +
      "\n"
      "[control]\nmode = ari\nallow_contexts = agents\nallow_extensions = 2001\n"
      "allow_numbers = _555XXXX\noriginate_channel = PJSIP/${NUMBER}@trunk\n"
      "[ari]\nurl = " +
      ari.url() + "\nusername = vb\npassword = s3cret\n";
  if (!providers.empty()) {
    text += "[provider-fake]\naddress = " + providers +
            "\n[agent-bot]\ntype = pipeline\nasr = fake\nllm = fake\ntts = fake\n"
            "greeting = none\n";
  }
  return config::parse_config(text + more, "ari_test");
}

struct Fakes {
  testing::FakeRecognizer asr;
  testing::FakeDialogue llm;
  testing::FakeSynthesizer tts;
  std::unique_ptr<testing::FakeProviderServer> server;
  Fakes() {
    server = std::make_unique<testing::FakeProviderServer>(
        std::vector<grpc::Service*>{&asr, &llm, &tts});
  }
};

/// The caller's side for the pipeline: 0.3 s of silence, 0.8 s of voice (the fake ASR hears
/// "hello world"), then silence.
std::vector<std::int16_t> caller_says_hello() {
  auto audio = testing::silence(kRate, 0.3);
  testing::append(audio, testing::voice(kRate, 0.8));
  return audio;
}

bool connected(const FakeAri& ari) {
  return ari.wait_for([&] { return ari.websocket_connects() >= 1; }, 3s);
}

/// The one media leg's state.
FakeAri::MediaLeg leg(const FakeAri& ari) {
  const auto legs = ari.media_legs();
  return legs.empty() ? FakeAri::MediaLeg{} : legs.back();
}

/// No channel or bridge left in Asterisk, and voxbridge's call is over too.
bool all_gone(const FakeAri& ari, const RunningServer& s, std::chrono::milliseconds within = 2s) {
  return ari.wait_for(
      [&] {
        return ari.live_channels() == 0 && ari.live_bridges() == 0 && s.server.active_calls() == 0;
      },
      within);
}

/// Requests with exactly this method and path.
std::size_t count_exact(const FakeAri& ari, const std::string& method, const std::string& path) {
  std::size_t n = 0;
  for (const auto& r : ari.requests()) n += r.method == method && r.path == path;
  return n;
}

std::string query(const std::optional<FakeAri::Request>& r, const std::string& key) {
  if (!r || r->query.count(key) == 0) return "<none>";
  return r->query.at(key);
}

/// The leg's received frames that are not silence; `wrong` counts those that are not the sent
/// tone at some phase (the tone repeats every 400 samples).
std::size_t echoed_frames(const FakeAri::MediaLeg& got, std::size_t& wrong) {
  std::size_t echoed = 0;
  wrong = 0;
  for (std::size_t f = 0; f + 320 <= got.received.size(); f += 320) {
    bool silent = true;
    for (std::size_t i = f; i < f + 320; ++i) silent = silent && got.received[i] == 0;
    if (silent) continue;
    bool matched = false;
    for (std::size_t phase = 0; phase < 400 && !matched; ++phase) {
      matched = true;
      for (std::size_t i = 0; i < 320 && matched; ++i) {
        matched = got.received[f + i] == FakeAri::tone(phase + i);
      }
    }
    wrong += matched ? 0 : 1;
    ++echoed;
  }
  return echoed;
}

TEST(Ari, CallIsAnsweredBridgedToItsAudioSocketLegEchoedAndTornDown) {
  FakeAri ari("vb", "s3cret");
  RunningServer s(ari_config(ari, "echo"));
  ASSERT_TRUE(connected(ari));
  const std::string caller = ari.start_call("5551234", "7000");

  ASSERT_TRUE(
      ari.wait_for([&] { return ari.find_request("POST", "/ari/bridges/").has_value(); }, 3s));
  EXPECT_TRUE(ari.find_request("POST", "/ari/channels/" + caller + "/answer").has_value());
  const auto media = ari.find_request("POST", "/ari/channels/externalMedia");
  ASSERT_TRUE(media.has_value());
  EXPECT_EQ(query(media, "app"), "voxbridge");
  EXPECT_EQ(query(media, "encapsulation"), "audiosocket");
  EXPECT_EQ(query(media, "transport"), "tcp");
  EXPECT_EQ(query(media, "format"), "slin16");
  EXPECT_EQ(query(media, "external_host"), "127.0.0.1:" + std::to_string(s.port));
  EXPECT_TRUE(std::regex_match(
      query(media, "data"),
      std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  const auto create = ari.find_request("POST", "/ari/bridges");
  ASSERT_TRUE(create.has_value());
  EXPECT_EQ(create->path, "/ari/bridges");
  EXPECT_EQ(query(create, "type"), "mixing");
  const auto add = ari.find_request("POST", "/ari/bridges/");
  ASSERT_EQ(ari.media_legs().size(), 1u);
  EXPECT_EQ(leg(ari).uuid, query(media, "data"));
  EXPECT_EQ(query(add, "channel"), caller + "," + leg(ari).channel);
  EXPECT_EQ(ari.live_channels(), 2u);
  EXPECT_EQ(ari.live_bridges(), 1u);

  // The echo comes back at 50 frames a second, sample for sample what the leg sent (the tone
  // repeats every 400 samples, so each echoed frame must be the tone at some phase).
  ASSERT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= 30; }, 3s));
  const auto before = leg(ari).frames_received;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= before + 50; }, 2s));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NEAR(50 / seconds, 50.0, 5.0);
  const auto got = leg(ari);
  EXPECT_EQ(got.bytes_received, got.frames_received * 640);
  std::size_t wrong = 0;
  EXPECT_GE(echoed_frames(got, wrong), 40u);
  EXPECT_EQ(wrong, 0u) << "echoed frames that are not the sent tone";
  EXPECT_FALSE(got.hangup_received);

  ari.hangup_caller(caller);
  EXPECT_TRUE(all_gone(ari, s)) << ari.live_channels() << " channels, " << ari.live_bridges()
                                << " bridges left";
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/bridges/"), 1u);
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/channels/" + got.channel), 1u);
  EXPECT_TRUE(leg(ari).closed);
}

TEST(Ari, VoxbridgeHangingUpTheLegHangsUpTheCaller) {
  FakeAri ari("vb", "s3cret");
  RunningServer s(ari_config(ari, "echo"));
  ASSERT_TRUE(connected(ari));
  const std::string caller = ari.start_call("5551234", "7000");
  ASSERT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= 10; }, 3s));
  ari.caller_dtmf(caller, '#');  // the echo agent's hangup digit, over the AudioSocket leg
  ASSERT_TRUE(ari.wait_for([&] { return leg(ari).hangup_received; }, 2s));
  EXPECT_TRUE(all_gone(ari, s));
  const auto del = ari.find_request("DELETE", "/ari/channels/" + caller);
  ASSERT_TRUE(del.has_value());
  EXPECT_EQ(del->path, "/ari/channels/" + caller);
  EXPECT_EQ(query(del, "reason"), "normal");
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/bridges/"), 1u);
}

TEST(Ari, AllowedTransferContinuesTheCallerInTheDialplan) {
  Fakes f;
  f.llm.replies["hello"] = "Transferring you.[transfer:2001@agents]";
  FakeAri ari("vb", "s3cret");
  ari.set_caller_audio(caller_says_hello());
  RunningServer s(ari_config(ari, "bot", f.server->address()));
  ASSERT_TRUE(connected(ari));
  const std::string caller = ari.start_call("5551234", "7000");
  ASSERT_TRUE(ari.wait_for(
      [&] { return ari.find_request("POST", "/ari/channels/" + caller + "/continue").has_value(); },
      5s));
  const auto cont = ari.find_request("POST", "/ari/channels/" + caller + "/continue");
  EXPECT_EQ(query(cont, "context"), "agents");
  EXPECT_EQ(query(cont, "extension"), "2001");
  EXPECT_EQ(query(cont, "priority"), "1");
  // The leg and the bridge go; the caller lives on in the dialplan, never hung up.
  EXPECT_TRUE(ari.wait_for(
      [&] {
        return ari.live_channels() == 1 && ari.live_bridges() == 0 && s.server.active_calls() == 0;
      },
      2s));
  EXPECT_TRUE(leg(ari).closed);
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/channels/" + caller), 0u);
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/channels/" + leg(ari).channel), 1u);
}

/// The s2s agent "s2s" (FakeSpeechAgent at `address`) on the listener; the caller is silent.
config::Config ari_s2s_config(FakeAri& ari, const std::string& address) {
  ari.set_caller_audio(testing::silence(kRate, 0.1));
  return ari_config(
      ari, "s2s", "",
      "[provider-fake]\naddress = " + address + "\n[agent-s2s]\ntype = s2s\nprovider = fake\n");
}

TEST(Ari, SpeechAgentsTransferContinuesTheCallerInTheDialplan) {
  testing::FakeSpeechAgent agent;
  agent.actions.emplace_back();
  agent.actions[0].mutable_transfer()->set_target("2001");
  agent.actions[0].mutable_transfer()->set_context("agents");
  testing::FakeProviderServer fs(&agent);
  FakeAri ari("vb", "s3cret");
  RunningServer s(ari_s2s_config(ari, fs.address()));
  ASSERT_TRUE(connected(ari));
  const std::string caller = ari.start_call("5551234", "7000");
  ASSERT_TRUE(ari.wait_for(
      [&] { return ari.find_request("POST", "/ari/channels/" + caller + "/continue").has_value(); },
      5s));
  const auto cont = ari.find_request("POST", "/ari/channels/" + caller + "/continue");
  EXPECT_EQ(query(cont, "context"), "agents");
  EXPECT_EQ(query(cont, "extension"), "2001");
  EXPECT_EQ(query(cont, "priority"), "1");
  EXPECT_TRUE(ari.wait_for(
      [&] {
        return ari.live_channels() == 1 && ari.live_bridges() == 0 && s.server.active_calls() == 0;
      },
      2s));
  EXPECT_TRUE(leg(ari).closed);
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/channels/" + caller), 0u);
  // The agent heard that it worked, after its greeting had played.
  EXPECT_EQ(agent.events(), (std::vector<std::string>{"mark_played 1", "action_result"}));
  ASSERT_EQ(agent.action_results().size(), 1u);
  EXPECT_TRUE(agent.action_results()[0].ok());
}

TEST(Ari, SpeechAgentsDeniedTransferNeverReachesAsteriskAndTheAgentIsTold) {
  testing::FakeSpeechAgent agent;
  agent.actions.emplace_back();
  agent.actions[0].mutable_transfer()->set_target("2001");
  agent.actions[0].mutable_transfer()->set_context("forbidden");
  testing::FakeProviderServer fs(&agent);
  FakeAri ari("vb", "s3cret");
  RunningServer s(ari_s2s_config(ari, fs.address()));
  ASSERT_TRUE(connected(ari));
  const std::string caller = ari.start_call("5551234", "7000");
  ASSERT_TRUE(ari.wait_for([&] { return agent.action_results().size() == 1; }, 5s));
  const auto result = agent.action_results()[0];
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.error(), "denied: context 'forbidden' is not in allow_contexts");
  EXPECT_EQ(result.action().transfer().context(), "forbidden");
  EXPECT_EQ(ari.count_requests("POST", "/ari/channels/" + caller + "/continue"), 0u);
  // The call goes on: the leg keeps getting voxbridge's audio, the caller is still there.
  const auto frames = leg(ari).frames_received;
  EXPECT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= frames + 20; }, 1s));
  EXPECT_EQ(ari.live_channels(), 2u);
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/channels/"), 0u);
  ari.hangup_caller(caller);
  EXPECT_TRUE(all_gone(ari, s));
}

/// The s2s agent asks for the tool "lookup" (a ToolServer answering after 900 ms) right after
/// its 200 ms greeting; the tool's filler is music on hold `moh` (the phrase as the fallback).
struct SlowToolCall {
  testing::ToolServer tools;
  testing::FakeSpeechAgent agent;
  std::unique_ptr<testing::FakeProviderServer> fs;
  FakeAri ari{"vb", "s3cret"};
  std::unique_ptr<RunningServer> s;
  std::string caller;

  explicit SlowToolCall(const std::string& moh) {
    tools.script("/lookup", {.delay = 900ms});
    agent.greeting_ms = 200;
    common::v1::ToolCall c;
    c.set_id("t1");
    c.set_name("lookup");
    c.set_arguments_json("{}");
    agent.tool_calls = {c};
    fs = std::make_unique<testing::FakeProviderServer>(&agent);
    s = std::make_unique<RunningServer>(ari_config(
        ari, "s2s", "",
        "[provider-fake]\naddress = " + fs->address() +
            "\n[agent-s2s]\ntype = s2s\nprovider = fake\n"
            "[tool-lookup]\ndescription = Looks it up.\nurl = " +
            tools.url("/lookup") +
            "\nagents = s2s\nfiller = Please hold the line while I look that up for you.\n"
            "filler_after_ms = 200\nfiller_moh = " +
            moh + "\n"));
    ari.set_caller_audio(testing::silence(kRate, 0.1));
  }

  /// Frames (20 ms) of what voxbridge sent to the leg that are not silent, as offsets from the
  /// leg's first frame.
  std::vector<std::size_t> voiced_frames() const {
    std::vector<std::size_t> out;
    const auto got = leg(ari).received;
    for (std::size_t f = 0; f + 320 <= got.size(); f += 320) {
      bool silent = true;
      for (std::size_t i = f; i < f + 320; ++i) silent = silent && std::abs(got[i]) < 200;
      if (!silent) out.push_back(f / 320);
    }
    return out;
  }
};

TEST(Ari, ASlowToolPlaysMusicOnHoldToTheCallerAndStopsItWithTheResult) {
  SlowToolCall t("hold-music");
  ASSERT_TRUE(connected(t.ari));
  t.caller = t.ari.start_call("5551234", "7000");
  ASSERT_TRUE(t.ari.wait_for([&] { return t.agent.tool_results().size() == 1; }, 5s));
  ASSERT_TRUE(t.ari.wait_for(
      [&] { return t.ari.count_requests("DELETE", "/ari/channels/" + t.caller + "/moh") == 1; },
      2s));
  const auto asked = t.tools.requests().at(0).at;
  const auto result = t.agent.tool_result_times().at(0);
  ASSERT_TRUE(t.agent.tool_results()[0].ok());
  const auto start = t.ari.find_request("POST", "/ari/channels/" + t.caller + "/moh");
  const auto stop = t.ari.find_request("DELETE", "/ari/channels/" + t.caller + "/moh");
  ASSERT_TRUE(start && stop);
  // On the caller's channel (never the AudioSocket leg's), with the tool's class...
  EXPECT_EQ(start->target, "/ari/channels/" + t.caller + "/moh?mohClass=hold-music");
  EXPECT_EQ(t.ari.count_requests("POST", "/ari/channels/" + leg(t.ari).channel + "/moh"), 0u);
  // ... once filler_after_ms had passed, and stopped the moment the result was back: not
  // before the tool answered (900 ms after it was asked), and at most a few ticks after.
  EXPECT_GE(start->at, asked + 150ms);
  EXPECT_LT(start->at, asked + 600ms);
  EXPECT_GE(stop->at, asked + 900ms);
  EXPECT_LT(stop->at, asked + 900ms + 150ms);
  EXPECT_LT(stop->at, result + 150ms);
  // The phrase was not played instead (the greeting is all the leg carried).
  const auto voiced = t.voiced_frames();
  ASSERT_FALSE(voiced.empty());
  EXPECT_LE(voiced.back() - voiced.front(), 12u) << "more than the 200 ms greeting on the leg";
  t.ari.hangup_caller(t.caller);
  EXPECT_TRUE(all_gone(t.ari, *t.s));
  EXPECT_EQ(t.ari.count_requests("POST", "/ari/channels/" + t.caller + "/moh"), 1u);
}

TEST(Ari, MusicOnHoldAsteriskRefusesGivesTheCallerThePhraseInstead) {
  SlowToolCall t("hold-music");
  t.ari.refuse_action("moh");
  ASSERT_TRUE(connected(t.ari));
  t.caller = t.ari.start_call("5551234", "7000");
  ASSERT_TRUE(t.ari.wait_for([&] { return t.agent.tool_results().size() == 1; }, 5s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(t.ari.count_requests("POST", "/ari/channels/" + t.caller + "/moh"), 1u);
  // Refused: nothing to stop; the phrase played on the leg after the greeting instead.
  EXPECT_EQ(t.ari.count_requests("DELETE", "/ari/channels/" + t.caller + "/moh"), 0u);
  const auto voiced = t.voiced_frames();
  ASSERT_FALSE(voiced.empty());
  EXPECT_GT(voiced.back() - voiced.front(), 20u) << "no filler phrase after the refusal";
  t.ari.hangup_caller(t.caller);
  EXPECT_TRUE(all_gone(t.ari, *t.s));
}

TEST(Ari, DeniedTransferNeverReachesAsteriskAndTheCallGoesOn) {
  Fakes f;
  f.llm.replies["hello"] = "Transferring you.[transfer:2001@forbidden]";
  f.llm.default_reply = "Anything else?";
  FakeAri ari("vb", "s3cret");
  ari.set_caller_audio(caller_says_hello());
  RunningServer s(ari_config(ari, "bot", f.server->address()));
  ASSERT_TRUE(connected(ari));
  const std::string caller = ari.start_call("5551234", "7000");
  ASSERT_TRUE(ari.wait_for([&] { return f.llm.requests().size() >= 2; }, 5s));
  const auto reqs = f.llm.requests();
  bool found = false;
  for (const auto& e : reqs[1].events()) {
    if (!e.has_action_result()) continue;
    found = true;
    EXPECT_FALSE(e.action_result().ok());
    EXPECT_EQ(e.action_result().error().rfind("denied:", 0), 0u) << e.action_result().error();
    EXPECT_EQ(e.action_result().action().transfer().context(), "forbidden");
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(ari.count_requests("POST", "/ari/channels/" + caller + "/continue"), 0u);
  // Still connected: the leg keeps getting voxbridge's audio, and the caller is still there.
  const auto frames = leg(ari).frames_received;
  EXPECT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= frames + 20; }, 1s));
  EXPECT_EQ(ari.live_channels(), 2u);
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/channels/"), 0u);
  ari.hangup_caller(caller);
  EXPECT_TRUE(all_gone(ari, s));
}

TEST(Ari, CallSurvivesALostEventsConnectionAndTheClientReconnects) {
  FakeAri ari("vb", "s3cret");
  RunningServer s(ari_config(ari, "echo"));
  ASSERT_TRUE(connected(ari));
  const std::string caller = ari.start_call("5551234", "7000");
  ASSERT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= 10; }, 3s));
  ari.drop_connections();
  const auto frames = leg(ari).frames_received;
  EXPECT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= frames + 35; }, 1s));
  EXPECT_TRUE(ari.wait_for([&] { return ari.websocket_connects() == 2; }, 3s));
  EXPECT_FALSE(leg(ari).closed);
  ari.hangup_caller(caller);
  EXPECT_TRUE(all_gone(ari, s));
  EXPECT_EQ(ari.websocket_connects(), 2);
}

TEST(Ari, ChannelVariablesBecomeTheCallsMetadata) {
  Fakes f;
  FakeAri ari("vb", "s3cret");
  ari.set_caller_audio(caller_says_hello());
  RunningServer s(ari_config(ari, "bot", f.server->address()));
  ASSERT_TRUE(connected(ari));
  const std::string caller =
      ari.start_call("+15551234567", "7000", {{"VB_LANGUAGE", "de-DE"}, {"VB_CUSTOMER", "42"}});
  ASSERT_TRUE(ari.wait_for([&] { return !f.llm.requests().empty(); }, 5s));
  const auto call = f.llm.requests()[0].call();
  EXPECT_EQ(call.caller_number(), "+15551234567");
  EXPECT_EQ(call.called_number(), "7000");
  EXPECT_EQ(call.language(), "de-DE");
  ASSERT_EQ(call.metadata().count("VB_CUSTOMER"), 1u);
  EXPECT_EQ(call.metadata().at("VB_CUSTOMER"), "42");
  ASSERT_EQ(call.metadata().count("channel"), 1u);
  EXPECT_EQ(call.metadata().at("channel").rfind("PJSIP/", 0), 0u);
  ari.hangup_caller(caller);
  EXPECT_TRUE(all_gone(ari, s));
}

control::OriginateResult originate(RunningServer& s, const std::string& to) {
  auto result = std::make_shared<std::promise<control::OriginateResult>>();
  control::OriginateRequest req;
  req.to = to;
  req.agent = "echo";
  req.variables = {{"VB_CAMPAIGN", "spring"}};
  s.server.controller()->originate(
      req, [result](control::OriginateResult r) { result->set_value(std::move(r)); });
  auto done = result->get_future();
  if (done.wait_for(5s) != std::future_status::ready) {
    control::OriginateResult timeout;
    timeout.detail = "no result within 5 s";
    return timeout;
  }
  return done.get();
}

TEST(Ari, OutboundCallsAreOriginatedIntoTheApp) {
  FakeAri ari("vb", "s3cret");
  RunningServer s(ari_config(ari, "echo"));
  ASSERT_TRUE(connected(ari));

  const auto answered = originate(s, "5551234");
  EXPECT_EQ(answered.outcome, control::OriginateResult::Outcome::answered) << answered.detail;
  const auto req = ari.find_request("POST", "/ari/channels");
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->path, "/ari/channels");
  EXPECT_EQ(query(req, "endpoint"), "PJSIP/5551234@trunk");
  EXPECT_EQ(query(req, "app"), "voxbridge");
  EXPECT_EQ(query(req, "appArgs"), "outbound");
  EXPECT_EQ(query(req, "timeout"), "30");
  EXPECT_EQ(answered.channel, "PJSIP/5551234@trunk-00000001");
  EXPECT_EQ(req->body,
            R"({"variables":{"VB_AGENT":"echo","VB_CAMPAIGN":"spring","VB_OUTBOUND":"5551234"}})");
  // The answered call is bridged to its own AudioSocket leg like an inbound one.
  const std::string id = query(req, "channelId");
  EXPECT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= 10; }, 3s));
  EXPECT_EQ(query(ari.find_request("POST", "/ari/bridges/"), "channel"),
            id + "," + leg(ari).channel);

  ari.set_originate_cause(17);
  const auto busy = originate(s, "5550000");
  EXPECT_EQ(busy.outcome, control::OriginateResult::Outcome::busy) << busy.detail;
  EXPECT_EQ(busy.detail, "cause 17");
  ari.set_originate_cause(19);
  EXPECT_EQ(originate(s, "5550001").outcome, control::OriginateResult::Outcome::no_answer);

  EXPECT_EQ(count_exact(ari, "POST", "/ari/channels"), 3u);
  const auto denied = originate(s, "0044900123456");
  EXPECT_EQ(denied.outcome, control::OriginateResult::Outcome::denied);
  EXPECT_EQ(count_exact(ari, "POST", "/ari/channels"), 3u);

  ari.hangup_caller(id);
  EXPECT_TRUE(all_gone(ari, s));
}

TEST(Ari, CallOverHttpsAndWssIsAnsweredBridgedEchoedAndTornDown) {
  FakeAri ari("vb", "s3cret", "voxbridge", /*tls=*/true);
  config::Config c = ari_config(ari, "echo");
  ASSERT_EQ(c.control.ari.url.rfind("https://localhost:", 0), 0u) << c.control.ari.url;
  c.control.ari.ca_file = ari.ca_file();
  RunningServer s(c);
  ASSERT_TRUE(connected(ari));  // the events WebSocket, over TLS
  const std::string caller = ari.start_call("5551234", "7000");

  ASSERT_TRUE(
      ari.wait_for([&] { return ari.find_request("POST", "/ari/bridges/").has_value(); }, 3s));
  EXPECT_TRUE(ari.find_request("POST", "/ari/channels/" + caller + "/answer").has_value());
  const auto media = ari.find_request("POST", "/ari/channels/externalMedia");
  ASSERT_TRUE(media.has_value());
  EXPECT_EQ(query(media, "external_host"), "127.0.0.1:" + std::to_string(s.port));
  ASSERT_EQ(ari.media_legs().size(), 1u);
  EXPECT_EQ(leg(ari).uuid, query(media, "data"));
  EXPECT_EQ(query(ari.find_request("POST", "/ari/bridges/"), "channel"),
            caller + "," + leg(ari).channel);

  ASSERT_TRUE(ari.wait_for([&] { return leg(ari).frames_received >= 25; }, 3s));
  std::size_t wrong = 0;
  EXPECT_GE(echoed_frames(leg(ari), wrong), 15u);
  EXPECT_EQ(wrong, 0u) << "echoed frames that are not the sent tone";

  ari.hangup_caller(caller);
  EXPECT_TRUE(all_gone(ari, s)) << ari.live_channels() << " channels, " << ari.live_bridges()
                                << " bridges left";
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/bridges/"), 1u);
  EXPECT_EQ(ari.count_requests("DELETE", "/ari/channels/" + leg(ari).channel), 1u);
  EXPECT_TRUE(leg(ari).closed);
  EXPECT_EQ(ari.tls_failures(), 0);
  EXPECT_EQ(ari.websocket_connects(), 1);
}

TEST(Ari, UntrustedCertificateIsRefusedLoggedAndRetried) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_level(spdlog::level::warn);
  spdlog::set_default_logger(capture);
  {
    // No ca_file: the system's CAs do not know the fake's self-signed certificate.
    FakeAri ari("vb", "s3cret", "voxbridge", /*tls=*/true);
    RunningServer s(ari_config(ari, "echo"));
    // The client keeps trying (backoff 0.25-0.5 s, then 0.5-1 s...) and is refused each time.
    EXPECT_TRUE(ari.wait_for([&] { return ari.tls_failures() >= 3; }, 5s)) << ari.tls_failures();
    EXPECT_EQ(ari.websocket_connects(), 0);
    EXPECT_TRUE(ari.requests().empty());
    EXPECT_FALSE(s.server.controller()->connected());
  }
  spdlog::set_default_logger(previous);
  const std::string text = log.str();
  EXPECT_NE(text.find("cannot connect to ARI https://localhost:"), std::string::npos) << text;
  EXPECT_NE(text.find("certificate is not trusted (self-signed certificate)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("ca_file"), std::string::npos) << text;
  EXPECT_NE(text.find("retrying in"), std::string::npos) << text;
}

/// The first REST answer an AriClient with `o` gets (it never reaches the fake's REST API).
control::AriResponse first_answer(control::AriOptions o) {
  boost::asio::io_context io;
  o.username = "vb";
  o.password = "s3cret";
  o.reconnect_min = 50ms;
  o.reconnect_max = 100ms;
  auto client = control::AriClient::create(io.get_executor(), o);
  control::AriResponse out;
  out.error = "no answer";
  client->start();
  client->request("GET", "/asterisk/info", {}, [&](control::AriResponse r) {
    out = std::move(r);
    client->stop();
  });
  io.run_for(5s);
  client->stop();
  return out;
}

TEST(Ari, RestRequestsOverTlsFailWithAClearErrorUnlessTheCertificateChecksOut) {
  FakeAri ari("vb", "s3cret", "voxbridge", /*tls=*/true);
  control::AriOptions o;
  o.url = ari.url();
  // Untrusted: the certificate is its own CA and no ca_file names it.
  auto r = first_answer(o);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("certificate is not trusted (self-signed certificate)"), std::string::npos)
      << r.error;
  // Trusted CA, but not the name the certificate carries (DNS:localhost): refused too.
  o.ca_file = ari.ca_file();
  o.url = "https://127.0.0.1:" + std::to_string(ari.port());
  r = first_answer(o);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("certificate is not trusted (IP address mismatch)"), std::string::npos)
      << r.error;
  EXPECT_TRUE(ari.requests().empty());
  // The right name and CA: through (the fake answers 404 for /asterisk/info).
  o.url = ari.url();
  r = first_answer(o);
  EXPECT_EQ(r.status, 404) << r.error;
  EXPECT_EQ(ari.requests().size(), 1u);
  EXPECT_GE(ari.tls_failures(), 2);
}

TEST(Ari, WrongPasswordIsRefusedAndNoCallIsTaken) {
  FakeAri ari("vb", "other");
  RunningServer s(ari_config(ari, "echo"));
  EXPECT_FALSE(ari.wait_for([&] { return ari.websocket_connects() > 0; }, 700ms));
  EXPECT_FALSE(s.server.controller()->connected());
}

}  // namespace
}  // namespace voxbridge
