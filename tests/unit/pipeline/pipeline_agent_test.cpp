// The whole PipelineAgent, made by PipelineFactory over fake provider clients and driven tick by
// tick: per 20 ms the caller's frame, the playout frame the caller hears, the agent's tick and the
// provider events posted meanwhile. The test plays ASR, LLM and TTS by hand and asserts what
// each was sent, what the caller heard (sample-exact where the agent's audio is), the turn
// state's names, the transcript and the control's flushes and hangups.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/fake_clients.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/agent/tools.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/pipeline/pipeline.hpp"

namespace voxbridge::pipeline {
namespace {

using namespace std::chrono_literals;
using providers::StreamStatus;
using testing::FakeCallControl;
using testing::FakeProviderClients;
using testing::ManualPoster;

constexpr int kRate = 16000;
constexpr std::size_t kFrame = kRate / 50;
constexpr std::size_t kPreRoll = kRate * 300 / 1000;

/// Agent audio that tells every sample apart from silence: `base` + 0..99 (quiet, so the echo
/// gate lets a caller at normal level through).
std::vector<std::int16_t> tts_audio(std::size_t n, std::int16_t base = 300) {
  std::vector<std::int16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int16_t>(base + (i * 7) % 100);
  return v;
}

std::vector<std::int16_t> slice(const std::vector<std::int16_t>& v, std::size_t from,
                                std::size_t n) {
  return {v.begin() + static_cast<std::ptrdiff_t>(from),
          v.begin() + static_cast<std::ptrdiff_t>(from + n)};
}

/// Where the first sample that is not silence is (npos if none).
std::size_t first_sound(const std::vector<std::int16_t>& v, std::size_t from = 0) {
  for (std::size_t i = from; i < v.size(); ++i) {
    if (v[i] != 0) return i;
  }
  return std::string::npos;
}

struct Msg {
  llm::v1::Role role;
  std::string text;
  bool interrupted;
  bool operator==(const Msg&) const = default;
};

std::vector<Msg> history_of(const llm::v1::TurnRequest& r) {
  std::vector<Msg> out;
  for (const auto& m : r.history()) out.push_back({m.role(), m.text(), m.interrupted()});
  return out;
}

struct Texts {
  std::vector<std::pair<std::string, std::uint64_t>> v;
  bool operator==(const Texts&) const = default;
};

Texts texts_of(const testing::FakeTtsStream& s) {
  Texts t;
  for (const auto& x : s.texts()) t.v.emplace_back(x.text, x.chunk_id);
  return t;
}

struct Event {
  std::string type;
  std::string fields;
};

common::v1::Action transfer_to(const std::string& target) {
  common::v1::Action a;
  a.mutable_transfer()->set_target(target);
  return a;
}

using FakeActions = testing::FakeCallActions;

struct PipelineAgentTest : ::testing::Test {
  PipelineAgentTest() {
    spec.asr.name = "asr-test";
    spec.llm.name = "llm-test";
    spec.tts.name = "tts-test";
    spec.asr_rate_hz = kRate;
    spec.tts_rate_hz = kRate;
    spec.greeting = "";
    spec.no_input_timeout = 60000ms;  // out of the way unless a test wants it
    spec.retry_backoff = 200ms;       // 10 ticks
    info.uuid = "call-9";
    info.listener = "main";
    info.caller_name = "Ada";
    info.caller_number = "+15550100";
    info.transcript = [this](events::Event e) {
      // The members after "type", as the event's line has them (t_ms 0).
      const std::string line = e.serialize(std::chrono::milliseconds(0));
      const std::string type(events::type_name(e.type()));
      const std::string head = "{\"t_ms\":0,\"type\":\"" + type + "\"";
      std::string fields = line.substr(head.size(), line.size() - head.size() - 1);
      if (!fields.empty() && fields[0] == ',') fields.erase(0, 1);
      transcript.push_back({std::string(type), std::move(fields)});
    };
  }

  void start() {
    factory.emplace(spec, kRate, 3, clients);
    agent = factory->create();
    agent->on_start(control, info);
    poster.run();
  }

  /// The caller says `x` from the next frame on (after what is already queued).
  void caller_says(const std::vector<std::int16_t>& x) {
    caller.insert(caller.end(), x.begin(), x.end());
  }

  /// `n` ticks of 20 ms: the caller's frame (silence when nothing is queued), the frame the
  /// caller hears, the agent's tick, then whatever the providers posted meanwhile.
  void step(int n = 1) {
    for (int i = 0; i < n; ++i) {
      std::vector<std::int16_t> frame(kFrame, 0);
      if (said + kFrame <= caller.size()) {
        std::copy_n(caller.begin() + static_cast<std::ptrdiff_t>(said), kFrame, frame.begin());
        said += kFrame;
      }
      const std::size_t at = fed.size();
      fed.insert(fed.end(), frame.begin(), frame.end());
      const std::size_t asr_before = clients->asr().size();
      agent->on_leg_audio(frame, kRate);
      agent->on_audio(frame);
      if (clients->asr().size() != asr_before) asr_opened_at.push_back(at);
      control.tick();
      agent->on_tick();
      poster.run();
    }
  }

  /// Steps until `done()` holds, at most `max` ticks; false if it never did.
  template <typename F>
  bool step_until(F done, int max = 500) {
    for (int i = 0; i < max; ++i) {
      if (done()) return true;
      step();
    }
    return done();
  }

  std::string state() const { return std::string(agent->state()); }

  /// The caller speaks `seconds` and stops; steps until the endpoint finished the ASR stream.
  testing::FakeAsrStream& utterance(double seconds) {
    const std::size_t streams = clients->asr().size();
    caller_says(testing::voice(kRate, seconds));
    EXPECT_TRUE(step_until([&] { return clients->asr().size() > streams; }));
    EXPECT_EQ(state(), "hearing");
    auto& s = clients->last_asr();
    EXPECT_TRUE(step_until([&] { return s.finished(); }));
    return s;
  }

