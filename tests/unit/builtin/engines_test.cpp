// The offline engines on their own: Flite speaks, PocketSphinx hears what it said.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "voxbridge/asr_sphinx/sphinx_asr.hpp"
#include "voxbridge/tts_flite/flite_tts.hpp"

namespace voxbridge {
namespace {

std::vector<std::int16_t> padded(std::vector<std::int16_t> speech, double pad_s) {
  std::vector<std::int16_t> v(static_cast<std::size_t>(pad_s * 16000), 0);
  v.insert(v.end(), speech.begin(), speech.end());
  v.resize(v.size() + static_cast<std::size_t>(pad_s * 16000), 0);
  return v;
}

TEST(Flite, SpeaksAtSixteenKilohertzForAsLongAsTheTextTakes) {
  tts_flite::FliteEngine tts(0);  // no cache: every call synthesizes
  const auto a = tts.synthesize("Hello.");
  const auto b = tts.synthesize("Thank you for calling, how can I help you today?");
  EXPECT_GT(a.size(), 16000u / 4);    // "Hello." is a quarter second or more
  EXPECT_GT(b.size(), 2 * a.size());  // measured 16,240 and 49,200 samples
  double e = 0;
  for (auto s : b) e += static_cast<double>(s) * s;
  EXPECT_GT(std::sqrt(e / static_cast<double>(b.size())), 500.0);  // audible
  EXPECT_TRUE(tts.synthesize("  ").empty());
  // The same text gives the same samples, whatever was said before (Flite's noise is seeded).
  EXPECT_EQ(tts.synthesize("Hello."), a);
  EXPECT_EQ(tts.stats().syntheses, 3u);
  EXPECT_EQ(tts.stats().cache_hits, 0u);
}

TEST(Flite, ATextSaidAgainComesFromTheCacheAndSoundsTheSame) {
  tts_flite::FliteEngine uncached(0);
  tts_flite::FliteEngine tts;
  const auto first = tts.synthesize("Say sales or press 1.");
  EXPECT_EQ(tts.synthesize("Say sales or press 1."), first);
  EXPECT_EQ(tts.stats().syntheses, 1u);
  EXPECT_EQ(tts.stats().cache_hits, 1u);
  EXPECT_EQ(tts.stats().cached_bytes, first.size() * 2);
  EXPECT_EQ(uncached.synthesize("Say sales or press 1."), first);  // what it would have said
  // The voice is part of the key.
  EXPECT_NE(tts.synthesize("Say sales or press 1.", "rms"), first);
  EXPECT_EQ(tts.stats().syntheses, 2u);
}

TEST(Flite, TheCacheKeepsTheRecentlyUsedWithinItsBound) {
  const std::vector<std::string> words = {"one", "two", "three", "four", "five", "six", "seven"};
  std::size_t largest = 0;
  {
    tts_flite::FliteEngine measure(0);
    for (const auto& w : words) largest = std::max(largest, measure.synthesize(w).size() * 2);
  }
  // Room for about four of them; the first is used again after each new one.
  tts_flite::FliteEngine tts(4 * largest);
  tts.synthesize(words[0]);
  for (std::size_t i = 1; i < words.size(); ++i) {
    tts.synthesize(words[i]);
    tts.synthesize(words[0]);
    EXPECT_LE(tts.stats().cached_bytes, 4 * largest);
  }
  const auto before = tts.stats();
  EXPECT_EQ(before.syntheses, words.size());  // "one" was never synthesized again
  tts.synthesize(words.back());               // the newest: still there
  EXPECT_EQ(tts.stats().syntheses, before.syntheses);
  tts.synthesize(words[1]);  // the oldest of the rest: evicted, synthesized again
  EXPECT_EQ(tts.stats().syntheses, before.syntheses + 1);
  // A text too long for a quarter of the cache is spoken but not kept (it would evict all).
  tts_flite::FliteEngine small(2 * largest);
  small.synthesize("This sentence is much longer than one small word on its own.");
  EXPECT_EQ(small.stats().cached_bytes, 0u);
}

TEST(DeadlineGate, TheEarliestDeadlineGoesFirstWhateverItsArrival) {
  using Clock = tts_flite::DeadlineGate::Clock;
  tts_flite::DeadlineGate gate;
  std::mutex mu;
  std::vector<std::string> order;
  auto holder = std::make_unique<tts_flite::DeadlineGate::Pass>(gate.enter(Clock::now()));
  auto wait_for = [&](std::size_t n) {
    while (gate.waiting() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  auto run = [&](std::string name, Clock::time_point deadline) {
    return std::thread([&gate, &mu, &order, name, deadline] {
      const auto pass = gate.enter(deadline);
      std::lock_guard lock(mu);
      order.push_back(name);
    });
  };
  const auto now = Clock::now();
  std::thread later = run("later sentence", now + std::chrono::seconds(2));
  wait_for(1);
  std::thread tie_first = run("first sentence A", now);
  wait_for(2);
  std::thread tie_second = run("first sentence B", now);
  wait_for(3);
  holder.reset();
  later.join();
  tie_first.join();
  tie_second.join();
  EXPECT_EQ(order,
            (std::vector<std::string>{"first sentence A", "first sentence B", "later sentence"}));
  EXPECT_EQ(gate.waiting(), 0u);
}

TEST(Flite, EveryShippedVoiceSpeaksAndDiffers) {
  tts_flite::FliteEngine tts;
  std::vector<std::vector<std::int16_t>> said;
  for (const auto& v : tts_flite::FliteEngine::voices()) {
    said.push_back(tts.synthesize("Connecting you to sales.", v));
    EXPECT_GT(said.back().size(), 16000u / 2) << v;  // at 16 kHz whatever the voice's rate
  }
  for (std::size_t i = 1; i < said.size(); ++i) EXPECT_NE(said[i], said[0]);
  EXPECT_THROW(tts.synthesize("Hello.", "hal9000"), std::invalid_argument);
}

TEST(Sphinx, RecognizesWhatFliteSaid) {
  tts_flite::FliteEngine tts;
  asr_sphinx::DecoderPool pool({});
  for (const std::string phrase :
       {"i would like to talk to sales", "support please", "goodbye", "sales"}) {
    const std::string heard = asr_sphinx::recognize(pool, padded(tts.synthesize(phrase), 0.7));
    std::printf("said \"%s\", heard \"%s\"\n", phrase.c_str(), heard.c_str());
    EXPECT_EQ(heard, phrase);
  }
}

}  // namespace
}  // namespace voxbridge
