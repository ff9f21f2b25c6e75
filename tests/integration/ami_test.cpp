// The AMI control path end to end, against a fake Asterisk manager that speaks the real wire:
// the server on port 0 with a pipeline agent (scripted fake providers), the call simulator as
// the AudioSocket leg, and FakeAmi announcing the call's channel the way Asterisk does when
// the dialplan runs Set(VB_UUID=${UUID()}) before AudioSocket(). The agent's actions must come
// out as the right AMI actions on the right channel; refused ones must never reach Asterisk.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "support/fake_ami.hpp"
#include "support/fake_providers.hpp"
#include "support/http_client.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using testing::append;
using testing::silence;
using testing::voice;
constexpr int kRate = 16000;
constexpr const char* kUuid = "4f1c2a8e-9b3d-4c7e-8a5f-0d2e6b9c1a73";
constexpr const char* kChannel = "PJSIP/trunk-0000002a";

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

config::Config ami_config(const std::string& providers, unsigned short ami_port,
                          const std::string& secret = "s3cret", bool md5 = true) {
  config::Config c = config::default_config();
  c.listeners[0].port = 0;
  c.listeners[0].agent = "bot";
  c.general.threads = 2;
  c.general.log_level = "warning";
  agent::AgentSpec a;
  a.name = "bot";
  a.type = agent::AgentSpec::Type::pipeline;
  c.agents.push_back(a);
  pipeline::PipelineSpec p;
  p.greeting = "";
  const providers::ProviderTarget t{"fake", providers, false, "", 0ms, {}, "", ""};
  p.asr = p.llm = p.tts = t;
  c.pipelines["bot"] = p;
  c.control.mode = control::ControlConfig::Mode::ami;
  c.control.ami.port = std::to_string(ami_port);
  c.control.ami.username = "voxbridge";
  c.control.ami.secret = secret;
  c.control.ami.md5 = md5;
  c.control.ami.reconnect_min = 100ms;
  c.control.ami.reconnect_max = 400ms;
  c.control.allow.contexts = {"voxbridge-transfer", "sales"};
  c.control.allow.extensions = {"_1XX"};
  c.control.allow.numbers = {"_NXXNXXXXXX"};
  c.control.allow.variables = {"VB_RESULT", "VB_REASON"};
  return c;
}

/// The caller says "hello world" (0.8 s of voice), then stays on the line for `tail_s`.
sim::CallPlan caller_plan(unsigned short port, double tail_s) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse("slin16");
  p.uuid = audiosocket::Uuid::parse(kUuid);
  p.audio = silence(kRate, 0.3);
  append(p.audio, voice(kRate, 0.8));
  append(p.audio, silence(kRate, tail_s));
  p.tail = 200ms;
  p.max_duration = 30s;
  return p;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

struct Rig {
  Fakes fakes;
  testing::FakeAmi ami{"voxbridge", "s3cret"};
  std::unique_ptr<testing::RunningServer> server;
  explicit Rig(bool md5 = true) {
    server = std::make_unique<testing::RunningServer>(
        ami_config(fakes.server->address(), ami.port(), "s3cret", md5));
    EXPECT_TRUE(wait_until([&] { return server->server.controller()->connected(); }, 3s));
  }
  control::Controller& ctl() { return *server->server.controller(); }
};

/// The action_result events the dialogue was told about, over all its turns.
std::vector<common::v1::ActionResult> action_results(const testing::FakeDialogue& llm) {
  std::vector<common::v1::ActionResult> out;
  for (const auto& r : llm.requests()) {
    for (const auto& e : r.events()) {
      if (e.has_action_result()) out.push_back(e.action_result());
    }
  }
  return out;
}

/// One HTTP request to the server's local API; returns status and body.
std::pair<int, std::string> http(unsigned short port, boost::beast::http::verb method,
                                 const std::string& target, const std::string& body = "") {
  return testing::http_request(port, method, target, body);
}

