// The vendor messages voxbridge writes and reads (proto/vendor/), against the bytes their
// published field numbers give. The mocks share those .proto files, so a wrong field number
// would pass every test through them: these bytes are derived by hand from the vendors' own
// references (alphacep/vosk-server grpc/stt_service.proto; nvidia-riva/common
// riva/proto/riva_asr.proto, riva_tts.proto, riva_audio.proto), field by field.
#include <gtest/gtest.h>

#include <string>

#include "vendor/riva/riva_asr.pb.h"
#include "vendor/riva/riva_tts.pb.h"
#include "vendor/vosk/stt_service.pb.h"

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
    out.push_back(' ');
  }
  return out;
}

TEST(VendorProto, VoskConfigIsTheSpecificationInsideTheConfigInsideTheRequest) {
  vosk::stt::v1::StreamingRecognitionRequest r;
  auto* spec = r.mutable_config()->mutable_specification();
  spec->set_audio_encoding(vosk::stt::v1::RecognitionSpec::LINEAR16_PCM);
  spec->set_sample_rate_hertz(8000);
  spec->set_language_code("en");
  spec->set_partial_results(true);
  spec->set_single_utterance(true);
  spec->set_enable_word_time_offsets(true);
  const std::string want = bytes({
      0x0a, 17,               // config = 1 (RecognitionConfig)
      0x0a, 15,               //   specification = 1 (RecognitionSpec)
      0x08, 0x01,             //     audio_encoding = 1: LINEAR16_PCM (1)
      0x10, 0xc0, 0x3e,       //     sample_rate_hertz = 2: 8000
      0x1a, 0x02, 'e',  'n',  //     language_code = 3
      0x38, 0x01,             //     partial_results = 7
      0x40, 0x01,             //     single_utterance = 8
      0x60, 0x01,             //     enable_word_time_offsets = 12
  });
  EXPECT_EQ(hex(r.SerializeAsString()), hex(want));

  vosk::stt::v1::StreamingRecognitionRequest audio;
  audio.set_audio_content(bytes({1, 2, 3, 4}));
  EXPECT_EQ(hex(audio.SerializeAsString()),
            hex(bytes({0x12, 4, 1, 2, 3, 4})));  // audio_content = 2
}

TEST(VendorProto, VoskWordTimesAreDurations) {
  // vosk-server's get_word_info(): start 0.5 s and end 1.25 s as google.protobuf.Duration
  // (seconds = 1, nanos = 2).
  vosk::stt::v1::WordInfo w;
  w.mutable_start_time()->set_nanos(500000000);
  w.mutable_end_time()->set_seconds(1);
  w.mutable_end_time()->set_nanos(250000000);
  w.set_word("sales");
  w.set_confidence(1.0f);
  const std::string want = bytes({
      0x0a, 6,    0x10, 0x80, 0xca, 0xb5, 0xee, 0x01,        // start_time = 1 {nanos}
      0x12, 7,    0x08, 0x01, 0x10, 0x80, 0xe5, 0x9a, 0x77,  // end_time = 2 {seconds, nanos}
      0x1a, 5,    's',  'a',  'l',  'e',  's',               // word = 3
      0x25, 0x00, 0x00, 0x80, 0x3f,                          // confidence = 4: 1.0f
  });
  EXPECT_EQ(hex(w.SerializeAsString()), hex(want));
}

TEST(VendorProto, VoskChunksReadAsTheServerWritesThem) {
  vosk::stt::v1::StreamingRecognitionResponse resp;
  ASSERT_TRUE(resp.ParseFromString(bytes({
      0x0a, 14,                      // chunks = 1
      0x0a, 10,                      //   alternatives = 1
      0x0a, 3, 'y', 'e', 's',        //     text = 1
      0x15, 0x00, 0x00, 0x40, 0x3f,  //     confidence = 2: 0.75f
      0x10, 0x01,                    //   final = 2
  })));
  ASSERT_EQ(resp.chunks_size(), 1);
  EXPECT_TRUE(resp.chunks(0).final());
  EXPECT_FALSE(resp.chunks(0).end_of_utterance());
  EXPECT_EQ(resp.chunks(0).alternatives(0).text(), "yes");
  EXPECT_FLOAT_EQ(resp.chunks(0).alternatives(0).confidence(), 0.75f);
}

