// The way back to an io thread for work that completes on other threads (gRPC callbacks).
//
// Anything may hold a Mailbox (shared) longer than the calls it served: a provider stream ends
// on a gRPC thread after its call is gone. While open, post() queues the function on the io
// thread; once the server closes it (before its io_contexts are destroyed), posts are dropped.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <memory>
#include <mutex>

namespace voxbridge::session {

class Mailbox {
 public:
  explicit Mailbox(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  /// Runs `fn` on the io thread later (from any thread); dropped if closed.
  void post(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    if (open_) boost::asio::post(ex_, std::move(fn));
  }
  /// No more posts reach the io thread (call before the io_context is destroyed).
  void close() {
    std::lock_guard lock(mu_);
    open_ = false;
  }

 private:
  std::mutex mu_;
  boost::asio::any_io_executor ex_;
  bool open_ = true;
};

}  // namespace voxbridge::session
