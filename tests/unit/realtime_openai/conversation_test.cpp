// The OpenAI Realtime translator on its own: exact client events for what voxbridge sends, exact
// contract messages for what the service sends (event shapes from the GA reference,
// https://platform.openai.com/docs/api-reference/realtime-client-events and
// .../realtime-server-events). No sockets, no threads.
#include "voxbridge/realtime_openai/conversation.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/base64/base64.hpp"
#include "voxbridge/realtime_openai/backend.hpp"

namespace voxbridge::realtime_openai {
namespace {

namespace json = boost::json;

agent::v1::AgentConfig config(common::v1::AudioEncoding enc, int rate) {
  agent::v1::AgentConfig c;
  c.mutable_call()->set_call_id("7e2d5a8c-0000-4000-8000-000000000001");
  c.mutable_call()->set_caller_number("+15551234567");
  c.mutable_call()->set_called_number("5551000");
  (*c.mutable_call()->mutable_metadata())["VB_ACCOUNT"] = "gold";
  c.mutable_input_format()->set_encoding(enc);
  c.mutable_input_format()->set_sample_rate_hz(static_cast<std::uint32_t>(rate));
  c.mutable_output_format()->set_encoding(enc);
  c.mutable_output_format()->set_sample_rate_hz(static_cast<std::uint32_t>(rate));
  return c;
}

struct Rig {
  std::vector<std::string> sent;
  std::vector<agent::v1::AgentResponse> got;
  std::shared_ptr<RealtimeOptions> o = std::make_shared<RealtimeOptions>();
  std::optional<Conversation> conv;

