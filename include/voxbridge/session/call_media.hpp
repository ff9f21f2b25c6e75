// The media core of one call, with no I/O: what happens to each message between the socket
// reader and the socket writer.
//
//   inbound:  audio payload -> G.711/slin decode -> resample to the internal rate -> agent
//   outbound: pacer tick -> playout queue -> resample to the leg rate -> slin bytes + header
//
// CallSession drives it from its io thread; tests drive it directly with a fake clock. All
// buffers and DSP state are created when the call's audio format becomes known; after that,
// on_audio() and on_tick() allocate nothing.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/audiosocket/protocol.hpp"
#include "voxbridge/playout/playout.hpp"
#include "voxbridge/recording/recorder.hpp"
#include "voxbridge/session/options.hpp"

namespace voxbridge::session {

using Clock = playout::Clock;

std::string_view codec_mode_name(CodecMode m);

/// What the leg actually carries, once its first audio arrived.
enum class LegCodec { unknown, slin, ulaw, alaw };
std::string_view leg_codec_name(LegCodec c);

struct MediaOptions {
  CodecMode codec = CodecMode::auto_detect;
  audio::G711Law auto_law = audio::G711Law::ulaw;
  int internal_rate_hz = 16000;
  int resampler_quality = 2;
  std::chrono::milliseconds playout_capacity{2000};
  std::chrono::milliseconds playout_low_watermark{200};
  std::chrono::milliseconds playout_high_watermark{1000};
  /// Send silence from the UUID on, before there is anything to say (Asterisk issue 2089 and the
  /// app's 2 s no-activity timeout).
  bool early_silence = true;
};

/// Counters for the end-of-call log line and metrics.
struct MediaStats {
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t dtmf_in = 0;
  std::uint64_t late_ticks = 0;
  std::uint64_t underruns = 0;
  std::uint64_t odd_payloads = 0;  ///< slin payloads with an odd byte count (last byte ignored)
  std::uint64_t format_changes = 0;
};

class CallMedia final : public agent::CallControl {
 public:
  /// Largest outbound frame: 20 ms at 192 kHz.
  static constexpr std::size_t kMaxFrameSamples = 3840;
  /// Largest message on_tick() returns.
  static constexpr std::size_t kMaxMessageBytes =
      audiosocket::kHeaderBytes + 2 * (kMaxFrameSamples + 8);

  CallMedia(const MediaOptions& options, std::unique_ptr<agent::Agent> agent);
  ~CallMedia() override;

  /// Replaces the agent (routing picks it once the UUID and the call's facts are known).
  /// Only before start().
  void set_agent(std::unique_ptr<agent::Agent> agent) { agent_ = std::move(agent); }
  /// Records the call from now on: the caller's audio and what is played, at the internal
  /// rate, on the call's clock (one tick per frame). Null stops (and closes) the recording.
  void set_recording(std::unique_ptr<recording::CallRecording> rec) { rec_ = std::move(rec); }
  recording::CallRecording* recording() const { return rec_.get(); }
  /// The UUID arrived at `now`: the pacing timeline starts and the agent is told.
  void start(Clock::time_point now, const agent::CallInfo& info);
  /// One inbound audio message. Returns false only when the call must end (then `why` says why).
  bool on_audio(audiosocket::Kind kind, std::span<const std::uint8_t> payload, std::string& why);
  void on_dtmf(char digit);
  /// Timer wake-up: if a frame is due, returns it encoded (header + payload, valid until the
  /// next call); empty otherwise.
  std::span<const std::uint8_t> on_tick(Clock::time_point now);
  Clock::time_point next_deadline() const { return playout_.next_deadline(); }
  /// Moves the rest of the call's timeline by `d` (the session's PhaseAligner, a talkspurt).
  void shift_timeline(Clock::duration d) { playout_.shift_timeline(d); }
  /// Called when an agent queues audio outside a tick while the call plays silence (the last
  /// frame had no agent audio and nothing is queued): the start of a talkspurt, which the
  /// session may send at once instead of on the call's next tick. Once per talkspurt; never
  /// from inside on_tick() (audio queued there is a reply already playing, or an echo).
  void set_talkspurt_handler(std::function<void()> fn) { on_talkspurt_ = std::move(fn); }
  /// A talkspurt reported to the handler has not had its first tick yet.
  bool talkspurt_waiting() const { return talkspurt_waiting_; }
  /// The last frame held no agent audio and none is queued: the call is playing silence.
  bool playing_silence() const {
    return played_ && !last_frame_audio_ && playout_.queue().size() == 0;
  }
  /// Bytes of one inbound audio message of `frame` on the leg as seen so far (0 while unknown).
  std::size_t leg_bytes_for(std::chrono::milliseconds frame) const;
  /// The call is over; the agent hears it once.
  void end(std::string_view reason);

