// The command line's way to a running server's HTTP API: one blocking GET.
#pragma once

#include <chrono>
#include <string>

namespace voxbridge::net {

struct HttpReply {
  int status = 0;
  std::string body;
};

/// GET `target` from HOST:PORT (`api`; 0.0.0.0 and :: mean this machine), with a bearer
/// `token` if not empty, HTTP/1.1, giving up after `timeout`. Throws std::exception (with a
/// readable what()) if `api` is not HOST:PORT or the server cannot be reached.
HttpReply http_get(const std::string& api, const std::string& target, const std::string& token,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

}  // namespace voxbridge::net
