// The NVIDIA Riva mock against a plain gRPC client (the generated stubs, sync API), the way
// nvidia-riva/python-clients call it (riva/client/asr.py: the config then the audio chunks;
// riva/client/tts.py: requests then the half-close): interim results (stability, audio
// processed) and the final at Riva's 800 ms stop_history for a tone between silences,
// punctuation, word times, the request's endpointing config and the 2-pass EOU, G.711 input, a
// WAV header, Riva's errors (no config, an undeployed language or model, a voice not found,
// a subvoice), NVCF's metadata checks, TLS with the mock's CA, TTS audio of exactly
// characters x 60 ms in the scripted chunks, several requests on one stream, a client
// cancelling mid-audio, scripted failures, and what the mock records.
#include "support/mock_riva.hpp"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "vendor/riva/riva_asr.grpc.pb.h"
#include "vendor/riva/riva_tts.grpc.pb.h"

namespace {

namespace asr = nvidia::riva::asr;
namespace tts = nvidia::riva::tts;
using voxbridge::testing::MockRiva;
using namespace std::chrono_literals;
using Metadata = std::vector<std::pair<std::string, std::string>>;

constexpr auto kWait = 10s;

std::vector<std::int16_t> signal(int rate, double seconds, bool tone) {
  const auto n = static_cast<std::size_t>(std::lround(rate * seconds));
  std::vector<std::int16_t> v(n, 0);
  if (tone)
    for (std::size_t i = 0; i < n; ++i)
      v[i] = static_cast<std::int16_t>(
          std::lround(8000 * std::sin(2 * std::numbers::pi * 440 * static_cast<double>(i) / rate)));
  return v;
}

std::string pcm(const std::vector<std::int16_t>& s) {
  std::string out;
  for (const auto x : s) {
    const auto u = static_cast<std::uint16_t>(x);
    out += static_cast<char>(u & 0xFF);
    out += static_cast<char>(u >> 8);
  }
  return out;
}

std::string pcm(int rate, double seconds, bool tone) {
  return pcm(signal(rate, seconds, tone));
}

std::vector<std::string> chunks(const std::string& audio, std::size_t size) {
  std::vector<std::string> c;
  for (std::size_t off = 0; off < audio.size(); off += size) c.push_back(audio.substr(off, size));
  return c;
}

asr::StreamingRecognizeRequest config_request(const asr::StreamingRecognitionConfig& c) {
  asr::StreamingRecognizeRequest r;
  *r.mutable_streaming_config() = c;
  return r;
}

asr::StreamingRecognizeRequest audio_request(const std::string& audio) {
  asr::StreamingRecognizeRequest r;
  r.set_audio_content(audio);
  return r;
}

/// What python-clients' transcribe_file.py sends for a 16 kHz file (plus our options).
asr::StreamingRecognitionConfig streaming_config(int rate = 16000) {
  asr::StreamingRecognitionConfig c;
  auto* cfg = c.mutable_config();
  cfg->set_encoding(nvidia::riva::LINEAR_PCM);
  cfg->set_sample_rate_hertz(rate);
  cfg->set_language_code("en-US");
  cfg->set_max_alternatives(1);
  cfg->set_audio_channel_count(1);
  c.set_interim_results(true);
  return c;
}

template <class Resp>
struct Result {
  std::vector<Resp> responses;
  grpc::Status status;
};

std::shared_ptr<grpc::Channel> channel(const MockRiva& m) {
  return grpc::CreateChannel(m.address(), grpc::InsecureChannelCredentials());
}

Result<asr::StreamingRecognizeResponse> run_asr(
    const std::shared_ptr<grpc::Channel>& ch,
    const std::vector<asr::StreamingRecognizeRequest>& requests, const Metadata& md = {}) {
  auto stub = asr::RivaSpeechRecognition::NewStub(ch);
  grpc::ClientContext ctx;
  for (const auto& [k, v] : md) ctx.AddMetadata(k, v);
  ctx.set_deadline(std::chrono::system_clock::now() + kWait);
  auto rw = stub->StreamingRecognize(&ctx);
  for (const auto& r : requests)
    if (!rw->Write(r)) break;
  rw->WritesDone();
  Result<asr::StreamingRecognizeResponse> out;
  asr::StreamingRecognizeResponse resp;
  while (rw->Read(&resp)) out.responses.push_back(resp);
  out.status = rw->Finish();
  return out;
}

Result<tts::SynthesizeSpeechResponse> run_tts(const std::shared_ptr<grpc::Channel>& ch,
                                              const std::vector<tts::SynthesizeSpeechRequest>& rq,
                                              const Metadata& md = {}) {
  auto stub = tts::RivaSpeechSynthesis::NewStub(ch);
  grpc::ClientContext ctx;
  for (const auto& [k, v] : md) ctx.AddMetadata(k, v);
  ctx.set_deadline(std::chrono::system_clock::now() + kWait);
  auto rw = stub->SynthesizeOnline(&ctx);
  for (const auto& r : rq)
    if (!rw->Write(r)) break;
  rw->WritesDone();
  Result<tts::SynthesizeSpeechResponse> out;
  tts::SynthesizeSpeechResponse resp;
  while (rw->Read(&resp)) out.responses.push_back(resp);
  out.status = rw->Finish();
  return out;
}

/// 0.5 s silence, 1 s tone, 1 s silence at 16 kHz in 100 ms chunks.
std::vector<asr::StreamingRecognizeRequest> tone_stream(const asr::StreamingRecognitionConfig& c) {
  std::vector<asr::StreamingRecognizeRequest> reqs{config_request(c)};
  const int rate = c.config().sample_rate_hertz();
  const std::string audio = pcm(rate, 0.5, false) + pcm(rate, 1.0, true) + pcm(rate, 1.0, false);
  for (const auto& ch : chunks(audio, static_cast<std::size_t>(rate / 10 * 2)))
    reqs.push_back(audio_request(ch));
  return reqs;
}

tts::SynthesizeSpeechRequest tts_request(const std::string& text, int rate = 16000,
                                         const std::string& voice = "English-US.Female-1") {
  tts::SynthesizeSpeechRequest r;
  r.set_text(text);
  r.set_language_code("en-US");
  r.set_encoding(nvidia::riva::LINEAR_PCM);
  r.set_sample_rate_hz(rate);
  r.set_voice_name(voice);
  return r;
}

std::string joined_audio(const Result<tts::SynthesizeSpeechResponse>& r) {
  std::string a;
  for (const auto& x : r.responses) a += x.audio();
  return a;
}

// ---- ASR ----

TEST(MockRivaAsr, InterimsThenPunctuatedFinalWithWordsAtStopHistory) {
  MockRiva m;
  m.script_text({"hello world", 0.8f});
  asr::StreamingRecognitionConfig c = streaming_config();
  c.mutable_config()->set_enable_automatic_punctuation(true);
  c.mutable_config()->set_enable_word_time_offsets(true);
  auto* hint = c.mutable_config()->add_speech_contexts();
  hint->add_phrases("hello");
  hint->set_boost(10.0f);
  auto reqs = tone_stream(c);
  reqs[0].mutable_id()->set_value("req-1");
  const auto r = run_asr(channel(m), reqs, {{"x-test", "riva"}});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  // Interims from the first speech message (0.6 s) through 700 ms of trailing silence (2.2 s),
  // one word per 300 ms of speech; the final when 800 ms of silence followed (2.3 s).
  ASSERT_EQ(r.responses.size(), 18u);
  for (std::size_t i = 0; i < 17; ++i) {
    const auto& resp = r.responses[i];
    ASSERT_EQ(resp.results_size(), 1);
    const auto& res = resp.results(0);
    EXPECT_FALSE(res.is_final());
    EXPECT_FLOAT_EQ(res.stability(), 0.1f);
    EXPECT_EQ(res.channel_tag(), 1);
    EXPECT_NEAR(res.audio_processed(), 0.6 + 0.1 * static_cast<double>(i), 1e-4);
    EXPECT_EQ(res.alternatives(0).transcript(), i < 3 ? "hello" : "hello world") << i;
    EXPECT_EQ(res.alternatives(0).words_size(), 0);
    EXPECT_EQ(resp.id().value(), "req-1");
  }
  const auto& fin = r.responses[17].results(0);
  EXPECT_TRUE(fin.is_final());
  EXPECT_EQ(fin.stability(), 0.0f);
  EXPECT_NEAR(fin.audio_processed(), 2.3, 1e-4);
  ASSERT_EQ(fin.alternatives_size(), 1);
  EXPECT_EQ(fin.alternatives(0).transcript(), "Hello world. ");
  EXPECT_FLOAT_EQ(fin.alternatives(0).confidence(), 0.8f);
  ASSERT_EQ(fin.alternatives(0).words_size(), 2);
  EXPECT_EQ(fin.alternatives(0).words(0).word(), "Hello");
  EXPECT_EQ(fin.alternatives(0).words(0).start_time(), 500);
  EXPECT_EQ(fin.alternatives(0).words(0).end_time(), 1000);
  EXPECT_EQ(fin.alternatives(0).words(1).word(), "world.");
  EXPECT_EQ(fin.alternatives(0).words(1).start_time(), 1000);
  EXPECT_EQ(fin.alternatives(0).words(1).end_time(), 1500);
  EXPECT_FLOAT_EQ(fin.alternatives(0).words(1).confidence(), 0.8f);

  ASSERT_TRUE(m.wait_asr_done(1, kWait));
  const auto s = m.asr_stream(0);
  EXPECT_EQ(s.first_message, reqs[0].SerializeAsString());
  EXPECT_EQ(s.config.config().sample_rate_hertz(), 16000);
  EXPECT_TRUE(s.config.interim_results());
  ASSERT_EQ(s.speech_contexts.size(), 1u);
  EXPECT_EQ(s.speech_contexts[0].phrases(0), "hello");
  EXPECT_FLOAT_EQ(s.speech_contexts[0].boost(), 10.0f);
  EXPECT_EQ(s.audio_messages, 25u);
  EXPECT_EQ(s.audio_bytes, 80000u);
  EXPECT_EQ(s.audio.size(), 80000u);
  EXPECT_EQ(s.responses.size(), 18u);
  EXPECT_EQ(s.utterances, 1u);
  EXPECT_TRUE(s.half_closed);
  EXPECT_FALSE(s.cancelled);
  EXPECT_TRUE(s.status.ok());
  EXPECT_EQ(s.metadata.find("x-test")->second, "riva");
}

TEST(MockRivaAsr, WithoutInterimResultsOnlyTheFinal) {
  MockRiva m;
  asr::StreamingRecognitionConfig c = streaming_config();
  c.set_interim_results(false);
  const auto r = run_asr(channel(m), tone_stream(c));
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_TRUE(r.responses[0].results(0).is_final());
  EXPECT_EQ(r.responses[0].results(0).alternatives(0).transcript(), "hello ");
  EXPECT_EQ(r.responses[0].results(0).alternatives(0).words_size(), 0);
}

TEST(MockRivaAsr, HalfCloseFinalsTheSpeechLeftAndSilenceGetsNothing) {
  MockRiva m;
  m.script_text({"good bye"});
  asr::StreamingRecognitionConfig c = streaming_config();
  c.set_interim_results(false);
  std::vector<asr::StreamingRecognizeRequest> reqs{config_request(c)};
  for (const auto& ch : chunks(pcm(16000, 0.3, true) + pcm(16000, 0.2, false), 3200))
    reqs.push_back(audio_request(ch));
  const auto r = run_asr(channel(m), reqs);
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0].results(0).alternatives(0).transcript(), "good bye ");

  std::vector<asr::StreamingRecognizeRequest> quiet{config_request(streaming_config())};
  for (const auto& ch : chunks(pcm(16000, 1.0, false), 3200)) quiet.push_back(audio_request(ch));
  const auto q = run_asr(channel(m), quiet);
  ASSERT_TRUE(q.status.ok());
  EXPECT_TRUE(q.responses.empty());
}