  bool hangup_requested() const { return hangup_req_.requested; }
  /// A requested hangup may go out now (its final audio, if any, has been played).
  bool hangup_due() const;
  const std::string& hangup_reason() const { return hangup_req_.reason; }

  /// A warning about the leg's format found by the last on_audio() (e.g. `auto` had to guess);
  /// the session logs it once and clears it.
  std::string take_format_note() { return std::exchange(format_note_, {}); }

  LegCodec leg_codec() const { return leg_.codec; }
  int leg_rate_hz() const { return leg_.rate; }
  audiosocket::Kind reply_kind() const { return leg_.reply_kind; }
  MediaStats stats() const;
  /// For `/status`: the agent's own word ("thinking"...), else "speaking" while reply audio
  /// is queued, else "listening".
  std::string_view agent_state() const;
  const playout::Playout& playout() const { return playout_; }

  // agent::CallControl
  std::size_t play(std::span<const std::int16_t> samples) override;
  void flush() override;
  void hangup(std::string_view reason, bool after_playout) override;
  int internal_rate_hz() const override { return options_.internal_rate_hz; }
  std::size_t queued_samples() const override { return playout_.queue().size(); }
  bool playout_full() const override { return playout_.queue().above_high_watermark(); }
  int caller_rate_hz() const override { return leg_.rate; }
  /// The leg's codec once its audio showed it; before, the listener's codec if it names G.711
  /// (its first audio will be read as that).
  std::string_view caller_codec() const override {
    if (leg_.codec != LegCodec::unknown) return leg_codec_name(leg_.codec);
    if (options_.codec == CodecMode::ulaw) return leg_codec_name(LegCodec::ulaw);
    if (options_.codec == CodecMode::alaw) return leg_codec_name(LegCodec::alaw);
    return {};
  }
  Poster poster() const override { return poster_ ? poster_ : agent::CallControl::poster(); }
  /// What poster() hands out (the session sets it; unset = run at once).
  void set_poster(Poster poster) { poster_ = std::move(poster); }

 private:
  bool set_format(audiosocket::Kind kind, std::size_t payload_bytes, std::string& why);
  std::span<const std::uint8_t> next_frame(Clock::time_point now);

  MediaOptions options_;
  std::unique_ptr<agent::Agent> agent_;
  playout::Playout playout_;
  bool started_ = false;
  bool ended_ = false;
  // Talkspurts: whether on_tick() is running, a frame has been played, the last one held agent
  // audio, and a talkspurt start has been reported and not yet played.
  bool in_tick_ = false;
  bool played_ = false;
  bool last_frame_audio_ = false;
  bool talkspurt_waiting_ = false;
  std::function<void()> on_talkspurt_;

  /// The leg's format as the caller's audio revealed it, and the resamplers between it and
  /// the internal rate.
  struct Leg {
    LegCodec codec = LegCodec::unknown;
    audiosocket::Kind in_kind = audiosocket::Kind::slin8;
    int rate = 8000;     // outbound rate; 8 kHz (0x10) until the caller's audio says otherwise
    int in_rate = 8000;  // the caller's audio, decoded
    audiosocket::Kind reply_kind = audiosocket::Kind::slin8;
    std::optional<audio::Resampler> in_rs;
    std::optional<audio::Resampler> out_rs;
  } leg_;

  /// The agent's hangup (hangup()), carried out by the session.
  struct HangupRequest {
    bool requested = false;
    bool after_playout = true;
    std::string reason;
  } hangup_req_;

  MediaStats stats_;
  std::unique_ptr<recording::CallRecording> rec_;
  std::string format_note_;

  /// (Re)sizes the working buffers for a leg at `leg_rate_hz`: one contiguous block, so a call
  /// keeps its per-frame working set in a page or two. Called at construction and when the
  /// leg's rate changes, never per frame.
  void size_buffers(int leg_rate_hz);

  // Working buffers, views into `block`. Inbound audio is decoded and resampled in 20 ms
  // chunks of the leg (a 30 ms frame is two chunks); outbound frames are 20 ms.
  struct Buffers {
    std::unique_ptr<std::int16_t[]> block;
    std::span<std::int16_t> leg_chunk;       // decoded leg audio, 20 ms at the leg rate
    std::span<std::int16_t> internal_chunk;  // that chunk at the internal rate
    std::span<std::int16_t> out_internal;    // one frame from the playout queue
    std::span<std::int16_t> out_leg;         // that frame at the leg rate
    std::span<std::uint8_t> tx;              // header + little-endian samples
  } buf_;
  Poster poster_;
};

}  // namespace voxbridge::session
