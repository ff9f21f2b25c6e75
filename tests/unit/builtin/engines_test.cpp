// The offline engines on their own: Flite speaks, PocketSphinx hears what it said.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

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
  tts_flite::FliteEngine tts;
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