TEST(MockRivaAsr, RequestEndpointingAndTwoPassEou) {
  MockRiva m;
  m.script_text({"yes"});
  asr::StreamingRecognitionConfig c = streaming_config();
  c.mutable_config()->mutable_endpointing_config()->set_stop_history(300);
  c.mutable_config()->mutable_endpointing_config()->set_stop_history_eou(200);
  const auto r = run_asr(channel(m), tone_stream(c));
  ASSERT_TRUE(r.status.ok());
  // Interims at 0.6..1.6 s (tone to 1.5 s, then 100 ms of silence), the EOU's at 1.7 s
  // (200 ms), the final at 1.8 s (300 ms).
  ASSERT_EQ(r.responses.size(), 13u);
  EXPECT_FLOAT_EQ(r.responses[10].results(0).stability(), 0.1f);
  EXPECT_FLOAT_EQ(r.responses[11].results(0).stability(), 1.0f);
  EXPECT_FALSE(r.responses[11].results(0).is_final());
  EXPECT_NEAR(r.responses[11].results(0).audio_processed(), 1.7, 1e-4);
  EXPECT_TRUE(r.responses[12].results(0).is_final());
  EXPECT_NEAR(r.responses[12].results(0).audio_processed(), 1.8, 1e-4);
  EXPECT_EQ(r.responses[12].results(0).alternatives(0).transcript(), "yes ");
}

