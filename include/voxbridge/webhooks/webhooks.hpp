// Outgoing webhooks: each event (call_started, call_ended with the transcript, the agent's
// actions) is POSTed as JSON to one http:// or https:// URL, signed with HMAC-SHA256, each
// attempt bounded by a timeout, failures retried with capped exponential backoff from a
// bounded queue. Deliveries go out one at a time, in the order they were posted.
//
// The request:
//   POST <path>                      Content-Type: application/json, User-Agent: voxbridge
//   X-Voxbridge-Event: <event>
//   X-Voxbridge-Delivery: <id>       a UUID, the same on every attempt (receivers deduplicate)
//   X-Voxbridge-Timestamp: <unix s>  of this attempt
//   X-Voxbridge-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//                                    (only with a secret; see sign())
// 2xx = delivered; 408, 429, 5xx, no connection or no answer within the timeout = retried;
// any other answer (4xx, 3xx: redirects are not followed) = failed at once.
//
// Threads: the sender has one thread of its own (start()) running all network work, never the
// caller's. post() may be called from any thread, also before start() and during stop() (not
// during destruction); it never waits on the network (a short lock, no I/O). start() and
// stop() from one owning thread. Logs name the scheme, host and port only: never the secret,
// nor the URL's path (which may hold a token).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "voxbridge/webhooks/options.hpp"

namespace voxbridge::webhooks {

/// Cumulative counters, readable from any thread.
struct WebhookStats {
  std::atomic<std::uint64_t> queued{0};     ///< accepted by post()
  std::atomic<std::uint64_t> delivered{0};  ///< answered 2xx
  std::atomic<std::uint64_t> failed{0};     ///< given up: max_attempts spent, or a final answer
  std::atomic<std::uint64_t> dropped{0};    ///< refused by post(): queue full, or stopped
  std::atomic<std::uint64_t> filtered{0};   ///< refused by post(): not in events, or no token
  std::atomic<std::uint64_t> retries{0};    ///< attempts after an event's first
  std::atomic<std::uint64_t> abandoned{0};  ///< queued or in flight when stop() gave up
};

/// Lowercase hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

/// The X-Voxbridge-Signature value without its "sha256=" prefix:
/// hmac_sha256_hex(secret, timestamp + "." + body). Receivers recompute it over the raw body
/// and the X-Voxbridge-Timestamp header, compare in constant time and reject old timestamps.
std::string sign(std::string_view secret, std::string_view timestamp, std::string_view body);

class WebhookSender {
 public:
  static constexpr std::chrono::milliseconds kMaxBackoff{30000};
  static constexpr std::chrono::milliseconds kDestructorFlush{1000};

  /// Throws std::invalid_argument on a URL that is not http(s)://host..., and
  /// std::runtime_error when ca_file cannot be loaded.
  explicit WebhookSender(WebhookOptions options);
  /// stop(kDestructorFlush) unless stopped already.
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  /// Starts the sender's thread (once; not again after stop()).
  void start();
  /// Refuses new events, keeps sending (and retrying) what is queued until `flush` has passed
  /// or the queue is empty, then ends the thread: returns within about `flush`. Whatever is
  /// left counts as abandoned.
  void stop(std::chrono::milliseconds flush);
  /// Queues one event (`json_body` is sent as it is; `event` is a token of letters, digits and
  /// "._-", e.g. "call_started", "call_ended", "action"). Any thread; never blocks. False (and
  /// counted) when the event is filtered out or not a token, the queue is full or the sender
  /// stopped.
  bool post(std::string_view event, std::string json_body);
  const WebhookStats& stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::webhooks
