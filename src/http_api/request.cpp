#include "request.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>

#include <boost/asio/ip/address.hpp>

namespace voxbridge::http_api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

/// A UUID as Asterisk's ${UUID()} writes it (any case).
bool is_uuid_text(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

/// application/x-www-form-urlencoded pairs; `problem` set on a bad escape or a pair without '='.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body,
                                                            std::string& problem) {
  auto decode = [&](std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i] == '+') {
        out += ' ';
      } else if (in[i] == '%') {
        const int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
        const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          problem = "bad %-escape in the form data";
          return out;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        out += in[i];
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at <= body.size() && problem.empty()) {
    const auto end = std::min(body.find('&', at), body.size());
    const std::string_view pair = body.substr(at, end - at);
    at = end + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      problem = "form data must be NAME=VALUE pairs joined by &";
      break;
    }
    out.emplace_back(decode(pair.substr(0, eq)), decode(pair.substr(eq + 1)));
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// The media type of a Content-Type value ("application/json; charset=utf-8" ->
/// "application/json"), lower case.
std::string media_type(std::string_view content_type) {
  const auto semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  return lower(std::string(t));
}

/// A Host header a browser sends only when the page's own URL names this machine: an IP
/// address, `localhost` or the listen address (with or without a port). A DNS-rebinding page
/// sends its own domain name. No Host at all (HTTP/1.0 tools) is no browser either.
bool host_allowed(std::string_view host, const std::string& listen_host) {
  if (host.empty()) return true;
  std::string_view name = host;
  if (name.front() == '[') {
    const auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view rest = name.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    name = name.substr(1, close - 1);
  } else if (const auto colon = name.find(':'); colon != std::string_view::npos) {
    if (name.find(':', colon + 1) == std::string_view::npos) name = name.substr(0, colon);
  }
  const std::string n = lower(std::string(name));
  if (n.empty()) return false;
  if (n == "localhost" || n == lower(listen_host)) return true;
  boost::system::error_code ec;
  asio::ip::make_address(n, ec);
  return !ec;
}

/// The cross-site checks of a request that changes state: Host, Origin (see the header).
Refusal check_site(const Request& req, const std::string& listen_host) {
  const auto host = req[http::field::host];
  if (!host_allowed(std::string_view(host.data(), host.size()), listen_host)) {
    return {http::status::forbidden,
            "Host '" + std::string(host) +
                "' is not this machine: use its IP address, localhost or the listen address"};
  }
  const auto origin = req[http::field::origin];
  if (!origin.empty() && (host.empty() || std::string_view(origin.data(), origin.size()) !=
                                              "http://" + std::string(host))) {
    return {http::status::forbidden,
            "requests from web pages are refused (Origin '" + std::string(origin) + "')"};
  }
  return {};
}

/// The request's body type must be JSON (or form data where `form_ok`).
Refusal check_content_type(const Request& req, bool form_ok) {
  const auto ct = req[http::field::content_type];
  const std::string type = media_type(std::string_view(ct.data(), ct.size()));
  if (type == "application/json") return {};
  if (form_ok && type == "application/x-www-form-urlencoded") return {};
  return {http::status::unsupported_media_type,
          std::string("Content-Type must be application/json") +
              (form_ok ? " or application/x-www-form-urlencoded" : "") +
              (type.empty() ? " (none given)" : " (got '" + type + "')")};
}

/// The short reason of a readiness text: up to the first ": " ("provider a (asr) down: the
/// details" -> "provider a (asr) down").
std::string short_reason(const std::string& why) {
  return why.substr(0, why.find(": "));
}