TEST(MockRivaAsr, G711InputIsDecoded) {
  for (const auto enc : {nvidia::riva::MULAW, nvidia::riva::ALAW}) {
    MockRiva m;
    m.script_text({"telephone"});
    asr::StreamingRecognitionConfig c = streaming_config(8000);
    c.mutable_config()->set_encoding(enc);
    c.set_interim_results(false);
    std::vector<asr::StreamingRecognizeRequest> reqs{config_request(c)};
    std::string g711;
    for (const auto s : signal(8000, 0.5, true))
      g711 += static_cast<char>(enc == nvidia::riva::MULAW ? MockRiva::mulaw_encode(s)
                                                           : MockRiva::alaw_encode(s));
    g711 +=
        std::string(8000, static_cast<char>(enc == nvidia::riva::MULAW ? MockRiva::mulaw_encode(0)
                                                                       : MockRiva::alaw_encode(0)));
    for (const auto& ch : chunks(g711, 800)) reqs.push_back(audio_request(ch));
    const auto r = run_asr(channel(m), reqs);
    ASSERT_TRUE(r.status.ok()) << nvidia::riva::AudioEncoding_Name(enc);
    ASSERT_EQ(r.responses.size(), 1u);
    EXPECT_EQ(r.responses[0].results(0).alternatives(0).transcript(), "telephone ");
    EXPECT_NEAR(r.responses[0].results(0).audio_processed(), 1.3, 1e-4);  // 0.5 + 0.8
  }
  EXPECT_EQ(MockRiva::mulaw_decode(MockRiva::mulaw_encode(1000)), 988);
  EXPECT_EQ(MockRiva::alaw_decode(MockRiva::alaw_encode(-1000)), -1008);
}