  explicit Rig(common::v1::AudioEncoding enc = common::v1::MULAW, int rate = 8000,
               std::function<void(RealtimeOptions&)> tweak = {},
               const std::vector<common::v1::ToolDefinition>& tools = {}) {
    o->instructions = "Caller {caller_number} ({VB_ACCOUNT}) called {called_number} on {call_id}.";
    if (tweak) tweak(*o);
    auto c = config(enc, rate);
    for (const auto& t : tools) *c.add_tools() = t;
    conv.emplace(o, std::move(c), 2,
                 Conversation::Sink{[this](std::string j) { sent.push_back(std::move(j)); },
                                    [this](agent::v1::AgentResponse r) { got.push_back(r); }});
  }
  json::object event(std::size_t i) const { return json::parse(sent.at(i)).as_object(); }
  std::vector<std::string> types() const {
    std::vector<std::string> t;
    for (const auto& s : sent) t.emplace_back(json::parse(s).at("type").as_string());
    return t;
  }
  Conversation::Verdict server(const std::string& j) {
    std::string why;
    return conv->server_event(j, why);
  }
  /// The service's audio for `item`: `bytes` as a response.output_audio.delta.
  void delta(const std::string& item, const std::string& bytes) {
    ASSERT_EQ(
        server(
            R"({"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":")" +
            item + R"(","output_index":0,"content_index":0,"delta":")" + base64::encode(bytes) +
            "\"}"),
        Conversation::Verdict::go_on);
  }
  void ready() {
    conv->opened();
    ASSERT_EQ(server(R"({"type":"session.updated","event_id":"event_0","session":{}})"),
              Conversation::Verdict::go_on);
    ASSERT_EQ(
        server(
            R"({"type":"response.done","event_id":"e","response":{"status":"completed","usage":{"input_tokens":10,"output_tokens":20}}})"),
        Conversation::Verdict::go_on);
    sent.clear();
    got.clear();
  }
};

TEST(RealtimeConversation, SetsUpTheSessionForAMuLawLegAndGreetsFirst) {
  Rig r;
  r.conv->opened();
  ASSERT_EQ(r.types(), (std::vector<std::string>{"session.update", "response.create"}));
  const auto e = r.event(0);
  const auto& s = e.at("session").as_object();
  EXPECT_EQ(s.at("type"), "realtime");
  EXPECT_EQ(s.at("instructions"),
            "Caller +15551234567 (gold) called 5551000 on 7e2d5a8c-0000-4000-8000-000000000001.");
  EXPECT_EQ(s.at("output_modalities"), json::array{"audio"});
  const auto& in = s.at("audio").at("input").as_object();
  EXPECT_EQ(in.at("format"), (json::object{{"type", "audio/pcmu"}}));
  EXPECT_EQ(in.at("turn_detection").at("type"), "server_vad");
  EXPECT_EQ(in.at("turn_detection").at("silence_duration_ms"), 500);
  EXPECT_EQ(in.at("turn_detection").at("prefix_padding_ms"), 300);
  EXPECT_EQ(in.at("turn_detection").at("interrupt_response"), true);
  EXPECT_EQ(in.at("transcription").at("model"), "gpt-4o-mini-transcribe");
  const auto& out = s.at("audio").at("output").as_object();
  EXPECT_EQ(out.at("format"), (json::object{{"type", "audio/pcmu"}}));
  EXPECT_EQ(out.at("voice"), "marin");
  std::vector<std::string> tools;
  for (const auto& t : s.at("tools").as_array()) {
    EXPECT_EQ(t.at("type"), "function");
    tools.emplace_back(t.at("name").as_string());
  }
  EXPECT_EQ(tools, (std::vector<std::string>{"transfer", "hang_up", "send_dtmf", "set_variable"}));
  EXPECT_EQ(r.event(1).at("response").at("instructions"),
            "Greet the caller briefly and ask how you can help.");
}

TEST(RealtimeConversation, AskForPcmAt24kHzOnALinearLegAndSemanticVadWhenConfigured) {
  Rig r(common::v1::LINEAR16, 24000, [](RealtimeOptions& o) {
    o.turn_detection = "semantic_vad";
    o.vad_eagerness = "high";
    o.greeting = false;
    o.transcription_model.clear();
  });
  r.conv->opened();
  ASSERT_EQ(r.types(), (std::vector<std::string>{"session.update"}));
  const auto e = r.event(0);
  const auto& s = e.at("session").as_object();
  EXPECT_EQ(s.at("audio").at("input").at("format"),
            (json::object{{"type", "audio/pcm"}, {"rate", 24000}}));
  EXPECT_EQ(s.at("audio").at("output").at("format"),
            (json::object{{"type", "audio/pcm"}, {"rate", 24000}}));
  EXPECT_EQ(s.at("audio").at("input").at("turn_detection"),
            (json::object{{"type", "semantic_vad"},
                          {"eagerness", "high"},
                          {"create_response", true},
                          {"interrupt_response", true}}));
  EXPECT_EQ(s.at("audio").at("input").as_object().count("transcription"), 0u);
}

TEST(RealtimeConversation, RefusesFormatsTheServiceDoesNotSpeak) {
  std::string why;
  EXPECT_TRUE(formats_for(config(common::v1::OPUS, 16000), why).input_type.empty());
  EXPECT_EQ(why, "input: only LINEAR16, MULAW and ALAW are served");
  EXPECT_TRUE(formats_for(config(common::v1::MULAW, 16000), why).input_type.empty());
  EXPECT_EQ(why, "input: G.711 must be 8000 Hz");
}

TEST(RealtimeConversation, CallerAudioGoesOutInAppendsOfAppendMsWithTheLegsOwnBytes) {
  Rig r;  // append_ms = 40: two 20 ms frames of mu-law per append
  r.ready();
  std::string all;
  for (int f = 0; f < 5; ++f) {
    std::string frame(160, '\0');
    for (int i = 0; i < 160; ++i) frame[i] = static_cast<char>((f * 160 + i) & 0xff);
    all += frame;
    r.conv->caller_audio(frame);
  }
  ASSERT_EQ(r.types(),
            (std::vector<std::string>{"input_audio_buffer.append", "input_audio_buffer.append"}));
  std::string a0, a1;
  ASSERT_TRUE(base64::decode(std::string(r.event(0).at("audio").as_string()), a0));
  ASSERT_TRUE(base64::decode(std::string(r.event(1).at("audio").as_string()), a1));
  EXPECT_EQ(a0, all.substr(0, 320));
  EXPECT_EQ(a1, all.substr(320, 320));  // the fifth frame waits for the next
  // The message is exactly the reference's shape (no event_id needed on the per-frame path).
  EXPECT_EQ(r.sent[0],
            R"({"type":"input_audio_buffer.append","audio":")" + base64::encode(a0) + "\"}");
}

TEST(RealtimeConversation, LinearCallerAudioIsResampledTo24kHz) {
  Rig r(common::v1::LINEAR16, 16000);
  r.ready();
  std::vector<std::int16_t> frame(320, 1000);
  for (int f = 0; f < 4; ++f) {
    r.conv->caller_audio({reinterpret_cast<const char*>(frame.data()), frame.size() * 2});
  }
  // 80 ms at 16 kHz in; the resampler's start-up trims a little, so at least one full append
  // of 40 ms at 24 kHz (1920 bytes) has gone out.
  ASSERT_GE(r.sent.size(), 1u);
  std::string a;
  ASSERT_TRUE(base64::decode(std::string(r.event(0).at("audio").as_string()), a));
  EXPECT_EQ(a.size(), 1920u);
}

