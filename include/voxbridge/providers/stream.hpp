// The two stream shapes of the provider contract, on gRPC's callback API:
//
// - BidiStream<Req, Resp>: a config message, then requests through a bounded queue (a provider
//   slower than real time loses messages, counted; nothing blocks, nothing grows without bound);
//   responses as they come, or held back while the consumer pauses reads (backpressure that
//   reaches the provider through HTTP/2 flow control).
// - ReadStream<Resp>: one request, responses as they come (the LLM turn).
//
// gRPC runs both on its own threads. Every response and the final status are posted to the
// poster given at start (the call's io thread), so a call's pipeline never locks and never
// sees two events at once. The stream keeps itself alive until gRPC is done with it; handlers
// posted after the owner lost interest must check that themselves (capture a weak_ptr).
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/providers/provider.hpp"

namespace voxbridge::providers {

namespace detail {
/// Hands `response` (moved out; the buffer is cleared for the next read) to `handler` on the
/// consumer's thread; `self` keeps the stream, and so the handler, alive until it has run.
template <class Resp>
void post_message(const Poster& post, std::shared_ptr<void> self,
                  const std::function<void(Resp&)>* handler, Resp& response) {
  auto msg = std::make_shared<Resp>(std::move(response));
  response.Clear();
  post([self = std::move(self), handler, msg] {
    if (*handler) (*handler)(*msg);
  });
}

/// Hands the final status to `handler` on the consumer's thread (see post_message).
inline void post_closed(const Poster& post, std::shared_ptr<void> self,
                        const std::function<void(const grpc::Status&)>* handler,
                        const grpc::Status& status) {
  post([self = std::move(self), handler, status] {
    if (*handler) (*handler)(status);
  });
}
}  // namespace detail

template <class Req, class Resp>
class BidiStream : public grpc::ClientBidiReactor<Req, Resp>,
                   public std::enable_shared_from_this<BidiStream<Req, Resp>> {
 public:
  using OnMessage = std::function<void(Resp&)>;
  using OnClosed = std::function<void(const grpc::Status&)>;
  using Reactor = grpc::ClientBidiReactor<Req, Resp>;

  /// `open(ctx, reactor)` starts the RPC on a stub (e.g. stub->async()->StreamingRecognize);
  /// `keep` holds whatever it needs (the stub) for the stream's lifetime.
  template <class Open>
  static std::shared_ptr<BidiStream> start(Open open, std::shared_ptr<void> keep,
                                           const ProviderTarget& target, Req first, Poster ex,
                                           OnMessage on_message, OnClosed on_closed,
                                           std::size_t max_queued) {
    auto s = std::shared_ptr<BidiStream>(new BidiStream(
        std::move(keep), std::move(ex), std::move(on_message), std::move(on_closed), max_queued));
    prepare(s->ctx_, target);
    s->self_ = s;
    s->in_flight_ = std::move(first);
    s->writing_ = true;
    open(&s->ctx_, s.get());
    s->StartWrite(&s->in_flight_);
    s->StartRead(&s->response_);
    s->StartCall();
    return s;
  }

  /// Queues one request (any thread); false if it was dropped (queue full) or the stream is
  /// finishing or over.
  bool send(Req&& m) {
    {
      std::lock_guard lock(mu_);
      if (done_ || finish_requested_) return false;
      if (queue_.size() >= max_queued_) {
        ++dropped_;
        return false;
      }
      queue_.push_back(std::move(m));
      if (!next_write_locked()) return true;
    }
    this->StartWrite(&in_flight_);
    return true;
  }

  /// No more requests: the provider finishes its side and ends the stream.
  void finish() {
    {
      std::lock_guard lock(mu_);
      if (finish_requested_) return;
      finish_requested_ = true;
      if (writing_ || !queue_.empty() || done_) return;  // OnWriteDone half-closes
      writes_done_ = true;
    }
    this->StartWritesDone();
  }

  /// Abandons the stream; the closed handler still runs, with CANCELLED.
  void cancel() { ctx_.TryCancel(); }

  /// finish(), bounded: what is queued is still written, then the stream half-closes, and the
  /// provider has `grace` to end its side before the stream is cancelled. For an owner that
  /// goes away (a call that ended) but still owes the provider its last words.
  void close(std::chrono::milliseconds grace) {
    finish();
    std::weak_ptr<BidiStream> w = this->shared_from_this();
    deadline_.Set(std::chrono::system_clock::now() + grace, [w](bool fired) {
      if (!fired) return;  // the stream went first
      if (auto s = w.lock()) s->ctx_.TryCancel();
    });
  }

  /// Stops asking for responses (any thread): no read is started until resume_reads(), so the
  /// provider's writes wait on the stream's HTTP/2 window. The one response being read when
  /// this is called may still arrive; none is lost, and the final status comes after them.
  void pause_reads() {
    std::lock_guard lock(mu_);
    reads_paused_ = true;
  }

  /// Asks for responses again, starting the read that pause_reads() held back.
  void resume_reads() {
    {
      std::lock_guard lock(mu_);
      reads_paused_ = false;
      if (!read_held_) return;
      read_held_ = false;
    }
    this->StartRead(&response_);
  }

  bool reads_paused() const {
    std::lock_guard lock(mu_);
    return reads_paused_;
  }

  std::uint64_t dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }

