// A business tool's HTTP(S) endpoint for tests: 127.0.0.1 on an ephemeral port, plain HTTP or
// HTTPS with a throwaway self-signed certificate for "localhost" (tests/support/test_tls; its
// PEM is written to ca_file() for the tool's ca_file). It records every request exactly as it
// came (method, target, headers in order, body) and answers each by a script per path: status,
// body (or a body of `size` bytes), and a delay before answering. One request per connection
// (voxbridge sends Connection: close). Its own thread; every member is thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace voxbridge::testing {

class ToolServer {
 public:
  struct Request {
    std::string method, target, body;
    std::vector<std::pair<std::string, std::string>> headers;  ///< as sent, in order
    std::chrono::steady_clock::time_point at;                  ///< when it was read
    /// The value of header `name` (case-insensitive); empty if absent.
    std::string header(const std::string& name) const;
    bool has(const std::string& name) const;
  };
  /// How a path is answered.
  struct Reply {
    int status = 200;
    std::string body = R"({"ok":true})";
    std::size_t size = 0;  ///< > 0: a body of this many 'x' bytes instead of `body`
    std::chrono::milliseconds delay{0};
    std::string content_type = "application/json";
  };

  explicit ToolServer(bool tls = false);
  ~ToolServer();
  ToolServer(const ToolServer&) = delete;
  ToolServer& operator=(const ToolServer&) = delete;

  unsigned short port() const { return port_; }
  /// "http://127.0.0.1:PORT" or "https://localhost:PORT", then `path`.
  std::string url(const std::string& path) const;
  /// The certificate to trust (HTTPS); empty for HTTP.
  const std::string& ca_file() const { return ca_file_; }
  /// Answers requests whose path (the target before '?') is `path` so; others get Reply{}.
  void script(const std::string& path, Reply reply);

  std::vector<Request> requests() const;
  /// Waits until at least `n` requests have arrived; false after `limit`.
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(5)) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  unsigned short port_ = 0;
  std::string ca_file_;
};

}  // namespace voxbridge::testing
