// The HTTP API's request checks and body parsing, without I/O: http_api.cpp serves them, the
// fuzzer (tests/fuzz/http_request_fuzz.cpp) drives them with beast's parser. Private to
// src/http_api. Any thread; no state.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "voxbridge/http_api/http_api.hpp"

namespace voxbridge::http_api {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

/// Where a failed check leaves a request: nothing (ok), or 403/415 with the reason.
struct Refusal {
  boost::beast::http::status status = boost::beast::http::status::ok;
  std::string message;
  explicit operator bool() const { return status != boost::beast::http::status::ok; }
};

/// A UUID as Asterisk's ${UUID()} writes it (any case).
bool is_uuid_text(std::string_view s);
/// ASCII lower case.
std::string lower(std::string s);
/// The media type of a Content-Type value ("application/json; charset=utf-8" ->
/// "application/json"), lower case.
std::string media_type(std::string_view content_type);
/// True for a Host header that names this machine (see http_api.hpp).
bool host_allowed(std::string_view host, const std::string& listen_host);
/// The cross-site checks of a request that changes state: Host, Origin (403).
Refusal check_site(const Request& req, const std::string& listen_host);
/// The body must be JSON, or form data where `form_ok` (415).
Refusal check_content_type(const Request& req, bool form_ok);
/// A readiness text up to its first ": " (the details left out).
std::string short_reason(const std::string& why);
/// application/x-www-form-urlencoded pairs; `problem` set on a bad escape or a pair without '='.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body,
                                                            std::string& problem);

/// A pre-registration's body: its metadata and time to live.
struct Registration {
  Registrations::Metadata metadata;
  std::chrono::seconds ttl{60};
};
/// Parses POST /v1/calls/UUID's body (form data or JSON, by its Content-Type) and checks the
/// metadata's bounds; nullopt and `problem` set if refused.
std::optional<Registration> parse_registration(const Request& req, std::string& problem);

/// "/v1/calls/UUID/events[?from=N]" -> (UUID, N); nullopt for any other target.
std::optional<std::pair<std::string, std::size_t>> events_request(const std::string& target);

}  // namespace voxbridge::http_api
