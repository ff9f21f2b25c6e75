#include "mock_chat_server.hpp"

#include "support/test_tls.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
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

void MockChatServer::push_script(Script s) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(s));
}

MockChatServer::Event MockChatServer::tool_call(int index, const std::string& id,
                                                const std::string& name,
                                                const std::string& args_piece) {
  return {
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":)" +
          std::to_string(index) + R"(,"id":)" + quoted(id) +
          R"(,"type":"function","function":{"name":)" + quoted(name) + R"(,"arguments":)" +
          quoted(args_piece) + R"(}}]},"finish_reason":null}]})",
      0};
}

std::string MockChatServer::check_request(const std::string& body) {
  namespace json = boost::json;
  auto error = [](const std::string& message, const json::value& param) {
    return json::serialize(json::object{{"error", json::object{{"message", message},
                                                               {"type", "invalid_request_error"},
                                                               {"param", param},
                                                               {"code", nullptr}}}});
  };
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object())
    return error("We could not parse the JSON body of your request.", nullptr);
  const auto* msgs = v.as_object().if_contains("messages");
  if (msgs == nullptr || !msgs->is_array()) {
    return error("Missing required parameter: 'messages'.", "messages");
  }
  auto str = [](const json::value& o, const char* k) -> const json::string* {
    const auto* x = o.is_object() ? o.as_object().if_contains(k) : nullptr;
    return x != nullptr ? x->if_string() : nullptr;
  };
  std::vector<std::string> open;  // ids of the last tool_calls message not yet answered
  std::size_t opened_at = 0;
  auto unanswered = [&]() {
    std::string ids;
    for (const auto& id : open) ids += (ids.empty() ? "" : ", ") + id;
    return error(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: " +
            ids,
        json::value("messages.[" + std::to_string(opened_at) + "].role"));
  };
  const auto& arr = msgs->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const auto& m = arr[i];
    const auto* role = str(m, "role");
    const std::string at = "messages.[" + std::to_string(i) + "]";
    if (role == nullptr)
      return error("Missing required parameter: '" + at + ".role'.", json::value(at + ".role"));
    if (*role == "tool") {
      const auto* id = str(m, "tool_call_id");
      if (id == nullptr) {
        return error("Missing required parameter: '" + at + ".tool_call_id'.",
                     json::value(at + ".tool_call_id"));
      }
      const auto it = std::find(open.begin(), open.end(), std::string(*id));
      if (it == open.end()) {
        return error(
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
            "message with 'tool_calls'.",
            json::value(at + ".role"));
      }
      if (str(m, "content") == nullptr) {
        return error("Invalid type for '" + at + ".content': expected a string.",
                     json::value(at + ".content"));
      }
      open.erase(it);
      continue;
    }
    if (!open.empty()) return unanswered();
    const auto* calls = m.as_object().if_contains("tool_calls");
    if (calls == nullptr) {
      if (str(m, "content") == nullptr) {
        return error("Invalid value for '" + at + ".content': expected a string.",
                     json::value(at + ".content"));
      }
      continue;
    }
    if (*role != "assistant" || !calls->is_array() || calls->as_array().empty()) {
      return error("Invalid '" + at + ".tool_calls'.", json::value(at + ".tool_calls"));
    }
    const auto* content = m.as_object().if_contains("content");
    if (content == nullptr || !(content->is_null() || content->is_string())) {
      return error("Invalid value for '" + at + ".content'.", json::value(at + ".content"));
    }
    opened_at = i;
    for (std::size_t k = 0; k < calls->as_array().size(); ++k) {
      const auto& c = calls->as_array()[k];
      const std::string cp = at + ".tool_calls.[" + std::to_string(k) + "]";
      const auto* id = str(c, "id");
      const auto* type = str(c, "type");
      const auto* fn = c.is_object() ? c.as_object().if_contains("function") : nullptr;
      if (id == nullptr)
        return error("Missing required parameter: '" + cp + ".id'.", json::value(cp + ".id"));
      if (type == nullptr || *type != "function") {
        return error("Invalid value for '" + cp + ".type'.", json::value(cp + ".type"));
      }
      if (fn == nullptr || str(*fn, "name") == nullptr || str(*fn, "arguments") == nullptr) {
        return error("Missing required parameter: '" + cp + ".function'.",
                     json::value(cp + ".function"));
      }
      open.emplace_back(*id);
    }
  }
  if (!open.empty()) return unanswered();
  if (const auto* tools = v.as_object().if_contains("tools")) {
    if (!tools->is_array()) return error("Invalid type for 'tools': expected an array.", "tools");
    for (std::size_t k = 0; k < tools->as_array().size(); ++k) {
      const auto& t = tools->as_array()[k];
      const std::string tp = "tools.[" + std::to_string(k) + "]";
      const auto* type = str(t, "type");
      const auto* fn = t.is_object() ? t.as_object().if_contains("function") : nullptr;
      if (type == nullptr || *type != "function" || fn == nullptr || str(*fn, "name") == nullptr) {
        return error("Invalid value for '" + tp + "'.", json::value(tp));
      }
      if (const auto* p = fn->as_object().if_contains("parameters"); p && !p->is_object()) {
        return error("Invalid type for '" + tp + ".function.parameters': expected an object.",
                     json::value(tp + ".function.parameters"));
      }
    }
  }
  return {};
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
    if (!queue_.empty()) {
      script = std::move(queue_.front());
      queue_.erase(queue_.begin());
    } else {
      script = script_;
    }
  }
  if (const std::string bad = check_request(req.body()); !bad.empty()) {
    script = Script{400, bad, {}};  // the service checks before it thinks
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
