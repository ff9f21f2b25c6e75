// PipelineAgent: the turn state machine of one pipeline call, over its parts (see pipeline.hpp).
//
//   listening --caller speaks--> hearing --words--> thinking --audio--> speaking --played-->
//   listening; DTMF and the no-input timeout start a turn from listening; a barge-in returns a
//   speaking turn to hearing; a hangup or transfer makes it ending (the reply is played first,
//   then the call ends or moves); a provider failure makes it fallback (prompt, then hangup).
//
// Business tools: a turn whose model called tools stays thinking/speaking after its stream
// ends: the calls run through CallInfo.tools (refused when the call has none), the tool's
// filler is spoken once `after` has passed with nothing playing (cut when the results are
// in), then a follow-up turn continues the reply with the results. At most kMaxToolRounds such
// rounds per caller turn (then the fallback); a barge-in, failure or hangup while tools run
// drops their results.
#include <spdlog/spdlog.h>

#include <optional>

#include "voxbridge/agent/tools.hpp"

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/pipeline/action_runner.hpp"
#include "voxbridge/pipeline/asr_feed.hpp"
#include "voxbridge/pipeline/caller_listener.hpp"
#include "voxbridge/pipeline/hold_music.hpp"
#include "voxbridge/pipeline/llm_turns.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/pipeline/reply_speaker.hpp"
#include "voxbridge/pipeline/turn_report.hpp"

namespace voxbridge::pipeline {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kTickMs = 20;
/// Tool rounds (the model calls tools, gets their results, goes on) in one caller turn.
constexpr int kMaxToolRounds = 3;

enum class TurnState { listening, hearing, thinking, speaking, ending, fallback };

/// What happens once the reply in progress has been heard (the ending state).
enum class Exit {
  none,
  hangup,        ///< the call ends
  transfer,      ///< the transfer goes to Asterisk
  transferring,  ///< it went; Asterisk moves the caller (or the refusal comes back)
  ended,         ///< the call is over
};

std::string fill_placeholders(std::string text, const agent::CallInfo& info) {
  auto put = [&](const std::string& key, const std::string& value) {
    for (std::size_t p = 0; (p = text.find(key, p)) != std::string::npos; p += value.size()) {
      text.replace(p, key.size(), value);
    }
  };
  put("{caller_name}", info.caller_name);
  put("{caller_number}", info.caller_number);
  put("{called_number}", info.called_number);
  for (const auto& [k, v] : info.variables) put("{" + k + "}", v);
  return text;
}

class PipelineAgent final : public agent::Agent {
 public:
  PipelineAgent(std::shared_ptr<const PipelineSpec> spec, int rate_hz, int quality,
                const std::shared_ptr<providers::ProviderClients>& clients)
      : spec_(std::move(spec)),
        rate_hz_(rate_hz),
        listener_(
            *spec_, rate_hz, [this] { on_speech_started(); }, [this] { asr_.speech_ended(); }),
        asr_(*spec_, rate_hz, quality, clients, call_),
        llm_(*spec_, clients, call_),
        speaker_(*spec_, rate_hz, quality, clients, call_) {}

