// Metrics without contention: counters, gauges and latency histograms that ONE thread writes
// (the io thread that owns the calls, or the acceptor) and any thread reads, plus a writer for
// the Prometheus text exposition format (version 0.0.4).
//
// Each io thread keeps its own set of cells; a scrape sums the sets. A write is a relaxed load
// and store of the thread's own cache line (no lock prefix, no shared line), so the per-frame
// path can count freely; a reader sees each cell whole (std::atomic), and totals that are at
// most a few increments behind. Never write one cell from two threads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace voxbridge::metrics {

/// A monotonically increasing count, written by its owner thread only.
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// A level that goes up and down (sockets in a state), written by its owner thread only; the
/// sum over threads is the process's level.
class Gauge {
 public:
  void add(std::int64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

/// A latency histogram with fixed bucket bounds (seconds), written by its owner thread only.
/// The bounds cover what a phone call cares about: 5 ms (a frame is 20) to 10 s.
class Histogram {
 public:
  static constexpr std::array<double, 15> kBounds = {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5,
                                                     0.75,  1.0,  1.5,  2.0,  3.0, 5.0, 10.0};
  static constexpr std::size_t kBuckets = kBounds.size() + 1;  // the last is +Inf

  void observe(std::chrono::nanoseconds d) noexcept;
  void observe_seconds(double s) noexcept;

  /// A consistent-enough copy for one scrape (several histograms may be merged into it).
  struct Snapshot {
    std::array<std::uint64_t, kBuckets> counts{};  ///< per bucket, not cumulative
    std::uint64_t count = 0;
    double sum_seconds = 0;
    void merge(const Histogram& h) noexcept;
  };

 private:
  std::array<Counter, kBuckets> counts_;
  Counter sum_us_;  // microseconds: integral cells stay exact under relaxed stores
};

/// Names that label metrics (providers), registered at configuration time and never removed;
/// the per-thread cells are fixed arrays indexed by slot. Thread-safe.
class Slots {
 public:
  static constexpr std::size_t kMax = 64;
  /// The slot of `name`, registering it if new; kMax - 1 ("other") once full.
  std::size_t slot(std::string_view name);
  /// Names by slot, for a scrape.
  std::vector<std::string> names() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> names_;
};

/// The process's provider names ([provider-NAME] sections, by slot).
Slots& provider_slots();

/// One gRPC provider, as the calls of one io thread used it.
struct ProviderCounters {
  Counter streams;    ///< streams opened
  Counter errors;     ///< streams that ended with an error status
  Histogram latency;  ///< request (or end of speech, for ASR) -> first useful response
};

/// What conversational agents (pipeline, speech-to-speech) count, per io thread: the turn's
/// phases as the issue names them, and their providers by metrics::provider_slots() slot.
struct AgentCounters {
  Histogram asr_final;          ///< caller's speech end -> ASR final transcript
  Histogram llm_first_token;    ///< ASR final -> LLM first token
  Histogram tts_first_audio;    ///< LLM first token -> TTS first audio
  Histogram first_frame;        ///< TTS first audio -> first reply frame queued to play
  Histogram voice_to_voice;     ///< caller's speech end -> first reply frame (the whole turn)
  Histogram first_agent_audio;  ///< call start -> the agent's first audio (greeting)
  Histogram barge_in;           ///< caller starts speaking over the agent -> agent audio cut
  Counter turns;
  Counter barge_ins;
  Counter fallbacks;  ///< calls that played the fallback prompt (providers failed)
  // What speech-to-speech agents reported their conversations used (AgentResponse.usage).
  Counter input_tokens;
  Counter output_tokens;
  Counter input_audio_ms;   ///< caller audio the provider took
  Counter output_audio_ms;  ///< audio the provider sent back
  std::array<ProviderCounters, Slots::kMax> providers;
};

/// Writes the Prometheus text format. Label values are escaped; names are trusted (code).
class Writer {
 public:
  /// Starts a metric family: `# HELP` and `# TYPE` (counter, gauge or histogram).
  void family(std::string_view name, std::string_view type, std::string_view help);
  /// One sample. `labels` are name/value pairs, e.g. {{"listener", "main"}}.
  void sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  /// The _bucket (cumulative, with le), _sum and _count lines of a histogram.
  void histogram(std::string_view name,
                 std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                 const Histogram::Snapshot& h);
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void labels(std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::string_view extra_name = {}, std::string_view extra_value = {});
  void number(double v);
  std::string out_;
};

/// Content-Type of the text format.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace voxbridge::metrics
