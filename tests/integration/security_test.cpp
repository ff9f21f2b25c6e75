// Adversarial tests of what reaches Asterisk (issue 20): a hostile model (the scripted fake LLM
// sends exact action bytes), and a hostile API client, against each way voxbridge acts on a
// call: no control path (the transfer noted for the dialplan), AMI (the fake manager records
// the exact actions) and ARI (the fake records the exact REST requests). Whatever the attack,
// nothing but checked digits and names may come out, the agent is told "denied: ...", and the
// call goes on.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_ami.hpp"
#include "support/fake_ari.hpp"
#include "support/fake_providers.hpp"
#include "support/http_client.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
namespace http = boost::beast::http;
constexpr int kRate = 16000;
constexpr const char* kUuid = "0b7e1c2a-3d4f-4a5b-8c6d-7e8f9a0b1c2d";
constexpr const char* kChannel = "PJSIP/trunk-00000077";
/// Finding 1: GotoIf splits on '?' and ':' — this would land the call in from-internal.
constexpr const char* kGotoIfInjection = R"(" = "x" & "a:from-internal,9011441234567)";

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

/// A pipeline agent "bot" on the fakes; `control` is the [control]... text that follows.
config::Config conf(const Fakes& f, const std::string& control) {
  const std::string text =
      "[general]\nthreads = 2\nlog_level = warning\n"
      "http_listen = 127.0.0.1:0\n"
      "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n"
      "[provider-fake]\naddress = " +
      f.server->address() +
      "\n[agent-bot]\ntype = pipeline\nasr = fake\nllm = fake\ntts = fake\n"
      "greeting = none\n" +
      control;
  return config::parse_config(text, "security_test");
}

/// The caller says "hello world" after `lead_s` of silence, then stays `tail_s`; with
/// `twice` it speaks again 1.5 s later (the results of actions ride on the next turn).
sim::CallPlan caller(unsigned short port, double tail_s, double lead_s = 0.3, bool twice = false) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse("slin16");
  p.uuid = audiosocket::Uuid::parse(kUuid);
  p.audio = testing::silence(kRate, lead_s);
  testing::append(p.audio, testing::voice(kRate, 0.8));
  if (twice) {
    testing::append(p.audio, testing::silence(kRate, 1.5));
    testing::append(p.audio, testing::voice(kRate, 0.8));
  }
  testing::append(p.audio, testing::silence(kRate, tail_s));
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

std::vector<common::v1::ActionResult> results(const testing::FakeDialogue& llm) {
  std::vector<common::v1::ActionResult> out;
  for (const auto& r : llm.requests()) {
    for (const auto& e : r.events()) {
      if (e.has_action_result()) out.push_back(e.action_result());
    }
  }
  return out;
}

common::v1::Action transfer(const std::string& target, const std::string& context = "") {
  common::v1::Action a;
  a.mutable_transfer()->set_target(target);
  a.mutable_transfer()->set_context(context);
  return a;
}
common::v1::Action setvar(const std::string& name, const std::string& value) {
  common::v1::Action a;
  a.mutable_set_variable()->set_name(name);
  a.mutable_set_variable()->set_value(value);
  return a;
}
common::v1::Action dtmf(const std::string& digits) {
  common::v1::Action a;
  a.mutable_send_dtmf()->set_digits(digits);
  return a;
}
common::v1::Action call_out(const std::string& number,
                            const std::map<std::string, std::string>& vars = {}) {
  common::v1::Action a;
  a.mutable_originate()->set_number(number);
  a.mutable_originate()->set_agent("bot");
  for (const auto& [k, v] : vars) (*a.mutable_originate()->mutable_variables())[k] = v;
  return a;
}

std::uint64_t denied_metric(const testing::RunningServer& s) {
  const auto m = s.server.metrics_text();
  const std::string key = "voxbridge_control_actions_total{result=\"denied\"} ";
  const auto at = m.find(key);
  return at == std::string::npos ? 0 : std::stoull(m.substr(at + key.size()));
}

// --- no control path ------------------------------------------------------------------------

