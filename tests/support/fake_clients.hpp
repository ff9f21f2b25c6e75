// Fakes for unit tests of the conversation layer: provider clients driven by hand, a poster
// that runs what was posted only when the test says so, and a CallControl with a real bounded
// playout queue that the test drains frame by frame. No sockets, no threads, no clock.
//
// A test plays the provider: it reads what the code under test sent on a stream (config,
// audio, text, finish/cancel/pause/resume) and answers through the stream's drive methods.
// Answers are posted through the Poster the stream was opened with, never delivered inside a
// call, as the real clients do; ManualPoster::run() delivers them. `closed` is posted exactly
// once and last: by close(), or by cancel() (kCancelled); a closed stream delivers nothing more.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::testing {

/// A queue of posted functions that run only in run(): the call's io thread, stepped by hand.
/// The poster it hands out stays valid after the ManualPoster is gone (posts are then dropped).
class ManualPoster {
 public:
  ManualPoster() : q_(std::make_shared<std::deque<std::function<void()>>>()) {}
  /// The function handed to the code under test (CallControl::poster(), open_*()).
  providers::Poster poster() const;
  /// Runs everything pending, including what is posted while running; returns how many ran.
  std::size_t run();
  std::size_t pending() const { return q_->size(); }

 private:
  std::shared_ptr<std::deque<std::function<void()>>> q_;
};

/// What every fake stream shares: the target it was opened for, its poster, and its end.
class FakeStreamBase {
 public:
  explicit FakeStreamBase(providers::ProviderTarget target, providers::Poster post)
      : target_(std::move(target)), post_(std::move(post)) {}
  const providers::ProviderTarget& target() const { return target_; }
  bool finished() const { return finished_; }
  bool cancelled() const { return cancelled_; }
  /// close() or cancel() happened: nothing more is delivered.
  bool closed() const { return closed_; }

 protected:
  providers::ProviderTarget target_;
  providers::Poster post_;
  bool finished_ = false;
  bool cancelled_ = false;
  bool closed_ = false;
};

class FakeAsrStream final : public providers::AsrStream,
                            public FakeStreamBase,
                            public std::enable_shared_from_this<FakeAsrStream> {
 public:
  FakeAsrStream(providers::ProviderTarget target, asr::v1::RecognitionConfig config,
                providers::Poster post, providers::AsrEvents events, std::size_t max_queued)
      : FakeStreamBase(std::move(target), std::move(post)),
        config_(std::move(config)),
        events_(std::move(events)),
        max_queued_(max_queued) {}

  // providers::AsrStream
  bool send_audio(std::span<const std::uint8_t> bytes) override;
  void finish() override { finished_ = true; }
  void cancel() override;
  std::uint64_t dropped() const override { return dropped_; }

  // What the code under test did.
  const asr::v1::RecognitionConfig& config() const { return config_; }
  std::size_t max_queued() const { return max_queued_; }
  /// Every audio message accepted, in order.
  const std::vector<std::vector<std::uint8_t>>& audio() const { return audio_; }
  /// The accepted audio as one LINEAR16 stream.
  std::vector<std::int16_t> pcm() const;
  /// Audio messages from now on are refused and counted as dropped (a slow provider).
  void refuse_audio(bool refuse) { refuse_ = refuse; }

  // The provider's side (posted).
  void speech_started(std::uint32_t offset_ms);
  void result(providers::AsrResult r);
  void result(std::string transcript, bool is_final);
  void end_of_utterance(std::uint32_t offset_ms);
  void close(providers::StreamStatus status = {});

 private:
  asr::v1::RecognitionConfig config_;
  providers::AsrEvents events_;
  std::size_t max_queued_;
  std::vector<std::vector<std::uint8_t>> audio_;
  bool refuse_ = false;
  std::uint64_t dropped_ = 0;
};

class FakeLlmTurn final : public providers::LlmTurn,
                          public FakeStreamBase,
                          public std::enable_shared_from_this<FakeLlmTurn> {
 public:
  FakeLlmTurn(providers::ProviderTarget target, llm::v1::TurnRequest request,
              providers::Poster post, providers::LlmEvents events)
      : FakeStreamBase(std::move(target), std::move(post)),
        request_(std::move(request)),
        events_(std::move(events)) {}

  void cancel() override;

  const llm::v1::TurnRequest& request() const { return request_; }

  void respond(llm::v1::TurnResponse r);
  void text(std::string delta);
  void action(common::v1::Action a);
  void end_of_turn();
  void close(providers::StreamStatus status = {});

 private:
  llm::v1::TurnRequest request_;
  providers::LlmEvents events_;
};