TEST(RealtimeConversation, ModelAudioIsPassedThroughBetweenMarksAndItsTranscriptKept) {
  Rig r;
  r.ready();
  r.delta("item_A", std::string(800, '\x55'));
  r.delta("item_A", std::string(400, '\x2a'));
  ASSERT_EQ(
      r.server(
          R"({"type":"response.output_audio.done","event_id":"e","response_id":"resp_1","item_id":"item_A","output_index":0,"content_index":0})"),
      Conversation::Verdict::go_on);
  ASSERT_EQ(
      r.server(
          R"({"type":"response.output_audio_transcript.done","event_id":"e","response_id":"resp_1","item_id":"item_A","output_index":0,"content_index":0,"transcript":"Hello, how can I help?"})"),
      Conversation::Verdict::go_on);
  ASSERT_EQ(r.got.size(), 5u);
  EXPECT_EQ(r.got[0].mark().id(), 1u);
  EXPECT_EQ(r.got[1].audio(), std::string(800, '\x55'));
  EXPECT_EQ(r.got[2].audio(), std::string(400, '\x2a'));
  EXPECT_EQ(r.got[3].mark().id(), 2u);
  EXPECT_EQ(r.got[4].transcript().speaker(), agent::v1::Transcript::AGENT);
  EXPECT_EQ(r.got[4].transcript().text(), "Hello, how can I help?");
  EXPECT_TRUE(r.got[4].transcript().is_final());
}

TEST(RealtimeConversation, BargeInTruncatesTheItemToWhatTheCallerHeard) {
  Rig r;
  r.ready();
  r.delta("item_A", std::string(8000, '\x55'));  // 1 s of mu-law
  ASSERT_EQ(
      r.server(
          R"({"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":1000,"item_id":"item_U"})"),
      Conversation::Verdict::go_on);
  ASSERT_EQ(r.got.size(), 3u);
  EXPECT_TRUE(r.got[2].has_clear());
  agent::v1::CallEvent ev;
  ev.mutable_playback_cleared()->set_mark_id(1);
  ev.mutable_playback_cleared()->set_played_ms(340);
  r.conv->call_event(ev);
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.truncate"}));
  const auto t = r.event(0);
  EXPECT_EQ(t.at("item_id"), "item_A");
  EXPECT_EQ(t.at("content_index"), 0);
  EXPECT_EQ(t.at("audio_end_ms"), 340);
  // What the service still sends of the interrupted item never reaches the caller.
  r.got.clear();
  r.delta("item_A", std::string(800, '\x55'));
  EXPECT_TRUE(r.got.empty());
}

TEST(RealtimeConversation, TruncationIsCappedAtTheAudioSentAndUnreachedItemsAreCutAtZero) {
  Rig r;
  r.ready();
  r.delta("item_A", std::string(1600, '\x55'));  // 200 ms
  r.server(R"({"type":"response.output_audio.done","item_id":"item_A"})");
  r.delta("item_B", std::string(1600, '\x55'));
  r.server(R"({"type":"input_audio_buffer.speech_started","audio_start_ms":10,"item_id":"u"})");
  agent::v1::CallEvent ev;
  ev.mutable_playback_cleared()->set_mark_id(1);      // still in item A
  ev.mutable_playback_cleared()->set_played_ms(260);  // a frame more than it has
  r.conv->call_event(ev);
  ASSERT_EQ(r.types(),
            (std::vector<std::string>{"conversation.item.truncate", "conversation.item.truncate"}));
  EXPECT_EQ(r.event(0).at("item_id"), "item_A");
  EXPECT_EQ(r.event(0).at("audio_end_ms"), 200);
  EXPECT_EQ(r.event(1).at("item_id"), "item_B");
  EXPECT_EQ(r.event(1).at("audio_end_ms"), 0);
}

TEST(RealtimeConversation, NoClearWhenTheCallerHasHeardEverything) {
  Rig r;
  r.ready();
  r.delta("item_A", std::string(160, '\x55'));
  r.server(R"({"type":"response.output_audio.done","item_id":"item_A"})");
  agent::v1::CallEvent played;
  played.set_mark_played(2);
  r.conv->call_event(played);
  r.got.clear();
  r.server(R"({"type":"input_audio_buffer.speech_started","audio_start_ms":10,"item_id":"u"})");
  EXPECT_TRUE(r.got.empty());
  EXPECT_TRUE(r.sent.empty());
}

