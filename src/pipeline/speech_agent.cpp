#include "voxbridge/pipeline/speech_agent.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/pipeline/action_event.hpp"
#include "voxbridge/pipeline/action_runner.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::pipeline {

namespace {

/// How long an agent may take to end its stream once the call is over.
constexpr std::chrono::milliseconds kCloseGrace{1000};

class SpeechAgent final : public agent::Agent {
 public:
  SpeechAgent(std::shared_ptr<const SpeechAgentSpec> spec, int rate_hz, int quality,
              std::shared_ptr<providers::ProviderClients> clients)
      : spec_(std::move(spec)),
        rate_hz_(rate_hz),
        clients_(std::move(clients)),
        to_agent_(rate_hz, spec_->input_rate_hz, quality),
        from_agent_(spec_->output_rate_hz, rate_hz, quality, false) {}
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
    if (counting_.m != nullptr) {
      counting_.slot = metrics::provider_slots().slot(spec_->agent.name);
      counting_.m->providers[counting_.slot].streams.add();
    }
    agent::v1::AgentConfig cfg;
    cfg.mutable_call()->set_call_id(info.uuid);
    cfg.mutable_call()->set_listener(info.listener);
    cfg.mutable_call()->set_language(spec_->language);
    cfg.mutable_input_format()->set_encoding(common::v1::LINEAR16);
    cfg.mutable_input_format()->set_sample_rate_hz(
        static_cast<std::uint32_t>(spec_->input_rate_hz));
    cfg.mutable_output_format()->set_encoding(common::v1::LINEAR16);
    cfg.mutable_output_format()->set_sample_rate_hz(
        static_cast<std::uint32_t>(spec_->output_rate_hz));
    for (const auto& [k, v] : spec_->options) (*cfg.mutable_options())[k] = v;
    auto w = std::weak_ptr<int>(alive_);
    providers::AgentEvents ev;
    ev.response = [this, w](agent::v1::AgentResponse& r) {
      if (w.lock()) on_response(r);
    };
    ev.closed = [this, w](const providers::StreamStatus& st) {
      if (w.lock()) on_closed(st);
    };
    try {
      stream_ = clients_->open_agent(spec_->agent, cfg, control.poster(), std::move(ev), 50);
    } catch (const std::exception& e) {
      fail(std::string("agent: ") + e.what());
      return;
    }
  }

  void on_audio(std::span<const std::int16_t> samples) override {
    if (!stream_ || done_) return;
    pcm_.resize(to_agent_.max_output(samples.size()));
    const std::size_t n = to_agent_.process(samples, pcm_);
    agent::v1::AgentRequest m;
    m.set_audio(pcm_.data(), n * 2);
    if (!stream_->send(std::move(m))) ++dropped_in_;
  }

  void on_dtmf(char digit) override {
    if (!stream_ || done_) return;
    agent::v1::AgentRequest m;
    m.mutable_event()->set_dtmf(std::string(1, digit));
    stream_->send(std::move(m));
  }

  void on_tick() override {
    feed_playout();
    // Marks whose audio has been played (nothing of it left in either queue).
    const std::uint64_t played = pushed_ - control_->queued_samples();
    while (!marks_.empty() && marks_.front().first <= played) {
      if (stream_) {
        agent::v1::AgentRequest m;
        m.mutable_event()->set_mark_played(marks_.front().second);
        stream_->send(std::move(m));
      }
      marks_.pop_front();
    }
    if (transfer_.action && transfer_.at <= played) {
      // The agent's words before the transfer ("Let me put you through") have been heard: go.
      const common::v1::Action a = std::move(*transfer_.action);
      transfer_.action.reset();
      transfer_.in_flight = true;
      runner_->run(a);  // without a control path its result comes back at once
    }
    // A transfer on its way must not race the socket's hangup (the dialplan would go on).
    if (hangup_when_drained_ && !transfer_.action && !transfer_.in_flight && out_.empty() &&
        control_->queued_samples() == 0) {
      hangup_when_drained_ = false;
      control_->hangup(hangup_reason_, true);
    }
  }

