// Threads and sockets, knowing nothing of calls: one io_context per thread, and TCP listeners
// that hand each accepted socket, already bound to the next thread's io_context, to a callback.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace voxbridge::net {

/// N io_contexts, each run by its own thread (shared-nothing: a socket stays on its thread).
class IoPool {
 public:
  explicit IoPool(std::size_t threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  std::size_t size() const { return contexts_.size(); }
  boost::asio::io_context& context(std::size_t i) { return *contexts_[i]; }
  /// Round-robin choice for the next connection.
  std::size_t next_index();

  /// Starts the threads (returns at once). With `realtime_priority` 1..99 they run under
  /// SCHED_RR at that priority, so pacing ticks preempt ordinary work (recognizers, other
  /// processes) the moment they are due; threads they create get normal scheduling again.
  /// Returns why real-time scheduling was refused (typically EPERM without CAP_SYS_NICE or an
  /// RLIMIT_RTPRIO), empty if it was applied or not asked for; refused, the threads run normally.
  std::string start(int realtime_priority = 0);
  /// Lets the threads return once they have no more work, then joins them.
  void stop_when_idle();
  /// Stops the io_contexts now and joins the threads.
  void stop_now();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::optional<Guard>> guards_;
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;
};

/// Accepts TCP connections on one endpoint (accepts run on context 0 of the pool). A failed
/// accept (out of descriptors: EMFILE, ENFILE) is retried after 100 ms, logged at most once a
/// second and counted; the connections wait in the backlog meanwhile.
class Listener {
 public:
  /// Called on the accepting thread (context 0) with a socket bound to context `index`; the
  /// callee posts further work to the socket's executor.
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket, std::size_t index)>;

  /// Binds and listens now; throws boost::system::system_error with the address on failure.
  Listener(IoPool& pool, const std::string& host, unsigned short port, OnAccept on_accept,
           int backlog = 1024);
  void start();
  /// Stops accepting (safe from any thread).
  void stop();
  /// The port actually bound (useful with port 0).
  unsigned short port() const { return port_; }
  /// Accepts that failed and were retried (any thread).
  std::uint64_t accept_errors() const { return accept_errors_.load(std::memory_order_relaxed); }

  static constexpr std::chrono::milliseconds kRetryPause{100};

 private:
  void accept_one();
  void accept_failed(const boost::system::error_code& ec);
  IoPool& pool_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  OnAccept on_accept_;
  unsigned short port_;
  std::atomic<std::uint64_t> accept_errors_{0};
  std::chrono::steady_clock::time_point logged_{};
  std::uint64_t unlogged_ = 0;
};

/// Lowers the calling thread's CPU priority to `nice` (once per thread; never raises it), for
/// heavy work that shares the cores with the io threads: the built-in speech recognition and
/// synthesis. Under overload their replies then come later, while every call's frames keep
/// their time. Needs no privilege. Returns false if refused.
bool yield_to_io_threads(int nice = 10);

/// Splits "host:port" (IPv6 as "[::1]:5001"); returns false on malformed input.
bool split_host_port(const std::string& text, std::string& host, unsigned short& port);

}  // namespace voxbridge::net