  /// The events of the transcript of `type`, their fields.
  std::vector<std::string> events(const std::string& type) const {
    std::vector<std::string> out;
    for (const auto& e : transcript) {
      if (e.type == type) out.push_back(e.fields);
    }
    return out;
  }

  /// TTS speaks `audio` for chunk `id` and ends the chunk.
  static void speak(testing::FakeTtsStream& s, const std::vector<std::int16_t>& audio,
                    std::uint64_t id) {
    s.audio(audio);
    s.chunk_done(id, static_cast<std::uint32_t>(audio.size() * 1000 / kRate));
  }

  PipelineSpec spec;
  agent::CallInfo info;
  ManualPoster poster;
  FakeCallControl control{poster};
  std::shared_ptr<FakeProviderClients> clients = std::make_shared<FakeProviderClients>();
  std::optional<PipelineFactory> factory;
  std::unique_ptr<agent::Agent> agent;
  std::vector<Event> transcript;

  std::vector<std::int16_t> caller;  // what the caller says, frame by frame
  std::size_t said = 0;
  std::vector<std::int16_t> fed;           // every caller frame the agent got
  std::vector<std::size_t> asr_opened_at;  // per ASR stream: its first frame's offset in `fed`
};

// --- greeting ---

TEST_F(PipelineAgentTest, TheGreetingIsSpokenWithTheCallersFactsAndHeardExactly) {
  spec.greeting = "Hello {caller_name}, you called from {caller_number}.";
  start();
  ASSERT_EQ(clients->tts().size(), 1u);
  auto& tts = clients->last_tts();
  EXPECT_EQ(texts_of(tts), (Texts{{{"Hello Ada, you called from +15550100.", 1}}}));
  EXPECT_TRUE(tts.finished());  // the greeting is all there is to say
  EXPECT_EQ(tts.target().name, "tts-test");
  EXPECT_EQ(tts.config().call().call_id(), "call-9");
  EXPECT_EQ(tts.config().call().caller_name(), "Ada");
  EXPECT_TRUE(clients->llm().empty());
  EXPECT_EQ(state(), "thinking");
  step(3);
  EXPECT_EQ(state(), "thinking");  // nothing to play yet

  const auto audio = tts_audio(kRate * 7 / 10);  // 700 ms
  speak(tts, audio, 1);
  tts.close();
  poster.run();
  EXPECT_EQ(state(), "speaking");  // queued: the next tick plays its first frame
  const std::size_t before = control.heard().size();
  ASSERT_TRUE(step_until([&] { return state() == "listening"; }));
  const auto& heard = control.heard();
  // The first frame of the greeting is the tick right after its audio arrived.
  EXPECT_EQ(first_sound(heard), before);
  ASSERT_GE(heard.size(), before + audio.size());
  EXPECT_EQ(slice(heard, before, audio.size()), audio);
  EXPECT_EQ(first_sound(heard, before + audio.size()), std::string::npos);
  // Listening from the tick the last frame left.
  EXPECT_EQ(heard.size(), before + audio.size());
  EXPECT_EQ(events("agent"),
            (std::vector<std::string>{
                R"("turn":0,"text":"Hello Ada, you called from +15550100.","latency_ms":null)"}));
  EXPECT_TRUE(control.hangups().empty());
  EXPECT_EQ(control.flushes(), 0);
}

// --- a whole turn ---

TEST_F(PipelineAgentTest, ATurnHearsTheCallerAsksTheModelAndSpeaksItsReply) {
  spec.greeting = "Hello.";
  start();
  auto& greeting = clients->last_tts();
  speak(greeting, tts_audio(kRate / 5), 1);
  greeting.close();
  ASSERT_TRUE(step_until([&] { return state() == "listening"; }));

  // The caller speaks: an ASR stream for the utterance, the pre-roll first.
  step(10);
  auto& asr = utterance(1.0);
  ASSERT_EQ(clients->asr().size(), 1u);
  EXPECT_EQ(asr.target().name, "asr-test");
  EXPECT_EQ(asr.config().format().sample_rate_hz(), static_cast<std::uint32_t>(kRate));
  const auto pcm = asr.pcm();
  ASSERT_GE(asr_opened_at[0], kPreRoll);
  ASSERT_GT(pcm.size(), kPreRoll);
  // Everything sent is the caller's audio from 300 ms before the frame that confirmed speech.
  EXPECT_EQ(pcm, slice(fed, asr_opened_at[0] - kPreRoll, pcm.size()));
  EXPECT_EQ(state(), "hearing");
  EXPECT_TRUE(clients->llm().empty());

  asr.result("a table", false);
  asr.result("a table for two", true);
  asr.close();
  step();
  EXPECT_EQ(events("interim"), (std::vector<std::string>{R"("text":"a table")"}));
  EXPECT_EQ(events("user"), (std::vector<std::string>{R"("text":"a table for two")"}));

  // The model is asked with the caller's words and the greeting in the history.
  ASSERT_EQ(clients->llm().size(), 1u);
  auto& llm = clients->last_llm();
  EXPECT_EQ(llm.target().name, "llm-test");
  EXPECT_EQ(llm.request().user_text(), "a table for two");
  EXPECT_EQ(llm.request().turn(), 1u);
  EXPECT_EQ(llm.request().session_id(), "call-9");
  EXPECT_EQ(llm.request().events_size(), 0);
  EXPECT_EQ(history_of(llm.request()), (std::vector<Msg>{{llm::v1::ASSISTANT, "Hello.", false}}));
  EXPECT_EQ(state(), "thinking");

  // Its reply goes to TTS sentence by sentence as it is written.
  llm.text("Sure, for what time? ");
  step();
  ASSERT_EQ(clients->tts().size(), 2u);
  auto& tts = clients->last_tts();
  EXPECT_EQ(texts_of(tts), (Texts{{{"Sure, for what time?", 2}}}));
  llm.text("We open at six");
  step();
  EXPECT_EQ(tts.texts().size(), 1u);  // no sentence end yet
  llm.end_of_turn();
  llm.close();
  step();
  EXPECT_EQ(texts_of(tts), (Texts{{{"Sure, for what time?", 2}, {"We open at six", 3}}}));
  EXPECT_TRUE(tts.finished());
  EXPECT_EQ(state(), "thinking");

  const auto a = tts_audio(kRate / 2, 300);
  const auto b = tts_audio(kRate * 3 / 10, 1000);
  speak(tts, a, 2);
  speak(tts, b, 3);
  tts.close();
  poster.run();
  EXPECT_EQ(state(), "speaking");
  const std::size_t before = control.heard().size();
  ASSERT_TRUE(step_until([&] { return state() == "listening"; }));
  auto reply = a;
  reply.insert(reply.end(), b.begin(), b.end());
  EXPECT_EQ(first_sound(control.heard(), before), before);
  EXPECT_EQ(slice(control.heard(), before, reply.size()), reply);
  EXPECT_EQ(control.heard().size(), before + reply.size());

  const auto agent_events = events("agent");
  ASSERT_EQ(agent_events.size(), 2u);
  const std::string head = R"("turn":1,"text":"Sure, for what time? We open at six","latency_ms":)";
  EXPECT_EQ(agent_events[1].substr(0, head.size()), head);
  EXPECT_NE(agent_events[1].substr(head.size()), "null");  // the turn had caller speech

  // The reply joins the history of the next turn.
  agent->on_dtmf('1');
  ASSERT_EQ(clients->llm().size(), 2u);
  EXPECT_EQ(history_of(clients->last_llm().request()),
            (std::vector<Msg>{{llm::v1::ASSISTANT, "Hello.", false},
                              {llm::v1::USER, "a table for two", false},
                              {llm::v1::ASSISTANT, "Sure, for what time? We open at six", false}}));
  EXPECT_TRUE(control.hangups().empty());
  EXPECT_EQ(control.flushes(), 0);
}

// --- barge-in ---

TEST_F(PipelineAgentTest, TheCallerSpeakingOverTheReplyInterruptsIt) {
  spec.barge_in_after = 300ms;
  start();
  step(5);
  auto& asr1 = utterance(0.8);
  asr1.result("a table please", true);
  asr1.close();
  step();
  ASSERT_EQ(clients->llm().size(), 1u);
  auto& llm = clients->last_llm();
  llm.text("We have tables at six. And at seven thirty. ");  // still writing
  step();
  ASSERT_EQ(clients->tts().size(), 1u);
  auto& tts = clients->last_tts();
  EXPECT_EQ(texts_of(tts), (Texts{{{"We have tables at six.", 1}, {"And at seven thirty.", 2}}}));
  speak(tts, tts_audio(kRate * 4 / 10), 1);  // 400 ms
  tts.audio(tts_audio(kRate * 2));           // 2 s of the second, still synthesizing
  const std::size_t before = control.heard().size();
  step(30);  // 600 ms of the reply heard
  EXPECT_EQ(state(), "speaking");
  EXPECT_EQ(control.flushes(), 0);

  // The caller speaks over it, louder than the agent's voice.
  caller_says(testing::voice(kRate, 1.2));
  ASSERT_TRUE(step_until([&] { return control.flushes() > 0; }, 100));
  EXPECT_EQ(control.flushes(), 1);
  EXPECT_TRUE(llm.cancelled());
  EXPECT_TRUE(tts.cancelled());
  EXPECT_EQ(control.queued_samples(), 0u);
  // What the caller heard of the reply: every sample of it that left before the flush.
  const auto& heard = control.heard();
  std::size_t played = 0;
  for (std::size_t i = before; i < heard.size(); ++i) played += heard[i] != 0 ? 1 : 0;
  EXPECT_GT(played, kRate * 4 / 10u);
  const auto barge = events("barge_in");
  ASSERT_EQ(barge.size(), 1u);
  EXPECT_EQ(barge[0], R"("turn":1,"heard_ms":)" + std::to_string(played * 1000 / kRate) +
                          R"(,"heard":"We have tables at six.","reply":"We have tables at six. )"
                          R"(And at seven thirty. ")");
  EXPECT_TRUE(events("agent").empty());  // the reply was not spoken in full
  EXPECT_EQ(first_sound(heard, heard.size() - kFrame), std::string::npos);  // silence now