  void on_start(agent::CallControl& control, const agent::CallInfo& info) override {
    control_ = &control;
    info_ = info;
    report_.emplace(*spec_, info_);
    if (info_.tools) llm_.offer(info_.tools->definitions());
    actions_.emplace(info_, control.poster(), ActionRunner::Options{spec_->transfer_hangs_up},
                     [this](const ActionRunner::Result& r) { on_action_result(r); });
    moh_.emplace(info_, control.poster());
    call_.set_call_id(info.uuid);
    call_.set_listener(info.listener);
    call_.set_language(spec_->language);
    apply_channel_facts();
    asr_.start(control, info.uuid,
               {[this](const providers::AsrResult& r) { on_asr_result(r); },
                [this](std::string text) { on_utterance(std::move(text)); },
                [this](std::string why) { fail(why); }},
               report_->asr());
    llm_.start(control.poster(), info.uuid,
               {[this](std::string_view delta) { on_llm_text(delta); },
                [this](const common::v1::Action& a) { on_action(a); }, [this] { on_llm_done(); },
                [this](std::string why) { fail(why); }},
               report_->llm());
    speaker_.start(control, info.uuid,
                   {[this] {
                      if (turn_.timeline.tts_first_audio == Clock::time_point{}) {
                        turn_.timeline.tts_first_audio = Clock::now();
                      }
                    },
                    [this](std::string why) { fail(why); }},
                   report_->tts());
    if (spec_->greeting_prompt && !spec_->greeting_prompt->empty()) {
      begin_turn();
      turn_.llm_done = true;
      speaker_.play(*spec_->greeting_prompt);
    } else if (!spec_->greeting.empty()) {
      begin_turn();
      turn_.llm_done = true;
      const std::string greeting = fill_placeholders(spec_->greeting, info);
      turn_.text = greeting;
      speaker_.say(greeting);
      speaker_.finish();
      llm_.said(greeting);
    } else {
      listening_since_ = tick_;
    }
  }

  void on_leg_audio(std::span<const std::int16_t> samples, int rate_hz) override {
    if (rate_hz != leg_rate_) {
      leg_rate_ = rate_hz;
      listener_.use_leg_rate(rate_hz);
      asr_.use_leg_rate(rate_hz);
    }
    leg_ = samples;
  }

  void on_audio(std::span<const std::int16_t> samples) override {
    const auto leg = std::exchange(leg_, {});
    if (state_ == TurnState::ending || state_ == TurnState::fallback) return;
    const auto heard = listener_.hear(leg, samples, speaker_.audible(), speaker_.far(),
                                      control_->queued_samples());
    if (turn_.active && !turn_.interrupted && listener_.barge_in_due()) {
      barge_in("caller spoke over the agent for " + std::to_string(listener_.overlap_ms()) + " ms");
    }
    asr_.audio(leg, samples, !heard.voiced || heard.hushed);
  }

  std::string_view state() const override {
    switch (state_) {
      case TurnState::fallback:
        return "fallback";
      case TurnState::listening:
        return "listening";
      case TurnState::hearing:
        return "hearing";
      case TurnState::thinking:
      case TurnState::speaking:
      case TurnState::ending:
        break;
    }
    if (turn_.active) return control_->queued_samples() > 0 ? "speaking" : "thinking";
    return state_ == TurnState::ending ? "ending" : "listening";
  }

  void on_dtmf(char digit) override {
    if (state_ == TurnState::ending || state_ == TurnState::fallback) return;
    if (spec_->dtmf == DtmfMode::event) {
      digits_event(std::string(1, digit));
      return;
    }
    if (digit == spec_->dtmf_terminator) {
      if (!digits_.empty()) digits_event(std::exchange(digits_, {}));
      return;
    }
    digits_.push_back(digit);
    digits_since_ = tick_;
    if (digits_.size() >= spec_->dtmf_max_digits) digits_event(std::exchange(digits_, {}));
  }

  void on_tick() override {
    ++tick_;
    if (speaker_.take_first_frame() && turn_.active) {
      // This tick took the reply's first frame from the queue: it is on its way to the caller.
      turn_.timeline.first_frame = Clock::now();
      report_->first_frame(turn_.timeline.first_frame);
      if (state_ == TurnState::thinking) state_ = TurnState::speaking;
    }
    llm_.tick();
    speaker_.tick();
    asr_.tick();
    speaker_.feed();
    if (tools_.running) filler_due();
    if (!digits_.empty() && (tick_ - digits_since_) * kTickMs >=
                                static_cast<std::uint64_t>(spec_->dtmf_timeout.count())) {
      digits_event(std::exchange(digits_, {}));
    }
    if (turn_.active && turn_.llm_done && speaker_.done()) end_turn();
    if (!turn_.active && speaker_.done()) after_drain();
    if (state_ == TurnState::listening && !asr_.hearing() && !listener_.in_speech() &&
        listening_since_ != kNever &&
        (tick_ - listening_since_) * kTickMs >=
            static_cast<std::uint64_t>(spec_->no_input_timeout.count())) {
      on_no_input();
    }
  }

