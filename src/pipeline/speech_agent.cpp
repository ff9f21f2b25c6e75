#include "voxbridge/pipeline/speech_agent.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <deque>
#include <vector>

#include "voxbridge/agent/v1/agent.grpc.pb.h"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/pipeline/action_event.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/providers/stream.hpp"

namespace voxbridge::pipeline {

namespace {

using Stream = providers::BidiStream<agent::v1::AgentRequest, agent::v1::AgentResponse>;

class SpeechAgent final : public agent::Agent {
 public:
  SpeechAgent(std::shared_ptr<const SpeechAgentSpec> spec, int rate_hz, int quality,
              std::shared_ptr<providers::ChannelPool> channels)
      : spec_(std::move(spec)),
        rate_hz_(rate_hz),
        channels_(std::move(channels)),
        to_agent_(rate_hz, spec_->input_rate_hz, quality),
        from_agent_(spec_->output_rate_hz, rate_hz, quality, false) {}
  // A call torn down without on_end still ends its stream (see ChannelPool::wait_unused).
  ~SpeechAgent() override {
    if (stream_) stream_->cancel();
  }

  void on_start(agent::CallControl& control, const agent::CallInfo& info) override {
    control_ = &control;
    info_ = info;
    m_ = info.metrics;
    started_ = std::chrono::steady_clock::now();
    if (m_ != nullptr) {
      slot_ = metrics::provider_slots().slot(spec_->agent.name);
      m_->providers[slot_].streams.add();
    }
    agent::v1::AgentRequest first;
    auto* cfg = first.mutable_config();
    cfg->mutable_call()->set_call_id(info.uuid);
    cfg->mutable_call()->set_listener(info.listener);
    cfg->mutable_call()->set_language(spec_->language);
    cfg->mutable_input_format()->set_encoding(common::v1::LINEAR16);
    cfg->mutable_input_format()->set_sample_rate_hz(
        static_cast<std::uint32_t>(spec_->input_rate_hz));
    cfg->mutable_output_format()->set_encoding(common::v1::LINEAR16);
    cfg->mutable_output_format()->set_sample_rate_hz(
        static_cast<std::uint32_t>(spec_->output_rate_hz));
    for (const auto& [k, v] : spec_->options) (*cfg->mutable_options())[k] = v;
    std::shared_ptr<agent::v1::Agent::Stub> stub;
    try {
      stub = agent::v1::Agent::NewStub(channels_->get(spec_->agent));
    } catch (const std::exception& e) {
      fail(std::string("agent: ") + e.what());
      return;
    }
    auto w = std::weak_ptr<int>(alive_);
    stream_ = Stream::start(
        [stub](grpc::ClientContext* c, Stream::Reactor* r) { stub->async()->Converse(c, r); }, stub,
        spec_->agent, std::move(first), control.poster(),
        [this, w](agent::v1::AgentResponse& r) {
          if (w.lock()) on_response(r);
        },
        [this, w](const grpc::Status& st) {
          if (w.lock()) on_closed(st);
        },
        50);
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
    if (hangup_when_drained_ && out_.empty() && control_->queued_samples() == 0) {
      hangup_when_drained_ = false;
      control_->hangup(hangup_reason_, true);
    }
  }

  void on_end(std::string_view) override {
    alive_.reset();
    if (stream_) stream_->cancel();
    if (dropped_in_ > 0 || dropped_out_ > 0) {
      spdlog::warn("call uuid={}: agent stream dropped {} caller frames and {} ms of agent audio",
                   info_.uuid, dropped_in_, dropped_out_ * 1000 / static_cast<unsigned>(rate_hz_));
    }
  }

