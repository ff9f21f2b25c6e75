// Reaching gRPC providers: where they are (voxbridge.conf [provider-NAME]), one channel per
// target shared by every call, the standard health check, and per-call metadata and deadlines.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace voxbridge::providers {

/// One provider endpoint as configured.
struct ProviderTarget {
  std::string name;     ///< the config section's NAME, for logs
  std::string address;  ///< host:port (gRPC target syntax)
  bool tls = false;
  std::string ca_file;  ///< PEM roots for TLS; empty = the system's
  /// Longest a single RPC may run; streams get it as their deadline (0 = none).
  std::chrono::milliseconds deadline{0};
  /// Sent with every RPC (API keys and the like); header names in lower case.
  std::vector<std::pair<std::string, std::string>> metadata;
  /// Client certificate chain and key (PEM) for providers that require mutual TLS; both or
  /// neither.
  std::string cert_file;
  std::string key_file;
};

/// Channels by target: every call to the same provider multiplexes its streams on one HTTP/2
/// connection. Thread-safe.
class ChannelPool {
 public:
  /// The channel for `t` (created on first use). Throws std::runtime_error if the CA file
  /// cannot be read.
  std::shared_ptr<grpc::Channel> get(const ProviderTarget& t);
  std::size_t size() const;
  /// Waits (at most `timeout`) until the pool holds the only reference to each of its
  /// channels: every stream on them has ended and been destroyed. Call before the pool goes
  /// at shutdown. A channel must not lose its last reference inside a stream's completion, on
  /// one of gRPC's own threads: its teardown there can free gRPC's completion queue twice
  /// (seen at exit under ASan; grpc/grpc#32584 describes the mechanism). True if all let go.
  bool wait_unused(std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

/// Prepares a client context for one RPC to `t`: metadata headers and the deadline.
void prepare(grpc::ClientContext& ctx, const ProviderTarget& t);

enum class Health { serving, not_serving, unknown_service, unreachable };
const char* health_name(Health h);

/// The standard grpc.health.v1 Check on `channel` for `service` ("" = the whole server),
/// waiting at most `timeout`. `detail` gets the gRPC error text, if any.
Health check_health(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                    std::chrono::milliseconds timeout, std::string* detail = nullptr);

}  // namespace voxbridge::providers
