#include "voxbridge/access/access.hpp"

#include <algorithm>
#include <stdexcept>

namespace voxbridge::access {

namespace ip = boost::asio::ip;

namespace {

/// IPv4-mapped IPv6 as IPv4; everything else as it is.
ip::address canonical(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

template <std::size_t N>
bool prefix_equal(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                  unsigned bits) {
  std::size_t i = 0;
  for (; bits >= 8; bits -= 8, ++i) {
    if (a[i] != b[i]) return false;
  }
  if (bits == 0) return true;
  const auto mask = static_cast<unsigned char>(0xFFu << (8 - bits));
  return (a[i] & mask) == (b[i] & mask);
}

}  // namespace

bool Cidr::contains(const ip::address& addr) const {
  const ip::address a = canonical(addr);
  if (a.is_v4() != network.is_v4()) return false;
  if (a.is_v4()) return prefix_equal(a.to_v4().to_bytes(), network.to_v4().to_bytes(), prefix);
  return prefix_equal(a.to_v6().to_bytes(), network.to_v6().to_bytes(), prefix);
}

std::string Cidr::text() const {
  return network.to_string() + "/" + std::to_string(prefix);
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
  const auto slash = text.find('/');
  const std::string addr(text.substr(0, slash));
  boost::system::error_code ec;
  Cidr c;
  c.network = canonical(ip::make_address(addr, ec));
  if (ec) {
    error = "'" + std::string(text) + "' is not an address or network (ADDR/PREFIX)";
    return std::nullopt;
  }
  const unsigned max = c.network.is_v4() ? 32 : 128;
  c.prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    unsigned v = 0;
    if (p.empty() || p.size() > 3) v = 999;
    for (char ch : p) {
      if (ch < '0' || ch > '9') {
        v = 999;
        break;
      }
      v = v * 10 + static_cast<unsigned>(ch - '0');
    }
    if (v > max) {
      error = "'" + std::string(text) + "': prefix must be 0.." + std::to_string(max);
      return std::nullopt;
    }
    c.prefix = v;
  }
  return c;
}

CidrSet CidrSet::parse(std::string_view list) {
  std::vector<Cidr> nets;
  std::size_t at = 0;
  while (at < list.size()) {
    const auto end = list.find_first_of(", \t", at);
    const std::string_view item = list.substr(at, end == std::string_view::npos ? end : end - at);
    at = end == std::string_view::npos ? list.size() : end + 1;
    if (item.empty()) continue;
    if (item == "any") {
      nets.push_back({ip::make_address("0.0.0.0"), 0});
      nets.push_back({ip::make_address("::"), 0});
      continue;
    }
    std::string error;
    auto c = parse_cidr(item, error);
    if (!c) throw std::invalid_argument(error);
    nets.push_back(*c);
  }
  return CidrSet(std::move(nets));
}

CidrSet CidrSet::private_networks() {
  return parse("127.0.0.0/8 ::1 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7 fe80::/10");
}

CidrSet CidrSet::loopback() {
  return parse("127.0.0.0/8 ::1");
}

bool CidrSet::contains(const ip::address& a) const {
  return std::any_of(nets_.begin(), nets_.end(), [&](const Cidr& c) { return c.contains(a); });
}

std::string CidrSet::text() const {
  std::string out;
  for (const auto& c : nets_) {
    if (!out.empty()) out += ", ";
    out += c.text();
  }
  return out;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::admit:
      return "admit";
    case Verdict::rate_limited:
      return "rate_limited";
    case Verdict::too_many_calls:
      return "peer_limit";
  }
  return "?";
}

void PeerTable::prune(Clock::time_point now) {
  // Peers with no open call whose bucket has refilled are forgotten: the table holds only
  // what matters, however many addresses knock.
  if (now - last_prune_ < std::chrono::seconds(10)) return;
  last_prune_ = now;
  std::erase_if(peers_, [&](const auto& e) {
    const Peer& p = e.second;
    if (p.calls > 0) return false;
    if (limits_.rate_per_second <= 0) return true;
    const double refill =
        std::chrono::duration<double>(now - p.refilled).count() * limits_.rate_per_second;
    return p.tokens + refill >= limits_.burst;
  });
}

Verdict PeerTable::admit(const ip::address& peer, Clock::time_point now) {
  const std::string key = canonical(peer).to_string();
  std::lock_guard lock(mu_);
  prune(now);
  auto [it, fresh] = peers_.try_emplace(key);
  Peer& p = it->second;
  if (fresh) {
    p.tokens = limits_.burst;
    p.refilled = now;
  }
  if (limits_.max_calls > 0 && p.calls >= limits_.max_calls) return Verdict::too_many_calls;
  if (limits_.rate_per_second > 0) {
    const double elapsed = std::chrono::duration<double>(now - p.refilled).count();
    p.tokens = std::min(limits_.burst, p.tokens + elapsed * limits_.rate_per_second);
    p.refilled = now;
    if (p.tokens < 1.0) return Verdict::rate_limited;
    p.tokens -= 1.0;
  }
  ++p.calls;
  return Verdict::admit;
}

void PeerTable::release(const ip::address& peer) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(canonical(peer).to_string());
  if (it != peers_.end() && it->second.calls > 0) --it->second.calls;
}

void PeerTable::set_limits(PeerLimits limits) {
  std::lock_guard lock(mu_);
  limits_ = limits;
}

std::size_t PeerTable::peers() {
  std::lock_guard lock(mu_);
  return peers_.size();
}

}  // namespace voxbridge::access
