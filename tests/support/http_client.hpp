// One blocking HTTP/1.1 request to a server on 127.0.0.1, for the tests of the local API.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <utility>

namespace voxbridge::testing {

/// Sends `method target` with `body` (and a bearer token if given); returns status and body.
/// A POST says its body's type as the API wants it: JSON if it starts with '{', else form data.
inline std::pair<int, std::string> http_request(unsigned short port,
                                                boost::beast::http::verb method,
                                                const std::string& target,
                                                const std::string& body = "",
                                                const std::string& token = "") {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket sock(io);
  sock.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (method == http::verb::post) {
    req.set(http::field::content_type, body.empty() || body.front() == '{'
                                           ? "application/json"
                                           : "application/x-www-form-urlencoded");
  }
  req.body() = body;
  req.prepare_payload();
  http::write(sock, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(sock, buf, res);
  return {static_cast<int>(res.result_int()), res.body()};
}

}  // namespace voxbridge::testing
