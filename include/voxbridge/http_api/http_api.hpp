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
// /healthz and /readyz wants `Authorization: Bearer TOKEN` (401 otherwise). One thread of its
// own; requests and bodies are size-limited.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

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
};

/// Pre-registered calls (POST /v1/calls/UUID): metadata by UUID, with a time to live. Any
/// thread.
class Registrations {
 public:
  static constexpr std::size_t kMaxEntries = 100000;
  using Clock = std::chrono::steady_clock;
  /// False if the book is full (the oldest are not evicted: a flood cannot push out calls).
  bool add(const std::string& uuid, std::map<std::string, std::string> metadata,
           std::chrono::seconds ttl, Clock::time_point now = Clock::now());
  /// The metadata of a registered, unexpired UUID; removes it (a UUID is used once).
  std::optional<std::map<std::string, std::string>> take(const std::string& uuid,
                                                         Clock::time_point now = Clock::now());
  std::size_t size();

 private:
  void expire(Clock::time_point now);
  std::mutex mu_;
  std::map<std::string, std::pair<std::map<std::string, std::string>, Clock::time_point>> entries_;
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
  /// Replaces the bearer token (SIGHUP reload); the next request is checked against it. Any
  /// thread.
  void set_token(std::string token);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::http_api
