// ElevenLabs' stream-input protocol as voxbridge speaks it (stream_input.hpp): the socket's URL
// for a reply's rate, the client's messages, and the server's messages taken apart, shaped as
// the reference's examples (https://elevenlabs.io/docs/api-reference/text-to-speech/
// v-1-text-to-speech-voice-id-stream-input).
#include "voxbridge/tts_elevenlabs/stream_input.hpp"

#include <gtest/gtest.h>

#include <string>

#include "voxbridge/base64/base64.hpp"

namespace voxbridge::tts_elevenlabs {
namespace {

TEST(ElevenLabsStreamInput, TheFormatFollowsTheRepliesRateWithMuLawOnTelephonyLegs) {
  ElevenLabsOptions o;
  EXPECT_EQ(output_format(o, 8000).name, "ulaw_8000");
  EXPECT_TRUE(output_format(o, 8000).ulaw);
  EXPECT_EQ(output_format(o, 16000).name, "pcm_16000");
  EXPECT_EQ(output_format(o, 24000).name, "pcm_24000");
  EXPECT_EQ(output_format(o, 24000).rate_hz, 24000);
  EXPECT_EQ(output_format(o, 12000).name, "");  // no such format: the caller's error
  o.ulaw_8000 = false;
  EXPECT_EQ(output_format(o, 8000).name, "pcm_8000");
  EXPECT_FALSE(output_format(o, 8000).ulaw);
}

TEST(ElevenLabsStreamInput, TheUrlNamesTheVoiceModelAndFormat) {
  ElevenLabsOptions o;
  EXPECT_EQ(socket_url(o, "21m00Tcm4TlvDq8ikWAM", output_format(o, 8000)),
            "wss://api.elevenlabs.io/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input"
            "?model_id=eleven_flash_v2_5&output_format=ulaw_8000&inactivity_timeout=60"
            "&sync_alignment=true");
  o.url = "ws://127.0.0.1:9/v1/text-to-speech";
  o.model_id = "eleven_multilingual_v2";
  EXPECT_EQ(socket_url(o, "a voice/../x", output_format(o, 16000)),
            "ws://127.0.0.1:9/v1/text-to-speech/a%20voice%2F..%2Fx/stream-input"
            "?model_id=eleven_multilingual_v2&output_format=pcm_16000&inactivity_timeout=60"
            "&sync_alignment=true");
}

TEST(ElevenLabsStreamInput, MessagesAreTheReferencesShapes) {
  ElevenLabsOptions o;
  EXPECT_EQ(initialize_message(o),
            R"({"text":" ","generation_config":{"chunk_length_schedule":[50,120,160,250]}})");
  o.stability = 0.5;
  o.similarity_boost = 0.8;
  o.speed = 1.1;
  EXPECT_EQ(initialize_message(o),
            R"({"text":" ","voice_settings":{"stability":5E-1,"similarity_boost":8E-1,)"
            R"("speed":1.1E0},"generation_config":{"chunk_length_schedule":[50,120,160,250]}})");
  EXPECT_EQ(text_message("Hello there."), R"({"text":"Hello there. ","flush":true})");
  EXPECT_EQ(text_message("Hi \"you\" "), R"({"text":"Hi \"you\" ","flush":true})");
  EXPECT_EQ(text_message(std::string(5000, 'a')).size(),
            std::string(R"({"text":"","flush":true})").size() + kMaxTextBytes + 1);
}

TEST(ElevenLabsStreamInput, AudioAlignmentFinalAndErrorsAreTakenApart) {
  const std::string pcm = "\x01\x02\x03\x04";
  const auto a = parse_server_message(
      R"({"audio":")" + base64::encode(pcm) +
      R"(","isFinal":null,"normalizedAlignment":{"chars":["H","i"," "],"charStartTimesMs":[0,60,120],"charDurationsMs":[60,60,60]},"alignment":{"chars":["H","i"," "],"charStartTimesMs":[0,60,120],"charDurationsMs":[60,60,60]}})");
  EXPECT_EQ(a.type, ServerMessage::Type::audio);
  EXPECT_EQ(a.audio, pcm);
  EXPECT_EQ(a.chars, 3u);
  EXPECT_FALSE(a.is_final);
  const auto f = parse_server_message(R"({"isFinal":true})");
  EXPECT_EQ(f.type, ServerMessage::Type::final);
  EXPECT_TRUE(f.is_final);
  const auto e = parse_server_message(
      R"({"message":"Invalid API key","error":"invalid_api_key","code":1008})");
  EXPECT_EQ(e.type, ServerMessage::Type::error);
  EXPECT_EQ(e.why, "invalid_api_key: Invalid API key");
  EXPECT_EQ(parse_server_message(R"({"audio":null,"isFinal":null})").type,
            ServerMessage::Type::other);
  for (const char* bad :
       {"nope", "[]", R"({"audio":5})", R"({"audio":"@@@"})", R"({"isFinal":"yes"})",
        R"({"audio":"AAAA","alignment":{"charStartTimesMs":[]}})"}) {
    EXPECT_EQ(parse_server_message(bad).type, ServerMessage::Type::malformed) << bad;
  }
}

}  // namespace
}  // namespace voxbridge::tts_elevenlabs
