#include "voxbridge/metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace voxbridge::metrics {
namespace {

using namespace std::chrono_literals;

TEST(Metrics, WriterProducesTheTextFormatExactly) {
  Writer w;
  w.family("vb_calls_total", "counter", "Calls.\nAll of them \\ really.");
  w.sample("vb_calls_total", {{"listener", "main"}, {"reason", "say \"bye\"\n"}}, 3);
  w.sample("vb_calls_total", 2.5);
  EXPECT_EQ(w.text(),
            "# HELP vb_calls_total Calls.\\nAll of them \\\\ really.\n"
            "# TYPE vb_calls_total counter\n"
            "vb_calls_total{listener=\"main\",reason=\"say \\\"bye\\\"\\n\"} 3\n"
            "vb_calls_total 2.5\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithSumAndCount) {
  Histogram h;
  h.observe(3ms);    // le 0.005
  h.observe(20ms);   // le 0.02 (bounds are inclusive)
  h.observe(250ms);  // le 0.3
  h.observe(60s);    // +Inf
  Histogram::Snapshot s;
  s.merge(h);
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 60.273);
  Writer w;
  w.histogram("lat", {{"phase", "asr"}}, s);
  const std::string& t = w.text();
  EXPECT_NE(t.find("lat_bucket{phase=\"asr\",le=\"0.005\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_bucket{phase=\"asr\",le=\"0.01\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("lat_bucket{phase=\"asr\",le=\"0.02\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("lat_bucket{phase=\"asr\",le=\"0.2\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("lat_bucket{phase=\"asr\",le=\"0.3\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("lat_bucket{phase=\"asr\",le=\"10\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("lat_bucket{phase=\"asr\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(t.find("lat_sum{phase=\"asr\"} 60.273\n"), std::string::npos);
  EXPECT_NE(t.find("lat_count{phase=\"asr\"} 4\n"), std::string::npos);
  // 15 finite buckets + Inf + sum + count.
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 18);
}

TEST(Metrics, SnapshotsMergeThreadsCells) {
  // Each thread writes only its own cells; the reader sums them.
  std::array<Histogram, 4> per_thread;
  std::array<Counter, 4> counters;
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 10000; ++n) {
        counters[i].add();
        per_thread[i].observe(1ms);
      }
    });
  }
  for (auto& t : threads) t.join();
  Histogram::Snapshot s;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    s.merge(per_thread[i]);
    total += counters[i].value();
  }
  EXPECT_EQ(total, 40000u);
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.counts[0], 40000u);
  EXPECT_NEAR(s.sum_seconds, 40.0, 1e-9);
}

TEST(Metrics, GaugesGoBothWays) {
  Gauge g;
  g.add(3);
  g.add(-5);
  EXPECT_EQ(g.value(), -2);
}

TEST(Metrics, SlotsAreStableAndBounded) {
  Slots s;
  EXPECT_EQ(s.slot("asr"), 0u);
  EXPECT_EQ(s.slot("tts"), 1u);
  EXPECT_EQ(s.slot("asr"), 0u);
  for (int i = 0; i < 100; ++i) s.slot("p" + std::to_string(i));
  EXPECT_EQ(s.slot("one-too-many"), Slots::kMax - 1);
  const auto names = s.names();
  ASSERT_EQ(names.size(), Slots::kMax);
  EXPECT_EQ(names.back(), "other");
}

}  // namespace
}  // namespace voxbridge::metrics
