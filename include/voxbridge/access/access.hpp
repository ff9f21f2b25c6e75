// Who may connect to a listener, before a single byte of a call is read: a CIDR allowlist, a
// per-peer connection rate limit (token bucket) and a cap on a peer's concurrent calls.
//
// Decisions run on the accepting thread; a call's end is reported from its io thread, so the
// per-peer table takes a mutex (once per connection and once per call end, never per frame).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace voxbridge::access {

/// One network, e.g. 10.0.0.0/8 or fd00::/8. IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match
/// IPv4 networks.
struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix = 0;
  bool contains(const boost::asio::ip::address& a) const;
  std::string text() const;
};

/// Parses "ADDR/PREFIX" or a bare address (a host); nullopt and `error` set if malformed.
std::optional<Cidr> parse_cidr(std::string_view text, std::string& error);

/// A list of networks; empty = nobody.
class CidrSet {
 public:
  CidrSet() = default;
  explicit CidrSet(std::vector<Cidr> nets) : nets_(std::move(nets)) {}
  /// Comma or space separated; "any" = 0.0.0.0/0 and ::/0. Throws std::invalid_argument.
  static CidrSet parse(std::string_view list);
  /// Loopback and the private ranges: 127.0.0.0/8, ::1, 10/8, 172.16/12, 192.168/16,
  /// fc00::/7 (unique local), fe80::/10 (link local).
  static CidrSet private_networks();
  /// 127.0.0.0/8 and ::1: the default of a listener (Asterisk on the same host).
  static CidrSet loopback();
  bool contains(const boost::asio::ip::address& a) const;
  const std::vector<Cidr>& networks() const { return nets_; }
  std::string text() const;

 private:
  std::vector<Cidr> nets_;
};

/// The defaults suit one PBX carrying up to 2,048 calls that starts up to 500 a second (and
/// 1,000 at once); half of the default max_calls, so one peer cannot take them all.
struct PeerLimits {
  /// New connections per second a peer may open (sustained); 0 = unlimited.
  double rate_per_second = 500;
  /// Connections a peer may open at once above the rate (bucket size).
  double burst = 1000;
  /// Calls a peer may have open at once; 0 = unlimited.
  std::size_t max_calls = 2048;
};

enum class Verdict { admit, rate_limited, too_many_calls };
const char* verdict_name(Verdict v);

/// Per-peer admission. `admit` counts the connection when it says yes; `release` must follow
/// once for each admitted connection when it ends.
class PeerTable {
 public:
  using Clock = std::chrono::steady_clock;
  explicit PeerTable(PeerLimits limits) : limits_(limits) {}
  Verdict admit(const boost::asio::ip::address& peer, Clock::time_point now = Clock::now());
  void release(const boost::asio::ip::address& peer);
  /// New limits for connections from now on (a reload); open calls stay counted.
  void set_limits(PeerLimits limits);
  /// Peers tracked (those with open calls or a bucket not yet full again).
  std::size_t peers();

 private:
  struct Peer {
    double tokens = 0;
    Clock::time_point refilled{};
    std::size_t calls = 0;
  };
  void prune(Clock::time_point now);
  PeerLimits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Peer> peers_;
  Clock::time_point last_prune_{};
};

}  // namespace voxbridge::access