TEST(Ami, TransferBecomesARedirectOfTheCallsChannelAfterTheReply) {
  Rig rig;
  rig.fakes.llm.default_reply = "Putting you through. [transfer:150@sales]";
  rig.ami.add_channel(kChannel, kUuid, "+15551234567", "5551000", {{"VB_CUSTOMER", "42"}});
  // (Asterisk sends VarSet before AudioSocket() connects; let it land first here too.)
  ASSERT_TRUE(wait_until([&] { return rig.ctl().knows(kUuid); }, 2s));
  const auto r = sim::place_call(caller_plan(rig.server->port, 3.0));
  ASSERT_TRUE(r.connected) << r.error;

  control::AmiMessage redirect;
  ASSERT_TRUE(rig.ami.wait_for_action("Redirect", 2s, &redirect));
  EXPECT_EQ(redirect.get("Channel"), kChannel);
  EXPECT_EQ(redirect.get("Context"), "sales");
  EXPECT_EQ(redirect.get("Exten"), "150");
  EXPECT_EQ(redirect.get("Priority"), "1");
  EXPECT_EQ(rig.ctl().counters().actions_ok.load(), 1u);

  // The channel's facts reached the providers with the call.
  const auto reqs = rig.fakes.llm.requests();
  ASSERT_GE(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].call().call_id(), kUuid);
  EXPECT_EQ(reqs[0].call().caller_number(), "+15551234567");
  EXPECT_EQ(reqs[0].call().called_number(), "5551000");
  EXPECT_EQ(reqs[0].call().metadata().at("VB_CUSTOMER"), "42");
  EXPECT_EQ(reqs[0].call().metadata().at("channel"), kChannel);
  // The words before the transfer were spoken first (the fake TTS got them).
  EXPECT_EQ(rig.fakes.tts.texts(), (std::vector<std::string>{"Putting you through."}));
}

TEST(Ami, TheChannelDriversUuidVariableWorksAndFactsFillTheGreeting) {
  // Dial(AudioSocket/...) sets AUDIOSOCKET_UUID on its channel; the greeting uses the facts.
  Fakes fakes;
  testing::FakeAmi ami("voxbridge", "s3cret");
  config::Config c = ami_config(fakes.server->address(), ami.port());
  c.pipelines["bot"].greeting = "Hello {caller_number}{caller_name}, you called {called_number}.";
  testing::RunningServer s(c);
  ASSERT_TRUE(wait_until([&] { return s.server.controller()->connected(); }, 3s));
  const std::string channel = "AudioSocket/127.0.0.1:5001-4f1c2a8e";
  ami.add_channel(channel, kUuid, "+15551234567", "5551000", {}, "AUDIOSOCKET_UUID");
  ASSERT_TRUE(wait_until([&] { return s.server.controller()->knows(kUuid); }, 2s));
  const auto r = sim::place_call(caller_plan(s.port, 1.0));
  ASSERT_TRUE(r.connected) << r.error;
  const auto texts = fakes.tts.texts();
  ASSERT_FALSE(texts.empty());
  // The name is "<unknown>" on the wire, which Asterisk means as none: it fills in empty.
  EXPECT_EQ(texts[0], "Hello +15551234567, you called 5551000.");
}

TEST(Ami, ADeniedTransferNeverReachesAsteriskAndTheAgentIsTold) {
  Rig rig;
  rig.fakes.llm.replies["hello"] = "One moment. [transfer:0900123@sales]";
  rig.fakes.llm.default_reply = "Sorry, I cannot transfer you there.";
  rig.ami.add_channel(kChannel, kUuid, "+15551234567", "5551000");
  const auto r = sim::place_call(caller_plan(rig.server->port, 3.0));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);  // the call went on

  for (const auto& a : rig.ami.actions()) EXPECT_NE(a.get("Action"), "Redirect");
  const auto results = action_results(rig.fakes.llm);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].error(),
            "denied: '0900123' matches neither allow_extensions nor allow_numbers");
  EXPECT_EQ(results[0].action().transfer().target(), "0900123");
  EXPECT_EQ(rig.ctl().counters().actions_denied.load(), 1u);
  // The agent got a turn at once to say so.
  EXPECT_EQ(rig.fakes.tts.texts(),
            (std::vector<std::string>{"One moment.", "Sorry, I cannot transfer you there."}));
}

