// The Gemini Live translator on its own: exact client messages for what voxbridge sends, exact
// contract messages for what the service sends (shapes from Google's reference,
// https://ai.google.dev/api/live; server messages from tests/data/gemini_live). No sockets, no
// threads.
#include "voxbridge/realtime_gemini/conversation.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "voxbridge/base64/base64.hpp"
#include "voxbridge/realtime_gemini/backend.hpp"

namespace voxbridge::realtime_gemini {
namespace {

namespace json = boost::json;

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(VB_TEST_DATA) + "/gemini_live/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

agent::v1::AgentConfig config(int in_rate, int out_rate) {
  agent::v1::AgentConfig c;
  c.mutable_call()->set_call_id("7e2d5a8c-0000-4000-8000-000000000001");
  c.mutable_call()->set_caller_number("+15551234567");
  c.mutable_call()->set_caller_name("Zo\xc3\xab \xff");  // a SIP display name, not all UTF-8
  (*c.mutable_call()->mutable_metadata())["VB_ACCOUNT"] = "gold";
  c.mutable_input_format()->set_encoding(common::v1::LINEAR16);
  c.mutable_input_format()->set_sample_rate_hz(static_cast<std::uint32_t>(in_rate));
  c.mutable_output_format()->set_encoding(common::v1::LINEAR16);
  c.mutable_output_format()->set_sample_rate_hz(static_cast<std::uint32_t>(out_rate));
  auto* t = c.add_tools();
  t->set_name("order_status");
  t->set_description("Look up an order by its number.");
  t->set_parameters_json(
      R"({"type":"object","properties":{"order":{"type":"string"}},"required":["order"],"additionalProperties":false})");
  return c;
}

struct Rig {
  std::vector<std::string> sent;
  std::vector<agent::v1::AgentResponse> got;
  std::shared_ptr<GeminiOptions> o = std::make_shared<GeminiOptions>();
  std::optional<Conversation> conv;

  explicit Rig(int in_rate = 16000, int out_rate = 24000,
               std::function<void(GeminiOptions&)> tweak = {}) {
    o->instructions = "Caller {caller_number} {caller_name} ({VB_ACCOUNT}) on {call_id}.";
    if (tweak) tweak(*o);
    conv.emplace(o, config(in_rate, out_rate), 2,
                 Conversation::Sink{[this](std::string j) { sent.push_back(std::move(j)); },
                                    [this](agent::v1::AgentResponse r) { got.push_back(r); }});
  }
  json::value msg(std::size_t i) const { return json::parse(sent.at(i)); }
  Conversation::Verdict server(const std::string& j) {
    std::string why;
    return conv->server_event(j, why);
  }
  void ready() {
    conv->opened();
    ASSERT_EQ(server(fixture("setup_complete.json")), Conversation::Verdict::go_on);
    sent.clear();
    got.clear();
  }
};

TEST(GeminiConversation, TheSetupIsTheFirstMessageWithEverythingTheCallNeeds) {
  Rig r(16000, 24000, [](GeminiOptions& o) {
    o.model = "gemini-2.0-flash-live-001";
    o.voice = "Aoede";
    o.turn_detection = "none";
    o.transcription = false;
    o.compression_trigger_tokens = 25600;
  });
  r.conv->opened();
  ASSERT_EQ(r.sent.size(), 1u);
  const json::value want = json::parse(R"({"setup":{
    "model":"models/gemini-2.0-flash-live-001",
    "generationConfig":{"responseModalities":["AUDIO"],
      "speechConfig":{"voiceConfig":{"prebuiltVoiceConfig":{"voiceName":"Aoede"}}}},
    "systemInstruction":{"parts":[{"text":
      "Caller +15551234567 Zo\u00eb \ufffd (gold) on 7e2d5a8c-0000-4000-8000-000000000001."}]},
    "tools":[{"functionDeclarations":[
      {"name":"transfer","description":"Transfer the caller to another extension or phone number. Say that you are transferring them first.","parameters":{"type":"OBJECT","properties":{"target":{"type":"STRING","description":"Extension or phone number, digits only"},"context":{"type":"STRING","description":"Dialplan context, if the business told you one"}},"required":["target"]}},
      {"name":"hang_up","description":"End the call, after saying goodbye.","parameters":{"type":"OBJECT","properties":{"final_words":{"type":"STRING","description":"What to say before hanging up"},"reason":{"type":"STRING"}}}},
      {"name":"send_dtmf","description":"Press keys on the phone line (for an IVR menu): 0-9, *, #.","parameters":{"type":"OBJECT","properties":{"digits":{"type":"STRING"}},"required":["digits"]}},
      {"name":"set_variable","description":"Record a fact about the call for the business's phone system.","parameters":{"type":"OBJECT","properties":{"name":{"type":"STRING"},"value":{"type":"STRING"}},"required":["name","value"]}},
      {"name":"order_status","description":"Look up an order by its number.","parametersJsonSchema":{"type":"object","properties":{"order":{"type":"string"}},"required":["order"],"additionalProperties":false}}]}],
    "realtimeInputConfig":{"automaticActivityDetection":{"disabled":true}},
    "sessionResumption":{},
    "contextWindowCompression":{"slidingWindow":{},"triggerTokens":25600}}})");
  EXPECT_EQ(r.msg(0), want) << r.sent[0];
  // Nothing else before setupComplete: the caller's audio waits.
  r.conv->caller_audio(std::string(3200, '\0'));
  EXPECT_EQ(r.sent.size(), 1u);
}

