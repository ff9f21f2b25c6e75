// One voxbridge process: the io threads, every configured listener, and the calls on them.
// Wiring only (net + session + agents); main() and the integration tests both use it.
//
// Threads: the constructor and shutdown() run on the caller's thread; calls run on the pool.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "voxbridge/config/config.hpp"
#include "voxbridge/control/controller.hpp"
#include "voxbridge/http_api/http_api.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/session/call_session.hpp"

namespace voxbridge::provider_host {
class BuiltinProviders;
}

namespace voxbridge::server {

class Server {
 public:
  /// Loads agents (prompts), creates the io threads and binds every listener; throws
  /// std::runtime_error naming the listener on failure (e.g. address in use).
  explicit Server(const config::Config& cfg);
  ~Server();

  /// Starts the threads and accepting.
  void start();
  /// Bound ports, in listener order (the real ones when the config said port 0).
  std::vector<unsigned short> ports() const;
  /// Health-checks every provider the listeners' pipeline agents use (logged; never fatal).
  void check_providers(std::chrono::milliseconds timeout) const;

  /// Stops accepting new calls (they are refused by the closed socket).
  void stop_accepting();
  /// Graceful stop: stop accepting, let calls end by themselves for up to `drain`, then send
  /// hangup (0x00) to the rest and wait for them to close. Returns the calls hung up by force.
  std::size_t shutdown(std::chrono::milliseconds drain);
  /// Hang up every call now (on their own threads); returns at once.
  void hangup_all(std::string_view reason);

  std::int64_t active_calls() const { return counters_.active.load(); }
  /// The control path to Asterisk ([control] mode ami or ari), or null.
  control::Controller* controller() const { return control_.get(); }
  /// Port of the local HTTP API ([general] http_listen), 0 if off.
  unsigned short http_port() const;
  const session::SessionCounters& counters() const { return counters_; }

 private:
  void on_accept(std::size_t listener, boost::asio::ip::tcp::socket socket, std::size_t index);

  // Declaration order is destruction order reversed: sessions still pending when the pool's
  // io_contexts are destroyed unlink themselves from calls_ and count down counters_, so both
  // must outlive pool_.
  config::Config cfg_;
  std::unique_ptr<provider_host::BuiltinProviders> builtin_;  // if an agent uses them
  std::shared_ptr<providers::ChannelPool> channels_ = std::make_shared<providers::ChannelPool>();
  session::SessionCounters counters_;
  std::unique_ptr<control::Controller> control_;  // its actions outlive it safely (weak refs)
  std::unique_ptr<http_api::HttpApi> http_;       // uses control_: declared after it
  std::shared_ptr<http_api::TransferBook> transfers_ = std::make_shared<http_api::TransferBook>();
  std::unique_ptr<session::SessionList[]> calls_;  // one per io thread
  net::IoPool pool_;
  std::vector<std::unique_ptr<playout::PacingClock>> clocks_;  // one per io thread
  std::vector<std::shared_ptr<session::Mailbox>> mailboxes_;   // one per io thread
  std::vector<std::shared_ptr<const session::SessionConfig>> session_cfgs_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
  bool started_ = false;
};

/// Threads to use for `configured` (0 = one per core).
std::size_t resolve_threads(std::size_t configured);

}  // namespace voxbridge::server