  void on_end(std::string_view) override {
    alive_.reset();
    if (runner_) runner_->stop();
    // The agent may still be owed the result of the action that ended the call (a transfer
    // without a control path hangs up right after it): let what is queued go out, then give
    // the agent a bounded moment to end its side.
    if (stream_) std::exchange(stream_, nullptr)->close(kCloseGrace);
    if (dropped_in_ > 0 || dropped_out_ > 0) {
      spdlog::warn("call uuid={}: agent stream dropped {} caller frames and {} ms of agent audio",
                   info_.uuid, dropped_in_, dropped_out_ * 1000 / static_cast<unsigned>(rate_hz_));
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
  };

  /// A transfer the agent asked for: it runs once the agent audio queued before it has played.
  struct PendingTransfer {
    std::optional<common::v1::Action> action;  // asked for, waiting for `at` to play
    std::uint64_t at = 0;                      // played position (as marks_)
    bool in_flight = false;                    // run, result not back yet
  };

  void on_response(agent::v1::AgentResponse& r) {
    switch (r.response_case()) {
      case agent::v1::AgentResponse::kAudio: {
        const std::string& b = r.audio();
        if (!counting_.first_audio && counting_.m != nullptr) {
          counting_.first_audio = true;
          const auto d = std::chrono::steady_clock::now() - counting_.started;
          counting_.m->first_agent_audio.observe(d);
          counting_.m->providers[counting_.slot].latency.observe(d);
        }
        in_pcm_.resize(b.size() / 2);
        std::memcpy(in_pcm_.data(), b.data(), in_pcm_.size() * 2);
        const std::size_t at = out_.size();
        out_.resize(at + from_agent_.max_output(in_pcm_.size()));
        out_.resize(at + from_agent_.process(in_pcm_, {out_.data() + at, out_.size() - at}));
        const auto cap =
            static_cast<std::size_t>(spec_->max_buffered_audio.count() * rate_hz_ / 1000);
        if (out_.size() > cap) {
          dropped_out_ += out_.size() - cap;
          out_.resize(cap);
        }
        feed_playout();
        break;
      }
      case agent::v1::AgentResponse::kClear: {
        const std::size_t queued = control_->queued_samples();
        control_->flush();
        if (counting_.m != nullptr) counting_.m->barge_ins.add();
        note(events::barge_in(static_cast<std::int64_t>((queued + out_.size()) * 1000 /
                                                        static_cast<unsigned>(rate_hz_))));
        spdlog::info("call uuid={}: agent interrupted its reply ({} ms dropped)", info_.uuid,
                     (queued + out_.size()) * 1000 / static_cast<unsigned>(rate_hz_));
        pushed_ -= queued;  // what was flushed never plays
        out_.clear();
        from_agent_.reset();
        // Marks (and a transfer) behind the dropped audio are reached now.
        for (auto& m : marks_) m.first = std::min<std::uint64_t>(m.first, pushed_);
        transfer_.at = std::min(transfer_.at, pushed_);
        break;
      }
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
        marks_.emplace_back(pushed_ + out_.size(), r.mark().id());
        break;
      case agent::v1::AgentResponse::kEnd:
        done_ = true;
        hangup_after_playout(r.end().reason().empty() ? "agent ended the call" : r.end().reason());
        break;
      default:
        break;
    }
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
      transfer_.at = pushed_ + out_.size();
      return;
    }
    runner_->run(a);
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
    out_ = default_fallback_prompt(rate_hz_);
    feed_playout();
    hangup_after_playout("provider failure");
  }

  void feed_playout() {
    std::size_t at = 0;
    while (at < out_.size() && !control_->playout_full()) {
      const std::size_t n = control_->play({out_.data() + at, out_.size() - at});
      if (n == 0) break;
      at += n;
    }
    pushed_ += at;
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(at));
  }

  std::shared_ptr<const SpeechAgentSpec> spec_;
  int rate_hz_;
  std::shared_ptr<providers::ProviderClients> clients_;
  agent::CallControl* control_ = nullptr;
  agent::CallInfo info_;
  Counting counting_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::shared_ptr<providers::AgentStream> stream_;
  audio::Resampler to_agent_;
  audio::Resampler from_agent_;
  std::vector<std::int16_t> pcm_, in_pcm_, out_;
  std::uint64_t pushed_ = 0;  // samples handed to playout (minus flushed ones)
  std::deque<std::pair<std::uint64_t, std::uint64_t>> marks_;  // (played position, id)
  bool done_ = false;
  bool hangup_when_drained_ = false;
  std::optional<ActionRunner> runner_;  // from on_start; uses info_
  PendingTransfer transfer_;
  std::string hangup_reason_;
  std::uint64_t dropped_in_ = 0;
  std::uint64_t dropped_out_ = 0;
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