TEST(GeminiConversation, AudioHeldDuringSetupGoesOutAfterSetupCompleteIn40MsMessages) {
  Rig r(8000, 24000, [](GeminiOptions& o) { o.greeting = false; });
  r.conv->opened();
  r.sent.clear();
  // 100 ms of 8 kHz audio before the session is ready: resampled to 16 kHz and held.
  std::string pcm;
  for (int i = 0; i < 800; ++i) {
    const auto s = static_cast<std::int16_t>(i % 2 == 0 ? 1000 : -1000);
    pcm.append(reinterpret_cast<const char*>(&s), 2);
  }
  r.conv->caller_audio(pcm);
  EXPECT_TRUE(r.sent.empty());
  ASSERT_EQ(r.server(fixture("setup_complete.json")), Conversation::Verdict::go_on);
  // 100 ms at 16 kHz = 3200 bytes (less the resampler's start-up): two messages of 40 ms.
  ASSERT_EQ(r.sent.size(), 2u);
  for (const auto& s : r.sent) {
    const auto m = json::parse(s);
    EXPECT_EQ(m.at("realtimeInput").at("audio").at("mimeType"), "audio/pcm;rate=16000");
    std::string bytes;
    ASSERT_TRUE(base64::decode(
        std::string_view(m.at("realtimeInput").at("audio").at("data").as_string()), bytes));
    EXPECT_EQ(bytes.size(), 1280u);
  }
}

TEST(GeminiConversation, TheGreetingIsAUserTurnAfterSetupComplete) {
  Rig r;
  r.conv->opened();
  ASSERT_EQ(r.server(fixture("setup_complete.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.sent.size(), 2u);
  EXPECT_EQ(r.msg(1), json::parse(R"({"clientContent":{"turns":[{"role":"user","parts":[{"text":
    "The call has just been answered. Greet the caller briefly and ask how you can help."}]}],
    "turnComplete":true}})"));
}

