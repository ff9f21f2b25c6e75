// Admission of a connection, taken and released in one place: the process-wide call count
// (max_calls) and the listener's per-peer table (rate and concurrent calls) are taken together
// by Admission::admit and given back together when the AdmissionTicket it returns is destroyed.
//
// Threads: admit runs on the accepting thread (so a burst cannot overshoot max_calls); a ticket
// belongs to its call and is destroyed on that call's io thread (or wherever the call is let go
// of). The Admission must outlive every ticket it issued.
#pragma once

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "voxbridge/access/access.hpp"

namespace voxbridge::access {

class Admission;

/// One admitted connection's place: releases its call slot and its peer's slot when destroyed.
/// Move-only; a default-constructed ticket holds nothing (tests, sessions started by hand).
class AdmissionTicket {
 public:
  AdmissionTicket() = default;
  AdmissionTicket(AdmissionTicket&& other) noexcept;
  AdmissionTicket& operator=(AdmissionTicket&& other) noexcept;
  AdmissionTicket(const AdmissionTicket&) = delete;
  AdmissionTicket& operator=(const AdmissionTicket&) = delete;
  ~AdmissionTicket() { release(); }

  /// True if it holds an admission.
  explicit operator bool() const { return calls_ != nullptr; }

 private:
  friend class Admission;
  AdmissionTicket(std::atomic<std::int64_t>* calls, PeerTable* peers, boost::asio::ip::address peer)
      : calls_(calls), peers_(peers), peer_(std::move(peer)) {}
  void release() noexcept;

  std::atomic<std::int64_t>* calls_ = nullptr;
  PeerTable* peers_ = nullptr;
  boost::asio::ip::address peer_;
};

/// The admission state of every listener of a process.
class Admission {
 public:
  /// Why admit said no.
  enum class Refusal { none, not_allowed, max_calls, rate_limited, peer_limit };

  /// One per-peer table per listener, with these limits.
  explicit Admission(const std::vector<PeerLimits>& per_listener);

  /// Checks, in this order, the listener's allow list, max_calls and the peer's limits; a ticket
  /// when all say yes, else an empty ticket and `why` set. On the accepting thread.
  AdmissionTicket admit(std::size_t listener, const boost::asio::ip::address& peer,
                        const CidrSet& allow, std::int64_t max_calls, Refusal& why);
  /// New per-peer limits for a listener's connections from now on (a reload).
  void set_limits(std::size_t listener, PeerLimits limits);
  /// Calls admitted whose ticket is not yet destroyed (any thread).
  std::int64_t active() const { return calls_.load(); }

 private:
  std::atomic<std::int64_t> calls_{0};
  std::vector<std::unique_ptr<PeerTable>> peers_;  // one per listener
};

}  // namespace voxbridge::access