  void on_end(std::string_view) override {
    drop_tools();
    // Tool requests still running are cancelled (their results would be dropped anyway).
    if (info_.tools) info_.tools->stop();
    ending_.exit = Exit::ended;
    state_ = TurnState::ending;
    if (asr_.dropped() > 0 || speaker_.dropped_samples() > 0) {
      spdlog::warn("call uuid={}: slow providers: {} ASR messages and {} ms of TTS audio dropped",
                   info_.uuid, asr_.dropped(),
                   speaker_.dropped_samples() * 1000 / static_cast<unsigned>(rate_hz_));
    }
    asr_.stop();
    llm_.stop();
    speaker_.stop();
    if (actions_) actions_->stop();
    events::PipelineUsage u;
    u.asr = spec_->asr.name;
    u.llm = spec_->llm.name;
    u.tts = spec_->tts.name;
    u.asr_streams = asr_.streams_opened();
    u.asr_audio_ms = asr_.sent_ms();
    u.llm_turns = llm_.turns_opened();
    u.tts_streams = speaker_.streams_opened();
    u.tts_characters = speaker_.characters_sent();
    u.tts_audio_ms = speaker_.received_ms();
    report_->usage(u);
  }

 private:
  static constexpr std::uint64_t kNever = ~0ull;

  /// The turn in progress: the caller's words (or events), the model's reply and how it went.
  struct Turn {
    bool active = false;
    bool llm_done = false;
    bool interrupted = false;
    bool text_cut = false;  // the model wrote more than kMaxReplyBytes
    std::string text;
    std::size_t round_start = 0;  // where the text of the current tool round starts
    std::string user_text;
    TurnTimeline timeline;
  };

  // --- listening ---
  void on_speech_started() {
    listening_since_ = kNever;
    if (asr_.hearing()) return;  // still finishing the previous utterance (or retrying it)
    asr_.open();
    settle();
  }

  /// Between turns: hearing while the caller's words are being recognized, else listening.
  void settle() {
    if (turn_.active || ending_.exit != Exit::none || state_ == TurnState::fallback) return;
    state_ = asr_.hearing() ? TurnState::hearing : TurnState::listening;
  }

  void on_asr_result(const providers::AsrResult& r) {
    if (!r.is_final && turn_.active && !turn_.interrupted && speaker_.audible() &&
        listener_.barge_in_words(r.transcript)) {
      barge_in("caller said \"" + r.transcript + "\"");
    }
    report_->heard(r.transcript, r.is_final);
  }

  void on_utterance(std::string text) {
    if (listener_.in_speech()) asr_.open();  // the caller is still talking: next utterance
    settle();
    if (text.empty()) {
      if (!turn_.active) listening_since_ = tick_;
      return;
    }
    if (turn_.active) {
      spdlog::debug("call uuid={}: ignored '{}' said over the agent (no barge-in)", info_.uuid,
                    logtext::log_text(text));
      return;
    }
    const auto asr_final = Clock::now();
    start_turn(text);
    const auto speech_end = asr_.speech_end();
    turn_.timeline.speech_end = speech_end == Clock::time_point{} ? asr_final : speech_end;
    turn_.timeline.asr_final = asr_final;
  }

  void digits_event(std::string digits) {
    llm::v1::Event e;
    e.mutable_dtmf()->set_digits(digits);
    llm_.add_event(std::move(e));
    if (!turn_.active && !asr_.hearing()) {
      start_turn("");
    } else if (!asr_.hearing()) {
      digits_waiting_ = true;  // a turn of their own once this reply has been spoken
    }                          // else they go with the caller's words
  }