 private:
  void on_response(agent::v1::AgentResponse& r) {
    switch (r.response_case()) {
      case agent::v1::AgentResponse::kAudio: {
        const std::string& b = r.audio();
        if (!first_audio_ && m_ != nullptr) {
          first_audio_ = true;
          const auto d = std::chrono::steady_clock::now() - started_;
          m_->first_agent_audio.observe(d);
          m_->providers[slot_].latency.observe(d);
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
        if (m_ != nullptr) m_->barge_ins.add();
        note(events::barge_in(static_cast<std::int64_t>((queued + out_.size()) * 1000 /
                                                        static_cast<unsigned>(rate_hz_))));
        spdlog::info("call uuid={}: agent interrupted its reply ({} ms dropped)", info_.uuid,
                     (queued + out_.size()) * 1000 / static_cast<unsigned>(rate_hz_));
        pushed_ -= queued;  // what was flushed never plays
        out_.clear();
        from_agent_.reset();
        // Marks behind the dropped audio are reached now.
        for (auto& m : marks_) m.first = std::min<std::uint64_t>(m.first, pushed_);
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
        if (m_ != nullptr && r.transcript().speaker() != agent::v1::Transcript::CALLER &&
            r.transcript().is_final()) {
          m_->turns.add();
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
    note(action_event(a, a.has_hangup() ? "" : "not configured: no Asterisk control path"));
    if (a.has_hangup()) {
      done_ = true;
      hangup_after_playout(a.hangup().reason().empty() ? "agent hung up" : a.hangup().reason());
      return;
    }
    spdlog::info("call uuid={}: agent action: not configured (no Asterisk control path)",
                 info_.uuid);
    agent::v1::AgentRequest m;
    auto* res = m.mutable_event()->mutable_action_result();
    *res->mutable_action() = a;
    res->set_ok(false);
    res->set_error("not configured: no Asterisk control path");
    if (stream_) stream_->send(std::move(m));
  }

  void on_closed(const grpc::Status& st) {
    stream_.reset();
    if (done_ || st.error_code() == grpc::StatusCode::CANCELLED) return;
    if (st.ok()) {
      hangup_after_playout("agent stream ended");
      return;
    }
    if (m_ != nullptr) m_->providers[slot_].errors.add();
    fail("agent stream failed: " + st.error_message());
  }

  void hangup_after_playout(std::string reason) {
    hangup_reason_ = std::move(reason);
    hangup_when_drained_ = true;
  }

  void fail(const std::string& why) {
    done_ = true;
    if (m_ != nullptr) m_->fallbacks.add();
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
  std::shared_ptr<providers::ChannelPool> channels_;
  agent::CallControl* control_ = nullptr;
  agent::CallInfo info_;
  metrics::AgentCounters* m_ = nullptr;  // the io thread's; null = not counted
  std::size_t slot_ = 0;
  std::chrono::steady_clock::time_point started_{};
  bool first_audio_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::shared_ptr<Stream> stream_;
  audio::Resampler to_agent_;
  audio::Resampler from_agent_;
  std::vector<std::int16_t> pcm_, in_pcm_, out_;
  std::uint64_t pushed_ = 0;  // samples handed to playout (minus flushed ones)
  std::deque<std::pair<std::uint64_t, std::uint64_t>> marks_;  // (played position, id)
  bool done_ = false;
  bool hangup_when_drained_ = false;
  std::string hangup_reason_;
  std::uint64_t dropped_in_ = 0;
  std::uint64_t dropped_out_ = 0;
};

}  // namespace

SpeechAgentFactory::SpeechAgentFactory(SpeechAgentSpec spec, int internal_rate_hz,
                                       int resampler_quality,
                                       std::shared_ptr<providers::ChannelPool> channels)
    : spec_(std::make_shared<const SpeechAgentSpec>(std::move(spec))),
      rate_hz_(internal_rate_hz),
      quality_(resampler_quality),
      channels_(std::move(channels)) {}

std::unique_ptr<agent::Agent> SpeechAgentFactory::create() const {
  return std::make_unique<SpeechAgent>(spec_, rate_hz_, quality_, channels_);
}

}  // namespace voxbridge::pipeline
