#include "voxbridge/tts_openai/speech.hpp"

#include <gtest/gtest.h>

#include <string>

namespace voxbridge::tts_openai {
namespace {

TEST(SpeechBody, TheOptionsVoiceUnlessTheCallNamesOne) {
  SpeechOptions o;
  o.model = "kokoro";
  o.voice = "af_heart";
  EXPECT_EQ(
      speech_body(o, "", 0, "Hello there."),
      R"({"model":"kokoro","input":"Hello there.","voice":"af_heart","response_format":"pcm"})");
  EXPECT_EQ(speech_body(o, "bf_emma", 1.0, "Hi"),
            R"({"model":"kokoro","input":"Hi","voice":"bf_emma","response_format":"pcm"})");
}

TEST(SpeechBody, SpeedInstructionsAndEscaping) {
  SpeechOptions o;
  o.instructions = "Speak warmly.";
  EXPECT_EQ(
      speech_body(o, "", 1.25, "Say \"yes\"\n"),
      R"({"model":"gpt-4o-mini-tts","input":"Say \"yes\"\n","voice":"alloy","response_format":"pcm","speed":1.25E0,"instructions":"Speak warmly."})");
  o.speed = 9;  // clamped to the API's range
  EXPECT_NE(speech_body(o, "", 0, "a").find(R"("speed":4E0)"), std::string::npos);
}

TEST(SpeechBody, LongInputIsCutAtACharacterBoundary) {
  SpeechOptions o;
  std::string text(kMaxInputBytes - 1, 'a');
  text += "\xc3\xa9tait";  // é straddles the limit
  const std::string b = speech_body(o, "", 0, text);
  EXPECT_NE(b.find(std::string(kMaxInputBytes - 1, 'a') + "\""), std::string::npos);
  EXPECT_EQ(b.find("\xc3"), std::string::npos);
}

}  // namespace
}  // namespace voxbridge::tts_openai