  void on_no_input() {
    listening_since_ = kNever;
    ++no_input_;
    if (no_input_ > spec_->max_no_input) {
      begin_turn();
      turn_.llm_done = true;
      speaker_.say(spec_->goodbye);
      speaker_.finish();
      hangup_after_reply("no input");
      return;
    }
    llm::v1::Event e;
    e.mutable_no_input()->set_count(static_cast<std::uint32_t>(no_input_));
    llm_.add_event(std::move(e));
    start_turn("");
  }

  // --- thinking ---
  void begin_turn() {
    turn_ = Turn{};
    turn_.active = true;
    speaker_.begin();
    listening_since_ = kNever;
    if (state_ != TurnState::ending && state_ != TurnState::fallback) {
      state_ = TurnState::thinking;
    }
  }

  void start_turn(const std::string& user_text) {
    // Facts that arrived after the call started (AMI's VarSet raced the connection).
    if (info_.actions && info_.channel.empty() && info_.actions->describe(info_)) {
      apply_channel_facts();
    }
    begin_turn();
    turn_.user_text = user_text;
    turn_.timeline.turn = ++turns_;
    tools_.rounds = 0;
    llm_.ask(turn_.timeline.turn, user_text);
  }

  void on_llm_text(std::string_view delta) {
    if (turn_.timeline.llm_first_token == Clock::time_point{}) {
      turn_.timeline.llm_first_token = Clock::now();
    }
    if (const auto d = reply_delta(delta); !d.empty()) {
      turn_.text += d;
      speaker_.text(d);
    }
  }

  void on_llm_done() {
    speaker_.flush_text();
    const std::string round_text = turn_.text.substr(turn_.round_start);
    if (!llm_.tool_calls().empty()) {
      run_tools(round_text);
      return;
    }
    turn_.llm_done = true;
    speaker_.finish();
    llm_.said(round_text);
  }

  // --- tools ---
  /// Runs the calls of the round that just ended; the reply goes on once all results are in.
  void run_tools(const std::string& round_text) {
    if (tools_.rounds == kMaxToolRounds) {
      fail("the model asked for tools more than " + std::to_string(kMaxToolRounds) +
           " times in one turn");
      return;
    }
    ++tools_.rounds;
    tools_.running = true;
    tools_.round_text = round_text;
    tools_.calls = llm_.tool_calls();
    tools_.results.assign(tools_.calls.size(), std::nullopt);
    tools_.waiting = tools_.calls.size();
    tools_.since = tick_;
    tools_.filler =
        info_.tools ? info_.tools->filler(tools_.calls.front().name()) : agent::CallTools::Filler{};
    tools_.filler_on = false;
    tools_.moh_refused = false;
    const std::uint64_t gen = ++tools_.gen;
    const std::weak_ptr<int> alive = alive_;
    for (std::size_t i = 0; i < tools_.calls.size(); ++i) {
      const auto& c = tools_.calls[i];
      if (!info_.tools) {
        common::v1::ToolResult r;
        r.set_ok(false);
        r.set_output("tool '" + c.name() + "' is not available on this call");
        on_tool_result(gen, i, r);
        continue;
      }
      info_.tools->run(c, [this, alive, gen, i](const common::v1::ToolResult& r) {
        if (!alive.expired()) on_tool_result(gen, i, r);
      });
    }
  }

  void on_tool_result(std::uint64_t gen, std::size_t i, const common::v1::ToolResult& r) {
    if (gen != tools_.gen || !tools_.running || i >= tools_.results.size() || tools_.results[i]) {
      return;  // dropped (barge-in, failure, hangup) or a second answer
    }
    auto& kept = tools_.results[i].emplace(r);
    kept.set_id(tools_.calls[i].id());  // the result answers the call it was run for
    kept.set_name(tools_.calls[i].name());
    if (--tools_.waiting == 0) tools_done();
  }

