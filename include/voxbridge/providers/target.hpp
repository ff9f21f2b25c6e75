// Where a provider is (voxbridge.conf [provider-NAME]): plain data, no gRPC, so that config and
// the pipeline can name providers without linking the clients that reach them.
#pragma once

#include <chrono>
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
  /// An in-process backend that serves this target instead of gRPC ("realtime:NAME"); empty =
  /// a gRPC provider at `address`.
  std::string backend{};

  bool operator==(const ProviderTarget&) const = default;
};

}  // namespace voxbridge::providers
