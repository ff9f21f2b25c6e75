// What every in-process speech-to-speech backend over a vendor's WebSocket shares (OpenAI
// Realtime, Gemini Live, and those to come), so that such a backend is its wire protocol and
// nothing else:
//   - Sessions: the backend's io threads, its TLS context, and the session count with its cap;
//   - WsAgentStream: one call's stream. The call's requests go to the io thread (bounded), the
//     service's answers go back to the call (held while the call pauses reads, bounded), the
//     socket is opened, replaced and closed, the call's duration cap is armed, and the stream
//     ends exactly once, with a status the pipeline understands;
//   - SpeechToSpeechOnly: the ProviderClients members such a backend does not serve.
// A vendor derives from WsAgentStream and fills in its hooks: how its socket is opened
// (socket_options), what it says when it opens (opened), what it makes of a message (message),
// of a request from the call (request), of a socket that broke (broke), and of the duration
// cap (duration_cap).
//
// Threads: WsAgentStream's providers::AgentStream members (send, finish, cancel, close,
// pause_reads, resume_reads, dropped) run on the call's thread; start() there too, once. Every
// hook, and every protected member, runs on the io thread the stream was given. Ownership: the
// call owns its stream; the io thread's handlers hold it (shared) until they have run; the
// stream holds its backend's shared state (Setup::keep), so the Sessions outlive it. Answers
// go back through the call's Poster and are dropped once close() said the owner is gone.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "voxbridge/net/ws_client.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::net {
class IoPool;
}

namespace voxbridge::ws_agent {

/// The counters every such backend keeps (a vendor's own counters derive from it).
struct StreamCounters {
  std::atomic<std::uint64_t> sessions_opened{0};
  std::atomic<std::uint64_t> sessions_refused{0};  ///< over max_sessions
  std::atomic<std::uint64_t> sessions_failed{0};   ///< ended by an error
  std::atomic<std::uint64_t> dropped_messages{0};  ///< the call's requests the queue refused
};

/// One backend's io threads, TLS context and sessions. Thread-safe.
class Sessions {
 public:
  /// `name` begins error texts ("realtime openai"); `url` ws:// or wss:// (wss:// makes the TLS
  /// context, verifying the server against `ca_file` or the system's CAs; throws
  /// std::runtime_error if that fails); `threads` >= 1 io threads, started here; `max` 0 = no
  /// cap.
  Sessions(std::string name, const std::string& url, const std::string& ca_file, int threads,
           std::size_t max, StreamCounters& counters);
  /// stop() if the backend has not (it must have, if a stream can still be alive: the last
  /// one may be released on one of these threads, which cannot join themselves).
  ~Sessions();
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  /// Takes a session for a new call: the io_context of the thread that will run it. Throws
  /// std::runtime_error over the cap (counted in sessions_refused).
  boost::asio::io_context& acquire();
  /// A stream is gone (its destructor).
  void release();
  std::size_t count() const { return count_.load(); }
  /// The backend's destructor: waits up to 2 s for the sockets still closing (calls have ended
  /// before the server drops its backends), then stops and joins the threads. Idempotent.
  void stop();
  /// Null for ws://.
  const std::shared_ptr<boost::asio::ssl::context>& tls() const { return tls_; }

