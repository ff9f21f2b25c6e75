#include "worker.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

namespace voxbridge::loadgen {
namespace {

using namespace std::chrono_literals;
/// A failed call is replaced after this long.
constexpr auto kRetryDelay = 1s;
/// A retired call is freed after this long: its socket was closed when it ended, so its
/// aborted handlers were queued then and have run long before.
constexpr auto kRetireDelay = 1s;
constexpr auto kHousekeepingPeriod = 250ms;

}  // namespace

audiosocket::Uuid random_uuid(std::mt19937_64& rng) {
  audiosocket::Uuid u;
  for (auto& b : u.bytes) b = static_cast<std::uint8_t>(rng());
  u.bytes[6] = static_cast<std::uint8_t>((u.bytes[6] & 0x0F) | 0x40);  // version 4
  u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return u;
}

Worker::Worker(const boost::asio::ip::tcp::endpoint& server, const TestSignal& signal,
               const Window& window, Scenario scenario, double call_seconds, std::uint64_t seed)
    : guard_(boost::asio::make_work_guard(io_)),
      env_{io_, server, signal, window, live_, clock_, totals_, scenario},
      call_length_(
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(call_seconds))),
      rng_(seed) {
  if (call_length_ > Clock::duration::zero()) {
    env_.on_end = [this](Caller& call, bool failed) { on_call_end(call, failed); };
  }
}

Worker::~Worker() {
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
}

void Worker::start() {
  if (call_length_ > Clock::duration::zero()) arm_housekeeping();
  thread_ = std::thread([this] { io_.run(); });
}

void Worker::add_call(const audiosocket::Uuid& uuid, Clock::duration phase) {
  boost::asio::post(io_, [this, uuid, phase] {
    if (env_.stopping) return;
    place(uuid, phase);
  });
}

void Worker::place(const audiosocket::Uuid& uuid, Clock::duration phase) {
  Clock::duration length = Clock::duration::zero();
  if (call_length_ > Clock::duration::zero()) {
    std::uniform_real_distribution<double> jitter(0.8, 1.2);  // +-20 %
    length = std::chrono::duration_cast<Clock::duration>(call_length_ * jitter(rng_));
  }
  calls_.push_back(std::make_unique<Caller>(env_, uuid, phase, length));
  calls_.back()->start();
}

void Worker::on_call_end(Caller& call, bool failed) {
  const auto now = Clock::now();
  const auto it = std::find_if(calls_.begin(), calls_.end(),
                               [&call](const auto& c) { return c.get() == &call; });
  if (it != calls_.end()) {
    retired_.emplace_back(now, std::move(*it));
    if (it != calls_.end() - 1) *it = std::move(calls_.back());
    calls_.pop_back();
  }
  if (env_.stopping) return;
  if (failed) {
    delayed_.push_back(now + kRetryDelay);
    return;
  }
  std::uniform_int_distribution<Clock::rep> phase(0, Clock::duration(kFramePeriod).count() - 1);
  const auto uuid = random_uuid(rng_);
  place(uuid, Clock::duration(phase(rng_)));
}

void Worker::arm_housekeeping() {
  housekeeping_timer_.expires_after(kHousekeepingPeriod);
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || env_.stopping) return;
    housekeeping();
    arm_housekeeping();
  });
}

void Worker::housekeeping() {
  const auto now = Clock::now();
  std::erase_if(retired_, [now](const auto& r) { return now - r.first >= kRetireDelay; });
  std::uniform_int_distribution<Clock::rep> phase(0, Clock::duration(kFramePeriod).count() - 1);
  std::size_t due = 0;
  for (const auto t : delayed_) due += t <= now ? 1 : 0;
  std::erase_if(delayed_, [now](Clock::time_point t) { return t <= now; });
  for (std::size_t i = 0; i < due; ++i) {
    const auto uuid = random_uuid(rng_);
    place(uuid, Clock::duration(phase(rng_)));
  }
}

void Worker::stop() {
  boost::asio::post(io_, [this] {
    env_.stopping = true;
    housekeeping_timer_.cancel();
    delayed_.clear();
    for (auto& c : calls_) c->stop();
  });
  guard_.reset();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace voxbridge::loadgen
