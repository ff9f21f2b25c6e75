#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <boost/asio/post.hpp>
#include <future>
#include <string>
#include <thread>

#include "voxbridge/net/io_pool.hpp"

namespace voxbridge::net {
namespace {

struct Sched {
  int policy = -1;
  int priority = -1;
  bool reset_on_fork = false;
};

Sched sched_of_this_thread() {
  const int raw = sched_getscheduler(0);
  sched_param sp{};
  sched_getparam(0, &sp);
  return {raw & ~SCHED_RESET_ON_FORK, sp.sched_priority, (raw & SCHED_RESET_ON_FORK) != 0};
}

/// What the io thread of context `i` runs under, and what a thread it creates runs under.
std::pair<Sched, Sched> probe(IoPool& pool, std::size_t i) {
  std::promise<std::pair<Sched, Sched>> done;
  boost::asio::post(pool.context(i), [&] {
    Sched child;
    std::thread([&] { child = sched_of_this_thread(); }).join();
    done.set_value({sched_of_this_thread(), child});
  });
  return done.get_future().get();
}

/// Whether this process may use SCHED_RR at all (root, CAP_SYS_NICE or RLIMIT_RTPRIO).
bool realtime_allowed() {
  bool ok = false;
  std::thread([&] {
    sched_param sp{};
    sp.sched_priority = 1;
    ok = pthread_setschedparam(pthread_self(), SCHED_RR, &sp) == 0;
  }).join();
  return ok;
}

TEST(IoPool, ThreadsRunNormallyUnlessAskedForRealtime) {
  IoPool pool(2);
  EXPECT_EQ(pool.start(), "");
  for (std::size_t i = 0; i < pool.size(); ++i) {
    EXPECT_EQ(probe(pool, i).first.policy, SCHED_OTHER) << "thread " << i;
  }
  pool.stop_now();
}

TEST(IoPool, RealtimePriorityAppliesToTheIoThreadsOnlyOrSaysWhyNot) {
  const bool allowed = realtime_allowed();
  IoPool pool(2);
  const std::string refused = pool.start(3);
  for (std::size_t i = 0; i < pool.size(); ++i) {
    const auto [io, child] = probe(pool, i);
    if (allowed) {
      EXPECT_EQ(refused, "");
      EXPECT_EQ(io.policy, SCHED_RR) << "thread " << i;
      EXPECT_EQ(io.priority, 3) << "thread " << i;
      EXPECT_TRUE(io.reset_on_fork) << "thread " << i;
    } else {
      EXPECT_EQ(refused, "Operation not permitted");
      EXPECT_EQ(io.policy, SCHED_OTHER) << "thread " << i;
    }
    // A thread an io thread starts (gRPC's, say) never inherits the real-time policy.
    EXPECT_EQ(child.policy, SCHED_OTHER) << "thread " << i;
    EXPECT_EQ(child.priority, 0) << "thread " << i;
  }
  pool.stop_now();
}

}  // namespace
}  // namespace voxbridge::net
