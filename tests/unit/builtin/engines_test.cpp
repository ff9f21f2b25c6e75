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