TEST(VendorProto, RivaStreamingConfigCarriesTheLegsMulawAsIs) {
  nvidia::riva::asr::StreamingRecognizeRequest r;
  auto* sc = r.mutable_streaming_config();
  sc->set_interim_results(true);
  auto* c = sc->mutable_config();
  c->set_encoding(nvidia::riva::MULAW);
  c->set_sample_rate_hertz(8000);
  c->set_language_code("en-US");
  c->set_max_alternatives(1);
  auto* ctx = c->add_speech_contexts();
  ctx->add_phrases("sales");
  ctx->add_phrases("support");
  ctx->set_boost(10.0f);
  c->set_audio_channel_count(1);
  c->set_enable_word_time_offsets(true);
  c->set_enable_automatic_punctuation(true);
  const std::string want = bytes({
      0x0a, 47,                                          // streaming_config = 1
      0x0a, 43,                                          //   config = 1 (RecognitionConfig)
      0x08, 0x03,                                        //     encoding = 1: MULAW (3)
      0x10, 0xc0, 0x3e,                                  //     sample_rate_hertz = 2: 8000
      0x1a, 5,    'e',  'n',  '-',  'U', 'S',            //     language_code = 3
      0x20, 0x01,                                        //     max_alternatives = 4
      0x32, 21,                                          //     speech_contexts = 6
      0x0a, 5,    's',  'a',  'l',  'e', 's',            //       phrases = 1
      0x0a, 7,    's',  'u',  'p',  'p', 'o', 'r', 't',  //     phrases = 1
      0x25, 0x00, 0x00, 0x20, 0x41,                      //       boost = 4: 10.0f
      0x38, 0x01,                                        //     audio_channel_count = 7
      0x40, 0x01,                                        //     enable_word_time_offsets = 8
      0x58, 0x01,                                        //     enable_automatic_punctuation = 11
      0x10, 0x01,                                        //   interim_results = 2
  });
  EXPECT_EQ(hex(r.SerializeAsString()), hex(want));
}

TEST(VendorProto, RivaResultsReadAsTheServerWritesThem) {
  nvidia::riva::asr::StreamingRecognizeResponse resp;
  ASSERT_TRUE(resp.ParseFromString(bytes({
      0x0a, 39,                                     // results = 1
      0x0a, 25,                                     //   alternatives = 1
      0x0a, 6,    'S',  'a',  'l',  'e', 's', '.',  //     transcript = 1
      0x15, 0x00, 0x00, 0x40, 0x3f,                 //     confidence = 2: 0.75f
      0x1a, 10,                                     //     words = 3
      0x08, 0x64,                                   //       start_time = 1: 100 (ms)
      0x10, 0xf4, 0x03,                             //       end_time = 2: 500
      0x1a, 0x03, 'S',  'a',  'l',                  //       word = 3
      0x10, 0x01,                                   //   is_final = 2
      0x1d, 0x00, 0x00, 0x00, 0x00,                 //   stability = 3: 0
      0x35, 0x00, 0x00, 0x00, 0x3f,                 //   audio_processed = 6: 0.5f
  })));
  ASSERT_EQ(resp.results_size(), 1);
  const auto& r = resp.results(0);
  EXPECT_TRUE(r.is_final());
  EXPECT_FLOAT_EQ(r.audio_processed(), 0.5f);
  EXPECT_EQ(r.alternatives(0).transcript(), "Sales.");
  EXPECT_EQ(r.alternatives(0).words(0).start_time(), 100);
  EXPECT_EQ(r.alternatives(0).words(0).end_time(), 500);
  EXPECT_EQ(r.alternatives(0).words(0).word(), "Sal");
}

TEST(VendorProto, RivaSynthesisRequestIsTextLanguageEncodingRateVoice) {
  nvidia::riva::tts::SynthesizeSpeechRequest r;
  r.set_text("Hi.");
  r.set_language_code("en-US");
  r.set_encoding(nvidia::riva::LINEAR_PCM);
  r.set_sample_rate_hz(16000);
  r.set_voice_name("English-US.Female-1");
  const std::string want = bytes({
      0x0a, 3,    'H',  'i', '.',            // text = 1
      0x12, 5,    'e',  'n', '-', 'U', 'S',  // language_code = 2
      0x18, 0x01,                            // encoding = 3: LINEAR_PCM (1)
      0x20, 0x80, 0x7d,                      // sample_rate_hz = 4: 16000
      0x2a, 19,   'E',  'n', 'g', 'l', 'i', 's', 'h', '-', 'U',
      'S',  '.',  'F',  'e', 'm', 'a', 'l', 'e', '-', '1',  // voice_name = 5
  });
  EXPECT_EQ(hex(r.SerializeAsString()), hex(want));

  nvidia::riva::tts::SynthesizeSpeechResponse resp;
  ASSERT_TRUE(resp.ParseFromString(bytes({0x0a, 2, 0x10, 0x00})));  // audio = 1
  EXPECT_EQ(resp.audio(), bytes({0x10, 0x00}));
}

}  // namespace
