#include "voxbridge/providers/provider.hpp"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"

namespace voxbridge::providers {

namespace {
std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read CA file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

std::shared_ptr<grpc::Channel> ChannelPool::get(const ProviderTarget& t) {
  const std::string key = (t.tls ? "tls:" : "plain:") + t.ca_file + "|" + t.cert_file + "|" +
                          t.key_file + "|" + t.address;
  std::lock_guard lock(mu_);
  auto it = channels_.find(key);
  if (it != channels_.end()) return it->second;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (t.tls) {
    grpc::SslCredentialsOptions o;
    if (!t.ca_file.empty()) o.pem_root_certs = read_file(t.ca_file);
    if (!t.cert_file.empty()) {
      o.pem_cert_chain = read_file(t.cert_file);
      o.pem_private_key = read_file(t.key_file);
    }
    creds = grpc::SslCredentials(o);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Calls come and go all day: keep the connection alive between them, and notice a dead
  // provider before the next call needs it.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  // A stream's receive window bounds what a provider can push ahead of a call that paused its
  // reads (TTS backpressure): 256 KiB is 8 s of 16 kHz audio, far more than any stream needs
  // in flight, where gRPC's own window grows to 4 MiB (2 min of audio per call).
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 256 * 1024);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto ch = grpc::CreateCustomChannel(t.address, creds, args);
  channels_.emplace(key, ch);
  return ch;
}

bool ChannelPool::wait_unused(std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (std::all_of(channels_.begin(), channels_.end(),
                      [](const auto& kv) { return kv.second.use_count() == 1; })) {
        return true;
      }
    }
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::size_t ChannelPool::size() const {
  std::lock_guard lock(mu_);
  return channels_.size();
}

void prepare(grpc::ClientContext& ctx, const ProviderTarget& t) {
  for (const auto& [k, v] : t.metadata) ctx.AddMetadata(k, v);
  if (t.deadline.count() > 0) ctx.set_deadline(std::chrono::system_clock::now() + t.deadline);
}

const char* health_name(Health h) {
  switch (h) {
    case Health::serving:
      return "serving";
    case Health::not_serving:
      return "not serving";
    case Health::unknown_service:
      return "unknown service";
    case Health::unreachable:
      return "unreachable";
  }
  return "?";
}

Health check_health(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                    std::chrono::milliseconds timeout, std::string* detail) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(true);  // connect within the timeout instead of failing at once
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) {
    if (detail != nullptr) *detail = st.error_message();
    return st.error_code() == grpc::StatusCode::NOT_FOUND ? Health::unknown_service
                                                          : Health::unreachable;
  }
  switch (resp.status()) {
    case grpc::health::v1::HealthCheckResponse::SERVING:
      return Health::serving;
    case grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN:
      return Health::unknown_service;
    default:
      return Health::not_serving;
  }
}

}  // namespace voxbridge::providers