  void tools_done() {
    tools_.running = false;
    if (tools_.filler_on) {
      // The filler stops the moment the results are back; the reply goes on afresh.
      tools_.filler_on = false;
      if (moh_ && moh_->on()) {
        moh_->stop();
      } else {
        speaker_.interrupt();
        speaker_.begin();
      }
    }
    std::vector<common::v1::ToolResult> results;
    for (auto& r : tools_.results) results.push_back(std::move(*r));
    tools_.results.clear();
    turn_.round_start = turn_.text.size();
    llm_.continue_with(turn_.timeline.turn, tools_.round_text, results);
  }

  /// Every tick while tools run: the filler, once `after` has passed with nothing playing.
  /// In ARI mode a tool with a music-on-hold class gets Asterisk's music instead of the phrase
  /// (the phrase if Asterisk or the rules refuse it).
  void filler_due() {
    const auto& f = tools_.filler;
    const bool music = !f.moh_class.empty() && !tools_.moh_refused && moh_ && moh_->available();
    if (tools_.filler_on || f.after.count() <= 0 || (f.phrase.empty() && !music)) return;
    if ((tick_ - tools_.since) * kTickMs < static_cast<std::uint64_t>(f.after.count())) return;
    if (!speaker_.idle()) return;
    tools_.filler_on = true;
    if (music) {
      moh_->start(f.moh_class, [this, gen = tools_.gen](const std::string& why) {
        spdlog::warn("call uuid={}: no music on hold ({}); the filler phrase instead", info_.uuid,
                     logtext::log_text(why, 200));
        if (gen != tools_.gen || !tools_.running) return;
        tools_.moh_refused = true;
        tools_.filler_on = false;  // the next tick says the phrase
      });
      return;
    }
    speaker_.say(f.phrase);
  }

  /// Results still to come are dropped (barge-in, failure, hangup).
  void drop_tools() {
    ++tools_.gen;
    tools_.running = false;
    tools_.filler_on = false;
    if (moh_) moh_->stop();
    tools_.results.clear();
  }

  /// What of the model's `delta` fits in the reply (kMaxReplyBytes); warns once when cut.
  std::string_view reply_delta(std::string_view delta) {
    const std::size_t room =
        kMaxReplyBytes > turn_.text.size() ? kMaxReplyBytes - turn_.text.size() : 0;
    if (delta.size() <= room) return delta;
    if (!turn_.text_cut) {
      turn_.text_cut = true;
      spdlog::warn("call uuid={}: turn {}: the reply is longer than {} bytes; the rest is dropped",
                   info_.uuid, turn_.timeline.turn, kMaxReplyBytes);
    }
    std::size_t n = room;  // not inside a UTF-8 character
    while (n > 0 && (static_cast<unsigned char>(delta[n]) & 0xC0) == 0x80) --n;
    return delta.substr(0, n);
  }

  // --- actions ---
  void on_action(const common::v1::Action& a) {
    if (a.has_hangup()) {
      // Text still in the splitter comes first; the final words are the last thing said.
      speaker_.flush_text();
      if (!a.hangup().final_words().empty()) {
        turn_.text += a.hangup().final_words();
        speaker_.say(a.hangup().final_words());
      }
      hangup_after_reply(a.hangup().reason().empty() ? "agent hung up" : a.hangup().reason());
      actions_->record(a, "");
      return;
    }
    if (a.has_transfer() && (info_.actions || spec_->transfer_hangs_up)) {
      // After the reply in progress (its last words usually announce the transfer).
      speaker_.flush_text();
      ending_.transfer = a;
      ending_.exit = Exit::transfer;
      state_ = TurnState::ending;
      return;
    }
    actions_->run(a);
  }