TEST(GeminiConversation, ModelAudioIsMarkedAndPassedOnAt24kHz) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(fixture("server_content_audio.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("server_content_audio.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("output_transcription.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("generation_complete.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("turn_complete_usage.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.got.size(), 6u);
  EXPECT_EQ(r.got[0].mark().id(), 1u);
  ASSERT_EQ(r.got[1].audio().size(), 960u);  // 20 ms at 24 kHz, as it came
  std::int16_t first = 0;
  std::memcpy(&first, r.got[1].audio().data(), 2);
  EXPECT_EQ(first, 256);
  EXPECT_EQ(r.got[2].audio().size(), 960u);
  EXPECT_EQ(r.got[3].mark().id(), 2u);
  EXPECT_EQ(r.got[4].transcript().speaker(), agent::v1::Transcript::AGENT);
  EXPECT_EQ(r.got[4].transcript().text(), "Hello, how can I help?");
  EXPECT_TRUE(r.got[4].transcript().is_final());
  EXPECT_EQ(r.got[5].usage().input_tokens(), 120u);
  EXPECT_EQ(r.got[5].usage().output_tokens(), 40u);
  EXPECT_EQ(r.got[5].usage().output_audio_ms(), 40u);
}

TEST(GeminiConversation, InterruptedClearsPlaybackAtOnceAndDropsTheRestOfTheTurn) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(fixture("server_content_audio.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("input_transcription.json")), Conversation::Verdict::go_on);
  r.got.clear();
  ASSERT_EQ(r.server(fixture("interrupted.json")), Conversation::Verdict::go_on);
  ASSERT_GE(r.got.size(), 1u);
  EXPECT_TRUE(r.got[0].has_clear());
  ASSERT_EQ(r.got.size(), 2u);  // and the caller's words so far
  EXPECT_EQ(r.got[1].transcript().speaker(), agent::v1::Transcript::CALLER);
  EXPECT_EQ(r.got[1].transcript().text(), "I need a plumber");
  r.got.clear();
  // Late audio of the interrupted turn is not played; the next turn's is.
  ASSERT_EQ(r.server(fixture("server_content_audio.json")), Conversation::Verdict::go_on);
  EXPECT_TRUE(r.got.empty());
  ASSERT_EQ(r.server(fixture("turn_complete_usage.json")), Conversation::Verdict::go_on);
  r.got.clear();
  ASSERT_EQ(r.server(fixture("server_content_audio.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.got.size(), 2u);
  EXPECT_TRUE(r.got[0].has_mark());
  EXPECT_EQ(r.got[1].audio().size(), 960u);
}

TEST(GeminiConversation, ATransferToolCallBecomesAnActionAndItsResultTheToolResponse) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(fixture("tool_call_transfer.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.got.size(), 1u);
  EXPECT_EQ(r.got[0].action().transfer().target(), "100");
  EXPECT_EQ(r.got[0].action().tool_call_id(), "function-call-5213171843431350335");
  agent::v1::CallEvent e;
  *e.mutable_action_result()->mutable_action() = r.got[0].action();
  e.mutable_action_result()->set_ok(false);
  e.mutable_action_result()->set_error("denied: '100' is busy \xff");
  r.conv->call_event(e);
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_EQ(r.msg(0), json::parse(R"({"toolResponse":{"functionResponses":[{
    "id":"function-call-5213171843431350335","name":"transfer",
    "response":{"ok":false,"error":"denied: '100' is busy \ufffd"}}]}})"));
  // A second result for the same call is not sent twice.
  r.conv->call_event(e);
  EXPECT_EQ(r.sent.size(), 1u);
}

TEST(GeminiConversation, ABusinessToolCallBecomesAToolCallAndItsResultTheToolResponse) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(R"({"toolCall":{"functionCalls":[{"id":"fc-9","name":"order_status",
    "args":{"order":"A-17"}}]}})"),
            Conversation::Verdict::go_on);
  ASSERT_EQ(r.got.size(), 1u);
  EXPECT_EQ(r.got[0].tool_call().id(), "fc-9");
  EXPECT_EQ(r.got[0].tool_call().name(), "order_status");
  EXPECT_EQ(json::parse(r.got[0].tool_call().arguments_json()), json::parse(R"({"order":"A-17"})"));
  agent::v1::CallEvent e;
  e.mutable_tool_result()->set_id("fc-9");
  e.mutable_tool_result()->set_name("order_status");
  e.mutable_tool_result()->set_ok(true);
  e.mutable_tool_result()->set_output(R"({"status":"shipped"})");
  r.conv->call_event(e);
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_EQ(r.msg(0), json::parse(R"({"toolResponse":{"functionResponses":[{"id":"fc-9",
    "name":"order_status","response":{"output":{"status":"shipped"}}}]}})"));
  // A failed tool: its words as the error; a text body: as text.
  ASSERT_EQ(r.server(R"({"toolCall":{"functionCalls":[{"id":"fc-10","name":"order_status",
    "args":{"order":"B"}},{"id":"fc-11","name":"order_status","args":{"order":"C"}}]}})"),
            Conversation::Verdict::go_on);
  e.mutable_tool_result()->set_id("fc-10");
  e.mutable_tool_result()->set_ok(false);
  e.mutable_tool_result()->set_output("the tool did not answer within 5000 ms");
  r.conv->call_event(e);
  e.mutable_tool_result()->set_id("fc-11");
  e.mutable_tool_result()->set_ok(true);
  e.mutable_tool_result()->set_output("plain text");
  r.conv->call_event(e);
  ASSERT_EQ(r.sent.size(), 3u);
  EXPECT_EQ(r.msg(1).at("toolResponse").at("functionResponses").at(0).at("response"),
            json::parse(R"({"error":"the tool did not answer within 5000 ms"})"));
  EXPECT_EQ(r.msg(2).at("toolResponse").at("functionResponses").at(0).at("response"),
            json::parse(R"({"output":"plain text"})"));
}