TEST(RealtimeConversation, ToolCallsBecomeActionsAndTheirResultsGoBackAsOutputs) {
  Rig r;
  r.ready();
  ASSERT_EQ(
      r.server(
          R"({"type":"response.function_call_arguments.done","event_id":"e","response_id":"resp_2","item_id":"fc_1","output_index":0,"call_id":"call_42","name":"transfer","arguments":"{\"target\":\"150\",\"context\":\"sales\"}"})"),
      Conversation::Verdict::go_on);
  ASSERT_EQ(r.got.size(), 1u);
  EXPECT_EQ(r.got[0].action().transfer().target(), "150");
  EXPECT_EQ(r.got[0].action().transfer().context(), "sales");
  r.server(
      R"({"type":"response.done","response":{"status":"completed","usage":{"input_tokens":1,"output_tokens":1}}})");
  agent::v1::CallEvent res;
  *res.mutable_action_result()->mutable_action() = r.got[0].action();
  res.mutable_action_result()->set_ok(false);
  res.mutable_action_result()->set_error("denied: '150' matches neither allow_extensions");
  r.sent.clear();
  r.conv->call_event(res);
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create", "response.create"}));
  const auto item = r.event(0).at("item").as_object();
  EXPECT_EQ(item.at("type"), "function_call_output");
  EXPECT_EQ(item.at("call_id"), "call_42");
  EXPECT_EQ(
      json::parse(item.at("output").as_string()),
      (json::object{{"ok", false}, {"error", "denied: '150' matches neither allow_extensions"}}));
}

TEST(RealtimeConversation, HostileToolCallsAreAnsweredWithErrorsNotActions) {
  Rig r;
  r.ready();
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"c1","name":"rm_rf","arguments":"{}"})");
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"c2","name":"transfer","arguments":"not json"})");
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"c3","name":"transfer","arguments":"{\"target\":150}"})");
  EXPECT_TRUE(r.got.empty());
  std::vector<std::string> errors;
  for (std::size_t i = 0; i < r.sent.size(); ++i) {
    const auto e = r.event(i);
    if (e.at("type") != "conversation.item.create") continue;
    errors.emplace_back(json::parse(e.at("item").at("output").as_string()).at("error").as_string());
  }
  EXPECT_EQ(errors, (std::vector<std::string>{"unknown tool", "arguments are not a JSON object",
                                              "transfer needs a target"}));
}

TEST(RealtimeConversation, HangUpWithFinalWordsHasTheModelSayThemThenHangsUp) {
  Rig r;
  r.ready();
  r.server(R"({"type":"response.created","response":{"id":"resp_7","status":"in_progress"}})");
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"c9","name":"hang_up","arguments":"{\"final_words\":\"Thanks for calling, bye!\",\"reason\":\"done\"}"})");
  r.server(
      R"({"type":"response.done","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":7}}})");
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create", "response.create"}));
  EXPECT_EQ(r.event(1).at("response").at("instructions"),
            "Say exactly this to the caller, and nothing else: \"Thanks for calling, bye!\"");
  EXPECT_FALSE(std::any_of(r.got.begin(), r.got.end(), [](auto& g) { return g.has_action(); }));
  r.server(
      R"({"type":"response.done","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":7}}})");
  ASSERT_TRUE(r.got.back().has_action());
  EXPECT_EQ(r.got.back().action().hangup().reason(), "done");
}

common::v1::ToolDefinition tool_def(const std::string& name, const std::string& params) {
  common::v1::ToolDefinition t;
  t.set_name(name);
  t.set_description("Look up " + name);
  t.set_parameters_json(params);
  return t;
}

const char* kOrderParams =
    R"({"type":"object","properties":{"order":{"type":"string"}},"required":["order"]})";

/// A rig whose call offers the business tool order_status (and two that must not be offered).
Rig business_rig(std::function<void(RealtimeOptions&)> tweak = {}) {
  return Rig(common::v1::MULAW, 8000, std::move(tweak),
             {tool_def("order_status", kOrderParams), tool_def("transfer", "{}"),
              tool_def("broken", "{not json")});
}

agent::v1::CallEvent tool_result(const std::string& id, const std::string& name, bool ok,
                                 const std::string& output) {
  agent::v1::CallEvent e;
  auto* t = e.mutable_tool_result();
  t->set_id(id);
  t->set_name(name);
  t->set_ok(ok);
  t->set_output(output);
  return e;
}