TEST(Ami, DtmfBecomesPlayDtmfPerDigitAndVariablesBecomeSetvar) {
  Rig rig(/*md5=*/false);  // plain login works too
  rig.fakes.llm.default_reply = "Sending. [dtmf:4#]";
  rig.ami.add_channel(kChannel, kUuid, "100", "s");
  auto r = sim::place_call(caller_plan(rig.server->port, 1.5));
  ASSERT_TRUE(r.connected) << r.error;
  control::AmiMessage d1, d2;
  ASSERT_TRUE(rig.ami.wait_for_action("PlayDTMF", 2s, &d1, 0));
  ASSERT_TRUE(rig.ami.wait_for_action("PlayDTMF", 2s, &d2, 1));
  EXPECT_EQ(d1.get("Channel"), kChannel);
  EXPECT_EQ(d1.get("Digit"), "4");
  EXPECT_EQ(d2.get("Digit"), "#");
  EXPECT_EQ(d1.get("Receive"), "false");  // toward the caller, as a phone would hear it

  rig.fakes.llm.default_reply = "Noted. [setvar:VB_RESULT=sales lead]";
  r = sim::place_call(caller_plan(rig.server->port, 1.5));
  ASSERT_TRUE(r.connected) << r.error;
  control::AmiMessage set;
  ASSERT_TRUE(rig.ami.wait_for_action("Setvar", 2s, &set));
  EXPECT_EQ(set.get("Channel"), kChannel);
  EXPECT_EQ(set.get("Variable"), "VB_RESULT");
  EXPECT_EQ(set.get("Value"), "sales lead");
  EXPECT_TRUE(wait_until([&] { return rig.ctl().counters().actions_ok.load() == 2; }, 2s));
}

TEST(Ami, TheAgentCanPlaceAnOutboundCallWithinTheAllowlist) {
  Rig rig;
  rig.fakes.llm.default_reply = "I will call them. [call:2125551234]";
  rig.ami.add_channel(kChannel, kUuid, "100", "s");
  const auto r = sim::place_call(caller_plan(rig.server->port, 1.5));
  ASSERT_TRUE(r.connected) << r.error;
  control::AmiMessage o;
  ASSERT_TRUE(rig.ami.wait_for_action("Originate", 2s, &o));
  EXPECT_EQ(o.get("Channel"), "Local/2125551234@voxbridge-transfer");
  const auto vars = o.get_all("Variable");
  ASSERT_EQ(vars.size(), 4u);
  EXPECT_EQ(vars[0], "VB_AGENT=bot");
  EXPECT_EQ(vars[1], "VB_OUTBOUND=2125551234");
  EXPECT_EQ(vars[2], "VB_REASON=callback");
  EXPECT_EQ(vars[3], std::string("VB_REQUESTED_BY=") + kUuid);  // the call that asked
  EXPECT_TRUE(wait_until([&] { return rig.ctl().counters().actions_ok.load() == 1; }, 2s));

  // A number outside the allowlist is refused and never dialled.
  rig.fakes.llm.default_reply = "[call:19005551234]";
  const std::size_t before = rig.ami.actions().size();
  const auto r2 = sim::place_call(caller_plan(rig.server->port, 1.5));
  ASSERT_TRUE(r2.connected) << r2.error;
  EXPECT_TRUE(wait_until([&] { return rig.ctl().counters().actions_denied.load() == 1; }, 2s));
  for (std::size_t i = before; i < rig.ami.actions().size(); ++i) {
    EXPECT_NE(rig.ami.actions()[i].get("Action"), "Originate");
  }
}

