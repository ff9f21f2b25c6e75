// One ProviderClients for a server: each stream goes to the in-process backend its target names
// (ProviderTarget::backend, e.g. "realtime:NAME" for an OpenAI Realtime backend), or, when it
// names none, to the gRPC clients. Nothing is copied or re-posted on the way: open_*() returns
// the backend's own stream.
// Thread: open_*() from any io thread (the map is fixed at construction).
// Ownership: shares the backends and the gRPC clients with whoever else holds them.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "voxbridge/providers/clients.hpp"

namespace voxbridge::providers {

/// `grpc` for targets without a backend; `backends` by ProviderTarget::backend. A target that
/// names a backend that is not there throws std::runtime_error from open_*() (the fallback).
std::shared_ptr<ProviderClients> routed_clients(
    std::shared_ptr<ProviderClients> grpc,
    std::map<std::string, std::shared_ptr<ProviderClients>> backends);

}  // namespace voxbridge::providers