  /// How an action went: the model hears it with its next turn; a transfer that did not happen
  /// lets the call go on (the model is told at once), or ends it after too many.
  void on_action_result(const ActionRunner::Result& r) {
    // An action the model called with an id is answered in the history; others, or one whose
    // call is no longer there, are told with the next turn.
    if (!llm_.action_result(r.action.tool_call_id(), r.error.empty() ? "ok" : r.error)) {
      llm::v1::Event e;
      *e.mutable_action_result()->mutable_action() = r.action;
      e.mutable_action_result()->set_ok(r.error.empty());
      e.mutable_action_result()->set_error(r.error);
      llm_.add_event(std::move(e));
    }
    switch (r.next) {
      case ActionRunner::Next::transferred:
        break;  // Asterisk moves the caller; the AudioSocket closes
      case ActionRunner::Next::hang_up:
        hangup_after_reply("transfer to " + r.action.transfer().target());
        break;
      case ActionRunner::Next::give_up:
        fail("the agent asked for " + std::to_string(actions_->refused_transfers()) +
             " transfers that failed or were refused");
        break;
      case ActionRunner::Next::go_on:
        if (ending_.exit == Exit::transferring && r.action.has_transfer() && !r.error.empty()) {
          ending_.exit = Exit::none;
          state_ = turn_.active ? TurnState::thinking : TurnState::listening;
          if (!turn_.active) start_turn("");
        }
        break;
    }
  }

  void apply_channel_facts() {
    call_.set_caller_number(info_.caller_number);
    call_.set_caller_name(info_.caller_name);
    call_.set_called_number(info_.called_number);
    for (const auto& [k, v] : info_.variables) (*call_.mutable_metadata())[k] = v;
    if (auto l = info_.variables.find("VB_LANGUAGE");
        l != info_.variables.end() && !l->second.empty()) {
      call_.set_language(l->second);
    }
    if (!info_.channel.empty()) (*call_.mutable_metadata())["channel"] = info_.channel;
  }

  // --- ending ---
  void hangup_after_reply(std::string reason) {
    ending_.reason = std::move(reason);
    ending_.exit = Exit::hangup;
    if (state_ != TurnState::fallback) state_ = TurnState::ending;
  }

  /// Everything queued has been played and no turn is in progress.
  void after_drain() {
    if (ending_.exit == Exit::hangup) {
      ending_.exit = Exit::ended;
      control_->hangup(ending_.reason, true);
    } else if (ending_.exit == Exit::transfer) {
      // The words before the transfer ("Let me put you through") have been heard: go.
      ending_.exit = Exit::transferring;
      const common::v1::Action a = std::move(*ending_.transfer);
      ending_.transfer.reset();
      if (moh_) moh_->stop();  // (before the caller leaves Stasis: ARI requests go in order)
      actions_->run(a);
    }
  }

  void end_turn() {
    report_->spoken(turn_.timeline, turn_.user_text, turn_.text);
    turn_.active = false;
    speaker_.end();
    listening_since_ = tick_;
    settle();
    if (ending_.exit == Exit::none) {
      if (std::exchange(digits_waiting_, false) && !asr_.hearing() && llm_.has_events()) {
        start_turn("");  // digits pressed while the agent spoke
      }
    } else {
      digits_waiting_ = false;
    }
  }

  void barge_in(const std::string& why) {
    const auto heard = speaker_.interrupt();
    spdlog::info("barge-in uuid={} turn={}: {}; heard {} ms of the reply: \"{}\"", info_.uuid,
                 turn_.timeline.turn, why, heard.ms, logtext::log_text(heard.text));
    turn_.interrupted = true;
    turn_.timeline.interrupted = true;
    drop_tools();
    llm_.cancel();
    llm_.interrupted(turn_.text, heard.text);
    llm::v1::Event e;
    e.mutable_barge_in()->set_heard_text(heard.text);
    llm_.add_event(std::move(e));
    report_->interrupted(turn_.timeline, heard.ms, heard.text, turn_.text,
                         listener_.overlap_started());
    turn_.active = false;
    if (ending_.exit == Exit::hangup) ending_.exit = Exit::none;  // the caller has more to say
    if (ending_.exit == Exit::none && state_ == TurnState::ending) state_ = TurnState::listening;
    settle();
  }

