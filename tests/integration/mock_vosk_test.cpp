// The vosk-server mock against a plain gRPC client (the generated stub, sync API): the reference
// client's config (grpc/stt_client.py: partial_results, LINEAR16_PCM, 8000 Hz, word offsets,
// max_alternatives 5) and the exact responses stt_server.py gives for a tone between silences
// in 4000-byte chunks (partials, the final at Kaldi's 0.5 s endpoint, the last final after the
// half-close), the MBR and n-best shapes, what the server does with malformed input (no
// config, a rate under the model's, a rate that hangs Kaldi, an empty message, no audio at
// all), scripted failures and delays, the thread limit with and without a queue, TLS with the
// mock's CA, and what the mock records.
#include "support/mock_vosk.hpp"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "vendor/vosk/stt_service.grpc.pb.h"

namespace {

namespace v = vosk::stt::v1;
using voxbridge::testing::MockVosk;
using namespace std::chrono_literals;

constexpr auto kWait = 10s;

/// `seconds` of a 440 Hz tone (amplitude 8000) or of silence, as 16-bit LE PCM.
std::string pcm(int rate, double seconds, bool tone) {
  const auto n = static_cast<std::size_t>(std::lround(rate * seconds));
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    const double x =
        tone ? 8000 * std::sin(2 * std::numbers::pi * 440 * static_cast<double>(i) / rate) : 0.0;
    const auto s = static_cast<std::uint16_t>(static_cast<std::int16_t>(std::lround(x)));
    out += static_cast<char>(s & 0xFF);
    out += static_cast<char>(s >> 8);
  }
  return out;
}

std::vector<std::string> chunks(const std::string& audio, std::size_t size) {
  std::vector<std::string> c;
  for (std::size_t off = 0; off < audio.size(); off += size) c.push_back(audio.substr(off, size));
  return c;
}

/// stt_client.py's spec (reference).
v::RecognitionSpec reference_spec() {
  v::RecognitionSpec s;
  s.set_partial_results(true);
  s.set_audio_encoding(v::RecognitionSpec::LINEAR16_PCM);
  s.set_sample_rate_hertz(8000);
  s.set_enable_word_time_offsets(true);
  s.set_max_alternatives(5);
  return s;
}

v::StreamingRecognitionRequest config_request(const v::RecognitionSpec& spec) {
  v::StreamingRecognitionRequest r;
  *r.mutable_config()->mutable_specification() = spec;
  return r;
}

v::StreamingRecognitionRequest audio_request(const std::string& audio) {
  v::StreamingRecognitionRequest r;
  r.set_audio_content(audio);
  return r;
}

struct Result {
  std::vector<v::StreamingRecognitionResponse> responses;
  grpc::Status status;
};

std::shared_ptr<grpc::Channel> channel(const MockVosk& m) {
  return grpc::CreateChannel(m.address(), grpc::InsecureChannelCredentials());
}

/// One RPC: every request, the half-close, every response, the status.
Result run(const std::shared_ptr<grpc::Channel>& ch,
           const std::vector<v::StreamingRecognitionRequest>& requests, bool half_close = true) {
  auto stub = v::SttService::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-test", "vosk");
  ctx.set_deadline(std::chrono::system_clock::now() + kWait);
  auto rw = stub->StreamingRecognize(&ctx);
  for (const auto& r : requests)
    if (!rw->Write(r)) break;  // the server may have ended the RPC already
  if (half_close) rw->WritesDone();
  Result out;
  v::StreamingRecognitionResponse resp;
  while (rw->Read(&resp)) out.responses.push_back(resp);
  out.status = rw->Finish();
  return out;
}

/// 0.5 s silence, 1 s tone, 1 s silence at 8 kHz in stt_client.py's 4000-byte chunks.
std::vector<v::StreamingRecognitionRequest> tone_stream(const v::RecognitionSpec& spec) {
  std::vector<v::StreamingRecognitionRequest> reqs{config_request(spec)};
  const std::string audio = pcm(8000, 0.5, false) + pcm(8000, 1.0, true) + pcm(8000, 1.0, false);
  for (const auto& c : chunks(audio, 4000)) reqs.push_back(audio_request(c));
  return reqs;
}

