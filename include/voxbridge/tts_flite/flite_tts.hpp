// Built-in text to speech: Flite (CMU's small synthesizer, from Debian's flite1-dev) with its
// "slt" US English voice, served over the project's TTS contract (voxbridge.tts.v1.Synthesizer).
//
// Each text chunk of a stream is synthesized as it arrives (so the first sentence plays while
// the LLM still writes the next), resampled from the voice's 16 kHz to the rate the client asks
// for, and sent in 100 ms messages followed by ChunkDone. Synthesis runs on gRPC's threads,
// never on voxbridge's io threads.
//
// One synthesis runs at a time: the voices draw their unvoiced noise from the process-wide
// rand(), seeded per synthesis so that the same text always gives the same audio. That order
// is earliest deadline first: a reply's first sentence (needed now) goes before the later
// sentences of other replies (needed once the audio before them has played), so under load a
// caller waits for the first words of the replies ahead, not for whole replies. Sentences the
// agent says again and again (greeting, menu, fallback) come from a cache of their audio.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "voxbridge/tts/v1/tts.grpc.pb.h"

namespace voxbridge::tts_flite {

/// Lets one holder in at a time; among those waiting, the earliest deadline goes first (ties in
/// arrival order). Thread-safe.
class DeadlineGate {
 public:
  using Clock = std::chrono::steady_clock;
  /// Held while inside; leaving lets the next one in.
  class Pass {
   public:
    explicit Pass(DeadlineGate& g) : g_(&g) {}
    Pass(Pass&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    Pass& operator=(Pass&&) = delete;
    ~Pass() {
      if (g_ != nullptr) g_->leave();
    }

   private:
    DeadlineGate* g_;
  };
  /// Blocks until it is this caller's turn.
  Pass enter(Clock::time_point deadline);
  /// Callers waiting now (for tests and metrics).
  std::size_t waiting() const;

 private:
  void leave();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool busy_ = false;
  std::uint64_t arrivals_ = 0;
  std::set<std::pair<Clock::time_point, std::uint64_t>> waiting_;
};

/// The Flite engine: thread-safe, one synthesis at a time (earliest deadline first), with a
/// least-recently-used cache of the audio of recent texts.
class FliteEngine {
 public:
  using Clock = DeadlineGate::Clock;
  static constexpr int kRateHz = 16000;  ///< what synthesize() returns, whatever the voice
  /// The voices Debian's flite1-dev ships: slt (female, the default), rms, awb (male), kal16,
  /// kal (male diphone; kal is 8 kHz).
  static const std::vector<std::string>& voices();
  static bool has_voice(const std::string& name);

  /// Registers the default voice (once per process). `cache_bytes` bounds the cached audio
  /// (0 = no cache; 16 MiB holds about 9 minutes of speech).
  explicit FliteEngine(std::size_t cache_bytes = 16u << 20);
  /// Speech for `text` in `voice` (empty = slt) at kRateHz; empty for text with nothing to
  /// say. `needed_by` orders the waiting syntheses (the default: now). Throws
  /// std::invalid_argument for an unknown voice.
  std::vector<std::int16_t> synthesize(const std::string& text, const std::string& voice = {},
                                       Clock::time_point needed_by = Clock::now());

  struct Stats {
    std::uint64_t syntheses = 0;  ///< texts Flite spoke
    std::uint64_t cache_hits = 0;
    std::size_t cached_bytes = 0;
  };
  Stats stats() const;

 private:
  using Audio = std::shared_ptr<const std::vector<std::int16_t>>;
  using Key = std::pair<std::string, std::string>;  // voice, text
  Audio cached(const Key& k);
  void keep(const Key& k, Audio a);

  DeadlineGate gate_;
  const std::size_t cache_bytes_;
  mutable std::mutex cache_mu_;
  std::list<std::pair<Key, Audio>> lru_;  // most recently used first
  std::map<Key, std::list<std::pair<Key, Audio>>::iterator> index_;
  Stats stats_;
};

class FliteSynthesizer final : public tts::v1::Synthesizer::Service {
 public:
  explicit FliteSynthesizer(FliteEngine& engine) : engine_(engine) {}
  grpc::Status StreamingSynthesize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<tts::v1::SynthesizeResponse, tts::v1::SynthesizeRequest>* stream)
      override;

 private:
  FliteEngine& engine_;
};

}  // namespace voxbridge::tts_flite
