// The health of the providers the calls use: the standard gRPC health check of each provider a
// listener's or route's agent talks to, once at start (logged) and, with the HTTP API on, every
// provider_check_interval on a thread of its own, whose verdict /readyz reports.
//
// Threads: probe, check and down may be called from any thread; the monitor thread is started by
// start() and joined by stop() (or the destructor). The configuration to check is asked of
// `current` each time, so a reload's providers are checked from the next round on (recheck()
// starts it at once).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "voxbridge/config/config.hpp"
#include "voxbridge/providers/provider.hpp"

namespace voxbridge::server {

/// One provider's answer to a health check.
struct ProviderProbe {
  std::string name, address, service;
  bool serving = false;
  std::string detail;  ///< why not serving
};

class ProviderHealth {
 public:
  using Current = std::function<std::shared_ptr<const config::Config>()>;
  /// Checks over `channels` the providers of the configuration `current` returns, every
  /// `interval` once started.
  ProviderHealth(std::shared_ptr<providers::ChannelPool> channels, Current current,
                 std::chrono::milliseconds interval);
  ~ProviderHealth() { stop(); }
  ProviderHealth(const ProviderHealth&) = delete;
  ProviderHealth& operator=(const ProviderHealth&) = delete;

  /// Each provider in use, once; with `check` false unchecked (no I/O).
  std::vector<ProviderProbe> probe(std::chrono::milliseconds timeout, bool check = true) const;
  /// Checks every provider in use and logs each answer (never fatal).
  void check(std::chrono::milliseconds timeout) const;
  /// Starts the monitor thread (not ready until its first round when there are providers).
  void start();
  /// Stops and joins the monitor thread, if running.
  void stop();
  /// The monitor checks now instead of at the end of its interval (a reload).
  void recheck() { cv_.notify_all(); }
  /// Empty when every provider served at the last check, else the first one down.
  std::string down() const;

 private:
  void monitor();

  std::shared_ptr<providers::ChannelPool> channels_;
  Current current_;
  std::chrono::milliseconds interval_;
  mutable std::mutex down_mu_;
  std::string down_;  // guarded by down_mu_
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace voxbridge::server
