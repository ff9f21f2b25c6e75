#include "voxbridge/pipeline/speech_agent.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "voxbridge/agent/tools.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/pipeline/action_event.hpp"
#include "voxbridge/pipeline/action_runner.hpp"
#include "voxbridge/pipeline/agent_audio.hpp"
#include "voxbridge/pipeline/hold_music.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::pipeline {

namespace {

/// How long an agent may take to end its stream once the call is over.
constexpr std::chrono::milliseconds kCloseGrace{1000};
/// With leg_codec, the stream opens at the caller's first audio (which tells the leg's codec) or,
/// if none came, at this tick (20 ms each) after the start, with the LINEAR16 formats.
constexpr int kOpenWithoutAudioTicks = 5;
/// DTMF digits held for the agent until its stream opens (more are dropped).
constexpr std::size_t kMaxEarlyDigits = 32;
/// A filler is fed to playout this far ahead of what plays, so that it stops within this much
/// once the tool's result is back (its queued part plays out; nothing else is dropped).
constexpr std::chrono::milliseconds kFillerLead{60};
/// Tool calls the agent may have waiting for their results at once; more are refused.
constexpr std::size_t kMaxToolsWaiting = 16;

AgentAudio::Options audio_options(const SpeechAgentSpec& s, int rate_hz, int quality) {
  AgentAudio::Options o;
  o.internal_rate_hz = rate_hz;
  o.input_rate_hz = s.input_rate_hz;
  o.output_rate_hz = s.output_rate_hz;
  o.quality = quality;
  o.leg_codec = s.leg_codec.value_or(false);
  o.echo_gate = s.echo_gate;
  o.echo_ratio = s.echo_ratio;
  o.echo_window = s.echo_window;
  return o;
}

class SpeechAgent final : public agent::Agent {
 public:
  SpeechAgent(std::shared_ptr<const SpeechAgentSpec> spec, int rate_hz, int quality,
              std::shared_ptr<providers::ProviderClients> clients)
      : spec_(std::move(spec)),
        rate_hz_(rate_hz),
        clients_(std::move(clients)),
        audio_(audio_options(*spec_, rate_hz, quality)) {}
  // A call torn down without on_end still ends its stream (see ChannelPool::wait_unused).
  ~SpeechAgent() override {
    if (stream_) stream_->cancel();
  }

  void on_start(agent::CallControl& control, const agent::CallInfo& info) override {
    control_ = &control;
    info_ = info;
    counting_.m = info.metrics;
    counting_.started = std::chrono::steady_clock::now();
    // transfer_without_control: there is no transfer_fallback for s2s agents; a transfer the
    // allowlists let through always ends the socket so that the dialplan continues.
    runner_.emplace(info_, control.poster(), ActionRunner::Options{},
                    [this](const ActionRunner::Result& r) { on_action_result(r); });
    moh_.emplace(info_, control.poster());
    if (counting_.m != nullptr) counting_.slot = metrics::provider_slots().slot(spec_->agent.name);
    // Without leg_codec the formats do not depend on the leg: the stream opens at once; nor
    // when the listener already says the leg is G.711 (codec = ulaw / alaw).
    if (!spec_->leg_codec.value_or(false) || !control.caller_codec().empty()) open();
  }

  void on_leg_audio(std::span<const std::int16_t> samples, int rate_hz) override {
    if (!opening_.opened) open();  // the leg's codec is known now
    if (!stream_ || done_) return;
    std::string_view b;
    if (audio_.caller_leg(samples, rate_hz, control_->queued_samples(), b)) send_audio(b);
  }

  void on_audio(std::span<const std::int16_t> samples) override {
    if (!stream_ || done_) return;
    std::string_view b;
    if (audio_.caller(samples, control_->queued_samples(), b)) send_audio(b);
  }

  void on_dtmf(char digit) override {
    if (!opening_.opened) {
      if (opening_.digits.size() < kMaxEarlyDigits) opening_.digits += digit;
      return;
    }
    if (!stream_ || done_) return;
    agent::v1::AgentRequest m;
    m.mutable_event()->set_dtmf(std::string(1, digit));
    stream_->send(std::move(m));
  }