TEST(Security, NoControlPathTheGotoIfInjectionIsDeniedAndNeverServedToTheDialplan) {
  Fakes f;
  f.llm.replies["hello"] = "Transferring you.";
  f.llm.default_reply = "Sorry, I cannot do that.";
  f.llm.script_actions({transfer(kGotoIfInjection)});
  testing::RunningServer s(conf(f, ""));
  const auto r = sim::place_call(caller(s.port, 2.5));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);  // the call went on

  const auto res = results(f.llm);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_FALSE(res[0].ok());
  EXPECT_EQ(
      res[0].error(),
      "denied: '\\\" = \\\"x\\\" & \\\"a:from-internal,9011441234567' is not a number (only 0-9 * "
      "# and a leading +)");
  // The dialplan's CURL() finds nothing to Goto.
  const auto [status, body] = testing::http_request(
      s.server.http_port(), http::verb::get, std::string("/v1/calls/") + kUuid + "/transfer");
  EXPECT_EQ(status, 404) << body;
  EXPECT_EQ(denied_metric(s), 1u);
  // The agent got a turn at once to say so.
  EXPECT_EQ(f.tts.texts(),
            (std::vector<std::string>{"Transferring you.", "Sorry, I cannot do that."}));
}

TEST(Security, NoControlPathTransfersPassTheSameAllowlist) {
  Fakes f;
  f.llm.replies["hello"] = "Transferring you.";
  f.llm.default_reply = "Sorry.";
  // A number the default allowlist (voxbridge-transfer: 100, 200) does not have, then a context
  // the dialplan would not use.
  f.llm.script_actions({transfer("9011441234567")});
  testing::RunningServer s(conf(f, ""));
  auto r = sim::place_call(caller(s.port, 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);
  auto res = results(f.llm);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].error(),
            "denied: '9011441234567' matches neither allow_extensions nor allow_numbers");
  EXPECT_EQ(testing::http_request(s.server.http_port(), http::verb::get,
                                  std::string("/v1/calls/") + kUuid + "/transfer")
                .first,
            404);

  f.llm.script_actions({transfer("100", "from-internal")});
  r = sim::place_call(caller(s.port, 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  res = results(f.llm);
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[1].error(),
            "denied: without a control path a transfer goes to transfer_context "
            "'voxbridge-transfer' only, not 'from-internal'");

  // What the receptionist does out of the box still works: noted, served, the socket closes.
  f.llm.script_actions({transfer("100")});
  r = sim::place_call(caller(s.port, 3.0));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  const auto [status, body] = testing::http_request(
      s.server.http_port(), http::verb::get, std::string("/v1/calls/") + kUuid + "/transfer");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "100");
  EXPECT_EQ(denied_metric(s), 2u);
}

TEST(Security, WithAnEmptyAllowlistNoTransferLeavesTheCall) {
  Fakes f;
  f.llm.replies["hello"] = "Transferring you.";
  f.llm.default_reply = "Sorry.";
  f.llm.script_actions({transfer("100")});
  config::Config c = conf(f, "");
  c.control.allow.extensions.clear();
  testing::RunningServer s(c);
  const auto r = sim::place_call(caller(s.port, 2.0));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);
  const auto res = results(f.llm);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].error(), "denied: '100' matches neither allow_extensions nor allow_numbers");
}

TEST(Security, AModelThatKeepsAskingForARefusedTransferGetsTheFallbackNotEndlessTurns) {
  Fakes f;
  // Every turn, the first one and each one a refusal starts, asks for the same number again.
  f.llm.default_reply = "Connecting you.[transfer:9011441234567]";
  testing::RunningServer s(conf(f, ""));
  auto plan = caller(s.port, 6.0);
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);       // the fallback, then the hangup
  EXPECT_EQ(f.llm.requests().size(), 3u);  // hello, then one turn per refusal until the third
  EXPECT_EQ(denied_metric(s), 3u);
}

// --- AMI ------------------------------------------------------------------------------------

