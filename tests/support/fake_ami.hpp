// A fake Asterisk Manager Interface for integration tests: the real wire (banner, CRLF
// "Key: Value" blocks, ActionID echoed in responses, events), MD5 challenge and plain login,
// and the answers Asterisk gives to the actions voxbridge sends (Redirect, Setvar, PlayDTMF,
// Hangup, Originate with a later OriginateResponse, Ping). Channels the test announces (with
// Newchannel/VarSet events, as Asterisk sends them when the dialplan runs
// Set(VB_UUID=${UUID()})) are the only ones actions may name; others get Asterisk's error.
//
// One thread accepts, one per connection reads; the test's calls are thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "voxbridge/control/ami_codec.hpp"

namespace voxbridge::testing {

class FakeAmi {
 public:
  /// With `tls`, the manager speaks TLS only (manager.conf tlsenable) with a fresh certificate
  /// for "localhost"; ca_file() is the CA to trust.
  FakeAmi(std::string username, std::string secret, bool tls = false);
  std::string ca_file() const { return ca_file_; }
  ~FakeAmi();
  unsigned short port() const { return port_; }

  /// A channel appears (Newchannel) and runs Set(VB_UUID=uuid) (VarSet), plus any other
  /// variables (VarSet each). Returns its Uniqueid.
  std::string add_channel(const std::string& name, const std::string& uuid,
                          const std::string& caller_number, const std::string& exten,
                          const std::map<std::string, std::string>& vars = {},
                          const std::string& uuid_variable = "VB_UUID");
  /// The channel hangs up (Hangup event).
  void hangup_channel(const std::string& name);
  /// Sends an event to every logged-in connection.
  void emit(const control::AmiFields& fields);
  /// Closes every connection (Asterisk restarting).
  void drop_connections();

  /// OriginateResponse Reason for the next originates (4 answered, 5 busy, 3 no answer, 0).
  void set_originate_reason(int reason) { originate_reason_ = reason; }

  /// Actions received so far (logins included), in order.
  std::vector<control::AmiMessage> actions() const;
  /// Waits up to `timeout` for an action named `name` (beyond `skip` earlier ones).
  bool wait_for_action(const std::string& name, std::chrono::milliseconds timeout,
                       control::AmiMessage* out = nullptr, std::size_t skip = 0) const;
  int logins() const;
  int failed_logins() const;

 private:
  struct Conn;
  void accept_loop();
  void serve(std::shared_ptr<Conn> c);
  void handle(Conn& c, const control::AmiMessage& m);
  void send(Conn& c, const control::AmiFields& fields);

  std::string username_;
  std::string secret_;
  bool tls_ = false;
  std::string ca_file_;
  std::unique_ptr<boost::asio::ssl::context> tls_ctx_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread acceptor_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> originate_reason_{4};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::thread> threads_;
  std::vector<control::AmiMessage> actions_;
  std::map<std::string, std::string> channels_;  // name -> Uniqueid
  int logins_ = 0;
  int failed_logins_ = 0;
  int next_id_ = 0;
};

}  // namespace voxbridge::testing