  void on_tick() override {
    if (!opening_.opened && ++opening_.ticks >= kOpenWithoutAudioTicks) open();
    feed_playout();
    tick_filler();
    const std::uint64_t played = play_.pushed - control_->queued_samples();
    report_marks(played);
    if (transfer_.action && transfer_.at <= played) {
      // The agent's words before the transfer ("Let me put you through") have been heard: go.
      const common::v1::Action a = std::move(*transfer_.action);
      transfer_.action.reset();
      transfer_.in_flight = true;
      if (moh_) moh_->stop();  // (before the caller leaves Stasis: ARI requests go in order)
      runner_->run(a);         // without a control path its result comes back at once
    }
    // A transfer on its way must not race the socket's hangup (the dialplan would go on).
    if (hangup_when_drained_ && !transfer_.action && !transfer_.in_flight && play_.out.empty() &&
        control_->queued_samples() == 0) {
      hangup_when_drained_ = false;
      control_->hangup(hangup_reason_, true);
    }
  }

  void on_end(std::string_view) override {
    alive_.reset();
    opening_.opened = true;  // a call over before its stream opened never opens one
    if (runner_) runner_->stop();
    if (moh_) moh_->stop();
    // Tool results still owed are dropped (the stream is closing); their requests cancelled.
    if (info_.tools) info_.tools->stop();
    if (const auto& u = counting_.usage) {
      note(events::usage(u->input_tokens(), u->output_tokens(), u->input_audio_ms(),
                         u->output_audio_ms()));
    }
    // The agent may still be owed the result of the action that ended the call (a transfer
    // without a control path hangs up right after it): let what is queued go out, then give
    // the agent a bounded moment to end its side.
    if (stream_) std::exchange(stream_, nullptr)->close(kCloseGrace);
    if (dropped_in_ > 0 || play_.dropped > 0) {
      spdlog::warn("call uuid={}: agent stream dropped {} caller frames and {} ms of agent audio",
                   info_.uuid, dropped_in_, ms(play_.dropped));
    }
  }

 private:
  /// What the agent is counted by: the io thread's counters (null = not counted), its provider's
  /// slot in them, and when the stream started (for the latency of the first agent audio).
  struct Counting {
    metrics::AgentCounters* m = nullptr;
    std::size_t slot = 0;
    std::chrono::steady_clock::time_point started{};
    bool first_audio = false;
    std::optional<common::v1::Usage> usage;  // the latest the agent reported (cumulative)
  };

  /// The agent's audio on its way to the caller, in positions of samples at the internal rate
  /// handed to playout (minus flushed ones): what has played is pushed - queued_samples().
  struct Playback {
    std::vector<std::int16_t> out;  // agent audio not yet handed to playout
    std::uint64_t pushed = 0;       // samples handed to playout (minus flushed ones)
    std::deque<std::pair<std::uint64_t, std::uint64_t>> marks;  // (position, id), not reached
    std::pair<std::uint64_t, std::uint64_t> reached{0, 0};      // the last mark reached
    std::uint64_t dropped = 0;  // agent audio samples over max_buffered_audio
  };

  /// With leg_codec the stream waits for the leg's codec (see kOpenWithoutAudioTicks).
  struct Opening {
    bool opened = false;  // open() ran (or the call ended first)
    int ticks = 0;
    std::string digits;  // DTMF before the stream opened, sent right after its config
  };

  /// Business tool calls waiting for their results, and the filler the caller hears meanwhile:
  /// it starts `after` into the wait if nothing plays, and stops when the last result is back
  /// (or the agent speaks).
  struct ToolWait {
    std::size_t waiting = 0;          // calls run, results not back
    int ticks = 0;                    // since the wait began
    agent::CallTools::Filler filler;  // of the call that began the wait
    bool playing = false;
    bool played = false;  // once per wait
    std::size_t at = 0;   // samples of filler.audio handed to playout
  };

