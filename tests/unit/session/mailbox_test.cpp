#include "voxbridge/session/mailbox.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace voxbridge::session {
namespace {

using namespace std::chrono_literals;

std::int64_t ns_from_now(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             (std::chrono::steady_clock::now() + d).time_since_epoch())
      .count();
}

TEST(Mailbox, WithoutAClockEachBatchWakesTheThreadOnce) {
  boost::asio::io_context io;
  auto box = std::make_shared<Mailbox>(io.get_executor());
  std::vector<std::string> ran;
  box->post([&] { ran.push_back("a"); });
  box->post([&] { ran.push_back("b"); });
  EXPECT_TRUE(ran.empty());  // never on the posting thread
  EXPECT_EQ(box->wakes(), 1u);
  EXPECT_EQ(io.poll(), 1u);  // one handler ran both, in order
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b"}));
  box->post([&] { ran.push_back("c"); });
  EXPECT_EQ(box->wakes(), 2u);
  io.restart();
  io.poll();
  EXPECT_EQ(ran.back(), "c");
}

TEST(Mailbox, APostRidesAlongWithTheClocksNextWakeWhenItIsClose) {
  boost::asio::io_context io;
  auto box = std::make_shared<Mailbox>(io.get_executor());
  std::atomic<std::int64_t> next_wake{ns_from_now(1ms)};
  box->attach(&next_wake);
  int ran = 0;
  box->post([&] { ++ran; });
  EXPECT_EQ(box->wakes(), 0u);
  EXPECT_EQ(io.poll(), 0u);  // nothing wakes the thread ...
  box->drain();              // ... the clock's wake-up runs it
  EXPECT_EQ(ran, 1);

  // The clock's next wake-up is far off (few calls): the post wakes the thread.
  next_wake = ns_from_now(15ms);
  box->post([&] { ++ran; });
  EXPECT_EQ(box->wakes(), 1u);
  io.restart();
  EXPECT_EQ(io.poll(), 1u);
  EXPECT_EQ(ran, 2);

  // The clock sleeps (no calls on the thread): the same.
  next_wake = std::numeric_limits<std::int64_t>::max();
  box->post([&] { ++ran; });
  EXPECT_EQ(box->wakes(), 2u);
  io.restart();
  io.poll();
  EXPECT_EQ(ran, 3);
}

TEST(Mailbox, ClosedDropsWhatIsQueuedAndEveryLaterPost) {
  boost::asio::io_context io;
  auto box = std::make_shared<Mailbox>(io.get_executor());
  std::atomic<std::int64_t> next_wake{ns_from_now(1ms)};
  box->attach(&next_wake);
  auto token = std::make_shared<int>(0);
  box->post([token] {});
  EXPECT_EQ(token.use_count(), 2);
  box->close();
  EXPECT_EQ(token.use_count(), 1);  // the queued function is gone, with what it held
  bool ran = false;
  box->post([&] { ran = true; });
  box->drain();
  io.poll();
  EXPECT_FALSE(ran);
}

TEST(Mailbox, PostsFromOtherThreadsAllRunOnTheDrainingThreadInOrderPerPoster) {
  boost::asio::io_context io;
  auto box = std::make_shared<Mailbox>(io.get_executor());
  std::vector<int> seen[2];
  const auto io_thread = std::this_thread::get_id();
  bool on_io_thread = true;
  std::vector<std::thread> posters;
  for (int p = 0; p < 2; ++p) {
    posters.emplace_back([&, p] {
      for (int i = 0; i < 1000; ++i) {
        box->post([&, p, i] {
          on_io_thread &= std::this_thread::get_id() == io_thread;
          seen[p].push_back(i);
        });
      }
    });
  }
  for (auto& t : posters) t.join();
  io.run();
  EXPECT_TRUE(on_io_thread);
  for (const auto& s : seen) {
    ASSERT_EQ(s.size(), 1000u);
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(s[static_cast<std::size_t>(i)], i);
  }
}

TEST(Mailbox, AFunctionThatThrowsStopsOnlyItselfAndNothingRunsTwice) {
  boost::asio::io_context io;
  auto box = std::make_shared<Mailbox>(io.get_executor());
  std::atomic<std::int64_t> next_wake{ns_from_now(1ms)};
  box->attach(&next_wake);
  std::vector<std::string> ran;
  box->post([&] { ran.push_back("a"); });
  box->post([&] {
    ran.push_back("b");
    throw std::runtime_error("provider message for a broken call");
  });
  box->post([&] { ran.push_back("c"); });
  EXPECT_NO_THROW(box->drain());
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "c"}));
  box->post([&] { ran.push_back("d"); });
  EXPECT_NO_THROW(box->drain());
  EXPECT_NO_THROW(box->drain());
  // Each ran once: nothing of the batch that threw was kept to run again.
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(box->errors(), 1u);
}

/// A call as the mailbox sees it.
struct FakeOwner : Mailbox::Owner {
  void on_mailbox_error(std::exception_ptr e) noexcept override {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      errors.push_back(ex.what());
    }
  }
  std::vector<std::string> errors;
};

TEST(Mailbox, TheOwnerOfAFunctionThatThrowsIsToldOthersAreNot) {
  boost::asio::io_context io;
  auto box = std::make_shared<Mailbox>(io.get_executor());
  std::atomic<std::int64_t> next_wake{ns_from_now(1ms)};
  box->attach(&next_wake);
  auto broken = std::make_shared<FakeOwner>();
  auto healthy = std::make_shared<FakeOwner>();
  auto gone = std::make_shared<FakeOwner>();
  int healthy_ran = 0;
  box->post([] { throw std::runtime_error("tts chunk: bad state"); }, broken);
  box->post([&] { ++healthy_ran; }, healthy);
  box->post([] { throw std::runtime_error("late"); }, gone);
  gone.reset();  // its call ended meanwhile: nobody to tell, still no throw out of drain
  EXPECT_NO_THROW(box->drain());
  EXPECT_EQ(broken->errors, (std::vector<std::string>{"tts chunk: bad state"}));
  EXPECT_TRUE(healthy->errors.empty());
  EXPECT_EQ(healthy_ran, 1);
  EXPECT_EQ(box->errors(), 2u);
}

}  // namespace
}  // namespace voxbridge::session
