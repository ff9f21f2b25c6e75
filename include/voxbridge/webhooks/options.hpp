// Where and how webhooks are sent ([webhook]), as plain data: config fills it, WebhookSender
// (webhooks.hpp) uses it.
#pragma once

#include <chrono>
#include <cstddef>
#include <set>
#include <string>

namespace voxbridge::webhooks {

struct WebhookOptions {
  std::string url;     ///< http:// or https:// host[:port]/path (IPv6 as [addr])
  std::string secret;  ///< the HMAC key; empty = unsigned (no signature header)
  std::chrono::milliseconds timeout{5000};  ///< per attempt: resolve, connect, TLS, answer
  int max_attempts = 5;                     ///< per event, the first included
  /// Wait before the second attempt; doubles per attempt up to kMaxBackoff, with jitter
  /// (each wait is drawn from [half, all] of it).
  std::chrono::milliseconds backoff{500};
  std::size_t queue_limit = 1000;  ///< events waiting (not counting the one in flight)
  std::string ca_file;             ///< PEM CAs to trust for https; empty = the system's
  bool verify_tls = true;          ///< check the server's certificate and host name
  std::set<std::string> events;    ///< the events to send; empty = all

  bool operator==(const WebhookOptions&) const = default;
};

}  // namespace voxbridge::webhooks