  /// A transfer the agent asked for: it runs once the agent audio queued before it has played.
  struct PendingTransfer {
    std::optional<common::v1::Action> action;  // asked for, waiting for `at` to play
    std::uint64_t at = 0;                      // played position (as Playback::marks)
    bool in_flight = false;                    // run, result not back yet
  };

  void on_response(agent::v1::AgentResponse& r) {
    switch (r.response_case()) {
      case agent::v1::AgentResponse::kAudio: {
        tools_.playing = false;  // the agent speaks: the filler (what is queued) gives way
        if (moh_) moh_->stop();
        if (!counting_.first_audio && counting_.m != nullptr) {
          counting_.first_audio = true;
          const auto d = std::chrono::steady_clock::now() - counting_.started;
          counting_.m->first_agent_audio.observe(d);
          counting_.m->providers[counting_.slot].latency.observe(d);
        }
        audio_.agent(r.audio(), play_.out);
        const auto cap =
            static_cast<std::size_t>(spec_->max_buffered_audio.count() * rate_hz_ / 1000);
        if (play_.out.size() > cap) {
          play_.dropped += play_.out.size() - cap;
          play_.out.resize(cap);
        }
        feed_playout();
        break;
      }
      case agent::v1::AgentResponse::kClear:
        on_clear();
        break;
      case agent::v1::AgentResponse::kTranscript:
        spdlog::debug(
            "call uuid={}: {} {}: {}", info_.uuid,
            r.transcript().speaker() == agent::v1::Transcript::CALLER ? "caller" : "agent",
            r.transcript().is_final() ? "said" : "is saying",
            logtext::log_text(r.transcript().text()));
        note(r.transcript().speaker() != agent::v1::Transcript::CALLER
                 ? events::agent_reply(r.transcript().text())
             : r.transcript().is_final() ? events::user(r.transcript().text())
                                         : events::interim(r.transcript().text()));
        if (counting_.m != nullptr && r.transcript().speaker() != agent::v1::Transcript::CALLER &&
            r.transcript().is_final()) {
          counting_.m->turns.add();
        }
        break;
      case agent::v1::AgentResponse::kAction:
        on_action(r.action());
        break;
      case agent::v1::AgentResponse::kMark:
        play_.marks.emplace_back(play_.pushed + play_.out.size(), r.mark().id());
        break;
      case agent::v1::AgentResponse::kUsage:
        take_usage(r.usage());
        break;
      case agent::v1::AgentResponse::kToolCall:
        on_tool_call(r.tool_call());
        break;
      case agent::v1::AgentResponse::kEnd:
        if (r.end().has_usage()) take_usage(r.end().usage());
        done_ = true;
        hangup_after_playout(r.end().reason().empty() ? "agent ended the call" : r.end().reason());
        break;
      default:
        break;
    }
  }

  /// The agent interrupted its reply: the caller's playout is flushed at once; the agent hears
  /// where playback stood (playback_cleared) before the mark_played events of the marks in the
  /// dropped audio, which follow at the next tick.
  void on_clear() {
    const std::size_t queued = control_->queued_samples();
    const std::uint64_t played = play_.pushed - queued;
    report_marks(played);  // reached since the last tick: they come first
    if (stream_) {
      agent::v1::AgentRequest m;
      auto* pc = m.mutable_event()->mutable_playback_cleared();
      pc->set_mark_id(play_.reached.second);
      pc->set_played_ms(static_cast<std::uint32_t>(ms(played - play_.reached.first)));
      stream_->send(std::move(m));
    }
    control_->flush();
    audio_.cleared();
    const std::uint64_t dropped_ms = ms(queued + play_.out.size());
    if (counting_.m != nullptr) counting_.m->barge_ins.add();
    note(events::barge_in(static_cast<std::int64_t>(dropped_ms)));
    spdlog::info("call uuid={}: agent interrupted its reply ({} ms dropped)", info_.uuid,
                 dropped_ms);
    play_.pushed -= queued;  // what was flushed never plays
    play_.out.clear();
    // Marks (and a transfer) behind the dropped audio are reached now.
    for (auto& m : play_.marks) m.first = std::min<std::uint64_t>(m.first, play_.pushed);
    transfer_.at = std::min(transfer_.at, play_.pushed);
  }