TEST(MockRivaAsr, FirstMessageMustBeTheConfig) {
  MockRiva m;
  const auto r = run_asr(channel(m), {audio_request(pcm(16000, 0.1, true))});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(), MockRiva::kNoConfigMessage);
  auto reqs = tone_stream(streaming_config());
  reqs.insert(reqs.begin() + 2, config_request(streaming_config()));
  const auto late = run_asr(channel(m), reqs);
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(late.status.error_message(), MockRiva::kLateConfigMessage);
  ASSERT_TRUE(m.wait_asr_done(2, kWait));
  EXPECT_TRUE(m.asr_stream(0).first.has_audio_content());
}

TEST(MockRivaAsr, UndeployedLanguageRateOrModelIsRivasError) {
  MockRiva m;
  asr::StreamingRecognitionConfig c = streaming_config();
  c.mutable_config()->set_language_code("ru-RU");
  auto r = run_asr(channel(m), tone_stream(c));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(),
            "Error: Unavailable model requested given these parameters: language_code=ru; "
            "sample_rate=16000; type=online; ");
  EXPECT_TRUE(r.responses.empty());
  c = streaming_config();
  c.mutable_config()->set_sample_rate_hertz(0);
  r = run_asr(channel(m), {config_request(c)});
  EXPECT_EQ(r.status.error_message(),
            "Error: Unavailable model requested given these parameters: language_code=en; "
            "sample_rate=0; type=online; ");
  c = streaming_config();
  c.mutable_config()->set_model("parakeet-1.1b-en-US-asr-streaming");
  r = run_asr(channel(m), {config_request(c)});
  EXPECT_EQ(r.status.error_message(),
            MockRiva::unavailable_model("en-US", 16000, "parakeet-1.1b-en-US-asr-streaming"));
  c.mutable_config()->set_model("conformer-en-US-asr-streaming");
  r = run_asr(channel(m), {config_request(c)});
  EXPECT_TRUE(r.status.ok());
  c.mutable_config()->set_encoding(nvidia::riva::OGGOPUS);
  r = run_asr(channel(m), {config_request(c)});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(MockRivaAsr, WavHeaderMustMatchTheConfig) {
  auto wav = [](std::uint32_t rate, const std::string& data) {
    auto u32 = [](std::uint32_t v) {
      std::string s;
      for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
      return s;
    };
    auto u16 = [](std::uint16_t v) {
      return std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)};
    };
    return "RIFF" + u32(36 + static_cast<std::uint32_t>(data.size())) + "WAVE" + "fmt " + u32(16) +
           u16(1) + u16(1) + u32(rate) + u32(rate * 2) + u16(2) + u16(16) + "data" +
           u32(static_cast<std::uint32_t>(data.size())) + data;
  };
  MockRiva m;
  m.script_text({"file"});
  asr::StreamingRecognitionConfig c = streaming_config();
  c.set_interim_results(false);
  const std::string file = wav(16000, pcm(16000, 0.3, true) + pcm(16000, 1.0, false));
  std::vector<asr::StreamingRecognizeRequest> reqs{config_request(c)};
  for (const auto& ch : chunks(file, 3200)) reqs.push_back(audio_request(ch));
  auto r = run_asr(channel(m), reqs);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0].results(0).alternatives(0).transcript(), "file ");
  const std::string other = wav(8000, pcm(8000, 0.3, true));
  r = run_asr(channel(m), {config_request(c), audio_request(other)});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(), MockRiva::kHeaderMismatchMessage);
}