std::optional<Registration> parse_registration(const Request& req, std::string& problem) {
  Registration out;
  auto set_ttl = [&](std::int64_t v) {
    if (v < 1 || v > 3600) return false;
    out.ttl = std::chrono::seconds(v);
    return true;
  };
  const std::string& body = req.body();
  const auto ct = req[http::field::content_type];
  if (media_type(std::string_view(ct.data(), ct.size())) == "application/x-www-form-urlencoded") {
    // Form encoding (what Asterisk's CURL() sends: its argument parser eats the quotes a
    // JSON body needs): VB_AGENT=sales&caller_number=2125551234&ttl=30.
    for (auto& [k, val] : parse_form(body, problem)) {
      if (k == "ttl") {
        std::int64_t t = 0;
        const auto r = std::from_chars(val.data(), val.data() + val.size(), t);
        if (r.ec != std::errc() || r.ptr != val.data() + val.size() || !set_ttl(t)) {
          problem = "ttl must be 1..3600 seconds";
          return std::nullopt;
        }
      } else {
        out.metadata[k] = val;
      }
    }
    if (!problem.empty()) return std::nullopt;
  } else {
    boost::system::error_code ec;
    const json::value v = json::parse(body.empty() ? std::string("{}") : body, ec);
    if (ec || !v.is_object()) {
      problem = "the body must be a JSON object or form data";
      return std::nullopt;
    }
    for (const auto& [k, val] : v.as_object()) {
      if (k == "ttl") {
        if (!val.is_int64() || !set_ttl(val.as_int64())) {
          problem = "ttl must be 1..3600 seconds";
          return std::nullopt;
        }
      } else if (val.is_string()) {
        out.metadata[std::string(k)] = std::string(val.as_string());
      } else if (val.is_int64()) {
        out.metadata[std::string(k)] = std::to_string(val.as_int64());
      } else {
        problem = "metadata values must be strings or integers: " + std::string(k);
        return std::nullopt;
      }
    }
  }
  problem = Registrations::check(out.metadata);
  if (!problem.empty()) return std::nullopt;
  return out;
}

std::optional<std::pair<std::string, std::size_t>> events_request(const std::string& target) {
  const std::string calls = "/v1/calls/";
  const std::string suffix = "/events";
  const auto q = target.find('?');
  const std::string path = target.substr(0, q);
  if (path.rfind(calls, 0) != 0 || path.size() <= calls.size() + suffix.size() ||
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  std::size_t from = 0;
  if (q != std::string::npos) {
    const std::string query = target.substr(q + 1);
    if (query.rfind("from=", 0) == 0) {
      const auto* b = query.data() + 5;
      const auto* e = query.data() + query.size();
      std::from_chars(b, e, from);
    }
  }
  return std::make_pair(path.substr(calls.size(), path.size() - calls.size() - suffix.size()),
                        from);
}

std::string Registrations::check(const Metadata& metadata) {
  if (metadata.size() > kMaxKeys) {
    return "too many metadata fields: " + std::to_string(metadata.size()) + " (at most " +
           std::to_string(kMaxKeys) + ")";
  }
  for (const auto& [k, v] : metadata) {
    if (k.empty() || k.size() > kMaxKeyBytes) {
      return "metadata names must be 1.." + std::to_string(kMaxKeyBytes) + " bytes";
    }
    if (v.size() > kMaxValueBytes) {
      return "metadata value of " + k + " is longer than " + std::to_string(kMaxValueBytes) +
             " bytes";
    }
  }
  return {};
}

void Registrations::erase(std::unordered_map<std::string, Entry>::iterator it) {
  by_expiry_.erase({it->second.expires, it->first});
  bytes_ -= it->second.bytes;
  entries_.erase(it);
}

void Registrations::expire(Clock::time_point now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    erase(entries_.find(by_expiry_.begin()->second));
  }
}

bool Registrations::add(const std::string& uuid, Metadata metadata, std::chrono::seconds ttl,
                        Clock::time_point now) {
  if (!check(metadata).empty()) return false;
  std::size_t size = 0;
  for (const auto& [k, v] : metadata) size += k.size() + v.size() + 64;
  const std::string key = lower(uuid);
  std::lock_guard lock(mu_);
  expire(now);
  if (auto it = entries_.find(key); it != entries_.end()) erase(it);  // registered again
  if (entries_.size() >= kMaxEntries || bytes_ + size > kMaxTotalBytes) return false;
  const auto expires = now + ttl;
  by_expiry_.emplace(expires, key);
  entries_.emplace(key, Entry{std::move(metadata), expires, size});
  bytes_ += size;
  return true;
}

std::optional<Registrations::Metadata> Registrations::take(const std::string& uuid,
                                                           Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(lower(uuid));
  if (it == entries_.end()) return std::nullopt;
  const bool live = it->second.expires > now;
  Metadata found = std::move(it->second.metadata);
  erase(it);
  if (!live) return std::nullopt;
  return found;
}

std::size_t Registrations::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::size_t Registrations::bytes() {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace voxbridge::http_api