TEST(RealtimeConversation, BusinessToolsAreOfferedAfterTheActionsAndClashesAreLeftOut) {
  Rig r = business_rig();
  r.conv->opened();
  const auto tools = r.event(0).at("session").at("tools").as_array();
  ASSERT_EQ(tools.size(), 5u);  // the four actions, then order_status only
  EXPECT_EQ(tools[0].at("name"), "transfer");
  EXPECT_EQ(tools[3].at("name"), "set_variable");
  EXPECT_EQ(tools[4], (json::object{{"type", "function"},
                                    {"name", "order_status"},
                                    {"description", "Look up order_status"},
                                    {"parameters", json::parse(kOrderParams)}}));
  EXPECT_EQ(r.event(0).at("session").at("tool_choice"), "auto");
  // Without the actions, the business tools alone.
  Rig only = business_rig([](RealtimeOptions& o) { o.tools = false; });
  only.conv->opened();
  const auto t2 = only.event(0).at("session").at("tools").as_array();
  ASSERT_EQ(t2.size(), 1u);
  EXPECT_EQ(t2[0].at("name"), "order_status");
  // No tools at all: none offered.
  Rig none(common::v1::MULAW, 8000, [](RealtimeOptions& o) { o.tools = false; });
  none.conv->opened();
  EXPECT_FALSE(none.event(0).at("session").as_object().contains("tools"));
}

TEST(RealtimeConversation, ABusinessToolCallGoesToTheAgentAndItsResultBackAsAnOutput) {
  Rig r = business_rig();
  r.ready();
  r.server(R"({"type":"response.created","response":{"id":"resp_2","status":"in_progress"}})");
  r.server(
      R"({"type":"response.function_call_arguments.done","event_id":"e","response_id":"resp_2","item_id":"fc_1","output_index":0,"call_id":"call_77","name":"order_status","arguments":"{\"order\":\"A-17\"}"})");
  ASSERT_EQ(r.got.size(), 1u);
  ASSERT_TRUE(r.got[0].has_tool_call());
  EXPECT_EQ(r.got[0].tool_call().id(), "call_77");
  EXPECT_EQ(r.got[0].tool_call().name(), "order_status");
  EXPECT_EQ(r.got[0].tool_call().arguments_json(), R"({"order":"A-17"})");
  EXPECT_TRUE(r.sent.empty());  // nothing goes back before the result
  r.server(R"({"type":"response.done","response":{"status":"completed"}})");
  r.got.clear();
  r.conv->call_event(tool_result("call_77", "order_status", true, R"({"status":"shipped"})"));
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create", "response.create"}));
  EXPECT_EQ(r.event(0).at("item"), (json::object{{"type", "function_call_output"},
                                                 {"call_id", "call_77"},
                                                 {"output", R"({"status":"shipped"})"}}));
  // A second result for the same id, or one for an id never asked for, is not sent.
  r.server(R"({"type":"response.done","response":{"status":"completed"}})");
  r.sent.clear();
  r.conv->call_event(tool_result("call_77", "order_status", true, "again"));
  r.conv->call_event(tool_result("call_made_up", "order_status", true, "x"));
  EXPECT_TRUE(r.sent.empty());
}

TEST(RealtimeConversation, AFailedBusinessToolIsAnErrorOutput) {
  Rig r = business_rig();
  r.ready();
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"call_5","name":"order_status","arguments":""})");
  ASSERT_EQ(r.got.size(), 1u);
  EXPECT_EQ(r.got[0].tool_call().arguments_json(), "{}");
  r.conv->call_event(
      tool_result("call_5", "order_status", false, "the tool did not answer within 5000 ms"));
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create", "response.create"}));
  EXPECT_EQ(r.event(0).at("item").at("output"),
            R"({"ok":false,"error":"the tool did not answer within 5000 ms"})");
}

TEST(RealtimeConversation, SeveralCallsInOneResponseAreAllAnsweredBeforeOneResponse) {
  Rig r = business_rig();
  r.ready();
  r.server(R"({"type":"response.created","response":{"id":"resp_3","status":"in_progress"}})");
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"call_a","name":"order_status","arguments":"{\"order\":\"1\"}"})");
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"call_b","name":"set_variable","arguments":"{\"name\":\"VB_X\",\"value\":\"1\"}"})");
  r.server(R"({"type":"response.done","response":{"status":"completed"}})");
  ASSERT_EQ(r.got.size(), 3u);  // the tool call, the action, usage
  ASSERT_TRUE(r.got[1].has_action());
  EXPECT_EQ(r.got[1].action().tool_call_id(), "call_b");
  // The action's result first: its output goes, but no response while call_a is open.
  agent::v1::CallEvent res;
  *res.mutable_action_result()->mutable_action() = r.got[1].action();
  res.mutable_action_result()->set_ok(true);
  r.conv->call_event(res);
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create"}));
  EXPECT_EQ(r.event(0).at("item").at("call_id"), "call_b");
  r.conv->call_event(tool_result("call_a", "order_status", true, "shipped"));
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create",
                                                 "conversation.item.create", "response.create"}));
  EXPECT_EQ(r.event(1).at("item").at("call_id"), "call_a");
  EXPECT_EQ(r.event(1).at("item").at("output"), "shipped");
}