TEST(GeminiConversation, UnknownToolsAndBadArgumentsAreAnsweredWithAnError) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(R"({"toolCall":{"functionCalls":[{"id":"a","name":"rm_rf","args":{}},
    {"id":"b","name":"transfer","args":[1]},{"id":"c","name":"transfer","args":{}}]}})"),
            Conversation::Verdict::go_on);
  EXPECT_TRUE(r.got.empty());
  ASSERT_EQ(r.sent.size(), 3u);
  EXPECT_EQ(r.msg(0), json::parse(R"({"toolResponse":{"functionResponses":[{"id":"a",
    "name":"rm_rf","response":{"ok":false,"error":"unknown tool"}}]}})"));
  EXPECT_EQ(r.msg(1).at("toolResponse").at("functionResponses").at(0).at("response"),
            json::parse(R"({"ok":false,"error":"arguments are not a JSON object"})"));
  EXPECT_EQ(r.msg(2).at("toolResponse").at("functionResponses").at(0).at("response"),
            json::parse(R"({"ok":false,"error":"transfer needs a target"})"));
}

TEST(GeminiConversation, ACancelledToolCallsLateResultIsNotSent) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(fixture("tool_call_transfer.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("tool_call_cancellation.json")), Conversation::Verdict::go_on);
  agent::v1::CallEvent e;
  *e.mutable_action_result()->mutable_action() = r.got.at(0).action();
  e.mutable_action_result()->set_ok(true);
  r.conv->call_event(e);
  EXPECT_TRUE(r.sent.empty());
}

TEST(GeminiConversation, GoAwayAsksForAResumptionWithTheLatestResumableHandle) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(fixture("session_resumption_update.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("session_resumption_not_resumable.json")),
            Conversation::Verdict::go_on);
  EXPECT_EQ(r.conv->resumption_handle(), "Cg0KCzEyMzQ1Njc4OTAx");
  EXPECT_EQ(r.server(fixture("go_away.json")), Conversation::Verdict::resume);
  // The new socket's setup carries the handle; the session is not greeted again, and what
  // happened meanwhile waits for setupComplete.
  r.conv->disconnected();
  agent::v1::CallEvent dtmf;
  dtmf.set_dtmf("5");
  r.conv->call_event(dtmf);
  EXPECT_TRUE(r.sent.empty());
  r.conv->opened();
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_EQ(r.msg(0).at("setup").at("sessionResumption"),
            json::parse(R"({"handle":"Cg0KCzEyMzQ1Njc4OTAx"})"));
  ASSERT_EQ(r.server(fixture("setup_complete.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.sent.size(), 2u);
  EXPECT_EQ(r.msg(1), json::parse(R"({"clientContent":{"turns":[{"role":"user","parts":[{"text":
    "The caller pressed 5 on the phone keypad."}]}],"turnComplete":true}})"));
}