  // The caller's words: the next turn carries the barge-in and the reply as it was heard.
  ASSERT_EQ(clients->asr().size(), 2u);
  auto& asr2 = clients->last_asr();
  ASSERT_TRUE(step_until([&] { return asr2.finished(); }));
  EXPECT_EQ(state(), "hearing");
  asr2.result("two people", true);
  asr2.close();
  step();
  ASSERT_EQ(clients->llm().size(), 2u);
  const auto& r = clients->last_llm().request();
  EXPECT_EQ(r.user_text(), "two people");
  EXPECT_EQ(r.turn(), 2u);
  ASSERT_EQ(r.events_size(), 1);
  ASSERT_TRUE(r.events(0).has_barge_in());
  EXPECT_EQ(r.events(0).barge_in().heard_text(), "We have tables at six.");
  EXPECT_EQ(history_of(r),
            (std::vector<Msg>{{llm::v1::USER, "a table please", false},
                              {llm::v1::ASSISTANT, "We have tables at six.", true}}));
  EXPECT_EQ(state(), "thinking");
  EXPECT_EQ(clients->tts().size(), 1u);  // no audio of the cancelled reply any more
}

// --- transfer through the control path ---

struct PipelineTransferTest : PipelineAgentTest {
  PipelineTransferTest() { info.actions = actions; }

