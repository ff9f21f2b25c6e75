#include "worker.hpp"

#include <boost/asio/post.hpp>

namespace voxbridge::loadgen {

Worker::Worker(const boost::asio::ip::tcp::endpoint& server, const TestSignal& signal,
               const Window& window, Scenario scenario)
    : guard_(boost::asio::make_work_guard(io_)), env_{io_,   server, signal,  window,
                                                      live_, clock_, totals_, scenario} {}

Worker::~Worker() {
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
}

void Worker::start() {
  thread_ = std::thread([this] { io_.run(); });
}

void Worker::add_call(const audiosocket::Uuid& uuid, Clock::duration phase) {
  boost::asio::post(io_, [this, uuid, phase] {
    if (env_.stopping) return;
    calls_.push_back(std::make_unique<Caller>(env_, uuid, phase));
    calls_.back()->start();
  });
}

void Worker::stop() {
  boost::asio::post(io_, [this] {
    env_.stopping = true;
    for (auto& c : calls_) c->stop();
  });
  guard_.reset();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace voxbridge::loadgen