struct AmiRig {
  Fakes f;
  testing::FakeAmi ami{"voxbridge", "s3cret"};
  std::unique_ptr<testing::RunningServer> server;
  explicit AmiRig(const std::string& extra = "") {
    server = std::make_unique<testing::RunningServer>(
        conf(f,
             "[control]\nmode = ami\nallow_contexts = voxbridge-transfer\n"
             "allow_extensions = _1XX\nallow_numbers = _1800.\n" +
                 extra + "[ami]\nport = " + std::to_string(ami.port()) +
                 "\nusername = voxbridge\nsecret = s3cret\n"));
    EXPECT_TRUE(wait_until([&] { return server->server.controller()->connected(); }, 3s));
    ami.add_channel(kChannel, kUuid, "+15551234567", "5551000");
    EXPECT_TRUE(wait_until([&] { return server->server.controller()->knows(kUuid); }, 2s));
  }
  std::vector<std::string> actions_sent() const {
    std::vector<std::string> out;
    for (const auto& a : ami.actions()) {
      const std::string name(a.get("Action"));
      if (name != "Login" && name != "Challenge" && name != "Ping" && name != "Events") {
        out.push_back(name);
      }
    }
    return out;
  }
};

TEST(Security, AmiInjectedTargetsVariablesAndDigitsNeverReachTheManager) {
  AmiRig rig("allow_variables = VB_RESULT, VB_REASON, VB_*\n");
  rig.f.llm.replies["hello"] = "Working on it.";
  rig.f.llm.default_reply = "Sorry.";
  rig.f.llm.script_actions({
      // Finding 2: '.' matched '@' and '/': "Local/1800@from-internal/n@voxbridge-transfer".
      call_out("1800@from-internal/n"),
      // Finding 1 (AMI route): the dialplan's VB_TRANSFER and another call's VB_UUID.
      setvar("VB_TRANSFER", "200"),
      setvar("VB_UUID", "00000000-0000-0000-0000-000000000000"),
      setvar("_VB_UUID", "x"),  // '_' inherits onto the channels it dials
      setvar("CALLERID(num)", "2025550100"),
      // Finding 3: a comma in an Originate variable spoofs the caller ID on the trunk.
      call_out("18005550100", {{"VB_REASON", "sales,CALLERID(num)=2025550100"}}),
      setvar("VB_RESULT", "line\r\nAction: Originate"),
      dtmf(std::string(1000, '1')),
      // A context that would end the AMI action and start another one.
      transfer("150", "voxbridge-transfer\r\nAction: Originate"),
  });
  const auto r = sim::place_call(caller(rig.server->port, 1.0, 0.3, true));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);
  ASSERT_TRUE(wait_until([&] { return results(rig.f.llm).size() == 9; }, 3s));
  EXPECT_EQ(rig.actions_sent(), std::vector<std::string>{});  // not one byte to Asterisk
  const auto res = results(rig.f.llm);
  const std::vector<std::string> expected = {
      "denied: '1800@from-internal/n' is not a number (only 0-9 * # and a leading +)",
      "denied: 'VB_TRANSFER' is reserved for voxbridge",
      "denied: 'VB_UUID' is reserved for voxbridge",
      "denied: '_VB_UUID' is not a variable name (a letter, then A-Z a-z 0-9 _)",
      "denied: 'CALLERID(num)' is not a variable name (a letter, then A-Z a-z 0-9 _)",
      "denied: VB_REASON: value 'sales,CALLERID(num)=2025550100' contains ',' or '|' (Asterisk "
      "would split it)",
      "denied: value 'line\\r\\nAction: Originate' contains a control character",
      "denied: DTMF string longer than 32 characters",
      "denied: 'voxbridge-transfer\\r\\nAction: Originate' is not a context name (A-Z a-z "
      "0-9 _ -)",
  };
  std::vector<std::string> got;
  for (const auto& x : res) got.push_back(x.error());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(rig.server->server.controller()->counters().actions_denied.load(), 9u);
}

