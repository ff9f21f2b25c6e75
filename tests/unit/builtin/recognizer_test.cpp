// The built-in recognizer over gRPC: streaming results, and the phrase-hint grammar on
// telephone-band audio.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "voxbridge/asr_sphinx/sphinx_asr.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/tts_flite/flite_tts.hpp"

namespace voxbridge {
namespace {

struct Recognized {
  std::vector<std::string> interims;
  std::string final_text;
  bool speech_started = false, end_of_utterance = false;
};

Recognized recognize_over_grpc(asr_sphinx::SphinxRecognizer& service,
                               const std::vector<std::int16_t>& pcm, int rate,
                               std::vector<std::string> hints) {
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  auto stub = asr::v1::Recognizer::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->StreamingRecognize(&ctx);
  asr::v1::RecognizeRequest req;
  auto* cfg = req.mutable_config();
  cfg->mutable_format()->set_encoding(common::v1::LINEAR16);
  cfg->mutable_format()->set_sample_rate_hz(static_cast<std::uint32_t>(rate));
  cfg->set_interim_results(true);
  for (auto& h : hints) cfg->add_phrase_hints(h);
  stream->Write(req);
  const auto chunk = static_cast<std::size_t>(rate / 50);
  for (std::size_t at = 0; at < pcm.size(); at += chunk) {
    req.set_audio(reinterpret_cast<const char*>(pcm.data() + at),
                  std::min(chunk, pcm.size() - at) * 2);
    if (!stream->Write(req)) break;
  }
  stream->WritesDone();
  Recognized out;
  asr::v1::RecognizeResponse r;
  while (stream->Read(&r)) {
    if (r.has_speech_started()) out.speech_started = true;
    if (r.has_end_of_utterance()) out.end_of_utterance = true;
    if (r.has_result() && !r.result().is_final()) out.interims.push_back(r.result().transcript());
    if (r.has_result() && r.result().is_final()) out.final_text = r.result().transcript();
  }
  EXPECT_TRUE(stream->Finish().ok());
  server->Shutdown();
  return out;
}

std::vector<std::int16_t> speech_at(tts_flite::FliteEngine& tts, const std::string& text,
                                    int rate) {
  const auto s = tts.synthesize(text);
  std::vector<std::int16_t> v(static_cast<std::size_t>(rate * 3 / 10), 0);
  audio::Resampler rs(tts_flite::FliteEngine::kRateHz, rate, 5);
  const std::size_t at = v.size();
  v.resize(at + rs.max_output(s.size()));
  v.resize(at + rs.process(s, {v.data() + at, v.size() - at}));
  v.resize(v.size() + static_cast<std::size_t>(rate), 0);
  return v;
}

TEST(SphinxRecognizer, StreamsInterimsThenTheFinalAtTheEndOfSpeech) {
  tts_flite::FliteEngine tts;
  asr_sphinx::DecoderPool pool({});
  asr_sphinx::SphinxRecognizer service(pool, {});
  const auto r = recognize_over_grpc(
      service, speech_at(tts, "i would like to talk to sales", 16000), 16000, {});
  EXPECT_TRUE(r.speech_started);
  EXPECT_TRUE(r.end_of_utterance);
  EXPECT_FALSE(r.interims.empty());
  EXPECT_EQ(r.final_text, "i would like to talk to sales");
}

TEST(SphinxRecognizer, HintsMakeTelephoneAudioRecognizable) {
  tts_flite::FliteEngine tts;
  asr_sphinx::DecoderPool pool({});
  asr_sphinx::SphinxRecognizer service(pool, {});
  const std::vector<std::string> hints = {"sales", "support", "goodbye", "time"};
  // Measured (Flite through an 8 kHz leg, each phrase first with hints on a cold decoder):
  // the language model heard "i would like to knock it failed", "that hardly", "goodbye",
  // "what kind of a"; with the hints every keyword is heard.
  const std::pair<std::string, std::string> cases[] = {{"i would like to talk to sales", "sales"},
                                                       {"support please", "support"},
                                                       {"goodbye", "goodbye"},
                                                       {"what time is it", "time"}};
  for (const auto& [phrase, keyword] : cases) {
    const auto pcm = speech_at(tts, phrase, 8000);
    const auto hinted = recognize_over_grpc(service, pcm, 8000, hints);
    const auto plain = recognize_over_grpc(service, pcm, 8000, {});
    std::printf("8 kHz \"%s\": language model \"%s\", hints \"%s\"\n", phrase.c_str(),
                plain.final_text.c_str(), hinted.final_text.c_str());
    EXPECT_NE((" " + hinted.final_text + " ").find(" " + keyword + " "), std::string::npos)
        << phrase;
  }
}

}  // namespace
}  // namespace voxbridge