TEST(Ami, AnActionForACallWithoutAKnownChannelFailsClearly) {
  Rig rig;
  rig.fakes.llm.replies["hello"] = "[transfer:150]";
  rig.fakes.llm.default_reply = "I could not transfer you.";
  // No add_channel: Asterisk never told us which channel this UUID belongs to.
  const auto r = sim::place_call(caller_plan(rig.server->port, 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  const auto results = action_results(rig.fakes.llm);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error(),
            "no Asterisk channel known for this call (is VB_UUID set right before "
            "AudioSocket(), and AMI connected?)");
  EXPECT_EQ(rig.ctl().counters().actions_failed.load(), 1u);
}

TEST(Ami, ReconnectsAndLogsInAgainAfterTheManagerDropsTheConnection) {
  Rig rig;
  ASSERT_EQ(rig.ami.logins(), 1);
  rig.ami.drop_connections();
  EXPECT_TRUE(wait_until([&] { return rig.ami.logins() == 2; }, 3s));
  EXPECT_TRUE(wait_until([&] { return rig.ctl().connected(); }, 1s));
  EXPECT_GE(rig.ctl().counters().reconnects.load(), 1u);
  // Channels announced on the new connection work as before.
  rig.fakes.llm.default_reply = "[transfer:101]";
  rig.ami.add_channel(kChannel, kUuid, "100", "s");
  const auto r = sim::place_call(caller_plan(rig.server->port, 1.5));
  ASSERT_TRUE(r.connected) << r.error;
  control::AmiMessage redirect;
  ASSERT_TRUE(rig.ami.wait_for_action("Redirect", 2s, &redirect));
  EXPECT_EQ(redirect.get("Context"), "voxbridge-transfer");  // transfer_context
  EXPECT_EQ(redirect.get("Exten"), "101");
}

TEST(Ami, AWrongSecretIsRefusedAndRetriedNotFatal) {
  Fakes fakes;
  testing::FakeAmi ami("voxbridge", "s3cret");
  testing::RunningServer s(ami_config(fakes.server->address(), ami.port(), "wrong"));
  EXPECT_TRUE(wait_until([&] { return ami.failed_logins() >= 2; }, 3s));
  EXPECT_EQ(ami.logins(), 0);
  EXPECT_FALSE(s.server.controller()->connected());
}

TEST(HttpApi, WithoutAControlPathATransferIsNotedForTheDialplan) {
  // The dialplan after AudioSocket() fetches it: ${CURL(.../v1/calls/${VB_UUID}/transfer)}.
  Fakes fakes;
  fakes.llm.default_reply = "Connecting you. [transfer:200]";
  config::Config c = ami_config(fakes.server->address(), 0);
  c.control.mode = control::ControlConfig::Mode::none;
  c.control.allow.extensions.push_back("200");  // the same allowlist as with a control path
  c.general.http_listen = "127.0.0.1:0";
  testing::RunningServer s(c);
  using boost::beast::http::verb;
  auto [st, body] =
      http(s.server.http_port(), verb::get, std::string("/v1/calls/") + kUuid + "/transfer");
  EXPECT_EQ(st, 404);
  auto plan = caller_plan(s.port, 3.0);
  plan.hangup_at_end = false;  // voxbridge hangs up after the reply
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  std::tie(st, body) =
      http(s.server.http_port(), verb::get, std::string("/v1/calls/") + kUuid + "/transfer");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "200");
  std::tie(st, body) = http(s.server.http_port(), verb::get,
                            "/v1/calls/00000000-0000-4000-8000-000000000000/transfer");
  EXPECT_EQ(st, 404);
  EXPECT_EQ(body, "");
}

TEST(Ami, LogsInOverTlsAndChecksTheCertificate) {
  Fakes fakes;
  testing::FakeAmi ami("voxbridge", "s3cret", /*tls=*/true);
  config::Config c = ami_config(fakes.server->address(), ami.port());
  c.control.ami.tls = true;
  c.control.ami.host = "localhost";  // the name the certificate is for
  c.control.ami.ca_file = ami.ca_file();
  {
    testing::RunningServer s(c);
    EXPECT_TRUE(wait_until([&] { return s.server.controller()->connected(); }, 3s));
    EXPECT_EQ(ami.logins(), 1);
  }
  // Without the CA (the system's CAs do not know this certificate): no login, ever.
  testing::FakeAmi other("voxbridge", "s3cret", /*tls=*/true);
  c.control.ami.port = std::to_string(other.port());
  c.control.ami.ca_file.clear();
  testing::RunningServer s(c);
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(s.server.controller()->connected());
  EXPECT_EQ(other.logins(), 0);
}

TEST(Ami, MaxOutboundCapsOutboundCalls) {
  Fakes fakes;
  testing::FakeAmi ami("voxbridge", "s3cret");
  config::Config c = ami_config(fakes.server->address(), ami.port());
  c.control.max_outbound = 0;
  testing::RunningServer s(c);
  ASSERT_TRUE(wait_until([&] { return s.server.controller()->connected(); }, 3s));
  std::promise<control::OriginateResult> p;
  control::OriginateRequest req;
  req.to = "2125551234";
  s.server.controller()->originate(req, [&](control::OriginateResult r) { p.set_value(r); });
  const auto r = p.get_future().get();
  EXPECT_EQ(r.outcome, control::OriginateResult::Outcome::limit);
  EXPECT_EQ(r.detail, "0 outbound calls already (max_outbound)");
  EXPECT_FALSE(ami.wait_for_action("Originate", 100ms));
}

