// One voxbridge process: the io threads, every configured listener, and the calls on them.
// Wiring only: admission (access::Admission), routing (routing.hpp), what the server does with
// each call (call_observer.hpp), provider health (provider_health.hpp) and what a reload may
// change (reload.cpp) are components of their own; this class builds and connects them, and
// drains. main() and the integration tests both use it.
//
// Threads: the constructor and shutdown() run on the caller's thread; calls run on the pool.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "voxbridge/access/admission.hpp"
#include "voxbridge/metrics/metrics.hpp"

#include "voxbridge/config/config.hpp"
#include "voxbridge/control/controller.hpp"
#include "voxbridge/http_api/http_api.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/providers/grpc_clients.hpp"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/recording/recorder.hpp"
#include "voxbridge/server/call_observer.hpp"
#include "voxbridge/server/provider_health.hpp"
#include "voxbridge/session/call_session.hpp"

namespace voxbridge::realtime_openai {
class RealtimeBackend;
}  // namespace voxbridge::realtime_openai
namespace voxbridge::realtime_gemini {
class GeminiBackend;
}  // namespace voxbridge::realtime_gemini
namespace voxbridge::asr_deepgram {
class DeepgramBackend;
}  // namespace voxbridge::asr_deepgram
namespace voxbridge::asr_openai {
class TranscriptionBackend;
}  // namespace voxbridge::asr_openai
namespace voxbridge::tts_openai {
class SpeechBackend;
}  // namespace voxbridge::tts_openai
namespace voxbridge::tts_elevenlabs {
class ElevenLabsBackend;
}  // namespace voxbridge::tts_elevenlabs
namespace voxbridge::asr_vosk {
class VoskBackend;
}  // namespace voxbridge::asr_vosk
namespace voxbridge::riva {
class RivaBackend;
}  // namespace voxbridge::riva

namespace voxbridge::provider_host {
class BuiltinProviders;
}

namespace voxbridge::tools {
class ToolRunner;
}

namespace voxbridge::server {

/// Why the acceptor closed a connection at once.
enum class Rejection { max_calls, not_allowed, rate_limited, peer_limit };
inline constexpr std::size_t kRejections = 4;
const char* rejection_name(Rejection r);

/// The process's counts, summed over every io thread and listener (tests, shutdown log).
struct Totals {
  std::uint64_t started = 0;    ///< calls whose UUID arrived
  std::uint64_t ended = 0;      ///< of those, ended
  std::uint64_t no_uuid = 0;    ///< connections closed before a UUID
  std::uint64_t bad_input = 0;  ///< connections closed for bad input (all reasons)
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t send_drops = 0;
  std::uint64_t late_ticks = 0;
  std::uint64_t underruns = 0;
  std::uint64_t unregistered = 0;
  std::array<std::uint64_t, kRejections> rejected{};
  std::uint64_t rejected_total() const;
};

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

