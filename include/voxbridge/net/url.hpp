// HTTP(S) URLs for the clients voxbridge opens itself (ARI, webhooks, the OpenAI-compatible
// LLM): one parser, so every one of them accepts and refuses the same things.
#pragma once

#include <string>
#include <string_view>

namespace voxbridge::net {

/// An http:// or https:// URL taken apart for a client that connects by itself.
struct HttpUrl {
  bool tls = false;       ///< https://
  std::string host;       ///< what to resolve or connect to: an IPv6 address without brackets
  std::string port;       ///< as written, or 80 / 443
  std::string authority;  ///< host[:port] as written: the Host header
  std::string target;     ///< path and query ("/" when none), without the fragment
  std::string origin;     ///< scheme://authority, the part that is safe to log
};

/// Parses "http[s]://host[:port][/path][?query][#fragment]". Throws std::invalid_argument with
/// a message that says what is wrong for: another scheme, an empty host, an unclosed IPv6
/// bracket, a port that is not 1..65535, credentials ("user:pass@host": put them in the
/// client's own options), or spaces and control characters (percent-encode them).
HttpUrl parse_http_url(std::string_view url);

/// `text` percent-encoded for a URL's path segment or query value: every byte but RFC 3986's
/// unreserved characters (A-Z a-z 0-9 - . _ ~) as %XX. The one encoder of every client here.
std::string percent_encode(std::string_view text);

}  // namespace voxbridge::net
