// The value types every section uses: numbers with their ranges, yes/no, lists, dial patterns,
// addresses, URLs and secrets from the environment.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "parse.hpp"
#include "voxbridge/guard/guard.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/url.hpp"

namespace voxbridge::config::detail {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

void Where::fail(const std::string& problem) const {
  std::ostringstream o;
  o << source;
  if (line > 0) o << ':' << line;
  o << ": ";
  if (!section.empty()) o << '[' << section << "] ";
  if (!key.empty()) o << key << ": ";
  o << problem;
  throw ConfigError(o.str());
}

long long parse_int(const Where& w, const std::string& v, long long lo, long long hi) {
  long long x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size()) w.fail("'" + v + "' is not a whole number");
  if (x < lo || x > hi) {
    w.fail("'" + v + "' is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return x;
}

void one_of(const Where& w, const std::string& v, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += list.empty() ? a : std::string(", ") + a;
  }
  w.fail("'" + v + "' is not one of " + list);
}

bool parse_bool(const Where& w, const std::string& v) {
  const std::string l = lower(v);
  if (l == "yes" || l == "true" || l == "on" || l == "1") return true;
  if (l == "no" || l == "false" || l == "off" || l == "0") return false;
  w.fail("'" + v + "' is not yes or no");
}

session::CodecMode parse_codec(const Where& w, const std::string& v) {
  const std::string l = lower(v);
  if (l == "auto") return session::CodecMode::auto_detect;
  if (l == "slin") return session::CodecMode::slin;
  if (l == "ulaw") return session::CodecMode::ulaw;
  if (l == "alaw") return session::CodecMode::alaw;
  w.fail("'" + v + "' is not one of auto, slin, ulaw, alaw");
}

std::string expand_env(const Where& w, const std::string& v) {
  std::string out;
  std::size_t at = 0;
  while (true) {
    const auto b = v.find("${", at);
    if (b == std::string::npos) break;
    const auto e = v.find('}', b);
    if (e == std::string::npos) w.fail("'${' without '}'");
    const std::string name = v.substr(b + 2, e - b - 2);
    out += v.substr(at, b - at);
    if (name.rfind("file:", 0) == 0) {
      // A secret file (Docker/Kubernetes secrets, systemd credentials): its first line.
      std::ifstream f(name.substr(5));
      std::string first;
      if (!f || !std::getline(f, first)) w.fail("cannot read secret file " + name.substr(5));
      out += trim(first);
    } else {
      const char* val = std::getenv(name.c_str());
      if (val == nullptr) w.fail("environment variable " + name + " is not set");
      out += val;
    }
    at = e + 1;
  }
  return out + v.substr(at);
}

std::vector<std::string> parse_list(const std::string& v) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(v);
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> parse_patterns(const Where& w, const std::string& v) {
  auto out = parse_list(v);
  for (const auto& p : out) {
    if (const auto why = guard::check_dial_pattern(p); !why.empty()) w.fail(why);
  }
  return out;
}

void parse_host_port(const Where& w, const std::string& v, std::string& host,
                     unsigned short& port) {
  if (!net::split_host_port(v, host, port)) w.fail("'" + v + "' is not HOST:PORT (an IP address)");
}

std::string check_http_url(const Where& w, const std::string& v) {
  try {
    return net::parse_http_url(v).target;
  } catch (const std::invalid_argument& e) {
    w.fail("'" + v + "': " + e.what());
  }
}

}  // namespace voxbridge::config::detail