control::OriginateResult originate(control::Controller& ctl, const std::string& to) {
  std::promise<control::OriginateResult> p;
  control::OriginateRequest req;
  req.to = to;
  req.agent = "bot";
  req.variables["VB_CAMPAIGN"] = "renewals";
  ctl.originate(req, [&](control::OriginateResult r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  EXPECT_EQ(f.wait_for(5s), std::future_status::ready);
  return f.get();
}

TEST(Ami, OriginateMapsAsterisksOutcomes) {
  Rig rig;
  auto r = originate(rig.ctl(), "2125551234");
  EXPECT_EQ(r.outcome, control::OriginateResult::Outcome::answered);
  control::AmiMessage o;
  ASSERT_TRUE(rig.ami.wait_for_action("Originate", 1s, &o));
  EXPECT_EQ(o.get("Channel"), "Local/2125551234@voxbridge-transfer");
  EXPECT_EQ(o.get("Context"), "voxbridge-outbound");
  EXPECT_EQ(o.get("Exten"), "s");
  EXPECT_EQ(o.get("Async"), "true");
  EXPECT_EQ(o.get_all("Variable"),
            (std::vector<std::string_view>{"VB_AGENT=bot", "VB_OUTBOUND=2125551234",
                                           "VB_CAMPAIGN=renewals"}));
  rig.ami.set_originate_reason(5);
  EXPECT_EQ(originate(rig.ctl(), "2125551234").outcome, control::OriginateResult::Outcome::busy);
  rig.ami.set_originate_reason(3);
  EXPECT_EQ(originate(rig.ctl(), "2125551234").outcome,
            control::OriginateResult::Outcome::no_answer);
  rig.ami.set_originate_reason(0);
  EXPECT_EQ(originate(rig.ctl(), "2125551234").outcome, control::OriginateResult::Outcome::failed);

  // A premium-rate number never gets to Asterisk.
  const std::size_t before = rig.ami.actions().size();
  r = originate(rig.ctl(), "19005551234");
  EXPECT_EQ(r.outcome, control::OriginateResult::Outcome::denied);
  EXPECT_EQ(r.detail, "'19005551234' matches neither allow_numbers nor allow_extensions");
  EXPECT_EQ(rig.ami.actions().size(), before);
}

TEST(Ami, TheHttpApiOriginatesAndReportsHealth) {
  Fakes fakes;
  testing::FakeAmi ami("voxbridge", "s3cret");
  config::Config c = ami_config(fakes.server->address(), ami.port());
  c.general.http_listen = "127.0.0.1:0";
  testing::RunningServer s(c);
  ASSERT_TRUE(wait_until([&] { return s.server.controller()->connected(); }, 3s));
  ASSERT_NE(s.server.http_port(), 0);
  using boost::beast::http::verb;
  auto [st, body] = http(s.server.http_port(), verb::get, "/v1/health");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "{\"status\":\"ok\",\"active_calls\":0,\"control\":\"up\"}\n");

  std::tie(st, body) =
      http(s.server.http_port(), verb::post, "/v1/originate",
           R"({"to":"2125551234","agent":"bot","variables":{"VB_CAMPAIGN":"renewals"}})");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body,
            "{\"outcome\":\"answered\",\"channel\":\"Local/2125551234@voxbridge-transfer\","
            "\"detail\":\"Reason 4\"}\n");
  control::AmiMessage o;
  ASSERT_TRUE(ami.wait_for_action("Originate", 1s, &o));
  EXPECT_EQ(o.get_all("Variable"),
            (std::vector<std::string_view>{"VB_AGENT=bot", "VB_OUTBOUND=2125551234",
                                           "VB_CAMPAIGN=renewals"}));
  ami.set_originate_reason(5);
  std::tie(st, body) =
      http(s.server.http_port(), verb::post, "/v1/originate", R"({"to":"2125551234"})");
  EXPECT_NE(body.find("\"outcome\":\"busy\""), std::string::npos) << body;

  std::tie(st, body) =
      http(s.server.http_port(), verb::post, "/v1/originate", R"({"to":"19005551234"})");
  EXPECT_EQ(st, 200);
  EXPECT_NE(body.find("\"outcome\":\"denied\""), std::string::npos) << body;

  std::tie(st, body) = http(s.server.http_port(), verb::post, "/v1/originate", "{\"to\":42}");
  EXPECT_EQ(st, 400);
  EXPECT_EQ(body, "{\"error\":\"to must be a string\"}\n");
  std::tie(st, body) = http(s.server.http_port(), verb::get, "/v1/originate");
  EXPECT_EQ(st, 405);
  std::tie(st, body) = http(s.server.http_port(), verb::get, "/nope");
  EXPECT_EQ(st, 404);
  std::tie(st, body) = http(s.server.http_port(), verb::post, "/v1/originate",
                            std::string(20000, 'x'));  // over the body limit
  EXPECT_EQ(st, 400);
}

