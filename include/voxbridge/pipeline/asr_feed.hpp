// The caller's words to the recognizer: one ASR stream per utterance (opened when the listener
// confirms speech, with the pre-roll before it), the audio resampled to the recognizer's rate,
// encoded (LINEAR16, MULAW or Opus) and sent in asr_chunk messages, and one retry of a stream
// that breaks mid-utterance with the utterance replayed from its start.
//
// One per call, on the call's io thread. Stream events arrive through the call's Poster and are
// dropped once stop() ran. audio() runs once per frame; after the first utterance it allocates
// only the provider message itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audio/opus.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/common/v1/common.pb.h"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/providers/clients.hpp"
#include "voxbridge/vad/vad.hpp"

namespace voxbridge::pipeline {

/// The current utterance as sent, so that a stream that breaks mid-utterance is retried with
/// the utterance from its start (up to asr_replay; beyond it, what follows the break).
class UtteranceReplay {
 public:
  explicit UtteranceReplay(std::size_t capacity) { whole_.reserve(capacity); }
  /// A new utterance.
  void begin();
  /// Audio sent to the recognizer.
  void sent(std::span<const std::int16_t> pcm);
  /// Audio that came while the stream is being retried.
  void held(std::span<const std::int16_t> pcm);
  /// What the retry sends: the utterance from its start, or only what followed the break.
  const std::vector<std::int16_t>& again() const { return whole_ok_ ? whole_ : after_; }
  bool whole() const { return whole_ok_; }
  /// The rate changed: what was kept is unusable.
  void invalidate() { whole_ok_ = false; }
  /// The retry has taken its audio.
  void clear_held() { after_.clear(); }

 private:
  std::vector<std::int16_t> whole_;  // capacity fixed: asr_replay
  bool whole_ok_ = false;            // whole_ holds the utterance from its start
  std::vector<std::int16_t> after_;  // audio during a retry's backoff, when whole_ is not whole
};

/// Caller audio as the recognizer takes it: resampled to its rate, encoded (LINEAR16, MULAW or
/// one Opus packet per message) and cut into asr_chunk messages.
class AsrEncoder {
 public:
  AsrEncoder(const PipelineSpec& spec, int quality, int src_rate);
  /// The rates in and out; a change resets the resampler. True if either changed.
  bool set_rates(int src_rate, int asr_rate);
  int src_rate() const { return src_rate_; }
  int asr_rate() const { return asr_rate_; }
  /// Samples per message at the recognizer's rate.
  std::size_t chunk() const;
  /// A new stream: nothing pending, a fresh Opus encoder.
  void begin();
  /// Resamples `samples` onto the pending message (`replay` keeps it too) and sends every full
  /// message to `to`.
  void add(std::span<const std::int16_t> samples, providers::AsrStream& to,
           UtteranceReplay& replay);
  /// Resamples `samples` into `out` (replacing it), without sending.
  void resample(std::span<const std::int16_t> samples, std::vector<std::int16_t>& out);
  /// Sends exactly `pcm` (at the recognizer's rate) as one message.
  void send(std::span<const std::int16_t> pcm, providers::AsrStream& to);
  /// Makes `pcm` (at the recognizer's rate) the pending message, to be completed by add().
  void pend(std::span<const std::int16_t> pcm) { pcm_.assign(pcm.begin(), pcm.end()); }
  /// Sends what is pending, if anything (an Opus packet is padded to a whole frame).
  void flush(providers::AsrStream& to);
  /// Drops what is pending.
  void clear() { pcm_.clear(); }

 private:
  const PipelineSpec& spec_;
  int quality_;
  int src_rate_, asr_rate_;
  audio::Resampler to_asr_;
  std::unique_ptr<audio::OpusEncoderStream> opus_;
  std::vector<std::int16_t> pcm_, rest_;  // pcm_: the message being filled
  std::vector<std::uint8_t> bytes_;       // one encoded message
};

class AsrFeed {
 public:
  using Clock = std::chrono::steady_clock;

