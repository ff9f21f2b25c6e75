// The server on port 0 for integration tests: started on construction, shut down (no drain)
// on destruction.
#pragma once

#include <chrono>

#include "voxbridge/config/config.hpp"
#include "voxbridge/server/server.hpp"

namespace voxbridge::testing {

struct RunningServer {
  explicit RunningServer(const config::Config& c) : server(c) {
    server.start();
    port = server.ports().at(0);
  }
  ~RunningServer() { server.shutdown(std::chrono::milliseconds(0)); }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;
  server::Server server;
  unsigned short port = 0;
};

}  // namespace voxbridge::testing
