#include "support/tool_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>

#include "support/test_tls.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct ToolServer::Impl {
  std::unique_ptr<asio::ssl::context> ctx;  // outlives io (its handshakes die with io)
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::vector<Request> requests;
  std::map<std::string, Reply> replies;
  std::thread thread;

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    if (!ctx) {
      co_await handle(socket);
      co_return;
    }
    asio::ssl::stream<tcp::socket> tls(std::move(socket), *ctx);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server,
                                             asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    co_await handle(tls);
    co_await tls.async_shutdown(asio::as_tuple(asio::use_awaitable));
  }

  template <class Stream>
  asio::awaitable<void> handle(Stream& s) {
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(s, buf, req, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    Request r{std::string(req.method_string()),
              std::string(req.target()),
              req.body(),
              {},
              std::chrono::steady_clock::now()};
    for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
    Reply reply;
    {
      std::lock_guard lock(mu);
      const auto path = r.target.substr(0, r.target.find('?'));
      if (const auto it = replies.find(path); it != replies.end()) reply = it->second;
      requests.push_back(r);
    }
    cv.notify_all();
    if (reply.delay.count() > 0) {
      asio::steady_timer t(io, reply.delay);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
    res.set(http::field::content_type, reply.content_type);
    res.body() = reply.size > 0 ? std::string(reply.size, 'x') : reply.body;
    res.keep_alive(false);
    res.prepare_payload();
    co_await http::async_write(s, res, asio::as_tuple(asio::use_awaitable));
  }
};

std::string ToolServer::Request::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

bool ToolServer::Request::has(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return true;
  }
  return false;
}

ToolServer::ToolServer(bool tls) : impl_(std::make_shared<Impl>()) {
  port_ = impl_->acceptor.local_endpoint().port();
  if (tls) {
    const auto [cert, key] = self_signed_localhost();
    impl_->ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    impl_->ctx->use_certificate_chain(asio::buffer(cert));
    impl_->ctx->use_private_key(asio::buffer(key), asio::ssl::context::pem);
    ca_file_ = (std::filesystem::temp_directory_path() /
                ("vb_tool_server_ca_" + std::to_string(port_) + ".pem"))
                   .string();
    std::ofstream(ca_file_) << cert;
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([i = impl_.get()] { i->io.run(); });
}

ToolServer::~ToolServer() {
  impl_->io.stop();
  impl_->thread.join();
  if (!ca_file_.empty()) std::filesystem::remove(ca_file_);
}

std::string ToolServer::url(const std::string& path) const {
  return (impl_->ctx ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port_) + path;
}

void ToolServer::script(const std::string& path, Reply reply) {
  std::lock_guard lock(impl_->mu);
  impl_->replies[path] = std::move(reply);
}

std::vector<ToolServer::Request> ToolServer::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

bool ToolServer::wait_for(std::size_t n, std::chrono::milliseconds limit) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, limit, [&] { return impl_->requests.size() >= n; });
}

}  // namespace voxbridge::testing
