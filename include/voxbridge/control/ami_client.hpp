// A client of the Asterisk Manager Interface (TCP, optionally TLS): checks the banner, logs in
// (plain or MD5 challenge), asks for the events it needs, sends actions with ActionID
// correlation and a timeout each, pings to notice a dead link, and reconnects with capped
// exponential backoff and jitter (net::Reconnector) for as long as it runs.
//
// Threads: everything runs on the executor given at creation (one thread, the control thread);
// send() must be called there too, and handlers run there.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "voxbridge/control/ami_codec.hpp"
#include "voxbridge/control/options.hpp"

namespace voxbridge::control {

struct AmiReply {
  bool ok = false;
  /// Why not: Asterisk's Message, "timed out after 5000 ms", "not connected to AMI ...".
  std::string error;
  AmiMessage response;
};

class AmiClient : public std::enable_shared_from_this<AmiClient> {
 public:
  using EventHandler = std::function<void(const AmiMessage&)>;
  /// Called when the link comes up (after login) or goes down, with the reason.
  using StateHandler = std::function<void(bool up, std::string_view why)>;
  using ReplyHandler = std::function<void(AmiReply)>;

  static std::shared_ptr<AmiClient> create(boost::asio::any_io_executor ex, AmiOptions options);
  ~AmiClient();

  void on_event(EventHandler h);
  void on_state(StateHandler h);
  /// Connects and keeps reconnecting until stop().
  void start();
  /// Closes the connection; pending actions fail with "stopped".
  void stop();
  bool connected() const;
  /// Sends an action; `done` gets the response (ok = "Response: Success"), or an error if
  /// the link is down, the action cannot be encoded, or no response came in time.
  /// Returns the ActionID used (empty if it failed at once).
  std::string send(std::string action, AmiFields fields, ReplyHandler done);

  struct Impl;

 private:
  AmiClient(boost::asio::any_io_executor ex, AmiOptions options);
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::control