TEST(RealtimeConversation, BusinessToolCallsOverTheCapAreRefused) {
  Rig r = business_rig();
  r.ready();
  for (int i = 0; i < 9; ++i) {
    r.server(R"({"type":"response.function_call_arguments.done","call_id":"c)" + std::to_string(i) +
             R"(","name":"order_status","arguments":"{}"})");
  }
  EXPECT_EQ(std::count_if(r.got.begin(), r.got.end(), [](auto& g) { return g.has_tool_call(); }),
            8);
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create"}));
  EXPECT_EQ(r.event(0).at("item").at("call_id"), "c8");
  EXPECT_EQ(r.event(0).at("item").at("output"),
            R"({"ok":false,"error":"too many tool calls at once"})");
}

TEST(RealtimeConversation, DtmfBecomesAUserItemAndAResponseAfterTheCurrentOne) {
  Rig r;
  r.ready();
  r.server(R"({"type":"response.created","response":{"id":"resp_5","status":"in_progress"}})");
  agent::v1::CallEvent d;
  d.set_dtmf("5");
  r.conv->call_event(d);
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create"}));
  EXPECT_EQ(
      r.event(0).at("item"),
      (json::object{{"type", "message"},
                    {"role", "user"},
                    {"content", json::array{json::object{
                                    {"type", "input_text"},
                                    {"text", "The caller pressed 5 on the phone keypad."}}}}}));
  r.server(R"({"type":"response.done","response":{"status":"completed"}})");
  EXPECT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create", "response.create"}));
}

TEST(RealtimeConversation, UsageAddsUpOverResponses) {
  Rig r;
  r.ready();
  r.conv->caller_audio(std::string(320, '\x7f'));  // 40 ms sent
  r.delta("item_A", std::string(800, '\x55'));     // 100 ms received
  r.server(
      R"({"type":"response.done","response":{"status":"completed","usage":{"total_tokens":30,"input_tokens":12,"output_tokens":18}}})");
  ASSERT_TRUE(r.got.back().has_usage());
  const auto& u = r.got.back().usage();
  EXPECT_EQ(u.input_tokens(), 22u);  // 10 from the greeting + 12
  EXPECT_EQ(u.output_tokens(), 38u);
  EXPECT_EQ(u.input_audio_ms(), 40u);
  EXPECT_EQ(u.output_audio_ms(), 100u);
}

TEST(RealtimeConversation, ErrorsEndTheSessionOnlyWhenItCannotGoOn) {
  Rig r;
  r.conv->opened();
  std::string why;
  // Before the session is set up, any error means our set-up was refused.
  EXPECT_EQ(
      r.conv->server_event(
          R"({"type":"error","event_id":"event_9","error":{"type":"invalid_request_error","code":"invalid_value","message":"Invalid voice","param":"session.audio.output.voice","event_id":"vb_1"}})",
          why),
      Conversation::Verdict::fatal);
  EXPECT_EQ(why, "the service said invalid_value: Invalid voice");
  Rig s;
  s.ready();
  EXPECT_EQ(
      s.server(
          R"({"type":"error","error":{"type":"invalid_request_error","code":"conversation_already_has_active_response","message":"busy"}})"),
      Conversation::Verdict::go_on);
  EXPECT_EQ(
      s.server(
          R"({"type":"error","error":{"type":"invalid_request_error","code":"item_truncate_invalid","message":"bad"}})"),
      Conversation::Verdict::go_on);
  EXPECT_EQ(s.conv->errors(), 1u);
  EXPECT_EQ(
      s.server(
          R"({"type":"error","error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"slow down"}})"),
      Conversation::Verdict::fatal);
  EXPECT_EQ(s.server("{not json"), Conversation::Verdict::fatal);
  EXPECT_EQ(s.server(R"({"no":"type"})"), Conversation::Verdict::fatal);
}

