// The provider contracts over gRPC: each client of clients.hpp on a stream of
// providers::BidiStream / ReadStream (stream.hpp), on the shared channels of a ChannelPool.
// Thread-safe; gRPC's threads only post to the call's Poster.
#pragma once

#include <memory>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/providers/provider.hpp"

namespace voxbridge::providers {

/// Clients that reach provider processes over gRPC on `channels` (which must outlive every
/// stream: see ChannelPool::wait_unused). Each stream gets the target's metadata and deadline.
std::shared_ptr<ProviderClients> grpc_clients(std::shared_ptr<ChannelPool> channels);

}  // namespace voxbridge::providers