 private:
  BidiStream(std::shared_ptr<void> keep, Poster ex, OnMessage on_message, OnClosed on_closed,
             std::size_t max_queued)
      : keep_(std::move(keep)),
        ex_(std::move(ex)),
        on_message_(std::move(on_message)),
        on_closed_(std::move(on_closed)),
        max_queued_(max_queued) {}

  bool next_write_locked() {
    if (writing_ || done_ || queue_.empty()) return false;
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    return true;
  }

  void OnWriteDone(bool ok) override {
    bool write = false, close = false;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) {
        done_ = true;  // broken; OnDone tells why
        queue_.clear();
        return;
      }
      write = next_write_locked();
      if (!write && finish_requested_ && !writes_done_) {
        writes_done_ = true;
        close = true;
      }
    }
    if (write) this->StartWrite(&in_flight_);
    if (close) this->StartWritesDone();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the provider ended its side; OnDone follows
    detail::post_message(ex_, this->shared_from_this(), &on_message_, response_);
    {
      std::lock_guard lock(mu_);
      if (reads_paused_) {
        read_held_ = true;  // resume_reads() starts it
        return;
      }
    }
    this->StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard lock(mu_);
      done_ = true;
      read_held_ = false;
      queue_.clear();
    }
    detail::post_closed(ex_, std::move(self_), &on_closed_, status);
  }

  std::shared_ptr<void> keep_;
  grpc::ClientContext ctx_;
  Poster ex_;
  OnMessage on_message_;
  OnClosed on_closed_;
  std::size_t max_queued_;
  Resp response_;

  mutable std::mutex mu_;
  Req in_flight_;  // the request gRPC is writing; untouched until OnWriteDone
  std::deque<Req> queue_;
  bool writing_ = false;
  bool finish_requested_ = false;
  bool writes_done_ = false;
  bool done_ = false;
  bool reads_paused_ = false;
  bool read_held_ = false;  // a read not started because reads were paused
  std::uint64_t dropped_ = 0;
  std::shared_ptr<BidiStream> self_;  // alive until OnDone
  grpc::Alarm deadline_;              // close(): cancels a provider that overstays its grace
};

template <class Resp>
class ReadStream : public grpc::ClientReadReactor<Resp>,
                   public std::enable_shared_from_this<ReadStream<Resp>> {
 public:
  using OnMessage = std::function<void(Resp&)>;
  using OnClosed = std::function<void(const grpc::Status&)>;

  /// `open(ctx, reactor)` starts the RPC with its request, e.g.
  /// `[&](auto* c, auto* r) { stub->async()->Turn(c, &request, r); }` (the request is copied
  /// by gRPC before open returns).
  template <class Open>
  static std::shared_ptr<ReadStream> start(Open open, std::shared_ptr<void> keep,
                                           const ProviderTarget& target, Poster ex,
                                           OnMessage on_message, OnClosed on_closed) {
    auto s = std::shared_ptr<ReadStream>(new ReadStream(
        std::move(keep), std::move(ex), std::move(on_message), std::move(on_closed)));
    prepare(s->ctx_, target);
    s->self_ = s;
    open(&s->ctx_, s.get());
    s->StartRead(&s->response_);
    s->StartCall();
    return s;
  }

  void cancel() { ctx_.TryCancel(); }

 private:
  ReadStream(std::shared_ptr<void> keep, Poster ex, OnMessage on_message, OnClosed on_closed)
      : keep_(std::move(keep)),
        ex_(std::move(ex)),
        on_message_(std::move(on_message)),
        on_closed_(std::move(on_closed)) {}

  void OnReadDone(bool ok) override {
    if (!ok) return;
    detail::post_message(ex_, this->shared_from_this(), &on_message_, response_);
    this->StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    detail::post_closed(ex_, std::move(self_), &on_closed_, status);
  }

  std::shared_ptr<void> keep_;
  grpc::ClientContext ctx_;
  Poster ex_;
  OnMessage on_message_;
  OnClosed on_closed_;
  Resp response_;
  std::shared_ptr<ReadStream> self_;
};

}  // namespace voxbridge::providers