  /// Marks whose audio has been played (nothing of it left in either queue) by `played`.
  void report_marks(std::uint64_t played) {
    while (!play_.marks.empty() && play_.marks.front().first <= played) {
      play_.reached = play_.marks.front();
      if (stream_) {
        agent::v1::AgentRequest m;
        m.mutable_event()->set_mark_played(play_.marks.front().second);
        stream_->send(std::move(m));
      }
      play_.marks.pop_front();
    }
  }

  /// AgentResponse.usage or End.usage: cumulative, the latest counts; the metrics get what it
  /// adds to the one before.
  void take_usage(const common::v1::Usage& u) {
    if (counting_.m != nullptr) {
      const common::v1::Usage before = counting_.usage.value_or(common::v1::Usage{});
      auto add = [](metrics::Counter& c, std::uint64_t now, std::uint64_t was) {
        if (now > was) c.add(now - was);
      };
      add(counting_.m->input_tokens, u.input_tokens(), before.input_tokens());
      add(counting_.m->output_tokens, u.output_tokens(), before.output_tokens());
      add(counting_.m->input_audio_ms, u.input_audio_ms(), before.input_audio_ms());
      add(counting_.m->output_audio_ms, u.output_audio_ms(), before.output_audio_ms());
    }
    counting_.usage = u;
  }

  /// Opens the agent's stream with the formats the leg allows, then sends the DTMF that came
  /// before it.
  void open() {
    opening_.opened = true;
    audio_.choose(control_->caller_codec());
    if (counting_.m != nullptr) counting_.m->providers[counting_.slot].streams.add();
    agent::v1::AgentConfig cfg;
    auto* call = cfg.mutable_call();
    call->set_call_id(info_.uuid);
    call->set_listener(info_.listener);
    call->set_caller_number(info_.caller_number);
    call->set_caller_name(info_.caller_name);
    call->set_called_number(info_.called_number);
    call->set_language(spec_->language);
    for (const auto& [k, v] : info_.variables) (*call->mutable_metadata())[k] = v;
    *cfg.mutable_input_format() = audio_.input_format();
    *cfg.mutable_output_format() = audio_.output_format();
    for (const auto& [k, v] : spec_->options) (*cfg.mutable_options())[k] = v;
    if (info_.tools) {
      for (const auto& d : info_.tools->definitions()) *cfg.add_tools() = d;
    }
    auto w = std::weak_ptr<int>(alive_);
    providers::AgentEvents ev;
    ev.response = [this, w](agent::v1::AgentResponse& r) {
      if (w.lock()) on_response(r);
    };
    ev.closed = [this, w](const providers::StreamStatus& st) {
      if (w.lock()) on_closed(st);
    };
    try {
      stream_ = clients_->open_agent(spec_->agent, cfg, control_->poster(), std::move(ev), 50);
    } catch (const std::exception& e) {
      fail(std::string("agent: ") + e.what());
      return;
    }
    for (const char d : std::exchange(opening_.digits, {})) on_dtmf(d);
  }

  void send_audio(std::string_view bytes) {
    agent::v1::AgentRequest m;
    m.set_audio(bytes.data(), bytes.size());
    if (!stream_->send(std::move(m))) ++dropped_in_;
  }

  std::uint64_t ms(std::uint64_t samples) const {
    return samples * 1000 / static_cast<unsigned>(rate_hz_);
  }

  void note(events::Event e) {
    if (info_.transcript) info_.transcript(std::move(e));
  }

  void on_action(const common::v1::Action& a) {
    if (done_) return;  // the call is ending (or was transferred): nothing more to do to it
    if (a.has_hangup()) {
      runner_->record(a, "");
      done_ = true;
      hangup_after_playout(a.hangup().reason().empty() ? "agent hung up" : a.hangup().reason());
      return;
    }
    if (a.has_transfer()) {
      // After the agent audio queued before it has played (a later transfer replaces it).
      transfer_.action = a;
      transfer_.at = play_.pushed + play_.out.size();
      return;
    }
    runner_->run(a);
  }

