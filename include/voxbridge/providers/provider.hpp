// Reaching gRPC providers: one channel per target (target.hpp) shared by every call, the
// standard health check, and per-call metadata and deadlines. Only providers/ (the clients)
// and provider_host/ include gRPC headers.
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

#include "voxbridge/providers/target.hpp"

namespace voxbridge::providers {

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