TEST(RealtimeConversation, AfterAReconnectTheConversationSoFarIsReplayed) {
  Rig r;
  r.ready();
  r.server(
      R"({"type":"conversation.item.input_audio_transcription.completed","item_id":"u1","content_index":0,"transcript":"I need a plumber"})");
  r.server(
      R"({"type":"response.output_audio_transcript.done","item_id":"a1","transcript":"Sure, when?"})");
  r.sent.clear();
  r.conv->opened();  // a new socket
  ASSERT_EQ(r.types(), (std::vector<std::string>{"session.update", "conversation.item.create",
                                                 "conversation.item.create"}));
  EXPECT_EQ(r.event(1).at("item").at("role"), "user");
  EXPECT_EQ(r.event(1).at("item").at("content").at(0).at("text"), "I need a plumber");
  EXPECT_EQ(r.event(2).at("item").at("role"), "assistant");
  EXPECT_EQ(r.event(2).at("item").at("content").at(0).at("type"), "output_text");
}

TEST(RealtimeConversation, ACapHasTheModelSayGoodbyeThenHangsUp) {
  Rig r;
  r.ready();
  r.conv->end_call("call duration cap reached");
  ASSERT_EQ(r.types(), (std::vector<std::string>{"response.create"}));
  EXPECT_EQ(r.event(0).at("response").at("instructions"),
            "Say exactly this to the caller, and nothing else: \"I'm sorry, we have to end the "
            "call now. Goodbye.\"");
  r.server(R"({"type":"response.done","response":{"status":"completed"}})");
  ASSERT_TRUE(r.got.back().has_action());
  EXPECT_EQ(r.got.back().action().hangup().reason(), "call duration cap reached");
}

TEST(RealtimeConversation, NothingGoesOutBeforeTheSessionIsSetUpAndTheNewestSecondWaits) {
  Rig r;
  // 1.5 s of caller audio and a digit before the socket opened.
  for (int f = 0; f < 75; ++f) r.conv->caller_audio(std::string(160, static_cast<char>(f)));
  agent::v1::CallEvent d;
  d.set_dtmf("7");
  r.conv->call_event(d);
  EXPECT_TRUE(r.sent.empty());
  r.conv->opened();
  const auto t = r.types();
  ASSERT_GE(t.size(), 4u);
  EXPECT_EQ(t[0], "session.update");
  EXPECT_EQ(t[1], "response.create");           // the greeting
  EXPECT_EQ(t[2], "conversation.item.create");  // the digit, after the set-up
  // The newest second of audio (25 appends of 40 ms), oldest first: frames 25..74.
  std::size_t appends = 0;
  for (std::size_t i = 0; i < r.sent.size(); ++i) {
    const auto e = r.event(i);
    if (e.at("type") != "input_audio_buffer.append") continue;
    std::string a;
    ASSERT_TRUE(base64::decode(std::string(e.at("audio").as_string()), a));
    if (appends == 0) {
      EXPECT_EQ(static_cast<unsigned char>(a[0]), 25u);
    }
    ++appends;
  }
  EXPECT_EQ(appends, 25u);
}

TEST(RealtimeConversation, ATokenCapHasTheModelSayGoodbyeThenHangsUp) {
  Rig r(common::v1::MULAW, 8000, [](RealtimeOptions& o) { o.max_call_tokens = 100; });
  r.ready();  // 30 tokens so far
  r.server(
      R"({"type":"response.done","response":{"status":"completed","usage":{"input_tokens":40,"output_tokens":35}}})");
  ASSERT_EQ(r.types(), (std::vector<std::string>{"response.create"}));
  EXPECT_EQ(r.event(0).at("response").at("instructions"),
            "Say exactly this to the caller, and nothing else: \"I'm sorry, we have to end the "
            "call now. Goodbye.\"");
  r.server(
      R"({"type":"response.done","response":{"status":"completed","usage":{"input_tokens":1,"output_tokens":9}}})");
  ASSERT_TRUE(r.got.back().has_action());
  EXPECT_EQ(r.got.back().action().hangup().reason(), "token cap reached");
  // Nothing more is asked of the model after that.
  r.sent.clear();
  agent::v1::CallEvent d;
  d.set_dtmf("1");
  r.conv->call_event(d);
  EXPECT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create"}));
}

