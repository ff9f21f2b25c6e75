#include "voxbridge/net/url.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace voxbridge::net {

namespace {

[[noreturn]] void bad(std::string_view why) {
  throw std::invalid_argument(std::string(why));
}

}  // namespace

HttpUrl parse_http_url(std::string_view url) {
  HttpUrl u;
  std::string_view rest;
  if (url.starts_with("https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    bad("must start with http:// or https://");
  }
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    bad("spaces or control characters (percent-encode them)");
  }
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const auto end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, end);
  u.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (u.target.front() == '?') u.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) {
    bad("credentials in the URL are not supported");
  }
  std::string_view port;
  if (authority.starts_with('[')) {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) bad("unclosed '[' in the host");
    u.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad("bad host '" + std::string(authority) + "'");
      port = after.substr(1);
      if (port.empty()) bad("empty port");
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    port = authority.substr(colon + 1);
    if (port.empty()) bad("empty port");
  } else {
    u.host = std::string(authority);
  }
  if (u.host.empty()) bad("no host");
  if (port.empty()) {
    u.port = u.tls ? "443" : "80";
  } else {
    unsigned n = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), n);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || n < 1 || n > 65535) {
      bad("bad port '" + std::string(port) + "'");
    }
    u.port = std::string(port);
  }
  u.authority = std::string(authority);
  u.origin = (u.tls ? "https://" : "http://") + u.authority;
  return u;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    }
  }
  return out;
}

}  // namespace voxbridge::net
