// voxbridge's local HTTP API (Boost.Beast), for scripts and the PBX next to it:
//
//   GET  /v1/health      {"status":"ok","active_calls":N,"control":"up"|"down"|"none"}
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
// Bound to 127.0.0.1 by default ([general] http_listen); it has no authentication, so never
// expose it beyond the host. One thread of its own; requests and bodies are size-limited.
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
};

class HttpApi {
 public:
  /// Binds at once (throws std::runtime_error naming the address on failure). `controller`
  /// may be null (originate then answers 503); `active_calls` reads the server's gauge.
  HttpApi(HttpApiOptions options, control::Controller* controller,
          std::function<std::int64_t()> active_calls,
          std::shared_ptr<TransferBook> transfers = nullptr);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  void start();
  void stop();
  unsigned short port() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::http_api
