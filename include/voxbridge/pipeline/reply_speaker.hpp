// The pipeline's voice: the reply's text, split at sentence ends as the model writes it, spoken
// through one TTS stream per reply (retried once from the chunk it broke in), and its audio
// handed to the paced playout under the playout watermarks: TTS reads pause while audio waits
// here, so a provider faster than real time is held back by flow control, never buffered
// without bound. It knows what the caller has heard (the chunks played to their end) for
// barge-in, and keeps the peaks of what it played for the listener's echo gate.
//
// One per call, on the call's io thread. Stream events arrive through the call's Poster and are
// dropped once the reply they belong to is over (end, interrupt, cancel) or stop() ran.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/common/v1/common.pb.h"
#include "voxbridge/pipeline/caller_listener.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::pipeline {

class ReplySpeaker {
 public:
  struct Events {
    /// TTS sent the reply's first audio.
    std::function<void()> first_audio;
    /// TTS failed twice for this reply, or a stream could not be set up.
    std::function<void(std::string why)> failed;
  };
  /// What the caller heard of an interrupted reply.
  struct Heard {
    std::uint32_t ms = 0;  ///< of its audio played
    std::string text;      ///< the chunks played to their end
  };

  /// `spec` and `call` (the facts sent in each stream's config) must outlive the speaker.
  ReplySpeaker(const PipelineSpec& spec, int internal_rate_hz, int quality,
               std::shared_ptr<providers::ProviderClients> clients,
               const common::v1::CallInfo& call);
  ~ReplySpeaker();

  void start(agent::CallControl& control, std::string uuid, Events events,
             metrics::ProviderCounters* counters);

  /// A new reply: nothing of it spoken yet, no TTS stream.
  void begin();
  /// Streamed model text: each complete sentence is spoken.
  void text(std::string_view delta);
  /// What the splitter holds is spoken now (the text is complete, or an action follows).
  void flush_text();
  /// One piece spoken as it is (greeting, final words, goodbye).
  void say(const std::string& piece);
  /// No more text for this reply: its TTS stream ends once everything is spoken.
  void finish();
  /// Audio played as it is, replacing anything not yet queued (a WAV greeting, the fallback).
  void play(std::span<const std::int16_t> audio);
  /// The reply is over (played, interrupted or failed): late stream events are ignored.
  void end();

  /// Hands what fits to playout; TTS reads pause while audio waits here. Every tick and after
  /// new audio.
  void feed();
  /// Every 20 ms: a pending TTS retry goes when its backoff has passed.
  void tick();
  /// True once, on the tick after the reply's first audio went into an empty playout queue.
  bool take_first_frame();

  /// Everything this reply asked for was synthesized and played.
  bool done() const;
  /// The agent's voice is on the line or about to be.
  bool audible() const;
  /// Nothing of this reply waits to be synthesized or played (the reply may go on later:
  /// a tool's filler may be spoken now).
  bool idle() const;
  /// Barge-in: the playout queue is flushed and synthesis stops; what the caller heard.
  Heard interrupt();
  /// Synthesis stops and audio not yet queued is dropped (the playout queue is left alone).
  void cancel();
  /// The call is over: cancels, and no event is delivered any more.
  void stop();

  const FarEndPeaks& far() const { return far_; }
  /// Audio dropped beyond max_buffered_audio, in samples.
  std::uint64_t dropped_samples() const { return dropped_samples_; }
  /// Streams opened, characters of text sent on them (a retry's again) and audio received in
  /// ms: what a voice bills by.
  std::uint64_t streams_opened() const { return streams_opened_; }
  std::uint64_t characters_sent() const { return characters_sent_; }
  std::uint64_t received_ms() const {
    return received_samples_ * 1000 / static_cast<unsigned>(spec_.tts_rate_hz);
  }

 private:
  static constexpr std::uint64_t kNever = ~0ull;
  struct Chunk {
    std::uint64_t id;
    std::string text;
    std::uint32_t done_ms = 0;  // audio of the reply up to this chunk's end (0 = not yet)
  };

  bool open();
  void retry();
  void on_audio(tts::v1::SynthesizeResponse& r);
  void on_closed(const providers::StreamStatus& st);

  const PipelineSpec& spec_;
  int rate_hz_;
  std::shared_ptr<providers::ProviderClients> clients_;
  const common::v1::CallInfo& call_;
  agent::CallControl* control_ = nullptr;
  std::string uuid_;
  Events ev_;
  metrics::ProviderCounters* counters_ = nullptr;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  SentenceSplitter splitter_;
  audio::Resampler from_tts_;
  std::shared_ptr<providers::TtsStream> tts_;
  std::uint64_t gen_ = 0;  // bumped when a reply begins, ends or is cancelled
  /// The reply being spoken; begin() starts afresh.
  struct Reply {
    bool active = false;     // between begin() and end()
    bool finished = false;   // finish() was called: no more text
    bool tts_done = true;    // its stream (if any) ended well
    bool paused = false;     // TTS reads, while audio waits beyond the playout queue
    bool got_audio = false;  // TTS sent audio (first_audio was told)
    bool first_frame_due = false;
    std::vector<Chunk> chunks;
    std::uint64_t pushed = 0;         // its audio handed to playout
    std::size_t partial = 0;          // audio of the chunk being synthesized
    std::uint32_t base_ms = 0;        // its audio before the stream's first chunk
    int retries = 0;                  // of its TTS
    std::uint64_t retry_at = kNever;  // tick of the pending TTS retry
  } reply_;
  std::uint64_t next_chunk_ = 0;
  std::uint64_t tick_ = 0;
  std::vector<std::int16_t> out_, pcm_;  // out_: audio at the internal rate not yet queued
  std::size_t out_pos_ = 0;
  std::uint64_t dropped_samples_ = 0;
  std::uint64_t streams_opened_ = 0;
  std::uint64_t characters_sent_ = 0;
  std::uint64_t received_samples_ = 0;  // at the TTS rate
  FarEndPeaks far_;
};

}  // namespace voxbridge::pipeline