  void fail(const std::string& why) {
    if (state_ == TurnState::fallback) return;
    state_ = TurnState::fallback;
    report_->fell_back();
    spdlog::warn("call uuid={}: {}; playing the fallback prompt and hanging up", info_.uuid,
                 logtext::log_text(why));
    asr_.cancel();
    drop_tools();
    llm_.cancel();
    speaker_.cancel();
    speaker_.end();
    turn_.active = false;
    control_->flush();
    const auto& prompt = spec_->fallback_prompt;
    if (prompt && !prompt->empty()) {
      speaker_.play(*prompt);
    } else {
      speaker_.play(default_fallback_prompt(rate_hz_));
    }
    hangup_after_reply("provider failure");
  }

  std::shared_ptr<const PipelineSpec> spec_;
  int rate_hz_;
  agent::CallControl* control_ = nullptr;
  agent::CallInfo info_;
  common::v1::CallInfo call_;  // the call's facts as every provider gets them

  CallerListener listener_;
  AsrFeed asr_;
  LlmTurns llm_;
  ReplySpeaker speaker_;
  std::optional<TurnReport> report_;  // made at on_start (it needs the call's facts)

  TurnState state_ = TurnState::listening;
  /// What happens once the reply in progress has been heard.
  struct Ending {
    Exit exit = Exit::none;
    std::string reason;                          // of the hangup
    std::optional<common::v1::Action> transfer;  // waiting for the reply to be heard
  } ending_;
  std::optional<ActionRunner> actions_;  // made at on_start (it needs the call's facts)
  Turn turn_;
  unsigned turns_ = 0;
  /// The tool round in progress (results by call), and the rounds of this caller turn.
  struct Tools {
    bool running = false;
    std::uint64_t gen = 0;  // results of an older round (dropped) are ignored
    int rounds = 0;
    std::string round_text;  // what the model said before its calls
    std::vector<common::v1::ToolCall> calls;
    std::vector<std::optional<common::v1::ToolResult>> results;
    std::size_t waiting = 0;
    std::uint64_t since = 0;  // tick the round started
    agent::CallTools::Filler filler;
    bool filler_on = false;    // the phrase is said, or the music asked for
    bool moh_refused = false;  // this round's music was refused: the phrase instead
  } tools_;
  std::optional<HoldMusic> moh_;                           // from on_start (uses info_)
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // tool callbacks check it

  std::span<const std::int16_t> leg_;  // on_leg_audio()'s piece, for the on_audio() after it
  int leg_rate_ = 0;
  std::uint64_t tick_ = 0;
  std::uint64_t listening_since_ = kNever;  // tick the no-input timeout counts from
  int no_input_ = 0;
  std::string digits_;  // DTMF collected (dtmf = collect)
  std::uint64_t digits_since_ = 0;
  bool digits_waiting_ = false;  // DTMF came during a reply: answer it when the reply ends
};

PipelineSpec with_prompts(PipelineSpec s, int rate_hz, int quality) {
  if (!s.greeting_file.empty()) {
    s.greeting_prompt = std::make_shared<const std::vector<std::int16_t>>(
        agent::load_prompt(s.greeting_file, rate_hz, quality));
  }
  if (!s.fallback_file.empty()) {
    s.fallback_prompt = std::make_shared<const std::vector<std::int16_t>>(
        agent::load_prompt(s.fallback_file, rate_hz, quality));
  }
  return s;
}

}  // namespace

PipelineFactory::PipelineFactory(PipelineSpec spec, int internal_rate_hz, int resampler_quality,
                                 std::shared_ptr<providers::ProviderClients> clients)
    : spec_(std::make_shared<const PipelineSpec>(
          with_prompts(std::move(spec), internal_rate_hz, resampler_quality))),
      rate_hz_(internal_rate_hz),
      quality_(resampler_quality),
      clients_(std::move(clients)) {}

std::unique_ptr<agent::Agent> PipelineFactory::create() const {
  return std::make_unique<PipelineAgent>(spec_, rate_hz_, quality_, clients_);
}

}  // namespace voxbridge::pipeline