  /// The agent's model asked for a business tool: it runs through the call's tools handle (which
  /// refuses a tool not offered), and its result goes back as CallEvent.tool_result, exactly
  /// once (refused at once when the call has no tools or too many wait).
  void on_tool_call(const common::v1::ToolCall& call) {
    if (!info_.tools || tools_.waiting >= kMaxToolsWaiting) {
      common::v1::ToolResult r;
      r.set_id(call.id());
      r.set_name(call.name());
      r.set_ok(false);
      r.set_output(!info_.tools ? "no business tools are available on this call"
                                : "too many tool calls are waiting for their results");
      send_tool_result(r);
      return;
    }
    if (tools_.waiting++ == 0) {
      tools_.ticks = 0;
      tools_.filler = info_.tools->filler(call.name());
      tools_.playing = tools_.played = false;
      tools_.at = 0;
    }
    auto w = std::weak_ptr<int>(alive_);
    info_.tools->run(call, [this, w](const common::v1::ToolResult& r) {
      if (!w.lock()) return;
      if (--tools_.waiting == 0) {
        tools_.playing = false;  // what is queued of it plays out
        if (moh_) moh_->stop();
      }
      send_tool_result(r);
    });
  }

  void send_tool_result(const common::v1::ToolResult& r) {
    if (!stream_) return;
    agent::v1::AgentRequest m;
    *m.mutable_event()->mutable_tool_result() = r;
    stream_->send(std::move(m));
  }

  /// Once per tick: starts the filler when a wait has lasted `after` with nothing playing, and
  /// keeps kFillerLead of it queued while it plays.
  /// In ARI mode a tool with a music-on-hold class gets Asterisk's music instead (the phrase if
  /// Asterisk or the rules refuse it).
  void tick_filler() {
    if (tools_.waiting == 0 || done_) return;
    ++tools_.ticks;
    auto& f = tools_.filler;
    if (!tools_.playing) {
      if (tools_.played || f.after.count() <= 0 ||
          std::chrono::milliseconds(20 * tools_.ticks) < f.after || !play_.out.empty() ||
          control_->queued_samples() > 0) {
        return;
      }
      if (!f.moh_class.empty() && moh_ && moh_->available()) {
        tools_.played = true;  // once per wait
        moh_->start(f.moh_class, [this](const std::string& why) {
          spdlog::warn("call uuid={}: no music on hold ({}); the filler phrase instead", info_.uuid,
                       logtext::log_text(why, 200));
          if (tools_.waiting == 0) return;
          tools_.filler.moh_class.clear();
          tools_.played = false;  // the next tick plays the phrase
        });
        return;
      }
      if (!f.audio || f.audio->empty()) return;
      tools_.playing = tools_.played = true;
      tools_.at = 0;
    }
    const auto lead = static_cast<std::size_t>(kFillerLead.count() * rate_hz_ / 1000);
    const auto& a = *f.audio;
    while (tools_.at < a.size() && control_->queued_samples() < lead) {
      const std::size_t want = std::min(lead - control_->queued_samples(), a.size() - tools_.at);
      const std::size_t n = control_->play({a.data() + tools_.at, want});
      if (n == 0) break;
      audio_.played({a.data() + tools_.at, n});
      play_.pushed += n;
      tools_.at += n;
    }
    if (tools_.at >= a.size()) tools_.playing = false;  // said once, in full
  }