TEST(GeminiConversation, ANewSessionAfterABreakWithoutAHandleIsToldTheConversation) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(fixture("input_transcription.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("output_transcription.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.server(fixture("turn_complete_usage.json")), Conversation::Verdict::go_on);
  r.conv->disconnected();
  r.sent.clear();
  r.conv->opened();
  EXPECT_FALSE(r.msg(0).at("setup").at("sessionResumption").as_object().contains("handle"));
  ASSERT_EQ(r.server(fixture("setup_complete.json")), Conversation::Verdict::go_on);
  ASSERT_EQ(r.sent.size(), 2u);
  EXPECT_EQ(r.msg(1), json::parse(R"({"clientContent":{"turns":[
    {"role":"user","parts":[{"text":"I need a plumber"}]},
    {"role":"model","parts":[{"text":"Hello, how can I help?"}]}],"turnComplete":false}})"));
}

TEST(GeminiConversation, HangUpWithFinalWordsHasTheModelSayThemThenHangsUp) {
  Rig r;
  r.ready();
  ASSERT_EQ(r.server(R"({"toolCall":{"functionCalls":[{"id":"h1","name":"hang_up",
    "args":{"final_words":"Bye now.","reason":"done"}}]}})"),
            Conversation::Verdict::go_on);
  ASSERT_EQ(r.sent.size(), 2u);
  EXPECT_EQ(r.msg(0).at("toolResponse").at("functionResponses").at(0).at("response"),
            json::parse(R"({"ok":true})"));
  EXPECT_EQ(r.msg(1).at("clientContent").at("turns").at(0).at("parts").at(0).at("text"),
            "Say exactly this to the caller, and nothing else: \"Bye now.\"");
  EXPECT_TRUE(r.got.empty());
  ASSERT_EQ(r.server(fixture("turn_complete_usage.json")), Conversation::Verdict::go_on);
  ASSERT_FALSE(r.got.empty());
  EXPECT_EQ(r.got.back().action().hangup().reason(), "done");
}

TEST(GeminiConversation, BrokenOrHostileMessagesAreErrorsNotCrashes) {
  Rig r;
  r.ready();
  std::string why;
  EXPECT_EQ(r.conv->server_event("not json", why), Conversation::Verdict::fatal);
  EXPECT_EQ(r.conv->server_event("[]", why), Conversation::Verdict::fatal);
  EXPECT_EQ(r.conv->server_event(
                R"({"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}})", why),
            Conversation::Verdict::fatal);
  EXPECT_EQ(why, "the service said RESOURCE_EXHAUSTED: quota");
  for (
      const char* m :
      {R"({"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate=24000","data":"%%%"}}]}}})",
       R"({"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]}}})",
       R"({"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate=1","data":"AAAA"}}]}}})",
       R"({"serverContent":{"modelTurn":{"parts":"x"},"interrupted":"yes","turnComplete":1}})",
       R"({"toolCall":{"functionCalls":[{"name":"transfer","args":{"target":"1"}}]}})",
       R"({"toolCall":{"functionCalls":"x"},"toolCallCancellation":{"ids":[1,null]}})",
       R"({"sessionResumptionUpdate":{"newHandle":7,"resumable":true}})", R"({"goAway":{}})"}) {
    EXPECT_NE(r.conv->server_event(m, why), Conversation::Verdict::fatal) << m;
  }
  EXPECT_TRUE(r.got.empty());
  EXPECT_EQ(r.conv->resumption_handle(), "");
}

TEST(GeminiBackend, TheKeyGoesInTheUrlOnlyWhenAskedAndEscaped) {
  GeminiOptions o;
  o.api_key = "AIza+/ key";
  EXPECT_EQ(session_url(o),
            "wss://generativelanguage.googleapis.com/ws/"
            "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent");
  o.key_in_query = true;
  EXPECT_EQ(session_url(o),
            "wss://generativelanguage.googleapis.com/ws/"
            "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
            "?key=AIza%2B%2F%20key");
}

}  // namespace
}  // namespace voxbridge::realtime_gemini
