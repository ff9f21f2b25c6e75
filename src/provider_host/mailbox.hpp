// Private to provider_host: an RPC's own "io thread" for the bridges (agent_bridge.hpp,
// recognizer_bridge.hpp, synthesizer_bridge.hpp). The in-process backends post to it what a
// call's io thread would run; the RPC's handler runs it, in order. pump() is the part of a
// bridged RPC after the stream is open, the same for every contract.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "voxbridge/providers/clients.hpp"

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

/// Runs a bridged RPC once its stream is open: a reader thread hands each client message to
/// `forward(box, stream, request)` (which posts what the stream should get) and, when the client
/// half-closes or goes away, posts stream->finish(); this thread runs the mailbox until the
/// stream's `closed` has set `done`, cancelling the stream if the client cancels the RPC. The
/// RPC ends with the stream's status.
template <class Request, class Response, class Stream, class Forward>
grpc::Status pump(grpc::ServerContext* ctx, grpc::ServerReaderWriter<Response, Request>* rpc,
                  const std::shared_ptr<Mailbox>& box, const std::shared_ptr<Stream>& stream,
                  const bool& done, const providers::StreamStatus& status, Forward forward) {
  auto reader_done = std::make_shared<std::atomic<bool>>(false);
  std::thread reader([rpc, stream, box, reader_done, forward] {
    Request r;
    while (rpc->Read(&r)) forward(*box, stream, r);
    box->post([stream] { stream->finish(); });  // half-closed (or gone): nothing more comes
    reader_done->store(true);
    box->wake();
  });
  bool cancelled = false;
  while (!done) {  // what the reader posts after the stream's end is not run
    auto fn = box->next(done);
    if (!fn) break;
    fn();
    if (!cancelled && ctx->IsCancelled()) {
      cancelled = true;
      stream->cancel();
    }
  }
  // The stream ended first (the service failed): the client's side is cut so the reader ends.
  if (!reader_done->load()) ctx->TryCancel();
  reader.join();
  if (status.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(status.code), status.message};
}

}  // namespace voxbridge::provider_host::detail
