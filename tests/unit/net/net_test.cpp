#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <future>
#include <string>
#include <thread>

#include <boost/system/system_error.hpp>
#include <stdexcept>

#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/stamped_recv.hpp"

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

TEST(StampedRecv, ArrivalIsWhenTheDataCameNotWhenItWasRead) {
  using namespace std::chrono_literals;
  namespace asio = boost::asio;
  using asio::ip::tcp;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io), server(io);
  client.connect(acceptor.local_endpoint());
  acceptor.accept(server);
  ASSERT_TRUE(enable_receive_stamps(server.native_handle()));
  // The kernel turns stamping on for the machine a moment later (deferred work) when this is
  // the first socket that asks: segments arriving before that carry no stamp.
  std::this_thread::sleep_for(20ms);

  const std::array<std::uint8_t, 3> bytes{1, 2, 3};
  const auto sent_at = std::chrono::steady_clock::now();
  asio::write(client, asio::buffer(bytes));
  std::this_thread::sleep_for(50ms);
  std::array<std::uint8_t, 16> buf{};
  auto arrival = std::chrono::steady_clock::time_point{};
  const auto read_at = std::chrono::steady_clock::now();
  ASSERT_EQ(recv_stamped(server.native_handle(), buf, arrival), 3);
  EXPECT_EQ(buf[2], 3);
  // Stamped when it arrived, right after the write, 50 ms before the read.
  EXPECT_GE(arrival, sent_at - 1ms);
  EXPECT_LE(arrival, read_at - 40ms);

  // Nothing to read: -1/EAGAIN, and `arrival` untouched.
  const auto before = arrival;
  EXPECT_EQ(recv_stamped(server.native_handle(), buf, arrival), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(arrival, before);

  // A socket that does not stamp leaves `arrival` as it was.
  asio::write(server, asio::buffer(bytes));
  std::this_thread::sleep_for(5ms);
  auto unset = std::chrono::steady_clock::time_point{};
  ASSERT_EQ(recv_stamped(client.native_handle(), buf, unset), 3);
  EXPECT_EQ(unset, std::chrono::steady_clock::time_point{});
}

int nice_of_this_thread() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

TEST(YieldToIoThreads, LowersOnlyTheCallingThreadOnce) {
  const int main_nice = nice_of_this_thread();
  int first = -100, second = -100;
  bool ok = false;
  std::thread worker([&] {
    ok = yield_to_io_threads(main_nice + 7);
    first = nice_of_this_thread();
    yield_to_io_threads(main_nice + 3);  // once per thread: no change, and never raised
    second = nice_of_this_thread();
  });
  worker.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(first, main_nice + 7);
  EXPECT_EQ(second, main_nice + 7);
  EXPECT_EQ(nice_of_this_thread(), main_nice);  // the other threads keep theirs
}

}  // namespace
}  // namespace voxbridge::net

namespace voxbridge::net {
namespace {

TEST(ErrorText, ASystemErrorReadsAsItsMessageWithoutBoostsSourceLocation) {
  // What a coroutine's failed connect throws: the location is recorded since Boost 1.79.
  static constexpr boost::source_location kWhere = BOOST_CURRENT_LOCATION;
  const boost::system::error_code ec(ECONNREFUSED, boost::system::system_category(), &kWhere);
  const boost::system::system_error located(ec, "connect");
  EXPECT_EQ(error_text(located), "connect: Connection refused");
  EXPECT_EQ(error_text(boost::system::system_error(ec)), "Connection refused");
  EXPECT_EQ(error_text(boost::system::error_code(ECONNREFUSED, boost::system::system_category())),
            "Connection refused");
  EXPECT_EQ(error_text(std::runtime_error("listener main: cannot listen")),
            "listener main: cannot listen");
}

}  // namespace
}  // namespace voxbridge::net