TEST(MockRivaAsr, ScriptedFailuresAndClientCancel) {
  MockRiva m;
  MockRiva::AsrScript s;
  s.fail_after_audio = 7;
  s.fail_code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  s.fail_message = "exceeded rate limit";
  m.script_asr(s);
  MockRiva::AsrScript start;
  start.fail_at_start = true;
  m.script_asr(start);
  auto r = run_asr(channel(m), tone_stream(streaming_config()));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(r.status.error_message(), "exceeded rate limit");
  EXPECT_EQ(r.responses.size(), 2u);  // interims of messages 6 and 7
  r = run_asr(channel(m), tone_stream(streaming_config()));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(r.responses.empty());

  auto stub = asr::RivaSpeechRecognition::NewStub(channel(m));
  grpc::ClientContext ctx;
  auto rw = stub->StreamingRecognize(&ctx);
  ASSERT_TRUE(rw->Write(config_request(streaming_config())));
  ASSERT_TRUE(rw->Write(audio_request(pcm(16000, 0.1, true))));
  ASSERT_TRUE(m.wait_asr_responses(2, 1, kWait));
  ctx.TryCancel();
  (void)rw->Finish();
  ASSERT_TRUE(m.wait_asr_done(3, kWait));
  EXPECT_TRUE(m.asr_stream(2).cancelled);
  EXPECT_FALSE(m.asr_stream(2).half_closed);
}

// ---- NVCF, TLS ----

TEST(MockRivaNvcf, MetadataIsCheckedAsTheGatewayDoes) {
  MockRiva::Options o;
  o.api_key = "nvapi-test";
  o.asr_function_id = "asr-fid";
  o.tts_function_id = "tts-fid";
  MockRiva m(o);
  const std::vector<asr::StreamingRecognizeRequest> reqs{config_request(streaming_config())};
  auto r = run_asr(channel(m), reqs);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(r.status.error_message(), MockRiva::kNoAuthMessage);
  r = run_asr(channel(m), reqs, {{"authorization", "nvapi-test"}, {"function-id", "asr-fid"}});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  r = run_asr(channel(m), reqs, {{"authorization", "Bearer nvapi-test"}});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(), MockRiva::kNoFunctionMessage);
  r = run_asr(channel(m), reqs, {{"authorization", "Bearer wrong"}, {"function-id", "asr-fid"}});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(r.status.error_message(), MockRiva::kBadKeyMessage);
  r = run_asr(channel(m), reqs,
              {{"authorization", "Bearer nvapi-test"}, {"function-id", "tts-fid"}});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
  r = run_asr(channel(m), reqs,
              {{"authorization", "Bearer nvapi-test"}, {"function-id", "asr-fid"}});
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  const auto t = run_tts(channel(m), {tts_request("hi")},
                         {{"authorization", "Bearer nvapi-test"}, {"function-id", "tts-fid"}});
  EXPECT_TRUE(t.status.ok()) << t.status.error_message();
  const auto bad = run_tts(channel(m), {tts_request("hi")},
                           {{"authorization", "Bearer nvapi-test"}, {"function-id", "asr-fid"}});
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(m.wait_asr_done(6, kWait));
  const auto s = m.asr_stream(5);
  EXPECT_EQ(s.metadata.find("authorization")->second, "Bearer nvapi-test");
  EXPECT_EQ(s.metadata.find("function-id")->second, "asr-fid");
  EXPECT_FALSE(m.asr_stream(0).got_first);  // refused before reading
}