TEST(Security, AmiTheCallsActionsAndOutboundCallsAreCapped) {
  AmiRig rig("max_actions_per_call = 3\nmax_originates_per_call = 1\n");
  rig.f.llm.replies["hello"] = "Working on it.";
  rig.f.llm.default_reply = "Sorry.";
  rig.f.llm.script_actions(
      {call_out("18005550100"), call_out("18005550101"), dtmf("1"), dtmf("2"), dtmf("3")});
  const auto r = sim::place_call(caller(rig.server->port, 1.0, 0.3, true));
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(wait_until([&] { return results(rig.f.llm).size() == 5; }, 5s));
  std::vector<std::string> got;
  for (const auto& x : results(rig.f.llm)) got.push_back(x.ok() ? "ok" : x.error());
  // Results come back as Asterisk answers; the refusals are the ones that never went out.
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "denied: this call has had its 3 actions (max_actions_per_call)",
                     "denied: this call has had its 3 actions (max_actions_per_call)",
                     "denied: this call has placed its 1 outbound calls (max_originates_per_call)",
                     "ok", "ok"}));
  std::size_t originates = 0;
  for (const auto& a : rig.ami.actions()) originates += a.get("Action") == "Originate";
  EXPECT_EQ(originates, 1u);
}

TEST(Security, ApiOriginateInjectionsAreDeniedBeforeAsterisk) {
  AmiRig rig;
  const auto port = rig.server->server.http_port();
  auto post = [&](const std::string& body) {
    return testing::http_request(port, http::verb::post, "/v1/originate", body);
  };
  for (const auto& [body, why] : std::vector<std::pair<std::string, std::string>>{
           {R"({"to":"1800@from-internal/n"})", "is not a number"},
           {R"({"to":"18005550100","agent":"sales,CALLERID(num)=2025550100"})",
            "is not an agent name"},
           {R"({"to":"18005550100","variables":{"VB_CAMPAIGN":"a,CALLERID(num)=2025550100"}})",
            "contains ',' or '|'"},
           {R"({"to":"18005550100","variables":{"VB_UUID":"x"}})", "reserved for voxbridge"},
           {R"({"to":"18005550100","caller_id":"x\r\nAction: Hangup"})",
            "contains a control character"},
       }) {
    const auto [status, res] = post(body);
    EXPECT_EQ(status, 200) << body;
    EXPECT_NE(res.find("\"outcome\":\"denied\""), std::string::npos) << body << " -> " << res;
    EXPECT_NE(res.find(why), std::string::npos) << body << " -> " << res;
  }
  for (const auto& a : rig.ami.actions()) EXPECT_NE(a.get("Action"), "Originate");
}

// --- ARI ------------------------------------------------------------------------------------

TEST(Security, AriInjectedTargetsAndVariablesNeverReachTheRestInterface) {
  Fakes f;
  f.llm.replies["hello"] = "Working on it.";
  f.llm.default_reply = "Sorry.";
  f.llm.script_actions({
      // A query-string injection into /continue, and a context that is not a name.
      transfer("2001&context=from-internal"),
      setvar("VB_LANGUAGE", "xx"),
      // Finding 3: ARI originate did not check variable names at all.
      call_out("5551234", {{"CALLERID(num)", "2025550100"}}),
  });
  testing::FakeAri ari("vb", "s3cret");
  auto audio = testing::silence(kRate, 0.3);
  testing::append(audio, testing::voice(kRate, 0.8));
  testing::append(audio, testing::silence(kRate, 1.5));
  testing::append(audio, testing::voice(kRate, 0.8));
  ari.set_caller_audio(audio);
  testing::RunningServer s(conf(f,
                                "[control]\nmode = ari\nallow_contexts = agents\n"
                                "allow_extensions = 2001\nallow_numbers = _555XXXX\n"
                                "allow_variables = VB_*\n"
                                "originate_channel = PJSIP/${NUMBER}@trunk\n[ari]\nurl = " +
                                    ari.url() + "\nusername = vb\npassword = s3cret\n"));
  ASSERT_TRUE(ari.wait_for([&] { return ari.websocket_connects() >= 1; }, 3s));
  const std::string id = ari.start_call("5551234", "7000");
  ASSERT_TRUE(wait_until([&] { return results(f.llm).size() == 3; }, 5s));
  std::vector<std::string> got;
  for (const auto& x : results(f.llm)) got.push_back(x.error());
  // The transfer waits for the reply to drain; the others are answered at once.
  EXPECT_EQ(got,
            (std::vector<std::string>{
                "denied: 'VB_LANGUAGE' is reserved for voxbridge",
                "denied: 'CALLERID(num)' is not a variable name (a letter, then A-Z a-z 0-9 _)",
                "denied: '2001&context=from-internal' is not a number (only 0-9 * # and a "
                "leading +)",
            }));
  for (const auto& req : ari.requests()) {
    EXPECT_EQ(req.path.find("/continue"), std::string::npos) << req.target;
    EXPECT_EQ(req.path.find("/variable"), std::string::npos) << req.target;
    EXPECT_FALSE(req.method == "POST" && req.path == "/ari/channels") << req.target;
  }
  ari.hangup_caller(id);
}

