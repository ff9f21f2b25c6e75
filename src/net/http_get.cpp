#include "voxbridge/net/http_get.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

#include "voxbridge/net/io_pool.hpp"

namespace voxbridge::net {

HttpReply http_get(const std::string& api, const std::string& target, const std::string& token,
                   std::chrono::milliseconds timeout) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  std::string host;
  unsigned short port = 0;
  if (!split_host_port(api, host, port))
    throw std::invalid_argument("'" + api + "' is not HOST:PORT");
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  stream.connect({boost::asio::ip::make_address(host), port});
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  boost::system::error_code ignored;
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  return {static_cast<int>(res.result_int()), std::move(res.body())};
}

}  // namespace voxbridge::net