// Found by tests/fuzz/realtime_event_fuzz: text from the call's peers (a SIP display name, AMI's
// or ARI's words in an action's error, a DTMF byte) went into client events as it was, so a byte
// that is not UTF-8 made JSON the service refuses (a refused session.update ends the call).
TEST(RealtimeConversation, TextFromTheCallsPeersGoesOutAsUtf8) {
  Rig r(common::v1::MULAW, 8000,
        [](RealtimeOptions& o) { o.instructions = "Caller {caller_name} ({caller_number})."; });
  auto c = config(common::v1::MULAW, 8000);
  c.mutable_call()->set_caller_name("J\xc3\xa9r\xf4me \xff");
  r.conv.emplace(r.o, c, 2,
                 Conversation::Sink{[&r](std::string j) { r.sent.push_back(std::move(j)); },
                                    [&r](agent::v1::AgentResponse g) { r.got.push_back(g); }});
  r.conv->opened();
  ASSERT_EQ(r.types(), (std::vector<std::string>{"session.update", "response.create"}));
  EXPECT_EQ(r.event(0).at("session").at("instructions"),
            "Caller J\xc3\xa9r\xef\xbf\xbdme \xef\xbf\xbd (+15551234567).");
  ASSERT_EQ(r.server(R"({"type":"session.updated","event_id":"event_0","session":{}})"),
            Conversation::Verdict::go_on);
  r.server(R"({"type":"response.done","response":{"status":"completed"}})");
  r.server(
      R"({"type":"response.function_call_arguments.done","call_id":"c1","name":"send_dtmf","arguments":"{\"digits\":\"1\"}"})");
  ASSERT_EQ(r.got.size(), 2u);  // the usage, then the action
  agent::v1::CallEvent res;
  *res.mutable_action_result()->mutable_action() = r.got[1].action();
  res.mutable_action_result()->set_ok(false);
  res.mutable_action_result()->set_error("Channel \xc0\xafgone");
  r.sent.clear();
  r.conv->call_event(res);
  agent::v1::CallEvent d;
  d.set_dtmf("\x9a");
  r.conv->call_event(d);
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.create", "response.create",
                                                 "conversation.item.create"}));
  EXPECT_EQ(json::parse(r.event(0).at("item").at("output").as_string()),
            (json::object{{"ok", false}, {"error", "Channel \xef\xbf\xbd\xef\xbf\xbdgone"}}));
  EXPECT_EQ(r.event(2).at("item").at("content").at(0).at("text"),
            "The caller pressed \xef\xbf\xbd on the phone keypad.");
}

// Found by tests/fuzz/realtime_event_fuzz: an empty or one-byte audio chunk on a LINEAR16 leg
// copied from the data() of an empty buffer (null; undefined behaviour, UBSan's report).
TEST(RealtimeConversation, EmptyAndOneByteAudioOnALinearLegIsHarmless) {
  Rig r(common::v1::LINEAR16, 16000);
  r.ready();
  r.conv->caller_audio("");
  r.conv->caller_audio(std::string(1, '\x01'));
  EXPECT_TRUE(r.sent.empty());
  r.delta("item_1", "");
  r.delta("item_1", std::string(1, '\x7f'));
  ASSERT_EQ(r.got.size(), 3u);  // the item's start mark, then two chunks without a sample
  EXPECT_EQ(r.got[0].mark().id(), 1u);
  EXPECT_TRUE(r.got[1].has_audio());
  EXPECT_EQ(r.got[1].audio(), "");
  EXPECT_EQ(r.got[2].audio(), "");
  // Nothing of it was heard: a barge-in truncates it at 0 ms.
  r.server(R"({"type":"input_audio_buffer.speech_started","audio_start_ms":10,"item_id":"i"})");
  agent::v1::CallEvent cleared;
  cleared.mutable_playback_cleared()->set_mark_id(1);
  cleared.mutable_playback_cleared()->set_played_ms(40);
  r.conv->call_event(cleared);
  ASSERT_EQ(r.types(), (std::vector<std::string>{"conversation.item.truncate"}));
  EXPECT_EQ(r.event(0).at("audio_end_ms"), 0);
}

TEST(RealtimeBackend, SessionUrlsForOpenAiAndBothAzureEndpoints) {
  RealtimeOptions o;
  EXPECT_EQ(session_url(o), "wss://api.openai.com/v1/realtime?model=gpt-realtime");
  o.azure = true;
  o.url = "wss://acme.openai.azure.com/openai/v1/realtime";
  o.model = "my deployment";
  EXPECT_EQ(session_url(o), "wss://acme.openai.azure.com/openai/v1/realtime?model=my%20deployment");
  o.url = "wss://acme.openai.azure.com/openai/realtime";
  EXPECT_EQ(session_url(o),
            "wss://acme.openai.azure.com/openai/realtime?api-version=2025-04-01-preview"
            "&deployment=my%20deployment");
}

}  // namespace
}  // namespace voxbridge::realtime_openai