  /// The model announces a transfer and asks for it; its words are played in full.
  void model_transfers(const std::string& target) {
    auto& llm = clients->last_llm();
    llm.text("Let me put you through.");
    llm.action(transfer_to(target));
    llm.end_of_turn();
    llm.close();
    step();
    auto& tts = clients->last_tts();
    EXPECT_EQ(tts.texts().back().text, "Let me put you through.");
    speak(tts, tts_audio(kRate * 3 / 10), tts.texts().back().chunk_id);
    tts.close();
    const std::size_t requests = actions->calls.size();
    step();
    EXPECT_EQ(state(), "speaking");
    // Nothing goes to Asterisk while the words before the transfer play.
    while (control.queued_samples() > 0) {
      EXPECT_EQ(actions->calls.size(), requests);
      step();
    }
    EXPECT_EQ(actions->calls.size(), requests + 1);
    EXPECT_EQ(actions->calls.back().request.kind, agent::ActionRequest::Kind::transfer);
    EXPECT_EQ(actions->calls.back().request.target, target);
    EXPECT_EQ(state(), "ending");
  }

  std::shared_ptr<FakeActions> actions = std::make_shared<FakeActions>();
};

TEST_F(PipelineTransferTest, ARefusedTransferLetsTheCallGoOnAndTheModelHearsWhy) {
  start();
  agent->on_dtmf('0');
  ASSERT_EQ(clients->llm().size(), 1u);
  model_transfers("2001");
  step(5);
  EXPECT_EQ(state(), "ending");  // waiting for Asterisk's answer
  EXPECT_EQ(clients->llm().size(), 1u);
  actions->calls[0].done("refused: 2001 is not allowed");  // the control thread
  EXPECT_EQ(clients->llm().size(), 1u);                    // posted, not yet on the call's thread
  step();
  // A new turn at once, carrying the result.
  ASSERT_EQ(clients->llm().size(), 2u);
  const auto& r = clients->last_llm().request();
  EXPECT_EQ(r.user_text(), "");
  ASSERT_EQ(r.events_size(), 1);
  ASSERT_TRUE(r.events(0).has_action_result());
  EXPECT_FALSE(r.events(0).action_result().ok());
  EXPECT_EQ(r.events(0).action_result().error(), "refused: 2001 is not allowed");
  EXPECT_EQ(r.events(0).action_result().action().transfer().target(), "2001");
  EXPECT_EQ(state(), "thinking");
  const auto acts = events("action");
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_NE(acts[0].find(R"("ok":false)"), std::string::npos);
  EXPECT_NE(acts[0].find(R"("error":"refused: 2001 is not allowed")"), std::string::npos);
  EXPECT_TRUE(control.hangups().empty());
}

TEST_F(PipelineTransferTest, ThreeRefusedTransfersEndTheCallWithTheFallback) {
  start();
  agent->on_dtmf('0');
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(clients->llm().size(), static_cast<std::size_t>(i + 1));
    model_transfers("900" + std::to_string(i));
    actions->calls[static_cast<std::size_t>(i)].done("refused: not allowed");
    if (i < 2) step();
  }
  const std::size_t before = control.heard().size();
  const int flushes = control.flushes();
  poster.run();  // the third refusal reaches the call
  EXPECT_EQ(state(), "fallback");
  EXPECT_EQ(control.flushes(), flushes + 1);
  EXPECT_EQ(clients->llm().size(), 3u);  // no turn of its own any more
  const auto prompt = default_fallback_prompt(kRate);
  ASSERT_TRUE(step_until([&] { return !control.hangups().empty(); }));
  EXPECT_EQ(slice(control.heard(), before, prompt.size()), prompt);
  EXPECT_EQ(control.heard().size(), before + prompt.size());  // hung up after the beeps
  ASSERT_EQ(control.hangups().size(), 1u);
  EXPECT_EQ(control.hangups()[0].reason, "provider failure");
  EXPECT_TRUE(control.hangups()[0].after_playout);
  EXPECT_EQ(state(), "fallback");
  step(10);
  EXPECT_EQ(control.hangups().size(), 1u);
}

TEST_F(PipelineAgentTest, WithoutControlAnAllowedTransferIsNotedAndTheCallHangsUpAfterTheReply) {
  std::vector<std::string> noted;
  info.note_transfer = [&](const std::string& target, const std::string& context) {
    noted.push_back(target + "@" + context);
    return std::string();
  };
  start();
  agent->on_dtmf('0');
  auto& llm = clients->last_llm();
  llm.text("Putting you through.");
  common::v1::Action a = transfer_to("2001");
  a.mutable_transfer()->set_context("sales");
  llm.action(a);
  llm.close();
  step();
  auto& tts = clients->last_tts();
  EXPECT_EQ(texts_of(tts), (Texts{{{"Putting you through.", 1}}}));
  const auto audio = tts_audio(kRate * 3 / 10);
  speak(tts, audio, 1);
  tts.close();
  poster.run();
  const std::size_t before = control.heard().size();
  while (control.queued_samples() > 0) {
    EXPECT_TRUE(noted.empty());  // decided once the words before it have been heard
    step();
  }
  EXPECT_EQ(noted, (std::vector<std::string>{"2001@sales"}));
  ASSERT_TRUE(step_until([&] { return !control.hangups().empty(); }, 2));
  EXPECT_EQ(slice(control.heard(), before, audio.size()), audio);
  EXPECT_LE(control.heard().size(), before + audio.size() + kFrame);
  EXPECT_EQ(control.hangups()[0].reason, "transfer to 2001");
  EXPECT_TRUE(control.hangups()[0].after_playout);
  const auto acts = events("action");
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_NE(acts[0].find(R"("ok":true)"), std::string::npos);
  EXPECT_NE(acts[0].find(R"("how":"the socket closes after the reply, the dialplan continues")"),
            std::string::npos);
  EXPECT_EQ(clients->llm().size(), 1u);
}

// --- hangup with final words ---