  struct Events {
    /// Every interim and final result, as it comes.
    std::function<void(const providers::AsrResult&)> result;
    /// The utterance's stream ended: its final transcripts joined (possibly empty).
    std::function<void(std::string text)> utterance;
    /// The recognizer failed twice in a row, or a stream could not be set up.
    std::function<void(std::string why)> failed;
  };

  /// `spec` and `call` (the facts sent in each stream's config) must outlive the feed.
  AsrFeed(const PipelineSpec& spec, int internal_rate_hz, int quality,
          std::shared_ptr<providers::ProviderClients> clients, const common::v1::CallInfo& call);
  ~AsrFeed();

  /// The call has started: `control` (its leg rate and Poster) outlives the feed's use of it.
  void start(agent::CallControl& control, std::string uuid, Events events,
             metrics::ProviderCounters* counters);
  /// The caller's leg rate (first audio or a change): at or below the recognizer's rate, the
  /// leg's own audio is sent (no resampling up and back).
  void use_leg_rate(int rate);

  /// Speech started: a stream for the utterance, with the pre-roll first. Nothing if one is open
  /// or being retried.
  void open();
  /// One frame of caller audio (`leg` may be empty). `silence`: this frame held no voice; it goes
  /// out at once so the recognizer's endpointer is never kept waiting.
  void audio(std::span<const std::int16_t> leg, std::span<const std::int16_t> internal,
             bool silence);
  /// The listener's endpoint: the stream gets the rest and is finished.
  void speech_ended();
  /// Every 20 ms: a pending retry goes when its backoff has passed.
  void tick();

  /// A stream is open, or about to be reopened for the current utterance.
  bool hearing() const { return asr_ != nullptr || retry_at_ != kNever; }
  /// When the caller's speech ended (listener or recognizer), zero if not yet.
  Clock::time_point speech_end() const { return speech_end_; }
  /// Cancels the stream (fallback, hangup); no retry.
  void cancel();
  /// The call is over: cancels, and no event is delivered any more.
  void stop();
  /// Audio messages the streams dropped (slow provider).
  std::uint64_t dropped() const;
  /// Streams opened, and the caller audio sent on them in ms (a retry's replay again): what a
  /// recognizer bills by.
  std::uint64_t streams_opened() const { return streams_opened_; }
  std::uint64_t sent_ms() const { return sent_us_ / 1000; }

 private:
  static constexpr std::uint64_t kNever = ~0ull;
  static constexpr std::size_t kQueue = 50;  // audio messages a stream may hold back

  bool start_stream(std::size_t max_queued);
  void on_closed(const providers::StreamStatus& st);
  void retry();

  const PipelineSpec& spec_;
  int rate_hz_, quality_;
  std::shared_ptr<providers::ProviderClients> clients_;
  const common::v1::CallInfo& call_;
  agent::CallControl* control_ = nullptr;
  std::string uuid_;
  Events ev_;
  metrics::ProviderCounters* counters_ = nullptr;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  bool on_leg_ = false;  // the recognizer's audio is the leg's (its rate is the leg's)
  vad::PreRoll pre_roll_;
  std::vector<std::int16_t> scratch_;
  AsrEncoder encoder_;
  UtteranceReplay replay_;

  std::shared_ptr<providers::AsrStream> asr_;
  bool streaming_ = false;  // audio goes to asr_ (the utterance has not ended)
  std::uint64_t gen_ = 0;   // of the current stream: older streams' events are ignored
  std::uint64_t tick_ = 0;
  std::uint64_t retry_at_ = kNever;  // tick of the pending retry of a broken stream
  bool retry_ended_ = false;         // the utterance ended before (or during) the retry
  int failures_ = 0;                 // streams in a row that failed
  std::uint64_t dropped_ = 0;        // of streams already closed
  std::uint64_t streams_opened_ = 0;
  std::uint64_t sent_us_ = 0;  // caller audio sent, in microseconds
  std::string utterance_;      // final transcripts of the current stream
  Clock::time_point speech_end_{};
};

}  // namespace voxbridge::pipeline