void expect_partial(const v::StreamingRecognitionResponse& r, const std::string& text) {
  ASSERT_EQ(r.chunks_size(), 1);
  EXPECT_FALSE(r.chunks(0).final());
  EXPECT_FALSE(r.chunks(0).end_of_utterance());
  ASSERT_EQ(r.chunks(0).alternatives_size(), 1);
  EXPECT_EQ(r.chunks(0).alternatives(0).text(), text);
  EXPECT_EQ(r.chunks(0).alternatives(0).words_size(), 0);
  EXPECT_EQ(r.chunks(0).alternatives(0).confidence(), 0.0f);
}

void expect_duration(const google::protobuf::Duration& d, std::int64_t s, std::int32_t ms) {
  EXPECT_EQ(d.seconds(), s);
  EXPECT_EQ(d.nanos(), ms * 1000000);
}

void expect_partials_of_tone_stream(const Result& r) {
  // Per 250 ms message: "", "", then one word per 300 ms of speech (rounded up), the text
  // until the endpoint; after it a new utterance without speech.
  ASSERT_EQ(r.responses.size(), 11u);
  expect_partial(r.responses[0], "");
  expect_partial(r.responses[1], "");
  expect_partial(r.responses[2], "hello");
  for (int i : {3, 4, 5, 6})
    expect_partial(r.responses[static_cast<std::size_t>(i)], "hello world");
  expect_partial(r.responses[8], "");
  expect_partial(r.responses[9], "");
}

TEST(MockVosk, MbrFinalAtKaldiEndpointWithWordsThenLastFinal) {
  MockVosk m;
  m.script_text("hello world", 0.9f);
  v::RecognitionSpec spec = reference_spec();
  spec.set_max_alternatives(0);
  const auto reqs = tone_stream(spec);
  const Result r = run(channel(m), reqs);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  expect_partials_of_tone_stream(r);
  // The tone ended at 1.5 s; the message ending at 2.0 s has 0.5 s of trailing silence.
  const auto& fin = r.responses[7];
  ASSERT_EQ(fin.chunks_size(), 1);
  EXPECT_TRUE(fin.chunks(0).final());
  EXPECT_FALSE(fin.chunks(0).end_of_utterance());
  ASSERT_EQ(fin.chunks(0).alternatives_size(), 1);
  const auto& alt = fin.chunks(0).alternatives(0);
  EXPECT_EQ(alt.text(), "hello world");
  EXPECT_FLOAT_EQ(alt.confidence(), 0.9f);  // the mean of the words' conf
  ASSERT_EQ(alt.words_size(), 2);
  EXPECT_EQ(alt.words(0).word(), "hello");
  expect_duration(alt.words(0).start_time(), 0, 510);  // 0.5 s on the 0.03 s frame: 0.51
  expect_duration(alt.words(0).end_time(), 0, 990);
  EXPECT_FLOAT_EQ(alt.words(0).confidence(), 0.9f);
  EXPECT_EQ(alt.words(1).word(), "world");
  expect_duration(alt.words(1).start_time(), 0, 990);
  expect_duration(alt.words(1).end_time(), 1, 500);
  // After the half-close: FinalResult of an utterance without speech.
  const auto& last = r.responses[10];
  EXPECT_TRUE(last.chunks(0).final());
  EXPECT_EQ(last.chunks(0).alternatives(0).text(), "");
  EXPECT_FLOAT_EQ(last.chunks(0).alternatives(0).confidence(), 1.0f);
  EXPECT_EQ(last.chunks(0).alternatives(0).words_size(), 0);

  ASSERT_TRUE(m.wait_done(1, kWait));
  const auto s = m.stream(0);
  EXPECT_TRUE(s.got_first);
  EXPECT_EQ(s.first_message, reqs[0].SerializeAsString());
  EXPECT_EQ(s.spec.sample_rate_hertz(), 8000);
  EXPECT_TRUE(s.spec.partial_results());
  EXPECT_TRUE(s.spec.enable_word_time_offsets());
  EXPECT_EQ(s.audio_messages, 10u);
  EXPECT_EQ(s.non_audio_messages, 0u);
  EXPECT_EQ(s.audio_bytes, 40000u);
  std::string audio;
  for (std::size_t i = 1; i < reqs.size(); ++i) audio += reqs[i].audio_content();
  EXPECT_EQ(s.audio, audio);
  EXPECT_EQ(s.responses.size(), 11u);
  EXPECT_EQ(s.utterances, 1u);
  EXPECT_TRUE(s.half_closed);
  EXPECT_FALSE(s.cancelled);
  EXPECT_TRUE(s.status.ok());
  ASSERT_EQ(s.metadata.count("x-test"), 1u);
  EXPECT_EQ(s.metadata.find("x-test")->second, "vosk");
  EXPECT_EQ(m.scripted_texts_left(), 0u);
}

