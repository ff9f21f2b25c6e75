#include "voxbridge/net/reconnector.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace voxbridge::net {

namespace asio = boost::asio;

Reconnector::Reconnector(asio::any_io_executor ex, std::string label, Backoff backoff, Now now)
    : timer_(std::move(ex)),
      label_(std::move(label)),
      backoff_(std::move(backoff)),
      now_(std::move(now)) {}

asio::awaitable<void> Reconnector::run(Link& link) {
  while (running_) {
    const auto started = now_();
    const std::string why = co_await link.connect_once();
    const bool was_up = link.lost(why, !running_);
    if (!running_) break;
    const auto wait = backoff_.after(now_() - started);
    spdlog::warn("{}: {}; {} in {} ms", label_, why, was_up ? "reconnecting" : "retrying",
                 wait.count());
    timer_.expires_after(wait);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void Reconnector::stop() {
  running_ = false;
  timer_.cancel();
}

}  // namespace voxbridge::net
