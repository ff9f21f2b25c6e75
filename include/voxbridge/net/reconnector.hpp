// The one reconnect loop of the links voxbridge keeps open itself (AMI, the ARI events
// WebSocket): connect and hold one connection until it is lost, say so, wait Backoff's next
// delay (started again from its first step after a connection that held, Backoff::kHeld), and
// go again until stop(). Each wait is logged as "<label>: <why>; reconnecting in N ms" when
// the link had been up, "...; retrying in N ms" when it never came up.
//
// Thread: none of its own; run(), stop() and the Link's calls all happen on the one executor
// given at creation (a strand-free single thread: the control thread).
// Ownership: the owner of the link owns its Reconnector and keeps both alive while run() runs
// (a shared_from_this() in the coroutine that awaits run()).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <string>

#include "voxbridge/net/backoff.hpp"

namespace voxbridge::net {

class Reconnector {
 public:
  /// What the loop drives, one connection at a time; implemented by the client that owns it.
  class Link {
   public:
    /// One connection, from connect to loss; returns why it ended (a failed connect included).
    virtual boost::asio::awaitable<std::string> connect_once() = 0;
    /// The connection ended: report the link down and fail what waited on it. `stopping`:
    /// stop() was called, no further attempt follows. Returns whether the link had been up.
    virtual bool lost(const std::string& why, bool stopping) = 0;

   protected:
    ~Link() = default;
  };
  using Now = std::function<Backoff::Clock::time_point()>;

  /// `label` opens each log line ("AMI host:port", "ARI"); `now` measures how long a
  /// connection lasted (tests: a fake clock).
  Reconnector(boost::asio::any_io_executor ex, std::string label, Backoff backoff,
              Now now = &Backoff::Clock::now);

  /// Marks the loop running; call before spawning run(), so that a stop() in between holds.
  void start() { running_ = true; }
  /// Runs `link` until stop(): returns after the connection in progress has ended (the owner
  /// closes its socket) or at once from a wait.
  boost::asio::awaitable<void> run(Link& link);
  /// Ends the loop: a wait in progress ends at once, no attempt follows.
  void stop();
  bool running() const { return running_; }

 private:
  boost::asio::steady_timer timer_;
  std::string label_;
  Backoff backoff_;
  Now now_;
  bool running_ = false;
};

}  // namespace voxbridge::net