TEST_F(PipelineAgentTest, AHangupSpeaksTheFinalWordsThenEndsTheCall) {
  start();
  agent->on_dtmf('9');
  auto& llm = clients->last_llm();
  llm.text("Thanks for calling.");
  common::v1::Action h;
  h.mutable_hangup()->set_final_words("Goodbye!");
  h.mutable_hangup()->set_reason("caller is done");
  llm.action(h);
  llm.end_of_turn();
  llm.close();
  step();
  auto& tts = clients->last_tts();
  EXPECT_EQ(texts_of(tts), (Texts{{{"Thanks for calling.", 1}, {"Goodbye!", 2}}}));
  EXPECT_TRUE(tts.finished());
  const auto a = tts_audio(kRate * 4 / 10, 300);
  const auto b = tts_audio(kRate * 3 / 10, 2000);
  speak(tts, a, 1);
  speak(tts, b, 2);
  tts.close();
  poster.run();
  const std::size_t before = control.heard().size();
  while (control.queued_samples() > 0) {
    EXPECT_TRUE(control.hangups().empty());
    agent->on_dtmf('5');  // nobody listens to digits any more
    step();
  }
  ASSERT_EQ(control.hangups().size(), 1u);
  EXPECT_EQ(control.hangups()[0].reason, "caller is done");
  EXPECT_TRUE(control.hangups()[0].after_playout);
  auto words = a;
  words.insert(words.end(), b.begin(), b.end());
  EXPECT_EQ(slice(control.heard(), before, words.size()), words);
  EXPECT_EQ(control.heard().size(), before + words.size());
  EXPECT_EQ(clients->llm().size(), 1u);
  const auto acts = events("action");
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_NE(acts[0].find(R"("ok":true)"), std::string::npos);
  const auto spoken = events("agent");
  ASSERT_EQ(spoken.size(), 1u);
  // The final words are part of the reply's text (joined as the model sent them).
  const std::string head = R"("turn":1,"text":"Thanks for calling.Goodbye!",)";
  EXPECT_EQ(spoken[0].substr(0, head.size()), head);
  step(10);
  EXPECT_EQ(control.hangups().size(), 1u);
}

// --- provider failure ---

TEST_F(PipelineAgentTest, AnLlmThatFailsTwicePlaysTheFallbackAndHangsUp) {
  start();
  agent->on_dtmf('3');
  ASSERT_EQ(clients->llm().size(), 1u);
  clients->last_llm().close({StreamStatus::kUnavailable, "down"});
  step();
  EXPECT_EQ(state(), "thinking");  // retried after the backoff
  step(9);
  EXPECT_EQ(clients->llm().size(), 1u);
  step();
  ASSERT_EQ(clients->llm().size(), 2u);
  EXPECT_EQ(clients->llm()[1]->request().SerializeAsString(),
            clients->llm()[0]->request().SerializeAsString());
  clients->last_llm().close({StreamStatus::kUnavailable, "still down"});
  const std::size_t before = control.heard().size();
  poster.run();
  EXPECT_EQ(state(), "fallback");
  EXPECT_EQ(control.flushes(), 1);
  const auto prompt = default_fallback_prompt(kRate);
  ASSERT_TRUE(step_until([&] { return !control.hangups().empty(); }));
  EXPECT_EQ(slice(control.heard(), before, prompt.size()), prompt);
  EXPECT_EQ(control.heard().size(), before + prompt.size());
  ASSERT_EQ(control.hangups().size(), 1u);
  EXPECT_EQ(control.hangups()[0].reason, "provider failure");
  EXPECT_TRUE(control.hangups()[0].after_playout);
  EXPECT_TRUE(clients->tts().empty());
  EXPECT_EQ(state(), "fallback");
}

// --- no input ---

TEST_F(PipelineAgentTest, NoInputAsksTheModelThenSaysGoodbyeAndHangsUp) {
  spec.no_input_timeout = 1000ms;  // 50 ticks
  spec.max_no_input = 2;
  spec.goodbye = "Goodbye.";
  start();
  for (std::uint32_t n = 1; n <= 2; ++n) {
    step(49);
    EXPECT_EQ(clients->llm().size(), n - 1);
    EXPECT_EQ(state(), "listening");
    step();
    ASSERT_EQ(clients->llm().size(), n);
    const auto& r = clients->last_llm().request();
    EXPECT_EQ(r.user_text(), "");
    ASSERT_EQ(r.events_size(), 1);
    ASSERT_TRUE(r.events(0).has_no_input());
    EXPECT_EQ(r.events(0).no_input().count(), n);
    auto& llm = clients->last_llm();
    llm.text("Are you still there?");
    llm.close();
    step();
    auto& tts = clients->last_tts();
    speak(tts, tts_audio(kRate / 5), tts.texts().back().chunk_id);
    tts.close();
    // The timeout counts from the end of the reply.
    ASSERT_TRUE(step_until([&] { return state() == "listening"; }));
  }
  step(49);
  EXPECT_EQ(clients->tts().size(), 2u);
  step();
  // The third: no model turn, the goodbye, then the hangup.
  EXPECT_EQ(clients->llm().size(), 2u);
  ASSERT_EQ(clients->tts().size(), 3u);
  auto& bye = clients->last_tts();
  EXPECT_EQ(texts_of(bye), (Texts{{{"Goodbye.", 3}}}));
  EXPECT_TRUE(bye.finished());
  const auto audio = tts_audio(kRate / 2, 700);
  speak(bye, audio, 3);
  bye.close();
  poster.run();
  const std::size_t before = control.heard().size();
  ASSERT_TRUE(step_until([&] { return !control.hangups().empty(); }));
  EXPECT_EQ(slice(control.heard(), before, audio.size()), audio);
  EXPECT_EQ(control.heard().size(), before + audio.size());
  EXPECT_EQ(control.hangups()[0].reason, "no input");
  EXPECT_TRUE(control.hangups()[0].after_playout);
}

// --- DTMF ---