TEST(MockVosk, ReferenceClientConfigGetsNbestShape) {
  MockVosk m;
  m.script_text("hello world");
  const Result r = run(channel(m), tone_stream(reference_spec()));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  expect_partials_of_tone_stream(r);
  // NbestResult: the path likelihood as confidence, words without "conf" -> 1.0.
  const auto& alt = r.responses[7].chunks(0).alternatives(0);
  EXPECT_TRUE(r.responses[7].chunks(0).final());
  EXPECT_EQ(alt.text(), "hello world");
  EXPECT_FLOAT_EQ(alt.confidence(), 200.0f);
  ASSERT_EQ(alt.words_size(), 2);
  EXPECT_FLOAT_EQ(alt.words(0).confidence(), 1.0f);
  expect_duration(alt.words(1).end_time(), 1, 500);
  // StoreEmptyReturn's {"alternatives": [{"text": "", "confidence": 1.0}]}.
  const auto& last = r.responses[10].chunks(0).alternatives(0);
  EXPECT_EQ(last.text(), "");
  EXPECT_FLOAT_EQ(last.confidence(), 1.0f);
}

TEST(MockVosk, WithoutPartialResultsOnlyFinalsAndNoWordsUnlessAsked) {
  MockVosk m;
  m.script_text("good morning", 0.5f);
  v::RecognitionSpec spec;
  spec.set_sample_rate_hertz(8000);
  const Result r = run(channel(m), tone_stream(spec));
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.responses.size(), 2u);
  const auto& alt = r.responses[0].chunks(0).alternatives(0);
  EXPECT_EQ(alt.text(), "good morning");
  EXPECT_EQ(alt.words_size(), 0);
  EXPECT_FLOAT_EQ(alt.confidence(), 1.0f);  // no words: 1.0 (get_alternative)
  EXPECT_EQ(r.responses[1].chunks(0).alternatives(0).text(), "");
}

TEST(MockVosk, UtterancesTakeScriptedTextsInOrderThenTheDefault) {
  MockVosk m;
  m.script_text("one two");
  v::RecognitionSpec spec;
  spec.set_sample_rate_hertz(16000);
  std::vector<v::StreamingRecognitionRequest> reqs{config_request(spec)};
  const std::string audio = pcm(16000, 0.4, true) + pcm(16000, 0.6, false) + pcm(16000, 0.4, true) +
                            pcm(16000, 0.2, false);
  for (const auto& c : chunks(audio, 3200)) reqs.push_back(audio_request(c));
  const Result r = run(channel(m), reqs);
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.responses.size(), 2u);
  EXPECT_EQ(r.responses[0].chunks(0).alternatives(0).text(), "one two");
  // The second utterance has no trailing 0.5 s: FinalResult after the half-close takes it.
  EXPECT_EQ(r.responses[1].chunks(0).alternatives(0).text(), MockVosk::kDefaultText);
  EXPECT_EQ(m.stream(0).utterances, 2u);
}

TEST(MockVosk, FiveSecondsOfSilenceIsAnEndpointWithEmptyText) {
  MockVosk m;
  v::RecognitionSpec spec;
  spec.set_sample_rate_hertz(8000);
  std::vector<v::StreamingRecognitionRequest> reqs{config_request(spec)};
  for (const auto& c : chunks(pcm(8000, 5.25, false), 4000)) reqs.push_back(audio_request(c));
  const Result r = run(channel(m), reqs);
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.responses.size(), 2u);  // rule1 at 5.0 s, then the last final
  EXPECT_TRUE(r.responses[0].chunks(0).final());
  EXPECT_EQ(r.responses[0].chunks(0).alternatives(0).text(), "");
  EXPECT_EQ(m.stream(0).utterances, 0u);
}

