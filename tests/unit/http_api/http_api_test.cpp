// The local HTTP API on port 0 with stub handlers, driven by raw requests over real sockets:
// what a web page may not do, the token, readiness details, connection limits and deadlines.
#include "voxbridge/http_api/http_api.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace voxbridge::http_api {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

constexpr const char* kUuid = "0f0e0d0c-0b0a-4908-8706-050403020100";

struct Api {
  explicit Api(HttpApiOptions o = {}, std::string not_ready = "") {
    HttpHandlers h;
    h.registrations = registrations;
    h.not_ready = [why = std::move(not_ready)] { return why; };
    h.status = [] { return std::string("[]\n"); };
    api = std::make_unique<HttpApi>(std::move(o), std::move(h));
    api->start();
  }
  std::shared_ptr<Registrations> registrations = std::make_shared<Registrations>();
  std::unique_ptr<HttpApi> api;
};

/// A connection sending raw bytes and reading until the server closes or `limit` passes.
struct Conn {
  explicit Conn(unsigned short port) : sock(io) {
    sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void send(const std::string& bytes) { asio::write(sock, asio::buffer(bytes)); }
  /// Everything until the server closes; nullopt if it is still open after `limit`.
  std::optional<std::string> read_until_closed(std::chrono::milliseconds limit) {
    std::string all;
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left <= 0ms) return std::nullopt;
      pollfd pfd{sock.native_handle(), POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char buf[4096];
      boost::system::error_code ec;
      const std::size_t n = sock.read_some(asio::buffer(buf), ec);
      if (ec) return all;
      all.append(buf, n);
    }
  }
  /// Reads until what came contains `marker` (or 3 s pass); returns what came.
  std::string read_until(const std::string& marker) {
    std::string all;
    const auto end = std::chrono::steady_clock::now() + 3000ms;
    while (all.find(marker) == std::string::npos && std::chrono::steady_clock::now() < end) {
      pollfd pfd{sock.native_handle(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      char buf[4096];
      boost::system::error_code ec;
      const std::size_t n = sock.read_some(asio::buffer(buf), ec);
      if (ec) break;
      all.append(buf, n);
    }
    return all;
  }
  asio::io_context io;
  tcp::socket sock;
};

/// One request with `Connection: close`; returns the whole response.
std::string exchange(unsigned short port, const std::string& method, const std::string& target,
                     const std::string& headers, const std::string& body = "") {
  Conn c(port);
  c.send(method + " " + target + " HTTP/1.1\r\n" + headers +
         "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  return c.read_until_closed(3000ms).value_or("(no answer)");
}

int status_of(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(response.substr(9, 3)) : -1;
}

const std::string kLocal = "Host: 127.0.0.1:8081\r\n";

TEST(HttpApi, StateChangingRequestsWantJsonOrFormContentType) {
  Api a;
  const unsigned short port = a.api->port();
  const std::string reg = std::string("/v1/calls/") + kUuid;
  // A web page can POST text/plain (or nothing) without a CORS preflight: refused.
  auto r = exchange(port, "POST", reg, kLocal + "Content-Type: text/plain\r\n", "VB_AGENT=x");
  EXPECT_EQ(status_of(r), 415) << r;
  EXPECT_NE(r.find("{\"error\":\"Content-Type must be application/json or "
                   "application/x-www-form-urlencoded (got 'text/plain')\"}"),
            std::string::npos)
      << r;
  r = exchange(port, "POST", reg, kLocal, "{}");
  EXPECT_EQ(status_of(r), 415) << r;
  EXPECT_NE(r.find("(none given)"), std::string::npos) << r;
  EXPECT_EQ(a.registrations->size(), 0u);
  // What Asterisk's CURL() sends (libcurl's default type for POST data), and JSON.
  r = exchange(port, "POST", reg, kLocal + "Content-Type: application/x-www-form-urlencoded\r\n",
               "VB_AGENT=sales");
  EXPECT_EQ(status_of(r), 201) << r;
  EXPECT_EQ(a.registrations->take(kUuid)->at("VB_AGENT"), "sales");
  r = exchange(port, "POST", reg, kLocal + "Content-Type: Application/JSON; charset=utf-8\r\n",
               R"({"VB_AGENT":"support"})");
  EXPECT_EQ(status_of(r), 201) << r;
  EXPECT_EQ(a.registrations->take(kUuid)->at("VB_AGENT"), "support");
  // Originate takes JSON only (form data would be a simple cross-site request).
  r = exchange(port, "POST", "/v1/originate",
               kLocal + "Content-Type: application/x-www-form-urlencoded\r\n", "to=2125551234");
  EXPECT_EQ(status_of(r), 415) << r;
  EXPECT_NE(r.find("\"Content-Type must be application/json (got "
                   "'application/x-www-form-urlencoded')\""),
            std::string::npos)
      << r;
  r = exchange(port, "POST", "/v1/originate", kLocal + "Content-Type: application/json\r\n",
               R"({"to":"2125551234"})");
  EXPECT_EQ(status_of(r), 503) << r;  // past the checks: no control path here
}

TEST(HttpApi, ForeignHostOrOriginIsRefusedTokenOrNot) {
  HttpApiOptions o;
  o.token = "0123456789abcdef0123";
  Api a(o);
  const unsigned short port = a.api->port();
  const std::string reg = std::string("/v1/calls/") + kUuid;
  const std::string auth = "Authorization: Bearer 0123456789abcdef0123\r\n";
  const std::string json = "Content-Type: application/json\r\n";
  // DNS rebinding: the page's own name in Host.
  auto r = exchange(port, "POST", reg, "Host: attacker.example:8081\r\n" + auth + json, "{}");
  EXPECT_EQ(status_of(r), 403) << r;
  EXPECT_NE(r.find("Host 'attacker.example:8081' is not this machine"), std::string::npos) << r;
  // A page on another local origin.
  r = exchange(port, "POST", reg, kLocal + "Origin: http://localhost:3000\r\n" + auth + json, "{}");
  EXPECT_EQ(status_of(r), 403) << r;
  EXPECT_NE(r.find("requests from web pages are refused (Origin 'http://localhost:3000')"),
            std::string::npos)
      << r;
  r = exchange(port, "POST", reg, kLocal + "Origin: null\r\n" + auth + json, "{}");
  EXPECT_EQ(status_of(r), 403) << r;
  EXPECT_EQ(a.registrations->size(), 0u);
  // The machine's own names and addresses pass, with or without a port.
  for (const char* host :
       {"127.0.0.1:8081", "localhost:8081", "LOCALHOST", "[::1]:8081", "192.0.2.7", "[fd00::1]"}) {
    r = exchange(port, "POST", reg, std::string("Host: ") + host + "\r\n" + auth + json, "{}");
    EXPECT_EQ(status_of(r), 201) << host << ": " << r;
  }
  // Reading is not affected (a monitoring tool may use any name).
  r = exchange(port, "GET", "/status", "Host: voxbridge.example\r\n" + auth);
  EXPECT_EQ(status_of(r), 200) << r;
}

TEST(HttpApi, ReadyzGivesAProvidersErrorTextOnlyWithTheToken) {
  HttpApiOptions o;
  o.token = "0123456789abcdef0123";
  Api a(o,
        "provider asr (asr) down: failed to connect to all addresses; last error: "
        "UNAVAILABLE: ipv4:10.0.0.5:9001: Connection refused");
  auto r = exchange(a.api->port(), "GET", "/readyz", kLocal);
  EXPECT_EQ(status_of(r), 503) << r;
  EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), "provider asr (asr) down\n");
  r = exchange(a.api->port(), "GET", "/readyz",
               kLocal + "Authorization: Bearer 0123456789abcdef0123\r\n");
  EXPECT_EQ(status_of(r), 503) << r;
  EXPECT_NE(r.find("10.0.0.5:9001: Connection refused\n"), std::string::npos) << r;
}

TEST(HttpApi, SetTokenRotatesTheTokenForTheNextRequest) {
  HttpApiOptions o;
  o.token = "old-token-0123456789";
  Api a(o);
  const unsigned short port = a.api->port();
  const std::string old_auth = "Authorization: Bearer old-token-0123456789\r\n";
  const std::string new_auth = "Authorization: Bearer new-token-0123456789\r\n";
  EXPECT_EQ(status_of(exchange(port, "GET", "/status", kLocal + old_auth)), 200);
  EXPECT_EQ(status_of(exchange(port, "GET", "/status", kLocal + new_auth)), 401);
  // On a connection kept open across the change, too.
  Conn kept(port);
  kept.send("GET /status HTTP/1.1\r\n" + kLocal + old_auth + "\r\n");
  const auto first = kept.read_until("[]\n");
  EXPECT_EQ(status_of(first), 200) << first;
  a.api->set_token("new-token-0123456789");
  kept.send("GET /status HTTP/1.1\r\n" + kLocal + old_auth + "Connection: close\r\n\r\n");
  const auto second = kept.read_until_closed(3000ms).value_or("");
  EXPECT_EQ(status_of(second), 401) << second;
  EXPECT_EQ(status_of(exchange(port, "GET", "/status", kLocal + old_auth)), 401);
  EXPECT_EQ(status_of(exchange(port, "GET", "/status", kLocal + new_auth)), 200);
  a.api->set_token("");  // none: loopback without a token
  EXPECT_EQ(status_of(exchange(port, "GET", "/status", kLocal)), 200);
}

TEST(HttpApi, AClientGetsAShortDeadlineForItsRequest) {
  HttpApiOptions o;
  o.request_timeout = 300ms;
  Api a(o);
  Conn slow(a.api->port());
  slow.send("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n");  // and never the end of the head
  const auto t0 = std::chrono::steady_clock::now();
  const auto got = slow.read_until_closed(3000ms);
  ASSERT_TRUE(got.has_value()) << "still open after 3 s";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_LE(std::chrono::steady_clock::now() - t0, 1500ms);
}

TEST(HttpApi, AtTheCapTheOldestIdleConnectionMakesRoomSoSilentClientsCannotLockOutProbes) {
  // Finding 6 / review: 64 connections that say nothing must not lock out /healthz.
  HttpApiOptions o;
  o.max_connections = 2;
  Api a(o);
  const unsigned short port = a.api->port();
  Conn one(port), two(port);
  one.send("GET /status HTTP/1.1\r\n" + kLocal + "\r\n");
  EXPECT_FALSE(one.read_until_closed(200ms).has_value());  // answered, kept alive, now idle
  // `two` has said nothing since it connected: it has waited longest, so it goes first.
  std::string r = exchange(port, "GET", "/healthz", kLocal);
  EXPECT_EQ(status_of(r), 200) << r;
  EXPECT_TRUE(two.read_until_closed(2000ms).has_value());
  EXPECT_EQ(a.api->connections_evicted(), 1u);
  EXPECT_EQ(a.api->connections_refused(), 0u);
  EXPECT_FALSE(one.read_until_closed(200ms).has_value());  // the idle `one` is kept: room now
}

TEST(Registrations, BoundsMetadataPerEntryAndInTotal) {
  Registrations::Metadata many;
  for (std::size_t i = 0; i <= Registrations::kMaxKeys; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_EQ(Registrations::check(many), "too many metadata fields: 33 (at most 32)");
  EXPECT_EQ(Registrations::check({{std::string(65, 'k'), "v"}}),
            "metadata names must be 1..64 bytes");
  EXPECT_EQ(Registrations::check({{"k", std::string(513, 'v')}}),
            "metadata value of k is longer than 512 bytes");
  Registrations r;
  EXPECT_FALSE(r.add(kUuid, many, 60s));
  // Full-size entries: the byte cap stops the book long before the entry cap.
  Registrations::Metadata big;
  for (std::size_t i = 0; i < Registrations::kMaxKeys; ++i) {
    big[std::string(60, 'a') + std::to_string(i)] = std::string(512, 'v');
  }
  const auto t0 = Registrations::Clock::now();
  std::size_t added = 0;
  char id[40];
  for (std::size_t i = 0; i < Registrations::kMaxEntries; ++i) {
    std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012zu", i);
    if (!r.add(id, big, 60s, t0)) break;
    ++added;
  }
  EXPECT_LT(added, Registrations::kMaxEntries);
  EXPECT_LE(r.bytes(), Registrations::kMaxTotalBytes);
  EXPECT_GT(r.bytes() + 32 * (64 + 512 + 64), Registrations::kMaxTotalBytes);
  // Once they expire the next add makes room again.
  EXPECT_TRUE(r.add(kUuid, big, 60s, t0 + 61s));
  EXPECT_EQ(r.size(), 1u);
  EXPECT_FALSE(r.take(kUuid, t0 + 200s).has_value());  // expired itself meanwhile
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.bytes(), 0u);
}

TEST(Registrations, ARegisteredUuidIsTakenOnceAndReRegistrationReplacesIt) {
  Registrations r;
  const auto t0 = Registrations::Clock::now();
  ASSERT_TRUE(r.add(kUuid, {{"VB_AGENT", "a"}}, 60s, t0));
  ASSERT_TRUE(r.add("0F0E0D0C-0B0A-4908-8706-050403020100", {{"VB_AGENT", "b"}}, 60s, t0));
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.take(kUuid, t0 + 1s)->at("VB_AGENT"), "b");
  EXPECT_FALSE(r.take(kUuid, t0 + 1s).has_value());
}

}  // namespace
}  // namespace voxbridge::http_api