TEST_F(PipelineAgentTest, CollectedDigitsGoToTheModelAsOneEventAtTheTerminator) {
  spec.dtmf = DtmfMode::collect;
  spec.dtmf_terminator = '#';
  spec.dtmf_timeout = 3000ms;
  start();
  for (char d : std::string("4711")) {
    agent->on_dtmf(d);
    step(5);
  }
  EXPECT_TRUE(clients->llm().empty());
  EXPECT_EQ(state(), "listening");
  agent->on_dtmf('#');
  ASSERT_EQ(clients->llm().size(), 1u);
  const auto& r = clients->last_llm().request();
  EXPECT_EQ(r.user_text(), "");
  EXPECT_EQ(r.turn(), 1u);
  ASSERT_EQ(r.events_size(), 1);
  ASSERT_TRUE(r.events(0).has_dtmf());
  EXPECT_EQ(r.events(0).dtmf().digits(), "4711");
  EXPECT_EQ(state(), "thinking");
}

TEST_F(PipelineAgentTest, CollectedDigitsGoAfterTheTimeoutWithoutATerminator) {
  spec.dtmf = DtmfMode::collect;
  spec.dtmf_timeout = 1000ms;  // 50 ticks
  start();
  agent->on_dtmf('1');
  agent->on_dtmf('2');
  step(49);
  EXPECT_TRUE(clients->llm().empty());
  step();
  ASSERT_EQ(clients->llm().size(), 1u);
  ASSERT_EQ(clients->last_llm().request().events_size(), 1);
  EXPECT_EQ(clients->last_llm().request().events(0).dtmf().digits(), "12");
}

TEST_F(PipelineAgentTest, DigitsPressedDuringTheReplyGetATurnOnceItHasBeenSpoken) {
  start();
  agent->on_dtmf('1');
  ASSERT_EQ(clients->llm().size(), 1u);
  auto& llm = clients->last_llm();
  llm.text("Press two for sales.");
  llm.close();
  step();
  auto& tts = clients->last_tts();
  speak(tts, tts_audio(kRate / 5), 1);
  tts.close();
  step(3);
  EXPECT_EQ(state(), "speaking");
  agent->on_dtmf('2');  // over the reply: it is not cut short
  EXPECT_EQ(clients->llm().size(), 1u);
  EXPECT_EQ(control.flushes(), 0);
  ASSERT_TRUE(step_until([&] { return clients->llm().size() == 2u; }));
  EXPECT_EQ(control.queued_samples(), 0u);  // all of the reply was heard first
  const auto& r = clients->last_llm().request();
  EXPECT_EQ(r.turn(), 2u);
  ASSERT_EQ(r.events_size(), 1);
  EXPECT_EQ(r.events(0).dtmf().digits(), "2");
  EXPECT_EQ(state(), "thinking");
}

// --- business tools ---

/// The call's tools as the test wants them: what was run, answered when the test says.
class FakeCallTools final : public agent::CallTools {
 public:
  const std::vector<common::v1::ToolDefinition>& definitions() const override { return defs; }
  void run(const common::v1::ToolCall& call,
           std::function<void(const common::v1::ToolResult&)> done) override {
    runs.push_back(call);
    dones.push_back(std::move(done));
  }
  Filler filler(const std::string& name) const override {
    filler_asked.push_back(name);
    return fill;
  }
  void stop() override {}

  /// Tool run `i` answers (as the runner does, on the call's thread).
  void answer(std::size_t i, bool ok, const std::string& output) {
    common::v1::ToolResult r;
    r.set_id(runs.at(i).id());
    r.set_name(runs.at(i).name());
    r.set_ok(ok);
    r.set_output(output);
    dones.at(i)(r);
  }

  std::vector<common::v1::ToolDefinition> defs;
  std::vector<common::v1::ToolCall> runs;
  std::vector<std::function<void(const common::v1::ToolResult&)>> dones;
  Filler fill;
  mutable std::vector<std::string> filler_asked;
};

/// The history as lines: "user: text", "assistant: text [id name args, ...]", "tool id: text".
std::vector<std::string> lines_of(const llm::v1::TurnRequest& r) {
  std::vector<std::string> out;
  for (const auto& m : r.history()) {
    switch (m.role()) {
      case llm::v1::USER:
        out.push_back("user: " + m.text());
        break;
      case llm::v1::TOOL:
        out.push_back("tool " + m.tool_call_id() + ": " + m.text());
        break;
      default: {
        std::string l = "assistant: " + m.text();
        if (m.tool_calls_size() > 0) {
          l += " [";
          for (int i = 0; i < m.tool_calls_size(); ++i) {
            const auto& c = m.tool_calls(i);
            l += (i > 0 ? ", " : "") + c.id() + " " + c.name() + " " + c.arguments_json();
          }
          l += "]";
        }
        out.push_back(l);
      }
    }
  }
  return out;
}

struct PipelineToolsTest : PipelineAgentTest {
  PipelineToolsTest() {
    common::v1::ToolDefinition d;
    d.set_name("order_status");
    d.set_description("Where an order is");
    d.set_parameters_json(R"({"type":"object"})");
    tools->defs.push_back(d);
    info.tools = tools;
  }

  static void call(testing::FakeLlmTurn& llm, const std::string& id, const std::string& name,
                   const std::string& args) {
    llm::v1::TurnResponse r;
    r.mutable_tool_call()->set_id(id);
    r.mutable_tool_call()->set_name(name);
    r.mutable_tool_call()->set_arguments_json(args);
    llm.respond(std::move(r));
  }

  /// The model says `text` (may be empty), calls `order_status` as `id`, and ends its turn.
  void model_calls(const std::string& text, const std::string& id,
                   const std::string& args = R"({"order":"A-17"})") {
    auto& llm = clients->last_llm();
    if (!text.empty()) llm.text(text);
    call(llm, id, "order_status", args);
    llm.end_of_turn();
    llm.close();
    step();
  }

