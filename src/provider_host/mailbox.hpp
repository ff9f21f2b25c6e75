// Private to provider_host: an RPC's own "io thread" for the bridges (agent_bridge.hpp,
// recognizer_bridge.hpp). The in-process backends post to it what a call's io thread would run;
// the RPC's handler runs it, in order.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace voxbridge::provider_host::detail {

class Mailbox {
 public:
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  /// The next function, or none once `done` and the queue is empty.
  std::function<void()> next(const bool& done) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !q_.empty() || done; });
    if (q_.empty()) return {};
    auto fn = std::move(q_.front());
    q_.pop_front();
    return fn;
  }
  void wake() { cv_.notify_all(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
};

}  // namespace voxbridge::provider_host::detail