// --- reload ---------------------------------------------------------------------------------

TEST(Security, AReloadRotatesTheTokenAndTheAllowlistForCallsInProgress) {
  Fakes f;
  testing::FakeAmi ami{"voxbridge", "s3cret"};
  auto make = [&](const std::string& token, const std::string& numbers) {
    config::Config c = conf(f, "[control]\nmode = ami\nallow_numbers = " + numbers +
                                   "\n[ami]\nport = " + std::to_string(ami.port()) +
                                   "\nusername = voxbridge\nsecret = s3cret\n");
    c.general.http_token = token;
    return c;
  };
  testing::RunningServer s(make("old-token", "_1800XXXXXXX"));
  ASSERT_TRUE(wait_until([&] { return s.server.controller()->connected(); }, 3s));
  ami.add_channel(kChannel, kUuid, "+15551234567", "5551000");
  ASSERT_TRUE(wait_until([&] { return s.server.controller()->knows(kUuid); }, 2s));
  const auto port = s.server.http_port();
  EXPECT_EQ(testing::http_request(port, http::verb::get, "/status", "", "old-token").first, 200);

  f.llm.replies["hello"] = "Calling.";
  f.llm.default_reply = "Sorry.";
  f.llm.script_actions({call_out("18005550100")});
  // The call starts under the old configuration; its agent acts after the reload.
  auto call = std::async(std::launch::async,
                         [&] { return sim::place_call(caller(s.port, 1.0, 1.5, true)); });
  ASSERT_TRUE(wait_until([&] { return s.server.active_calls() == 1; }, 2s));
  std::string why;
  ASSERT_TRUE(s.server.reload(make("new-token", "_2XX"), why)) << why;
  const auto r = call.get();
  ASSERT_TRUE(r.connected) << r.error;
  const auto res = results(f.llm);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].error(),
            "denied: '18005550100' matches neither allow_numbers nor allow_extensions");
  for (const auto& a : ami.actions()) EXPECT_NE(a.get("Action"), "Originate");
  EXPECT_EQ(testing::http_request(port, http::verb::get, "/status", "", "old-token").first, 401);
  EXPECT_EQ(testing::http_request(port, http::verb::get, "/status", "", "new-token").first, 200);
}

TEST(Security, AReloadThatWouldKeepAnOldValueIsRefusedWhole) {
  Fakes f;
  testing::FakeAmi ami{"voxbridge", "s3cret"};
  auto make = [&](const std::string& secret) {
    return conf(f, "[control]\nmode = ami\n[ami]\nport = " + std::to_string(ami.port()) +
                       "\nusername = voxbridge\nsecret = " + secret + "\n");
  };
  testing::RunningServer s(make("s3cret"));
  std::string why;
  EXPECT_FALSE(s.server.reload(make("rotated"), why));
  EXPECT_EQ(why, "[ami] cannot change without a restart");
  auto more = make("s3cret");
  more.general.threads = 3;
  EXPECT_FALSE(s.server.reload(more, why));
  EXPECT_EQ(why, "threads and realtime_priority cannot change without a restart");
  auto same = make("s3cret");
  same.general.max_calls = 1;
  EXPECT_TRUE(s.server.reload(same, why)) << why;
}

}  // namespace
}  // namespace voxbridge