  std::int64_t active_calls() const { return admission_.active(); }
  /// Sums every thread's counters (any thread).
  Totals totals() const;
  /// The Prometheus text exposition of everything the server counts (any thread).
  std::string metrics_text() const;
  /// Live calls as a JSON array (any thread but an io thread: it asks each io thread and
  /// waits up to `timeout` for the answers).
  std::string status_json(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  /// A live call's transcript events from index `from` on, as {"uuid", "ended", "next",
  /// "events", "schema"} (GET /v1/calls/UUID/events; events::events_response); nullopt if no live
  /// call has that UUID. Same threading as status_json.
  std::optional<std::string> events_json(
      const std::string& uuid, std::size_t from,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  /// Empty when ready for calls, else why not: draining, or a provider failing its health
  /// check (any thread).
  std::string not_ready() const;
  /// Applies a new configuration. At once, for every call (those in progress included): the
  /// [control] allowlists, settable variables and per-call caps, and the HTTP API's token.
  /// For calls that start from now on: agents, routes, providers, listener allow lists, peer
  /// limits, max_calls, recording choices. What needs a restart (listener addresses, threads,
  /// [recording] directory, [webhook] url, [control] mode and its other settings, [ami],
  /// [ari], http_listen, starting the built-in providers) refuses the reload with the reason.
  /// Any thread. False and `error` set if refused: the running configuration stays whole.
  bool reload(const config::Config& next, std::string& error);
  /// Readiness turns false at once (load balancers stop sending calls); shutdown() calls it.
  void begin_drain() { draining_.store(true); }
  /// The control path to Asterisk ([control] mode ami or ari), or null.
  control::Controller* controller() const { return control_.get(); }
  /// Port of the local HTTP API ([general] http_listen), 0 if off.
  unsigned short http_port() const;
  /// Pre-registered calls (POST /v1/calls/UUID).
  const std::shared_ptr<http_api::Registrations>& registrations() const { return registrations_; }
  /// The recorder ([recording]) or null.
  recording::Recorder* recorder() const { return recorder_.get(); }
  /// The webhook sender ([webhook]) or null.
  webhooks::WebhookSender* webhooks() const { return webhooks_.get(); }

 private:
  void on_accept(std::size_t listener, boost::asio::ip::tcp::socket socket, std::size_t index);
  void reject(Rejection why, const boost::asio::ip::tcp::endpoint& peer, std::string_view detail);
  /// What a reload replaces: the configuration and each listener's session settings.
  struct Snapshot {
    config::Config cfg;
    std::vector<std::shared_ptr<const session::SessionConfig>> sessions;
  };
  /// Session settings (and call observers) for every listener of `cfg` (resolves the
  /// built-in providers' address).
  std::vector<std::shared_ptr<const session::SessionConfig>> build_sessions(config::Config& cfg);
  std::shared_ptr<const Snapshot> live() const;
  /// Starts the in-process backends the agents in use need and routes clients_ to them.
  void start_backends();
  /// The business tools' runner ([tool-NAME]), with its filler phrases spoken.
  void start_tools();

  /// One io thread's counters: a set per listener (written by that thread only).
  struct ThreadCounters {
    explicit ThreadCounters(std::size_t n) : listeners(new session::SessionCounters[n]) {}
    std::unique_ptr<session::SessionCounters[]> listeners;
  };

  // Declaration order is destruction order reversed: sessions still pending when the pool's
  // io_contexts are destroyed unlink themselves from calls_ and count down counters_, so both
  // must outlive pool_.
  config::Config cfg_;
  std::unique_ptr<provider_host::BuiltinProviders> builtin_;  // if an agent uses them
  std::shared_ptr<providers::ChannelPool> channels_ = std::make_shared<providers::ChannelPool>();
  /// The agents' provider clients: over channels_, or to an in-process backend.
  std::shared_ptr<providers::ProviderClients> clients_ = providers::grpc_clients(channels_);
  /// The OpenAI Realtime backends in use (also in clients_), for their counters.
  std::vector<std::shared_ptr<realtime_openai::RealtimeBackend>> realtime_;
  /// The Gemini Live backends in use (also in clients_), for their counters.
  std::vector<std::shared_ptr<realtime_gemini::GeminiBackend>> gemini_;
  /// The Deepgram recognizers in use (also in clients_), for their counters.
  std::vector<std::shared_ptr<asr_deepgram::DeepgramBackend>> deepgram_;
  /// The ElevenLabs voices in use (also in clients_), for their counters.
  std::vector<std::shared_ptr<tts_elevenlabs::ElevenLabsBackend>> elevenlabs_;
  std::vector<std::shared_ptr<asr_openai::TranscriptionBackend>> transcription_;
  std::vector<std::shared_ptr<tts_openai::SpeechBackend>> speech_;
  std::vector<std::shared_ptr<asr_vosk::VoskBackend>> vosk_;
  std::vector<std::shared_ptr<riva::RivaBackend>> riva_;
  std::unique_ptr<recording::Recorder> recorder_;      // [recording]; outlives the calls
  std::unique_ptr<webhooks::WebhookSender> webhooks_;  // [webhook]; outlives the calls
  std::unique_ptr<tools::ToolRunner> tools_;           // [tool-NAME]; outlives the calls
  // Calls admitted and each listener's per-peer table. Sessions hold its tickets, and those
  // still pending when the pool's io_contexts are destroyed release theirs then: outlives pool_.
  access::Admission admission_;
  std::vector<std::unique_ptr<ThreadCounters>> thread_counters_;
  std::array<metrics::Counter, kRejections> rejected_;  // written by the accepting thread only
  std::shared_ptr<http_api::Registrations> registrations_ =
      std::make_shared<http_api::Registrations>();
  EndedCalls ended_;  // the events of calls that ended lately
  std::atomic<bool> draining_{false};
  ProviderHealth health_;  // its monitor thread is stopped first in ~Server
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  /// Allowlists and caps in force (reload replaces them for every call); transfers without a
  /// control path.
  ActionState actions_;
  std::unique_ptr<control::Controller> control_;   // its actions outlive it safely (weak refs)
  std::unique_ptr<http_api::HttpApi> http_;        // uses control_: declared after it
  std::unique_ptr<session::SessionList[]> calls_;  // one per io thread
  net::IoPool pool_;
  std::vector<std::unique_ptr<playout::PacingClock>> clocks_;  // one per io thread
  std::vector<std::shared_ptr<session::Mailbox>> mailboxes_;   // one per io thread
  mutable std::mutex live_mu_;
  std::shared_ptr<const Snapshot> live_;  // guarded by live_mu_
  std::vector<std::unique_ptr<net::Listener>> listeners_;
  bool started_ = false;
};

/// Threads to use for `configured` (0 = one per core).
std::size_t resolve_threads(std::size_t configured);

}  // namespace voxbridge::server
