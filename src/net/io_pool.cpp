#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/error_text.hpp"

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace voxbridge::net {

namespace asio = boost::asio;
using asio::ip::tcp;

IoPool::IoPool(std::size_t threads) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) {
    // concurrency hint 1: each context is run by exactly one thread, so Asio can skip locking.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.emplace_back(asio::make_work_guard(*contexts_.back()));
  }
}

IoPool::~IoPool() {
  stop_now();
}

std::size_t IoPool::next_index() {
  const std::size_t i = next_;
  next_ = (next_ + 1) % contexts_.size();
  return i;
}

std::string IoPool::start(int realtime_priority) {
  std::string refused;
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] {
      for (;;) {
        try {
          contexts_[i]->run();
          return;
        } catch (const std::exception& e) {
          // A handler threw: log it and keep serving the other calls of this thread.
          spdlog::error("io thread {}: unhandled exception: {}", i, error_text(e));
        }
      }
    });
    if (realtime_priority > 0 && refused.empty()) {
      // Set from here, right after the thread is created (before the server takes calls).
      // SCHED_RESET_ON_FORK: threads an io thread creates (gRPC's, a recorder's) do not inherit.
      sched_param sp{};
      sp.sched_priority = realtime_priority;
      const int rc = pthread_setschedparam(threads_.back().native_handle(),
                                           SCHED_RR | SCHED_RESET_ON_FORK, &sp);
      if (rc != 0) refused = std::strerror(rc);
    }
  }
  return refused;
}

bool yield_to_io_threads(int nice) {
  thread_local bool done = false;
  if (done) return true;
  done = true;
  // Linux: with a thread id, setpriority() sets that one thread's nice value.
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (errno != 0) return false;
  return now >= nice || ::setpriority(PRIO_PROCESS, tid, nice) == 0;
}

void IoPool::stop_when_idle() {
  for (auto& g : guards_) g.reset();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void IoPool::stop_now() {
  for (auto& g : guards_) g.reset();
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

Listener::Listener(IoPool& pool, const std::string& host, unsigned short port, OnAccept on_accept,
                   int backlog)
    : pool_(pool),
      acceptor_(pool.context(0)),
      retry_(pool.context(0)),
      on_accept_(std::move(on_accept)) {
  const tcp::endpoint ep(asio::ip::make_address(host), port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(backlog);
  port_ = acceptor_.local_endpoint().port();
}

void Listener::start() {
  accept_one();
}

void Listener::accept_one() {
  const std::size_t index = pool_.next_index();
  acceptor_.async_accept(pool_.context(index),
                         [this, index](boost::system::error_code ec, tcp::socket socket) {
                           if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
                           if (ec) {
                             accept_failed(ec);
                             return;
                           }
                           on_accept_(std::move(socket), index);
                           accept_one();
                         });
}

void Listener::accept_failed(const boost::system::error_code& ec) {
  // Out of descriptors (EMFILE, ENFILE) or the like: accepting again at once would fail again
  // at once (a busy loop). The connection waits in the backlog; try again after a pause.
  accept_errors_.fetch_add(1, std::memory_order_relaxed);
  const auto now = std::chrono::steady_clock::now();
  if (now - logged_ >= std::chrono::seconds(1)) {
    logged_ = now;
    spdlog::warn(
        "port {}: accept failed: {}; retrying every {} ms{}", port_, ec.message(),
        kRetryPause.count(),
        unlogged_ == 0 ? std::string() : " (" + std::to_string(unlogged_) + " more not logged)");
    unlogged_ = 0;
  } else {
    ++unlogged_;
  }
  retry_.expires_after(kRetryPause);
  retry_.async_wait([this](const boost::system::error_code& tec) {
    if (tec || !acceptor_.is_open()) return;
    accept_one();
  });
}

void Listener::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
  });
}

bool split_host_port(const std::string& text, std::string& host, unsigned short& port) {
  std::string h, p;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || ptr != p.data() + p.size() || v > 65535 || h.empty()) return false;
  boost::system::error_code aec;
  asio::ip::make_address(h, aec);
  if (aec) return false;
  host = h;
  port = static_cast<unsigned short>(v);
  return true;
}

}  // namespace voxbridge::net