TEST(MockVosk, RateBelowTheModelsFailsOnTheFirstAudio) {
  MockVosk::Options o;
  o.model_rate = 16000;
  MockVosk m(o);
  v::RecognitionSpec spec = reference_spec();  // 8000 Hz
  const Result r = run(channel(m), tone_stream(spec));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(r.status.error_message(), MockVosk::kWaveformError);
  EXPECT_TRUE(r.responses.empty());
}

TEST(MockVosk, AnEmptyAudioMessageIsADivisionByZero) {
  MockVosk m;
  v::RecognitionSpec spec = reference_spec();
  const Result r = run(
      channel(m), {config_request(spec), audio_request(pcm(8000, 0.25, false)), audio_request("")});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(r.status.error_message(), MockVosk::kFloatDivisionError);
  ASSERT_EQ(r.responses.size(), 1u);  // the first message's partial only
  ASSERT_TRUE(m.wait_done(1, kWait));
  EXPECT_EQ(m.stream(0).audio_messages, 2u);
}

TEST(MockVosk, NoAudioAtAllSendsTheFinalThenFails) {
  MockVosk m;
  const Result r = run(channel(m), {config_request(reference_spec())});
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_TRUE(r.responses[0].chunks(0).final());
  EXPECT_EQ(r.responses[0].chunks(0).alternatives(0).text(), "");
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(r.status.error_message(), MockVosk::kFloatDivisionError);
  // With sample_rate_hertz 0 (a missing config) the division is of ints.
  const Result z = run(channel(m), {config_request(v::RecognitionSpec{})});
  EXPECT_EQ(z.status.error_message(), MockVosk::kIntDivisionError);
}

TEST(MockVosk, NoMessageAtAllEndsTheGenerator) {
  MockVosk m;
  const Result r = run(channel(m), {});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(r.status.error_message(), MockVosk::kNoMessageError);
  ASSERT_TRUE(m.wait_done(1, kWait));
  EXPECT_FALSE(m.stream(0).got_first);
  EXPECT_TRUE(m.stream(0).half_closed);
}