  /// An action's outcome: the agent hears it as an action_result event on its stream (ok/error
  /// as the pipeline tells its LLM), then the call does what the runner says.
  void on_action_result(const ActionRunner::Result& r) {
    if (r.action.has_transfer()) transfer_.in_flight = false;
    if (stream_) {
      agent::v1::AgentRequest m;
      auto* res = m.mutable_event()->mutable_action_result();
      *res->mutable_action() = r.action;
      res->set_ok(r.error.empty());
      res->set_error(r.error);
      stream_->send(std::move(m));
    }
    switch (r.next) {
      case ActionRunner::Next::go_on:
        break;
      case ActionRunner::Next::transferred:
        // Asterisk moves the caller and the AudioSocket closes; the agent has nothing more to
        // do with this call (its stream ending is no failure now).
        done_ = true;
        hangup_when_drained_ = false;
        break;
      case ActionRunner::Next::hang_up:
        if (done_) break;  // already ending (the agent's End, a failure): that hangup stands
        done_ = true;
        hangup_after_playout("transfer to " + r.action.transfer().target());
        break;
      case ActionRunner::Next::give_up:
        if (done_) break;
        fail("the agent asked for " + std::to_string(runner_->refused_transfers()) +
             " transfers that failed or were refused");
        break;
    }
  }

  void on_closed(const providers::StreamStatus& st) {
    stream_.reset();
    if (done_ || st.cancelled()) return;
    if (st.ok()) {
      hangup_after_playout("agent stream ended");
      return;
    }
    if (counting_.m != nullptr) counting_.m->providers[counting_.slot].errors.add();
    fail("agent stream failed: " + st.message);
  }

  void hangup_after_playout(std::string reason) {
    hangup_reason_ = std::move(reason);
    hangup_when_drained_ = true;
  }

  void fail(const std::string& why) {
    done_ = true;
    transfer_.action.reset();
    if (counting_.m != nullptr) counting_.m->fallbacks.add();
    spdlog::warn("call uuid={}: {}; playing the fallback prompt and hanging up", info_.uuid,
                 logtext::log_text(why));
    control_->flush();
    play_.out = default_fallback_prompt(rate_hz_);
    feed_playout();
    hangup_after_playout("provider failure");
    if (!spec_->failure_transfer.empty() && runner_) {
      // After the prompt, the configured transfer instead of the hangup (if it goes through;
      // refused, the hangup above stands).
      common::v1::Action a;
      a.mutable_transfer()->set_target(spec_->failure_transfer);
      a.mutable_transfer()->set_context(spec_->failure_context);
      transfer_.action = std::move(a);
      transfer_.at = play_.pushed + play_.out.size();
    }
  }

  void feed_playout() {
    auto& out = play_.out;
    std::size_t at = 0;
    while (at < out.size() && !control_->playout_full()) {
      const std::size_t n = control_->play({out.data() + at, out.size() - at});
      if (n == 0) break;
      audio_.played({out.data() + at, n});
      at += n;
    }
    play_.pushed += at;
    out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(at));
  }

  std::shared_ptr<const SpeechAgentSpec> spec_;
  int rate_hz_;
  std::shared_ptr<providers::ProviderClients> clients_;
  agent::CallControl* control_ = nullptr;
  agent::CallInfo info_;
  Counting counting_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::shared_ptr<providers::AgentStream> stream_;
  AgentAudio audio_;
  Playback play_;
  Opening opening_;
  bool done_ = false;
  bool hangup_when_drained_ = false;
  std::optional<ActionRunner> runner_;  // from on_start; uses info_
  PendingTransfer transfer_;
  ToolWait tools_;
  std::optional<HoldMusic> moh_;  // from on_start; uses info_
  std::string hangup_reason_;
  std::uint64_t dropped_in_ = 0;
};

}  // namespace

SpeechAgentFactory::SpeechAgentFactory(SpeechAgentSpec spec, int internal_rate_hz,
                                       int resampler_quality,
                                       std::shared_ptr<providers::ProviderClients> clients)
    : spec_(std::make_shared<const SpeechAgentSpec>(std::move(spec))),
      rate_hz_(internal_rate_hz),
      quality_(resampler_quality),
      clients_(std::move(clients)) {}

std::unique_ptr<agent::Agent> SpeechAgentFactory::create() const {
  return std::make_unique<SpeechAgent>(spec_, rate_hz_, quality_, clients_);
}

}  // namespace voxbridge::pipeline
