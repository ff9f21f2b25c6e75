#include "voxbridge/session/mailbox.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <limits>

namespace voxbridge::session {

void Mailbox::post(std::function<void()> fn, std::weak_ptr<Owner> owner) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (!open_) return;
    queue_.push_back({std::move(fn), std::move(owner)});
    if (!wake_pending_) {
      // Read after the push: if the clock's last drain ran before it, the wake-up published
      // with (or after) that drain is the one seen here.
      const std::int64_t next =
          next_wake_ != nullptr ? next_wake_->load() : std::numeric_limits<std::int64_t>::max();
      const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count();
      const auto ride = std::chrono::nanoseconds(kRideAlong).count();
      wake = next == std::numeric_limits<std::int64_t>::max() || next > now + ride;
      wake_pending_ = wake;
    }
  }
  if (wake) {
    wakes_.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(ex_, [self = shared_from_this()] { self->drain(); });
  }
}

void Mailbox::drain() {
  {
    std::lock_guard lock(mu_);
    wake_pending_ = false;
    if (queue_.empty()) return;
    running_.swap(queue_);
  }
  for (auto& job : running_) run(job);
  running_.clear();  // keeps its capacity: the next swap hands it to the posters
}

void Mailbox::run(Job& job) noexcept {
  std::exception_ptr error;
  try {
    job.fn();
    return;
  } catch (...) {
    error = std::current_exception();
  }
  errors_.store(errors_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (auto owner = job.owner.lock()) {
    owner->on_mailbox_error(error);  // the call ends, and says so in the log
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("a function posted to the io thread threw: {}", e.what());
  } catch (...) {
    spdlog::error("a function posted to the io thread threw");
  }
}

void Mailbox::close() {
  std::vector<Job> dropped;
  {
    std::lock_guard lock(mu_);
    open_ = false;
    dropped.swap(queue_);
  }
}

}  // namespace voxbridge::session