TEST(MockRivaNvcf, TlsWithTheMocksCa) {
  MockRiva::Options o;
  o.tls = true;
  MockRiva m(o);
  std::ifstream f(m.ca_file());
  std::stringstream ss;
  ss << f.rdbuf();
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = ss.str();
  const auto ch = grpc::CreateChannel(m.address(), grpc::SslCredentials(so));
  const auto t = run_tts(ch, {tts_request("secure")});
  ASSERT_TRUE(t.status.ok()) << t.status.error_message();
  EXPECT_EQ(joined_audio(t).size(), 6u * 60 * 16 * 2);
  const auto r = run_asr(ch, tone_stream(streaming_config()));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.responses.size(), 18u);
}

// ---- TTS ----

TEST(MockRivaTts, AudioIsSixtyMsPerCharacterInChunks) {
  MockRiva m;
  const auto req = tts_request("Hello there");
  const auto r = run_tts(channel(m), {req});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  const std::string audio = joined_audio(r);
  EXPECT_EQ(audio.size(), 11u * 60 * 16000 / 1000 * 2);  // 21120 bytes
  EXPECT_EQ(audio, MockRiva::tts_audio("Hello there", 16000, nvidia::riva::LINEAR_PCM));
  ASSERT_EQ(r.responses.size(), 7u);  // 6 x 3200 + 1920
  EXPECT_EQ(r.responses[6].audio().size(), 1920u);
  ASSERT_TRUE(m.wait_tts_done(1, kWait));
  const auto s = m.tts_stream(0);
  ASSERT_EQ(s.requests.size(), 1u);
  EXPECT_EQ(s.requests[0].raw, req.SerializeAsString());
  EXPECT_EQ(s.requests[0].request.voice_name(), "English-US.Female-1");
  EXPECT_EQ(s.requests[0].audio_bytes, 21120u);
  EXPECT_TRUE(s.requests[0].completed);
  EXPECT_EQ(s.audio_bytes_sent, 21120u);
  EXPECT_EQ(s.responses, 7u);
  EXPECT_TRUE(s.half_closed);
  EXPECT_TRUE(s.completed);
  EXPECT_FALSE(s.cancelled);
  EXPECT_TRUE(s.status.ok());
  EXPECT_EQ(MockRiva::characters("né"), 2u);
}

TEST(MockRivaTts, SeveralRequestsOnOneStreamDefaultVoiceAndG711) {
  MockRiva m;
  MockRiva::TtsScript s;
  s.chunk_bytes = 1000;
  m.script_tts(s);
  auto a = tts_request("One.", 8000, "");
  a.set_encoding(nvidia::riva::MULAW);
  a.mutable_id()->set_value("a");
  auto b = tts_request("Two words.", 22050, "English-US.Male-1");
  const auto r = run_tts(channel(m), {a, b});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  const std::string audio = joined_audio(r);
  const std::string ua = MockRiva::tts_audio("One.", 8000, nvidia::riva::MULAW);
  const std::string ub = MockRiva::tts_audio("Two words.", 22050, nvidia::riva::LINEAR_PCM);
  EXPECT_EQ(ua.size(), 4u * 480);
  EXPECT_EQ(ub.size(), 10u * 1323 * 2);
  EXPECT_EQ(audio, ua + ub);
  ASSERT_EQ(r.responses.size(), 2u + 27u);  // 1920 -> 2 chunks, 26460 -> 27 chunks
  EXPECT_EQ(r.responses[0].id().value(), "a");
  EXPECT_FALSE(r.responses[2].has_id());
  ASSERT_TRUE(m.wait_tts_done(1, kWait));
  const auto st = m.tts_stream(0);
  ASSERT_EQ(st.requests.size(), 2u);
  EXPECT_EQ(st.requests[0].audio_bytes, ua.size());
  EXPECT_EQ(st.requests[1].audio_bytes, ub.size());
}

