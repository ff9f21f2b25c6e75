// libFuzzer target for the HTTP API's request path (bytes from any local client, or a web page
// through a browser): beast's request parser with the API's limits, then the checks and body
// parsing the API runs before it acts (src/http_api/request.hpp) and the pre-registration book.
// Checks: no crash or sanitizer report; what the checks let through holds their promises (a
// passing Host names this machine, an accepted body type is JSON or form, accepted metadata is
// within the bounds); the book never holds more than its caps.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "request.hpp"

namespace http = boost::beast::http;
using namespace voxbridge::http_api;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Registrations book;
  http::request_parser<http::string_body> parser;
  parser.body_limit(16 * 1024);  // the API's defaults
  parser.header_limit(8192);
  parser.eager(true);
  boost::beast::error_code ec;
  boost::asio::const_buffer in(data, size);
  while (!parser.is_done()) {
    const std::size_t used = parser.put(in, ec);
    in += used;
    if (ec == http::error::need_more) {
      ec = {};
      if (in.size() == 0 || used == 0) {
        parser.put_eof(ec);
        break;
      }
      continue;
    }
    if (ec || used == 0) break;  // an error, or a parser that takes no more of this input
  }
  if (ec || !parser.is_done()) return 0;
  const Request req = parser.release();
  const std::string target(req.target());

  if (!check_site(req, "127.0.0.1")) {
    const auto host = req[http::field::host];
    if (!host_allowed(std::string_view(host.data(), host.size()), "127.0.0.1")) std::abort();
  }
  const bool json_ok = !check_content_type(req, false);
  const bool form_ok = !check_content_type(req, true);
  const auto ct = req[http::field::content_type];
  const std::string type = media_type(std::string_view(ct.data(), ct.size()));
  if (json_ok && type != "application/json") std::abort();
  if (form_ok && type != "application/json" && type != "application/x-www-form-urlencoded") {
    std::abort();
  }
  (void)short_reason(target);
  (void)events_request(target);
  const std::string calls = "/v1/calls/";
  if (target.rfind(calls, 0) == 0 && is_uuid_text(target.substr(calls.size()))) {
    std::string problem;
    if (auto reg = parse_registration(req, problem)) {
      if (!Registrations::check(reg->metadata).empty()) std::abort();
      if (reg->ttl.count() < 1 || reg->ttl.count() > 3600) std::abort();
      book.add(target.substr(calls.size()), std::move(reg->metadata), reg->ttl);
      if (size % 3 == 0) (void)book.take(target.substr(calls.size()));
    } else if (problem.empty()) {
      std::abort();  // a refusal always says why
    }
  }
  if (book.size() > Registrations::kMaxEntries || book.bytes() > Registrations::kMaxTotalBytes) {
    std::abort();
  }
  return 0;
}