 private:
  std::string name_;
  std::size_t max_;
  StreamCounters& counters_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::unique_ptr<net::IoPool> pool_;
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

class WsAgentStream : public providers::AgentStream,
                      public std::enable_shared_from_this<WsAgentStream> {
 public:
  struct Setup {
    std::shared_ptr<void> keep;  ///< the backend's shared state (owns `sessions`)
    Sessions* sessions = nullptr;
    StreamCounters* counters = nullptr;
    std::string log_name;  ///< "realtime openai": begins its log lines
    /// The call's duration cap, armed when the first socket opens; 0 = none.
    std::chrono::milliseconds max_call_duration{0};
  };
  /// The service's answers held while the call has paused reads (beyond: dropped, counted).
  static constexpr std::size_t kMaxHeldResponses = 1500;

  /// `io`: from Setup::sessions->acquire() (released by the destructor).
  WsAgentStream(Setup setup, boost::asio::io_context& io, providers::Poster post,
                providers::AgentEvents events, std::size_t max_queued);
  ~WsAgentStream() override;

  /// On the call's thread, once, right after construction: the io thread makes the vendor's
  /// conversation from `config` (make_conversation) and connects.
  void start(agent::v1::AgentConfig config);

  // providers::AgentStream, the call's thread
  bool send(agent::v1::AgentRequest request) override;
  void finish() override;
  void cancel() override;
  /// What is queued (an action's result) goes out, then the socket is closed politely (bounded
  /// by the client's close handshake limit, well under `grace`): the service is owed nothing
  /// the way a gRPC agent is.
  void close(std::chrono::milliseconds grace) override;
  void pause_reads() override;
  void resume_reads() override;
  std::uint64_t dropped() const override { return dropped_.load(std::memory_order_relaxed); }

 protected:
  // --- hooks (the io thread) ---
  /// Makes the vendor's conversation for the call; an exception ends the stream with
  /// kInvalidArgument and its text.
  virtual void make_conversation(agent::v1::AgentConfig config) = 0;
  /// The next socket's URL, headers and limits.
  virtual net::WsOptions socket_options() = 0;
  /// The socket is open: the vendor's first messages.
  virtual void opened() = 0;
  /// One message from the service.
  virtual void message(std::string_view m) = 0;
  /// A request from the call (caller audio, an event).
  virtual void request(agent::v1::AgentRequest& r) = 0;
  /// The socket closed and nobody asked for it, and it was no HTTP refusal (those end the
  /// stream here): reconnect, resume or fail().
  virtual void broke(const net::WsClose& c) = 0;
  /// The call's duration cap has passed.
  virtual void duration_cap() = 0;

  // --- for the vendor (the io thread) ---
  /// Opens a new socket. A socket it replaces is closed politely and its late messages and
  /// close are ignored (each socket's handlers carry its generation).
  void connect();
  /// Sends on the current socket; a service that stopped reading (the client's send queue is
  /// full) fails the stream.
  void send_text(std::string text);
  /// An answer for the call (held while reads are paused).
  void deliver(agent::v1::AgentResponse r);
  /// Ends the stream with `code` and why (logged, counted in sessions_failed).
  void fail(int code, const std::string& why);
  bool ended() const { return ended_; }
  /// A socket of this stream has opened (a break now is mid-call, not a failed connect).
  bool was_open() const { return was_open_; }
  const std::string& log_name() const { return setup_.log_name; }

 private:
  void on_open();
  void on_socket_closed(const net::WsClose& c);
  void close_socket();
  void end(providers::StreamStatus st);

  Setup setup_;
  boost::asio::io_context& io_;
  providers::Poster post_;
  providers::AgentEvents ev_;
  std::size_t max_queued_;
  // Touched by the call's thread.
  std::atomic<std::size_t> queued_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> finished_{false};
  std::atomic<bool> owner_gone_{false};
  // The io thread.
  std::shared_ptr<net::WsClient> ws_;
  std::uint64_t gen_ = 0;
  boost::asio::steady_timer cap_timer_;
  std::deque<agent::v1::AgentResponse> held_;
  bool paused_ = false;
  bool was_open_ = false;
  bool closing_ = false;
  bool ended_ = false;
  bool cap_armed_ = false;
};

/// What a backend shares with its streams: its options (with `name`, `url`, `ca_file`,
/// `threads`, `max_sessions`), its counters (a StreamCounters) and its sessions. `prefix`
/// ("realtime") begins the session's error and log texts.
template <class Options, class Counters>
struct BackendState {
  BackendState(const char* prefix, Options o, int resampler_quality)
      : options(std::make_shared<const Options>(std::move(o))),
        quality(resampler_quality),
        log_name(std::string(prefix) + " " + options->name),
        sessions(log_name, options->url, options->ca_file, options->threads, options->max_sessions,
                 counters) {}
  std::shared_ptr<const Options> options;
  int quality = 2;
  std::string log_name;
  Counters counters;
  Sessions sessions;
};

/// A WsAgentStream whose vendor protocol is a `Conversation` with the shape both backends
/// share: constructed from (options, AgentConfig, resampler quality, Sink{send, respond}), and
/// opened(), disconnected(), caller_audio(bytes), call_event(event), end_call(why). The vendor
/// adds socket_options(), message() and broke().
template <class Conversation, class State>
class ConversationStream : public WsAgentStream {
 public:
  ConversationStream(std::shared_ptr<State> state, boost::asio::io_context& io,
                     providers::Poster post, providers::AgentEvents events, std::size_t max_queued)
      : WsAgentStream({state, &state->sessions, &state->counters, state->log_name,
                       state->options->max_call_duration},
                      io, std::move(post), std::move(events), max_queued),
        sh_(std::move(state)) {}