TEST(MockRivaTts, RivasErrorsForVoicesAndTheMocksForTheRest) {
  MockRiva m;
  auto expect = [&](const tts::SynthesizeSpeechRequest& req, const std::string& message) {
    const auto r = run_tts(channel(m), {req});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << message;
    EXPECT_EQ(r.status.error_message(), message);
    EXPECT_TRUE(r.responses.empty());
  };
  expect(tts_request("hi", 16000, "foo"),
         "Model is not available on server: Voice foo for language en-US not found. Please "
         "specify the voice name in your SynthesizeSpeechRequest.");
  auto ru = tts_request("hi", 16000, "");
  ru.set_language_code("ru-RU");
  expect(ru, MockRiva::voice_not_found("", "ru-RU"));
  EXPECT_NE(MockRiva::voice_not_found("", "ru-RU")
                .find("Model is not available on server: Voice  for language ru-RU not found."),
            std::string::npos);
  expect(tts_request("hi", 16000, "English-US.Female-9"), MockRiva::kSubvoiceMessage);
  expect(tts_request("", 16000), "Error: text is empty");
  auto opus = tts_request("hi");
  opus.set_encoding(nvidia::riva::OGGOPUS);
  expect(opus, "Error: unsupported encoding OGGOPUS");
  expect(tts_request("hi", 0), "Error: sample_rate_hz must be greater than 0");
}

TEST(MockRivaTts, ClientCancellingMidAudioIsRecorded) {
  MockRiva m;
  MockRiva::TtsScript s;
  s.chunk_bytes = 320;
  s.chunk_delay_ms = 20;
  m.script_tts(s);
  auto stub = tts::RivaSpeechSynthesis::NewStub(channel(m));
  grpc::ClientContext ctx;
  auto rw = stub->SynthesizeOnline(&ctx);
  ASSERT_TRUE(rw->Write(tts_request("A long sentence that takes a while to say.")));
  rw->WritesDone();
  tts::SynthesizeSpeechResponse resp;
  ASSERT_TRUE(rw->Read(&resp));
  ASSERT_TRUE(rw->Read(&resp));
  ctx.TryCancel();
  EXPECT_EQ(rw->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(m.wait_tts_done(1, kWait));
  const auto st = m.tts_stream(0);
  EXPECT_TRUE(st.cancelled);
  EXPECT_FALSE(st.completed);
  EXPECT_GE(st.audio_bytes_sent, 640u);
  EXPECT_LT(st.audio_bytes_sent, 42u * 60 * 16 * 2);
  EXPECT_FALSE(st.requests[0].completed);
}

TEST(MockRivaTts, ScriptedFailures) {
  MockRiva m;
  MockRiva::TtsScript start;
  start.fail_at_start = true;
  start.fail_code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  start.fail_message = "exceeded rate limit";
  m.script_tts(start);
  MockRiva::TtsScript mid;
  mid.fail_after_bytes = 1000;
  mid.chunk_bytes = 640;
  m.script_tts(mid);
  auto r = run_tts(channel(m), {tts_request("hello")});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(r.status.error_message(), "exceeded rate limit");
  r = run_tts(channel(m), {tts_request("hello")});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(joined_audio(r).size(), 1000u);
  ASSERT_EQ(r.responses.size(), 2u);  // 640 + 360
  r = run_tts(channel(m), {tts_request("hello")});
  EXPECT_TRUE(r.status.ok());
  ASSERT_TRUE(m.wait_tts_done(3, kWait));
  EXPECT_EQ(m.tts_stream(1).audio_bytes_sent, 1000u);
  EXPECT_TRUE(m.tts_streams()[2].completed);
}

}  // namespace
