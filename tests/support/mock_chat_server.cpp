#include "mock_chat_server.hpp"

#include "support/test_tls.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {
/// A JSON string (RFC 8259 section 7: quote, backslash and controls escaped).
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
      out += esc;
      continue;
    }
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}
}  // namespace

MockChatServer::MockChatServer(bool tls)
    : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}), tls_(tls) {
  port_ = acceptor_.local_endpoint().port();
  if (tls_) {
    std::tie(cert_pem_, key_pem_) = self_signed_localhost();
    ca_file_ =
        (std::filesystem::temp_directory_path() / ("vb_mock_ca_" + std::to_string(port_) + ".pem"))
            .string();
    std::ofstream(ca_file_) << cert_pem_;
  }
  thread_ = std::thread([this] { serve(); });
}

MockChatServer::~MockChatServer() {
  stop_ = true;
  try {  // wake the blocking accept
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port_});
  } catch (...) {
  }
  thread_.join();
  if (!ca_file_.empty()) std::filesystem::remove(ca_file_);
}

void MockChatServer::set_script(Script s) {
  std::lock_guard lock(mu_);
  script_ = std::move(s);
}

std::vector<MockChatServer::Request> MockChatServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

MockChatServer::Event MockChatServer::text(const std::string& t, int delay_ms) {
  return {
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":)" +
          quoted(t) + R"(},"finish_reason":null}]})",
      delay_ms};
}

MockChatServer::Event MockChatServer::tool(int index, const std::string& name,
                                           const std::string& args_piece, int delay_ms) {
  std::string fn = "{";
  if (!name.empty()) fn += R"("name":)" + quoted(name) + ",";
  fn += R"("arguments":)" + quoted(args_piece) + "}";
  return {
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":)" +
          std::to_string(index) + R"(,"type":"function","function":)" + fn +
          R"(}]},"finish_reason":null}]})",
      delay_ms};
}

void MockChatServer::serve() {
  while (!stop_) {
    tcp::socket s(io_);
    boost::system::error_code ec;
    acceptor_.accept(s, ec);
    if (ec || stop_) break;
    try {
      if (tls_) {
        asio::ssl::context ctx(asio::ssl::context::tls_server);
        ctx.use_certificate_chain(asio::buffer(cert_pem_));
        ctx.use_private_key(asio::buffer(key_pem_), asio::ssl::context::pem);
        asio::ssl::stream<tcp::socket&> tls(s, ctx);
        tls.handshake(asio::ssl::stream_base::server);
        handle(s, tls);
      } else {
        handle(s, s);
      }
    } catch (const std::exception&) {
      // the client went away: next connection
    }
  }
}

template <class Stream>
void MockChatServer::handle(tcp::socket& raw, Stream& s) {
  boost::beast::flat_buffer buf;
  http::request<http::string_body> req;
  http::read(s, buf, req);
  Script script;
  {
    std::lock_guard lock(mu_);
    requests_.push_back(
        {std::string(req.target()), std::string(req[http::field::authorization]), req.body()});
    script = script_;
  }
  if (script.status != 200) {
    const std::string head = "HTTP/1.1 " + std::to_string(script.status) +
                             " Error\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(script.error_body.size()) +
                             "\r\nConnection: close\r\n\r\n";
    asio::write(s, asio::buffer(head + script.error_body));
    return;
  }
  asio::write(s,
              asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")));
  body_bytes_sent_ = 0;
  const auto write_chunk = [&](const std::string& payload) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
    asio::write(s, asio::buffer(std::string(size) + payload + "\r\n"));
    body_bytes_sent_ += payload.size();
  };
  for (const auto& e : script.events) {
    if (e.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(e.delay_ms));
    write_chunk("data: " + e.data + "\n\n");
  }
  if (!script.flood.empty()) {
    std::string block;
    while (block.size() < 64 * 1024) block += script.flood;
    for (std::size_t sent = 0; sent < script.flood_bytes && !stop_; sent += block.size()) {
      write_chunk(block);  // throws once the client has closed the connection
    }
  }
  if (script.stall) {
    // Keep the connection open and silent until the client gives up (or we stop).
    raw.non_blocking(true);
    char c;
    while (!stop_) {
      boost::system::error_code ec;
      raw.read_some(asio::buffer(&c, 1), ec);
      if (ec && ec != asio::error::would_block) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return;
  }
  asio::write(s, asio::buffer(std::string("0\r\n\r\n")));
}

}  // namespace voxbridge::testing
