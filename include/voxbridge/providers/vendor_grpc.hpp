// What the backends that call a vendor's own gRPC service share (asr_vosk, riva): the RPC's
// target, its status in the contract's terms, the admission of a stream under max_sessions,
// and the cap on what a vendor's text may weigh. Thread: any.
#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/providers/target.hpp"

namespace voxbridge::providers {

/// A gRPC status as the contract's StreamStatus (the codes are the same numbering).
inline StreamStatus status_of(const grpc::Status& st) {
  return StreamStatus{static_cast<int>(st.error_code()), st.error_message()};
}

/// The backend's own endpoint (`base`: address, TLS, metadata) with the deadline the pipeline
/// gave this stream (`call`), if it gave one.
inline ProviderTarget rpc_target(const ProviderTarget& base, const ProviderTarget& call) {
  ProviderTarget t = base;
  if (call.deadline.count() > 0) t.deadline = call.deadline;
  return t;
}

/// `text` cut to at most `max` bytes at a UTF-8 character boundary: a vendor's words are not
/// trusted to be short.
inline void cap_text(std::string& text, std::size_t max) {
  if (text.size() <= max) return;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  text.resize(n);
}

/// One stream counted against a backend's max_sessions for as long as it lives; taken by
/// admit(), which throws std::runtime_error when all are in use (the call's fallback).
class SessionSlot {
 public:
  static std::shared_ptr<SessionSlot> admit(std::shared_ptr<std::atomic<std::size_t>> open,
                                            std::size_t max, const std::string& who) {
    const std::size_t now = open->fetch_add(1) + 1;
    if (max > 0 && now > max) {
      open->fetch_sub(1);
      throw std::runtime_error(who + ": all " + std::to_string(max) +
                               " sessions (max_sessions) are in use");
    }
    return std::shared_ptr<SessionSlot>(new SessionSlot(std::move(open)));
  }
  ~SessionSlot() { open_->fetch_sub(1); }
  SessionSlot(const SessionSlot&) = delete;
  SessionSlot& operator=(const SessionSlot&) = delete;

 private:
  explicit SessionSlot(std::shared_ptr<std::atomic<std::size_t>> open) : open_(std::move(open)) {}
  std::shared_ptr<std::atomic<std::size_t>> open_;
};

}  // namespace voxbridge::providers
