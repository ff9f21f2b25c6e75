// voxbridge's local HTTP API (Boost.Beast), for monitoring, scripts and the PBX next to it:
//
//   GET  /healthz        200 "ok" while the process serves (liveness)
//   GET  /readyz         200 "ready", or 503 and the reason ("draining", "provider NAME
//                        down"): load balancers stop sending calls (readiness)
//   GET  /metrics        Prometheus text format (calls, frames, errors, turn latencies...)
//   GET  /status         JSON: every live call (UUID, peer, codec, duration, agent state)
//   GET  /v1/health      {"status":"ok","active_calls":N,"control":"up"|"down"|"none"}
//   POST /v1/calls/UUID  pre-registers a call before AudioSocket() (JSON metadata, "ttl"
//                        seconds): routes match on it, and a listener may refuse UUIDs
//                        that were not registered. 201; 400 on a bad body.
//   POST /v1/originate   {"to":"2125551234","agent":"receptionist","caller_id":"...",
//                         "variables":{"VB_CAMPAIGN":"renewals"}}
//                        -> 200 {"outcome":"answered"|"busy"|"no answer"|"failed"|"denied"|
//                                "limit","channel":"...","detail":"..."} once Asterisk has
//                           answered or given up; 400 on a bad request; 503 without a
//                           control path.
//   GET  /v1/calls/UUID/transfer
//                        -> 200 and the target as plain text (e.g. "100") when the agent of
//                           that call asked for a transfer without a control path, for the
//                           dialplan after AudioSocket(): ${CURL(...)} then Goto; 404 if none.
//                           Kept for a minute after it is noted.
//
// Bound to 127.0.0.1 by default ([general] http_listen). With a token ([general] http_token,
// required by the configuration when the address is not loopback) every endpoint except
// /healthz and /readyz wants `Authorization: Bearer TOKEN` (401 otherwise); /readyz tells an
// unauthenticated caller only the short reason ("provider NAME (SERVICE) down", "draining").
//
// A web page in a browser on the PBX host must not drive the API: a request that changes state
// (any method but GET and HEAD) needs `Content-Type: application/json` (415; pre-registration
// also takes application/x-www-form-urlencoded, what Asterisk's CURL() sends), a Host header
// that is an IP address, `localhost` or the listen address (403: DNS rebinding), and no
// Origin header other than the API's own (403), token or not.
//
// Limits: `max_connections` at once (more are answered 503 and closed at once, counted);
// a request (head and body) must arrive within `request_timeout` of the connection or of the
// previous answer; a failing accept (out of descriptors) is retried every 100 ms, logged at
// most once a second and counted, and the API serves again once descriptors are back.
// One thread of its own; requests and bodies are size-limited.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

namespace voxbridge::control {
class Controller;
}

namespace voxbridge::http_api {

/// Transfers asked for on calls without a control path, by call UUID (any thread).
class TransferBook {
 public:
  static constexpr std::size_t kMaxEntries = 10000;
  static constexpr std::chrono::seconds kKeep{60};
  void note(const std::string& uuid, const std::string& target);
  std::optional<std::string> find(const std::string& uuid);
  /// Forgets the noted targets `keep` says no to (a reload tightened the allowlists).
  void retain_if(const std::function<bool(const std::string& target)>& keep);

 private:
  using Clock = std::chrono::steady_clock;
  void expire(Clock::time_point now);
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, Clock::time_point>> entries_;
};

struct HttpApiOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 0;  ///< 0 = ephemeral (tests)
  std::size_t max_body_bytes = 16 * 1024;
  std::string token;  ///< bearer token; empty = none (loopback only)
  /// Connections served at once ([general] http_max_connections); more are refused.
  std::size_t max_connections = 64;
  /// A request's head and body must be in within this (unauthenticated clients cannot hold
  /// a connection longer); an originate then waits as long as Asterisk rings.
  std::chrono::milliseconds request_timeout{5000};
};

/// Pre-registered calls (POST /v1/calls/UUID): metadata by UUID, with a time to live. Any
/// thread; take() (the io threads, once per call) costs a hash lookup, add() also removes
/// what has expired, oldest first, each entry once.
class Registrations {
 public:
  static constexpr std::size_t kMaxEntries = 10000;
  static constexpr std::size_t kMaxKeys = 32;         ///< metadata pairs per entry
  static constexpr std::size_t kMaxKeyBytes = 64;     ///< per metadata name
  static constexpr std::size_t kMaxValueBytes = 512;  ///< per metadata value
  /// Metadata bytes of all entries together (names + values + 64 per pair for the map).
  static constexpr std::size_t kMaxTotalBytes = 8 * 1024 * 1024;
  using Clock = std::chrono::steady_clock;
  using Metadata = std::map<std::string, std::string>;
  /// Why metadata is refused (too many pairs, a name or value too long); empty if it fits.
  static std::string check(const Metadata& metadata);
  /// False if the metadata does not fit (check()) or the book is full (the oldest are not
  /// evicted: a flood cannot push out calls).
  bool add(const std::string& uuid, Metadata metadata, std::chrono::seconds ttl,
           Clock::time_point now = Clock::now());
  /// The metadata of a registered, unexpired UUID; removes it (a UUID is used once).
  std::optional<Metadata> take(const std::string& uuid, Clock::time_point now = Clock::now());
  std::size_t size();
  /// Metadata bytes held, as counted against kMaxTotalBytes.
  std::size_t bytes();

 private:
  struct Entry {
    Metadata metadata;
    Clock::time_point expires;
    std::size_t bytes = 0;
  };
  void expire(Clock::time_point now);
  void erase(std::unordered_map<std::string, Entry>::iterator it);
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::set<std::pair<Clock::time_point, std::string>> by_expiry_;
  std::size_t bytes_ = 0;
};

/// What the API serves, from the server around it (each may be empty).
struct HttpHandlers {
  control::Controller* controller = nullptr;  ///< null: originate answers 503
  std::shared_ptr<TransferBook> transfers;
  std::shared_ptr<Registrations> registrations;  ///< null: POST /v1/calls/UUID answers 404
  std::function<std::int64_t()> active_calls;
  std::function<std::string()> metrics;  ///< the Prometheus text
  /// Empty when ready, else why not (readiness).
  std::function<std::string()> not_ready;
  /// JSON array of live calls.
  std::function<std::string()> status;
  /// GET /v1/calls/UUID/events?from=N: a live call's transcript events from N on, as JSON;
  /// nullopt if no such call is live (404).
  std::function<std::optional<std::string>(const std::string& uuid, std::size_t from)> events;
};

class HttpApi {
 public:
  /// Binds at once (throws std::runtime_error naming the address on failure).
  HttpApi(HttpApiOptions options, HttpHandlers handlers);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  void start();
  void stop();
  unsigned short port() const;
  /// A new bearer token (empty = none) for every request from the next one on; any thread.
  void set_token(std::string token);
  /// Accepts that failed (out of descriptors...), retried after a pause. Any thread.
  std::uint64_t accept_errors() const;
  /// Connections refused because max_connections were open. Any thread.
  std::uint64_t connections_refused() const;
  /// Idle connections (waiting for a request) closed to make room for a new one. Any thread.
  std::uint64_t connections_evicted() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::http_api