TEST(MockVosk, AudioFirstIsTakenAsConfigAndRateZeroHangsUntilCancelled) {
  MockVosk m;
  auto stub = v::SttService::NewStub(channel(m));
  grpc::ClientContext ctx;
  auto rw = stub->StreamingRecognize(&ctx);
  const auto first = audio_request(pcm(8000, 0.25, true));
  ASSERT_TRUE(rw->Write(first));
  ASSERT_TRUE(rw->Write(audio_request(pcm(8000, 0.25, true))));
  ASSERT_TRUE(m.wait_stalled(0, kWait));
  ctx.TryCancel();
  v::StreamingRecognitionResponse resp;
  EXPECT_FALSE(rw->Read(&resp));
  EXPECT_EQ(rw->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(m.wait_done(1, kWait));
  const auto s = m.stream(0);
  EXPECT_EQ(s.first_message, first.SerializeAsString());
  EXPECT_TRUE(s.first.has_audio_content());
  EXPECT_EQ(s.spec.sample_rate_hertz(), 0);
  EXPECT_EQ(s.audio_messages, 1u);
  EXPECT_TRUE(s.stalled);
  EXPECT_TRUE(s.cancelled);
  EXPECT_TRUE(s.responses.empty());
}

TEST(MockVosk, ScriptedFailureAndDelayApplyToTheNextStreamOnly) {
  MockVosk m;
  MockVosk::StreamScript s;
  s.fail_after_audio = 2;
  s.fail_code = grpc::StatusCode::UNAVAILABLE;
  s.fail_message = "overloaded";
  s.response_delay_ms = 60;
  m.script_stream(s);
  const auto t0 = std::chrono::steady_clock::now();
  const Result r = run(channel(m), tone_stream(reference_spec()));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 120ms);  // two delayed responses
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(r.status.error_message(), "overloaded");
  EXPECT_EQ(r.responses.size(), 2u);
  const Result ok = run(channel(m), tone_stream(reference_spec()));
  EXPECT_TRUE(ok.status.ok());
  EXPECT_EQ(ok.responses.size(), 11u);

  MockVosk::StreamScript at_config;
  at_config.fail_after_audio = 0;
  at_config.fail_code = grpc::StatusCode::INTERNAL;
  m.script_stream(at_config);
  const Result early = run(channel(m), tone_stream(reference_spec()));
  EXPECT_EQ(early.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(early.responses.empty());
  ASSERT_TRUE(m.wait_done(3, kWait));
  EXPECT_EQ(m.stream(2).status.error_code(), grpc::StatusCode::INTERNAL);
}

TEST(MockVosk, ThreadLimitRefusesWithNoQueueAndQueuesOtherwise) {
  {
    MockVosk::Options o;
    o.threads = 1;
    o.no_queue = true;
    MockVosk m(o);
    auto stub = v::SttService::NewStub(channel(m));
    grpc::ClientContext ctx;
    auto rw = stub->StreamingRecognize(&ctx);
    ASSERT_TRUE(rw->Write(config_request(reference_spec())));
    ASSERT_TRUE(m.wait_streams(1, kWait));
    const Result r = run(channel(m), tone_stream(reference_spec()));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(r.status.error_message(), MockVosk::kConcurrencyError);
    ctx.TryCancel();
    (void)rw->Finish();
  }
  {
    MockVosk::Options o;
    o.threads = 1;
    MockVosk m(o);
    auto stub = v::SttService::NewStub(channel(m));
    grpc::ClientContext ctx1, ctx2;
    auto rw1 = stub->StreamingRecognize(&ctx1);
    ASSERT_TRUE(rw1->Write(config_request(reference_spec())));
    ASSERT_TRUE(m.wait_streams(1, kWait));
    auto rw2 = stub->StreamingRecognize(&ctx2);
    ASSERT_TRUE(rw2->Write(config_request(reference_spec())));
    ASSERT_TRUE(rw2->Write(audio_request(pcm(8000, 0.25, false))));
    rw2->WritesDone();
    ASSERT_TRUE(m.wait_streams(2, kWait));
    EXPECT_TRUE(m.stream(1).queued);
    EXPECT_EQ(m.stream(1).audio_messages, 0u);  // waiting for the thread
    ASSERT_TRUE(rw1->Write(audio_request(pcm(8000, 0.25, false))));
    rw1->WritesDone();
    v::StreamingRecognitionResponse resp;
    while (rw1->Read(&resp)) {
    }
    EXPECT_TRUE(rw1->Finish().ok());
    std::size_t n = 0;
    while (rw2->Read(&resp)) ++n;
    EXPECT_TRUE(rw2->Finish().ok());
    EXPECT_EQ(n, 2u);  // a partial and the last final
  }
}

TEST(MockVosk, KeepAudioOffCountsOnly) {
  MockVosk::Options o;
  o.keep_audio = false;
  MockVosk m(o);
  const Result r = run(channel(m), tone_stream(reference_spec()));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(m.stream(0).audio_bytes, 40000u);
  EXPECT_TRUE(m.stream(0).audio.empty());
}

TEST(MockVosk, TlsWithTheMocksCa) {
  MockVosk::Options o;
  o.tls = true;
  MockVosk m(o);
  ASSERT_FALSE(m.ca_file().empty());
  std::ifstream f(m.ca_file());
  std::stringstream ss;
  ss << f.rdbuf();
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = ss.str();
  const Result r = run(grpc::CreateChannel(m.address(), grpc::SslCredentials(so)),
                       tone_stream(reference_spec()));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.responses.size(), 11u);
}

TEST(MockVosk, VoskDurationTruncatesToTheMillisecond) {
  const auto d = MockVosk::vosk_duration(1.2345);
  EXPECT_EQ(d.seconds(), 1);
  EXPECT_EQ(d.nanos(), 234000000);
}

}  // namespace