class FakeTtsStream final : public providers::TtsStream,
                            public FakeStreamBase,
                            public std::enable_shared_from_this<FakeTtsStream> {
 public:
  struct Text {
    std::string text;
    std::uint64_t chunk_id;
  };
  FakeTtsStream(providers::ProviderTarget target, tts::v1::SynthesisConfig config,
                providers::Poster post, providers::TtsEvents events, std::size_t max_queued)
      : FakeStreamBase(std::move(target), std::move(post)),
        config_(std::move(config)),
        events_(std::move(events)),
        max_queued_(max_queued) {}

  // providers::TtsStream
  bool send_text(const std::string& text, std::uint64_t chunk_id) override;
  void finish() override { finished_ = true; }
  void cancel() override;
  /// While paused, responses the test sends are held and delivered (posted) at resume_reads(),
  /// as flow control holds a provider's writes.
  void pause_reads() override;
  void resume_reads() override;

  const tts::v1::SynthesisConfig& config() const { return config_; }
  std::size_t max_queued() const { return max_queued_; }
  const std::vector<Text>& texts() const { return texts_; }
  bool paused() const { return paused_; }
  int pauses() const { return pauses_; }
  int resumes() const { return resumes_; }
  /// Responses held back by pause_reads().
  std::size_t held() const { return held_.size(); }

  void respond(tts::v1::SynthesizeResponse r);
  /// LINEAR16 audio, as the config's rate.
  void audio(std::span<const std::int16_t> pcm);
  void chunk_done(std::uint64_t chunk_id, std::uint32_t audio_ms);
  /// The stream ends; while paused, after the responses it holds (delivered at resume_reads()).
  void close(providers::StreamStatus status = {});

 private:
  void deliver(std::shared_ptr<tts::v1::SynthesizeResponse> r);
  void deliver_closed(providers::StreamStatus status);

  tts::v1::SynthesisConfig config_;
  providers::TtsEvents events_;
  std::size_t max_queued_;
  std::vector<Text> texts_;
  bool paused_ = false;
  int pauses_ = 0, resumes_ = 0;
  std::deque<std::shared_ptr<tts::v1::SynthesizeResponse>> held_;
  bool close_held_ = false;
  providers::StreamStatus held_status_;
};

class FakeAgentStream final : public providers::AgentStream,
                              public FakeStreamBase,
                              public std::enable_shared_from_this<FakeAgentStream> {
 public:
  FakeAgentStream(providers::ProviderTarget target, agent::v1::AgentConfig config,
                  providers::Poster post, providers::AgentEvents events, std::size_t max_queued)
      : FakeStreamBase(std::move(target), std::move(post)),
        config_(std::move(config)),
        events_(std::move(events)),
        max_queued_(max_queued) {}

  bool send(agent::v1::AgentRequest request) override;
  void finish() override { finished_ = true; }
  void cancel() override;
  /// Half-closes (like finish()) and notes the grace; the test ends the stream with end().
  void close(std::chrono::milliseconds grace) override {
    finished_ = true;
    grace_ = grace;
  }
  void pause_reads() override {
    paused_ = true;
    ++pauses_;
  }
  void resume_reads() override {
    paused_ = false;
    ++resumes_;
  }
  std::uint64_t dropped() const override { return 0; }

  const agent::v1::AgentConfig& config() const { return config_; }
  std::size_t max_queued() const { return max_queued_; }
  const std::vector<agent::v1::AgentRequest>& sent() const { return sent_; }
  bool paused() const { return paused_; }
  int pauses() const { return pauses_; }
  int resumes() const { return resumes_; }
  /// The grace close() was given; nullopt if it was not called.
  std::optional<std::chrono::milliseconds> grace() const { return grace_; }

  void respond(agent::v1::AgentResponse r);
  /// The agent ends the stream.
  void end(providers::StreamStatus status = {});

 private:
  agent::v1::AgentConfig config_;
  providers::AgentEvents events_;
  std::size_t max_queued_;
  std::vector<agent::v1::AgentRequest> sent_;
  bool paused_ = false;
  int pauses_ = 0, resumes_ = 0;
  std::optional<std::chrono::milliseconds> grace_;
};

