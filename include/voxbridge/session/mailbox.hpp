// The way back to an io thread for work that completes on other threads (gRPC callbacks).
//
// Anything may hold a Mailbox (shared) longer than the calls it served: a provider stream ends
// on a gRPC thread after its call is gone. While open, post() queues the function for the io
// thread; once the server closes it (before its io_contexts are destroyed), posts are dropped.
//
// A busy io thread wakes every millisecond for its pacing clock anyway; waking it once more for
// every provider message (a TTS chunk, an ASR result) cost a context switch each. So a mailbox
// attached to its thread's clock lets the clock's next wake-up run what was posted, when that
// wake-up is at most kRideAlong away; otherwise (few calls, or none) it wakes the thread at
// once, as an Asio post, one wake-up for everything queued meanwhile.
//
// A function that throws stops only itself: drain() logs it, tells its owner (a call, which
// ends) and runs the rest of the batch.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace voxbridge::session {

class Mailbox : public std::enable_shared_from_this<Mailbox> {
 public:
  /// How far off the clock's next wake-up may be for a post to wait for it.
  static constexpr std::chrono::milliseconds kRideAlong{2};

  /// On whose behalf a function is posted (a call): told when that function throws.
  class Owner {
   public:
    /// On the io thread, inside drain(); ends the call. Must not throw.
    virtual void on_mailbox_error(std::exception_ptr error) noexcept = 0;

   protected:
    ~Owner() = default;
  };

  explicit Mailbox(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  /// `next_wake`: the steady-clock time (in ns since its epoch) at which the io thread's pacing
  /// clock will next run drain(), or INT64_MAX when it sleeps (PacingClock::next_wake()).
  /// Set before any post.
  void attach(const std::atomic<std::int64_t>* next_wake) { next_wake_ = next_wake; }

  /// Runs `fn` on the io thread later (from any thread), in the order posted; dropped if closed.
  /// If `fn` throws, `owner` (when still alive) is told.
  void post(std::function<void()> fn, std::weak_ptr<Owner> owner = {});
  /// Runs everything posted so far (io thread only; the pacing clock calls it). Never throws.
  void drain();
  /// No more posts reach the io thread (call before the io_context is destroyed); what is
  /// queued is dropped.
  void close();

  /// Asio posts made to wake the thread (for tests and metrics).
  std::uint64_t wakes() const { return wakes_.load(std::memory_order_relaxed); }
  /// Posted functions that threw (written by the io thread, read by any).
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    std::function<void()> fn;
    std::weak_ptr<Owner> owner;
  };
  void run(Job& job) noexcept;

  boost::asio::any_io_executor ex_;
  const std::atomic<std::int64_t>* next_wake_ = nullptr;
  std::mutex mu_;
  std::vector<Job> queue_;                // guarded by mu_
  std::vector<Job> running_;              // io thread only
  std::atomic<std::uint64_t> errors_{0};  // written by the io thread only
  bool open_ = true;                      // guarded by mu_
  bool wake_pending_ = false;             // guarded by mu_: a drain is posted to Asio
  std::atomic<std::uint64_t> wakes_{0};
};

}  // namespace voxbridge::session
