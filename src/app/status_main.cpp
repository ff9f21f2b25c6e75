// voxbridge status [--config FILE | --api HOST:PORT] [--token TOKEN] [--json]
//
// Asks the running server's HTTP API (http_listen and http_token from the configuration, or
// the flags) for GET /status and prints one line per live call.
#include "status_main.hpp"

#include <boost/json.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "voxbridge/config/config.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/http_get.hpp"

namespace voxbridge::app {

namespace {

constexpr const char* kUsage =
    "usage: voxbridge status [--config FILE | --api HOST:PORT] [--token TOKEN] [--json]\n"
    "  Lists the live calls of a running voxbridge (its HTTP API's GET /status).\n"
    "  --config FILE    take http_listen and http_token from this voxbridge.conf\n"
    "  --api HOST:PORT  the HTTP API's address (default 127.0.0.1:8081)\n"
    "  --token TOKEN    bearer token (default: $VOXBRIDGE_HTTP_TOKEN)\n"
    "  --json           print the JSON as it came\n";

std::string text_of(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_int64()) return std::to_string(v.as_int64());
  return "";
}

}  // namespace

int status_main(int argc, const char* const* argv) {
  std::string api = "127.0.0.1:8081";
  std::string token;
  if (const char* t = std::getenv("VOXBRIDGE_HTTP_TOKEN")) token = t;
  bool raw = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--config") {
        const auto cfg = config::load_config_file(value());
        if (cfg.general.http_listen.empty()) {
          std::cerr << "voxbridge status: the configuration has no http_listen\n";
          return 2;
        }
        api = cfg.general.http_listen;
        if (!cfg.general.http_token.empty()) token = cfg.general.http_token;
      } else if (a == "--api") {
        api = value();
      } else if (a == "--token") {
        token = value();
      } else if (a == "--json") {
        raw = true;
      } else if (a == "--help" || a == "-h") {
        std::cout << kUsage;
        return 0;
      } else {
        std::cerr << "voxbridge status: unknown argument " << a << "\n" << kUsage;
        return 2;
      }
    } catch (const std::exception& e) {
      std::cerr << "voxbridge status: " << net::error_text(e) << "\n";
      return 2;
    }
  }
  net::HttpReply res;
  try {
    res = net::http_get(api, "/status", token);
  } catch (const std::exception& e) {
    std::cerr << "voxbridge status: cannot reach the HTTP API at " << api << ": "
              << net::error_text(e) << "\n";
    return 1;
  }
  if (res.status != 200) {
    std::cerr << "voxbridge status: " << res.status << " " << res.body;
    return 1;
  }
  if (raw) {
    std::cout << res.body;
    return 0;
  }
  boost::system::error_code ec;
  const auto v = boost::json::parse(res.body, ec);
  if (ec || !v.is_array()) {
    std::cerr << "voxbridge status: unexpected answer: " << res.body;
    return 1;
  }
  std::printf("%-36s  %-21s  %-10s  %-6s  %6s  %9s  %-10s  %s\n", "UUID", "PEER", "LISTENER",
              "CODEC", "RATE", "DURATION", "STATE", "AGENT");
  for (const auto& c : v.as_array()) {
    if (!c.is_object()) continue;
    const auto& o = c.as_object();
    auto f = [&](const char* k) {
      const auto* x = o.if_contains(k);
      return x ? text_of(*x) : std::string();
    };
    const auto* ms = o.if_contains("duration_ms");
    const double secs = ms && ms->is_int64() ? static_cast<double>(ms->as_int64()) / 1000 : 0;
    std::printf("%-36s  %-21s  %-10s  %-6s  %6s  %8.1fs  %-10s  %s\n",
                f("uuid").empty() ? "(handshake)" : f("uuid").c_str(), f("peer").c_str(),
                f("listener").c_str(), f("codec").c_str(), f("rate_hz").c_str(), secs,
                f("state").c_str(), f("agent").c_str());
  }
  std::printf("%zu call(s)\n", v.as_array().size());
  return 0;
}

}  // namespace voxbridge::app