  std::shared_ptr<FakeCallTools> tools = std::make_shared<FakeCallTools>();
};

TEST_F(PipelineToolsTest, AToolCallRunsAndItsResultContinuesTheReplyInAFollowUpTurn) {
  start();
  agent->on_dtmf('1');
  ASSERT_EQ(clients->llm().size(), 1u);
  const auto& first = clients->last_llm().request();
  ASSERT_EQ(first.tools_size(), 1);
  EXPECT_EQ(first.tools(0).name(), "order_status");
  EXPECT_EQ(first.tools(0).parameters_json(), R"({"type":"object"})");

  model_calls("Let me check.", "call_1");
  ASSERT_EQ(tools->runs.size(), 1u);
  EXPECT_EQ(tools->runs[0].id(), "call_1");
  EXPECT_EQ(tools->runs[0].name(), "order_status");
  EXPECT_EQ(tools->runs[0].arguments_json(), R"({"order":"A-17"})");
  EXPECT_EQ(clients->llm().size(), 1u);  // nothing more until the result
  auto& tts = clients->last_tts();
  EXPECT_EQ(texts_of(tts), (Texts{{{"Let me check.", 1}}}));
  EXPECT_FALSE(tts.finished());  // the reply goes on after the tool
  speak(tts, tts_audio(kRate / 5), 1);
  step(20);
  EXPECT_NE(state(), "listening");  // the turn is not over while its tool runs
  EXPECT_TRUE(events("agent").empty());

  tools->answer(0, true, R"({"status":"shipped"})");
  ASSERT_EQ(clients->llm().size(), 2u);
  const auto& next = clients->last_llm().request();
  EXPECT_EQ(next.turn(), 1u);  // the same caller turn
  EXPECT_EQ(next.user_text(), "");
  EXPECT_EQ(next.events_size(), 0);
  EXPECT_EQ(next.tools_size(), 1);
  EXPECT_EQ(lines_of(next),
            (std::vector<std::string>{
                R"(assistant: Let me check. [call_1 order_status {"order":"A-17"}])",
                R"(tool call_1: {"status":"shipped"})"}));

  // The rest of the reply is spoken on the same stream, and the turn ends as usual.
  clients->last_llm().text("It shipped today.");
  clients->last_llm().end_of_turn();
  clients->last_llm().close();
  step();
  EXPECT_EQ(texts_of(tts), (Texts{{{"Let me check.", 1}, {"It shipped today.", 2}}}));
  EXPECT_TRUE(tts.finished());
  speak(tts, tts_audio(kRate / 5), 2);
  tts.close();
  ASSERT_TRUE(step_until([&] { return state() == "listening"; }));
  agent->on_dtmf('2');
  EXPECT_EQ(lines_of(clients->last_llm().request()),
            (std::vector<std::string>{
                R"(assistant: Let me check. [call_1 order_status {"order":"A-17"}])",
                R"(tool call_1: {"status":"shipped"})", "assistant: It shipped today."}));
  EXPECT_TRUE(control.hangups().empty());
}

TEST_F(PipelineToolsTest, TwoToolCallsInOneTurnGoOnOnceBothAreAnswered) {
  start();
  agent->on_dtmf('1');
  auto& llm = clients->last_llm();
  call(llm, "call_a", "order_status", R"({"order":"1"})");
  call(llm, "call_b", "order_status", R"({"order":"2"})");
  llm.end_of_turn();
  llm.close();
  step();
  ASSERT_EQ(tools->runs.size(), 2u);
  tools->answer(1, false, "HTTP 503 from the tool");
  EXPECT_EQ(clients->llm().size(), 1u);  // call_a still runs
  tools->answer(0, true, "in transit");
  ASSERT_EQ(clients->llm().size(), 2u);
  EXPECT_EQ(
      lines_of(clients->last_llm().request()),
      (std::vector<std::string>{
          R"(assistant:  [call_a order_status {"order":"1"}, call_b order_status {"order":"2"}])",
          "tool call_a: in transit", "tool call_b: error: HTTP 503 from the tool"}));
  // A second answer to a call is ignored.
  tools->answer(0, true, "again");
  EXPECT_EQ(clients->llm().size(), 2u);
}

TEST_F(PipelineToolsTest, WithoutToolsOnTheCallACallIsRefusedAndTheModelToldSo) {
  info.tools = nullptr;
  start();
  agent->on_dtmf('1');
  EXPECT_EQ(clients->last_llm().request().tools_size(), 0);
  model_calls("", "call_x");
  EXPECT_TRUE(tools->runs.empty());
  ASSERT_EQ(clients->llm().size(), 2u);
  EXPECT_EQ(lines_of(clients->last_llm().request()),
            (std::vector<std::string>{
                R"(assistant:  [call_x order_status {"order":"A-17"}])",
                "tool call_x: error: tool 'order_status' is not available on this call"}));
}

TEST_F(PipelineToolsTest, AToolNotOfferedIsPassedToTheRunnerWhichRefusesIt) {
  start();
  agent->on_dtmf('1');
  auto& llm = clients->last_llm();
  call(llm, "call_r", "refund", R"({"amount":1000})");
  llm.end_of_turn();
  llm.close();
  step();
  ASSERT_EQ(tools->runs.size(), 1u);  // the runner is the one that knows what is offered
  EXPECT_EQ(tools->runs[0].name(), "refund");
  tools->answer(0, false, "tool 'refund' is not available on this call");
  EXPECT_EQ(lines_of(clients->last_llm().request()).back(),
            "tool call_r: error: tool 'refund' is not available on this call");
}