/// Opens fake streams and keeps every one (in opening order) for the test to read and drive.
class FakeProviderClients final : public providers::ProviderClients {
 public:
  std::shared_ptr<providers::AsrStream> open_asr(const providers::ProviderTarget& target,
                                                 const asr::v1::RecognitionConfig& config,
                                                 providers::Poster post,
                                                 providers::AsrEvents events,
                                                 std::size_t max_queued) override;
  std::shared_ptr<providers::LlmTurn> open_llm(const providers::ProviderTarget& target,
                                               const llm::v1::TurnRequest& request,
                                               providers::Poster post,
                                               providers::LlmEvents events) override;
  std::shared_ptr<providers::TtsStream> open_tts(const providers::ProviderTarget& target,
                                                 const tts::v1::SynthesisConfig& config,
                                                 providers::Poster post,
                                                 providers::TtsEvents events,
                                                 std::size_t max_queued) override;
  std::shared_ptr<providers::AgentStream> open_agent(const providers::ProviderTarget& target,
                                                     const agent::v1::AgentConfig& config,
                                                     providers::Poster post,
                                                     providers::AgentEvents events,
                                                     std::size_t max_queued) override;

  /// The next open_*() throws std::runtime_error(`why`) (a stream that cannot be set up).
  void fail_next_open(std::string why) { fail_next_ = std::move(why); }

  const std::vector<std::shared_ptr<FakeAsrStream>>& asr() const { return asr_; }
  const std::vector<std::shared_ptr<FakeLlmTurn>>& llm() const { return llm_; }
  const std::vector<std::shared_ptr<FakeTtsStream>>& tts() const { return tts_; }
  const std::vector<std::shared_ptr<FakeAgentStream>>& agents() const { return agent_; }
  /// The last stream opened of each kind (the test fails if there is none).
  FakeAsrStream& last_asr() const;
  FakeLlmTurn& last_llm() const;
  FakeTtsStream& last_tts() const;

 private:
  void maybe_fail();

  std::string fail_next_;
  std::vector<std::shared_ptr<FakeAsrStream>> asr_;
  std::vector<std::shared_ptr<FakeLlmTurn>> llm_;
  std::vector<std::shared_ptr<FakeTtsStream>> tts_;
  std::vector<std::shared_ptr<FakeAgentStream>> agent_;
};

/// A control path (agent::CallActions) that keeps every request and its `done`, for the test to
/// call later, as the control thread would.
class FakeCallActions final : public agent::CallActions {
 public:
  struct Call {
    agent::ActionRequest request;
    std::function<void(std::string error)> done;
  };
  void run(const agent::ActionRequest& request,
           std::function<void(std::string error)> done) override {
    calls.push_back({request, std::move(done)});
  }
  bool describe(agent::CallInfo&) const override { return false; }

  std::vector<Call> calls;
};

/// A call's control with a bounded playout queue like the session's (capacity and high
/// watermark in ms at the internal rate; defaults as session::MediaOptions). tick() plays one
/// 20 ms frame, so a test hears exactly what the caller would.
class FakeCallControl final : public agent::CallControl {
 public:
  explicit FakeCallControl(ManualPoster& poster, int rate_hz = 16000, int capacity_ms = 2000,
                           int high_watermark_ms = 1000);

  // agent::CallControl
  std::size_t play(std::span<const std::int16_t> samples) override;
  void flush() override;
  void hangup(std::string_view reason, bool after_playout = true) override;
  int internal_rate_hz() const override { return rate_hz_; }
  std::size_t queued_samples() const override { return queue_.size(); }
  bool playout_full() const override { return queue_.size() >= high_; }
  int caller_rate_hz() const override { return caller_rate_; }
  std::string_view caller_codec() const override { return caller_codec_; }
  Poster poster() const override { return poster_.poster(); }

  /// What caller_rate_hz() says (0 = unknown, the default).
  void set_caller_rate(int rate) { caller_rate_ = rate; }
  /// What caller_codec() says ("" = unknown, the default; "slin", "ulaw", "alaw").
  void set_caller_codec(std::string codec) { caller_codec_ = std::move(codec); }
  /// One 20 ms frame leaves: the samples the caller hears (silence where the queue ran dry).
  std::vector<std::int16_t> tick();
  /// Every frame tick() played, in order.
  const std::vector<std::int16_t>& heard() const { return heard_; }
  std::size_t frame_samples() const { return frame_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t high_watermark() const { return high_; }
  int flushes() const { return flushes_; }
  /// Samples play() accepted in total.
  std::uint64_t accepted() const { return accepted_; }

  struct Hangup {
    std::string reason;
    bool after_playout;
  };
  const std::vector<Hangup>& hangups() const { return hangups_; }

 private:
  ManualPoster& poster_;
  int rate_hz_;
  std::size_t frame_, capacity_, high_;
  int caller_rate_ = 0;
  std::string caller_codec_;
  std::deque<std::int16_t> queue_;
  std::vector<std::int16_t> heard_;
  int flushes_ = 0;
  std::uint64_t accepted_ = 0;
  std::vector<Hangup> hangups_;
};

}  // namespace voxbridge::testing