 protected:
  void make_conversation(agent::v1::AgentConfig config) override {
    typename Conversation::Sink sink;
    sink.send = [this](std::string json) { send_text(std::move(json)); };
    sink.respond = [this](agent::v1::AgentResponse r) { deliver(std::move(r)); };
    conv_.emplace(sh_->options, std::move(config), sh_->quality, std::move(sink));
  }
  void opened() override { conv_->opened(); }
  void request(agent::v1::AgentRequest& r) override {
    if (r.request_case() == agent::v1::AgentRequest::kAudio) {
      conv_->caller_audio(r.audio());
    } else if (r.request_case() == agent::v1::AgentRequest::kEvent) {
      conv_->call_event(r.event());
    }
  }
  void duration_cap() override { conv_->end_call("call duration cap reached"); }

  std::shared_ptr<State> sh_;
  std::optional<Conversation> conv_;  // the io thread's, from make_conversation()
};

/// A ProviderClients that serves speech-to-speech agents only: the other three throw
/// std::runtime_error ("NAME serves speech-to-speech agents only, not speech recognition").
class SpeechToSpeechOnly : public providers::PartialClients {
 public:
  explicit SpeechToSpeechOnly(std::string what)
      : PartialClients(std::move(what), "speech-to-speech agents") {}
};

/// A speech-to-speech backend over a vendor's WebSocket: its shared state, and one `Stream` (a
/// ConversationStream over that state) per call. A vendor's backend is this with its options,
/// counters and stream type; open_agent() is all it writes.
template <class Options, class Counters>
class Backend : public SpeechToSpeechOnly {
 public:
  using State = BackendState<Options, Counters>;
  /// Starts the threads; throws std::runtime_error if the TLS set-up (ca_file) fails. `prefix`
  /// as BackendState's; `what` as SpeechToSpeechOnly's.
  Backend(const char* prefix, const char* what, Options options, int resampler_quality)
      : SpeechToSpeechOnly(what),
        state_(std::make_shared<State>(prefix, std::move(options), resampler_quality)) {}
  ~Backend() override { state_->sessions.stop(); }
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  /// Sessions open now.
  std::size_t sessions() const { return state_->sessions.count(); }
  const Counters& counters() const { return state_->counters; }
  const Options& options() const { return *state_->options; }

 protected:
  /// A session for a call (throws over max_sessions), its Stream started.
  template <class Stream>
  std::shared_ptr<providers::AgentStream> open(const agent::v1::AgentConfig& config,
                                               providers::Poster post,
                                               providers::AgentEvents events,
                                               std::size_t max_queued) {
    auto& io = state_->sessions.acquire();
    auto s = std::make_shared<Stream>(state_, io, std::move(post), std::move(events), max_queued);
    s->start(config);
    return s;
  }

  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::ws_agent