TEST_F(PipelineToolsTest, AFourthToolRoundInOneTurnGetsTheFallback) {
  start();
  agent->on_dtmf('1');
  for (int round = 1; round <= 3; ++round) {
    model_calls("", "call_" + std::to_string(round));
    ASSERT_EQ(tools->runs.size(), static_cast<std::size_t>(round));
    tools->answer(static_cast<std::size_t>(round - 1), true, "still looking");
    ASSERT_EQ(clients->llm().size(), static_cast<std::size_t>(round + 1));
    EXPECT_EQ(clients->last_llm().request().turn(), 1u);
  }
  EXPECT_NE(state(), "fallback");
  model_calls("", "call_4");
  EXPECT_EQ(tools->runs.size(), 3u);  // not run
  EXPECT_EQ(state(), "fallback");
  ASSERT_TRUE(step_until([&] { return !control.hangups().empty(); }));
  EXPECT_EQ(control.hangups()[0].reason, "provider failure");
}

TEST_F(PipelineToolsTest, TheRoundsAreCountedPerCallerTurn) {
  start();
  for (int turn = 1; turn <= 2; ++turn) {
    agent->on_dtmf('1');
    for (int round = 1; round <= 2; ++round) {
      model_calls("", "call_" + std::to_string(turn) + std::to_string(round));
      tools->answer(tools->runs.size() - 1, true, "ok");
    }
    auto& llm = clients->last_llm();
    llm.text("Done.");
    llm.end_of_turn();
    llm.close();
    step();
    auto& tts = clients->last_tts();
    speak(tts, tts_audio(kRate / 10), tts.texts().back().chunk_id);
    tts.close();
    ASSERT_TRUE(step_until([&] { return state() == "listening"; }));
  }
  EXPECT_EQ(tools->runs.size(), 4u);
  EXPECT_NE(state(), "fallback");
}

TEST_F(PipelineToolsTest, ABargeInWhileAToolRunsDropsItsResult) {
  spec.barge_in_after = 300ms;
  start();
  step(5);
  agent->on_dtmf('1');
  model_calls("Let me look that up for you. ", "call_1");
  ASSERT_EQ(tools->runs.size(), 1u);
  auto& tts = clients->last_tts();
  tts.audio(tts_audio(kRate * 2));  // 2 s of words, still synthesizing
  step(10);
  caller_says(testing::voice(kRate, 1.2));
  ASSERT_TRUE(step_until([&] { return control.flushes() > 0; }, 100));
  tools->answer(0, true, "shipped");
  step();
  EXPECT_EQ(clients->llm().size(), 1u);  // the result went nowhere
  // The caller's words start a turn whose history holds no call without its answer.
  auto& asr = clients->last_asr();
  ASSERT_TRUE(step_until([&] { return asr.finished(); }));
  asr.result("never mind", true);
  asr.close();
  step();
  ASSERT_EQ(clients->llm().size(), 2u);
  for (const auto& m : clients->last_llm().request().history()) {
    EXPECT_EQ(m.tool_calls_size(), 0);
    EXPECT_NE(m.role(), llm::v1::TOOL);
  }
  EXPECT_EQ(clients->last_llm().request().user_text(), "never mind");
}

TEST_F(PipelineToolsTest, TheFillerIsSpokenWhenNothingPlaysAndCutWhenTheResultIsBack) {
  tools->fill.after = 200ms;
  tools->fill.phrase = "One moment please.";
  start();
  agent->on_dtmf('1');
  model_calls("Let me check. ", "call_1");
  EXPECT_EQ(tools->filler_asked, (std::vector<std::string>{"order_status"}));
  auto& tts = clients->last_tts();
  speak(tts, tts_audio(kRate * 3 / 10), 1);  // 300 ms: plays past the filler's 200 ms
  step(12);
  EXPECT_EQ(tts.texts().size(), 1u);  // the words still play: no filler over them
  ASSERT_TRUE(step_until([&] { return tts.texts().size() == 2; }, 50));
  EXPECT_EQ(tts.texts()[1].text, "One moment please.");
  tts.audio(tts_audio(kRate));  // a second of filler, playing
  step(5);
  EXPECT_GT(control.queued_samples(), 0u);
  const int flushes = control.flushes();
  tools->answer(0, true, "shipped");
  EXPECT_EQ(control.flushes(), flushes + 1);  // cut the moment the result is back
  EXPECT_EQ(control.queued_samples(), 0u);
  EXPECT_TRUE(tts.cancelled());
  ASSERT_EQ(clients->llm().size(), 2u);
  clients->last_llm().text("It shipped.");
  clients->last_llm().end_of_turn();
  clients->last_llm().close();
  step();
  ASSERT_EQ(clients->tts().size(), 2u);  // the rest of the reply on a stream of its own
  EXPECT_EQ(clients->last_tts().texts().at(0).text, "It shipped.");
}

TEST_F(PipelineToolsTest, AnActionCalledWithAnIdIsAnsweredInTheHistoryNotAsANote) {
  auto actions = std::make_shared<FakeActions>();
  info.actions = actions;
  start();
  agent->on_dtmf('1');
  auto& llm = clients->last_llm();
  llm.text("Pressing one.");
  common::v1::Action a;
  a.mutable_send_dtmf()->set_digits("1");
  a.set_tool_call_id("call_d");
  llm.action(a);
  llm.end_of_turn();
  llm.close();
  step();
  ASSERT_EQ(actions->calls.size(), 1u);
  auto& tts = clients->last_tts();
  speak(tts, tts_audio(kRate / 10), 1);
  tts.close();
  ASSERT_TRUE(step_until([&] { return state() == "listening"; }));
  actions->calls.at(0).done("");
  poster.run();
  agent->on_dtmf('2');
  const auto& r = clients->last_llm().request();
  EXPECT_EQ(lines_of(r), (std::vector<std::string>{
                             R"(assistant: Pressing one. [call_d send_dtmf {"digits":"1"}])",
                             "tool call_d: ok"}));
  ASSERT_EQ(r.events_size(), 1);  // the digit; no note of the action's result
  EXPECT_TRUE(r.events(0).has_dtmf());
}
}  // namespace
}  // namespace voxbridge::pipeline