// --- the speech-to-speech agent's actions (FakeSpeechAgent: a 400 ms greeting, then Mark 1,
// then its scripted actions one at a time) ---

config::Config s2s_ami_config(const std::string& agent_address, unsigned short ami_port) {
  config::Config c = ami_config("", ami_port);
  for (auto& a : c.agents) {
    if (a.name == "bot") a.type = agent::AgentSpec::Type::speech;
  }
  c.pipelines.clear();
  pipeline::SpeechAgentSpec s;
  s.agent = {"fake", agent_address, false, "", 10000ms, {}, "", ""};
  c.speech_agents["bot"] = s;
  return c;
}

/// A caller who stays silent (the fake agent answers voice) for `seconds`.
sim::CallPlan quiet_plan(unsigned short port, double seconds) {
  sim::CallPlan p = caller_plan(port, 0);
  p.audio = silence(kRate, seconds);
  return p;
}

common::v1::Action transfer_to(const std::string& target, const std::string& context = "") {
  common::v1::Action a;
  a.mutable_transfer()->set_target(target);
  a.mutable_transfer()->set_context(context);
  return a;
}

struct S2sRig {
  testing::FakeSpeechAgent agent;
  testing::FakeProviderServer agent_server{&agent};
  testing::FakeAmi ami{"voxbridge", "s3cret"};
  std::unique_ptr<testing::RunningServer> server;
  explicit S2sRig(std::vector<common::v1::Action> actions) {
    agent.actions = std::move(actions);
    server = std::make_unique<testing::RunningServer>(
        s2s_ami_config(agent_server.address(), ami.port()));
    EXPECT_TRUE(wait_until([&] { return server->server.controller()->connected(); }, 3s));
    ami.add_channel(kChannel, kUuid, "+15551234567", "5551000");
    EXPECT_TRUE(wait_until([&] { return ctl().knows(kUuid); }, 2s));
  }
  control::Controller& ctl() { return *server->server.controller(); }
};

TEST(Ami, SpeechAgentsTransferBecomesARedirectAfterItsWordsPlayed) {
  S2sRig rig({transfer_to("150", "sales")});
  const auto r = sim::place_call(quiet_plan(rig.server->port, 1.5));
  ASSERT_TRUE(r.connected) << r.error;
  control::AmiMessage redirect;
  ASSERT_TRUE(rig.ami.wait_for_action("Redirect", 2s, &redirect));
  EXPECT_EQ(redirect.get("Channel"), kChannel);
  EXPECT_EQ(redirect.get("Context"), "sales");
  EXPECT_EQ(redirect.get("Exten"), "150");
  EXPECT_EQ(redirect.get("Priority"), "1");
  EXPECT_EQ(rig.ctl().counters().actions_ok.load(), 1u);
  ASSERT_TRUE(wait_until([&] { return rig.agent.action_results().size() == 1; }, 2s));
  const auto results = rig.agent.action_results();
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[0].error(), "");
  EXPECT_EQ(results[0].action().transfer().target(), "150");
  EXPECT_EQ(results[0].action().transfer().context(), "sales");
  // The greeting before the transfer was played first (its mark came back before the result).
  EXPECT_EQ(rig.agent.events(), (std::vector<std::string>{"mark_played 1", "action_result"}));
  EXPECT_FALSE(r.server_sent_hangup);  // Asterisk moves the caller; voxbridge does not hang up
}

TEST(Ami, SpeechAgentsDeniedTransferNeverReachesAsteriskAndTheAgentIsTold) {
  S2sRig rig({transfer_to("0900123", "sales")});
  const auto r = sim::place_call(quiet_plan(rig.server->port, 1.5));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);  // the call went on
  ASSERT_TRUE(wait_until([&] { return rig.agent.action_results().size() == 1; }, 2s));
  const auto results = rig.agent.action_results();
  EXPECT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].error(),
            "denied: '0900123' matches neither allow_extensions nor allow_numbers");
  EXPECT_EQ(results[0].action().transfer().target(), "0900123");
  for (const auto& a : rig.ami.actions()) EXPECT_NE(a.get("Action"), "Redirect");
  EXPECT_EQ(rig.ctl().counters().actions_denied.load(), 1u);
}

