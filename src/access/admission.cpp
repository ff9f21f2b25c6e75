#include "voxbridge/access/admission.hpp"

#include <utility>

namespace voxbridge::access {

AdmissionTicket::AdmissionTicket(AdmissionTicket&& other) noexcept
    : calls_(std::exchange(other.calls_, nullptr)),
      peers_(std::exchange(other.peers_, nullptr)),
      peer_(other.peer_) {}

AdmissionTicket& AdmissionTicket::operator=(AdmissionTicket&& other) noexcept {
  if (this != &other) {
    release();
    calls_ = std::exchange(other.calls_, nullptr);
    peers_ = std::exchange(other.peers_, nullptr);
    peer_ = other.peer_;
  }
  return *this;
}

void AdmissionTicket::release() noexcept {
  if (peers_ != nullptr) std::exchange(peers_, nullptr)->release(peer_);
  if (calls_ != nullptr) std::exchange(calls_, nullptr)->fetch_sub(1);
}

Admission::Admission(const std::vector<PeerLimits>& per_listener) {
  for (const auto& limits : per_listener) peers_.push_back(std::make_unique<PeerTable>(limits));
}

AdmissionTicket Admission::admit(std::size_t listener, const boost::asio::ip::address& peer,
                                 const CidrSet& allow, std::int64_t max_calls, Refusal& why) {
  why = Refusal::none;
  if (!allow.contains(peer)) {
    why = Refusal::not_allowed;
    return {};
  }
  if (calls_.fetch_add(1) >= max_calls) {
    calls_.fetch_sub(1);
    why = Refusal::max_calls;
    return {};
  }
  PeerTable& table = *peers_.at(listener);
  const Verdict verdict = table.admit(peer);
  if (verdict != Verdict::admit) {
    calls_.fetch_sub(1);
    why = verdict == Verdict::rate_limited ? Refusal::rate_limited : Refusal::peer_limit;
    return {};
  }
  return AdmissionTicket(&calls_, &table, peer);
}

void Admission::set_limits(std::size_t listener, PeerLimits limits) {
  peers_.at(listener)->set_limits(limits);
}

}  // namespace voxbridge::access