TEST(Ami, SpeechAgentsDtmfBecomesPlayDtmfAndVariablesBecomeSetvar) {
  common::v1::Action dtmf, setvar;
  dtmf.mutable_send_dtmf()->set_digits("4#");
  setvar.mutable_set_variable()->set_name("VB_RESULT");
  setvar.mutable_set_variable()->set_value("sales lead");
  S2sRig rig({dtmf, setvar});
  const auto r = sim::place_call(quiet_plan(rig.server->port, 1.0));
  ASSERT_TRUE(r.connected) << r.error;
  control::AmiMessage d1, d2, set;
  ASSERT_TRUE(rig.ami.wait_for_action("PlayDTMF", 2s, &d1, 0));
  ASSERT_TRUE(rig.ami.wait_for_action("PlayDTMF", 2s, &d2, 1));
  EXPECT_EQ(d1.get("Channel"), kChannel);
  EXPECT_EQ(d1.get("Digit"), "4");
  EXPECT_EQ(d2.get("Digit"), "#");
  ASSERT_TRUE(rig.ami.wait_for_action("Setvar", 2s, &set));
  EXPECT_EQ(set.get("Channel"), kChannel);
  EXPECT_EQ(set.get("Variable"), "VB_RESULT");
  EXPECT_EQ(set.get("Value"), "sales lead");
  ASSERT_TRUE(wait_until([&] { return rig.agent.action_results().size() == 2; }, 2s));
  const auto results = rig.agent.action_results();
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[0].action().send_dtmf().digits(), "4#");
  EXPECT_TRUE(results[1].ok());
  EXPECT_EQ(results[1].action().set_variable().name(), "VB_RESULT");
  EXPECT_EQ(rig.ctl().counters().actions_ok.load(), 2u);
}

TEST(Ami, ASpeechAgentThatKeepsAskingForRefusedTransfersEndsTheCallAfterThree) {
  // The fake asks again after each refusal; the fourth is never carried out.
  S2sRig rig({transfer_to("0900123"), transfer_to("0900124"), transfer_to("0900125"),
              transfer_to("0900126")});
  auto plan = quiet_plan(rig.server->port, 5.0);
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 4000);
  ASSERT_TRUE(wait_until([&] { return rig.agent.action_results().size() >= 3; }, 2s));
  const auto results = rig.agent.action_results();
  ASSERT_EQ(results.size(), 3u);
  for (const auto& res : results) EXPECT_FALSE(res.ok());
  EXPECT_EQ(results[2].action().transfer().target(), "0900125");
  EXPECT_EQ(rig.ctl().counters().actions_denied.load(), 3u);
  const std::string m = rig.server->server.metrics_text();
  EXPECT_NE(m.find("\nvoxbridge_fallbacks_total 1\n"), std::string::npos) << m;
}

TEST(HttpApi, WithoutAControlPathASpeechAgentsTransferIsNotedAndTheCallHangsUp) {
  testing::FakeSpeechAgent agent;
  agent.actions = {transfer_to("200")};
  testing::FakeProviderServer agent_server(&agent);
  config::Config c = s2s_ami_config(agent_server.address(), 0);
  c.control.mode = control::ControlConfig::Mode::none;
  c.control.allow.extensions.push_back("200");
  c.general.http_listen = "127.0.0.1:0";
  testing::RunningServer s(c);
  auto plan = quiet_plan(s.port, 3.0);
  plan.hangup_at_end = false;  // voxbridge hangs up after the greeting
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 2000);
  using boost::beast::http::verb;
  const auto [st, body] =
      http(s.server.http_port(), verb::get, std::string("/v1/calls/") + kUuid + "/transfer");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "200");
  ASSERT_TRUE(wait_until([&] { return agent.action_results().size() == 1; }, 2s));
  EXPECT_TRUE(agent.action_results()[0].ok());
  EXPECT_EQ(agent.events(), (std::vector<std::string>{"mark_played 1", "action_result"}));
}

}  // namespace
}  // namespace voxbridge
