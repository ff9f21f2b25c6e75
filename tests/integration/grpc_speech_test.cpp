// Speech servers that speak their own gRPC service, through real calls: a voxbridge server with
// a pipeline agent that hears with a Vosk server ([vosk-NAME]) or an NVIDIA Riva server
// ([riva-NAME], which also speaks), the replies from the built-in receptionist rules, a
// simulated Asterisk placing AudioSocket calls, and the mocks of those services
// (tests/support/mock_vosk.hpp, mock_riva.hpp, written from the vendors' references) recording
// every message. The first message of each stream is compared byte for byte with the encoding
// of the vendors' published field numbers (tests/unit/vendor/vendor_proto_test.cpp derives the
// same bytes by hand).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "support/mock_riva.hpp"
#include "support/mock_vosk.hpp"
#include "support/speech_calls.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/riva/backend.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using testing::MockRiva;
using testing::MockVosk;

constexpr const char* kAgent =
    "[agent-bot]\ntype = pipeline\nllm = builtin\nrules = receptionist\ngreeting = none\n"
    "asr_encoding = mulaw\nlanguage = en-US\nphrase_hints = sales, support\ntts_rate = 8000\n";

config::Config config_of(const std::string& sections, const std::string& pick) {
  config::Config c = config::parse_config(
      "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n" + std::string(kAgent) + pick + sections,
      "grpc_speech_test.conf");
  c.general.http_listen = "127.0.0.1:0";
  c.general.log_level = "warning";
  return c;
}

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

/// 16-bit little-endian PCM bytes as samples.
std::vector<std::int16_t> samples_of(const std::string& pcm) {
  std::vector<std::int16_t> out(pcm.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::int16_t>(static_cast<unsigned char>(pcm[2 * i]) |
                                       (static_cast<unsigned char>(pcm[2 * i + 1]) << 8));
  }
  return out;
}

/// The caller's audio as the mu-law leg's bytes.
std::vector<char> ulaw_bytes(const std::vector<std::int16_t>& audio) {
  std::vector<char> out(audio.size());
  for (std::size_t i = 0; i < audio.size(); ++i) {
    out[i] = static_cast<char>(audio::linear_to_ulaw(audio[i]));
  }
  return out;
}

TEST(Vosk, TheCallersWordsGoAsPcmAndVosksEndpointEndsTheTurn) {
  MockVosk mock;
  mock.script_text("I would like to talk to sales");
  testing::RunningServer s(
      config_of("[vosk-v]\naddress = " + mock.address() + "\n", "asr = v\ntts = builtin\n"));
  auto p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.2, 4.5}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = testing::events_of(s, p);
  EXPECT_TRUE(testing::has(ev, R"("type":"user","text":"I would like to talk to sales")")) << ev;
  EXPECT_TRUE(testing::has(ev, R"("type":"agent","turn":1,"text":"Connecting you to sales.")"))
      << ev;
  ASSERT_TRUE(mock.wait_done(1, 5s));
  const auto st = mock.stream(0);
  // The config, exactly: 16-bit PCM at the leg's rate, the agent's language, partial results,
  // one utterance, word times.
  EXPECT_EQ(hex(st.first_message), hex(bytes({
                                       0x0a, 20,                              // config = 1
                                       0x0a, 18,                              //   specification
                                       0x08, 0x01,                            //   LINEAR16_PCM
                                       0x10, 0xc0, 0x3e,                      //   8000 Hz
                                       0x1a, 5,    'e',  'n', '-', 'U', 'S',  //   language_code
                                       0x38, 0x01,                            //   partial_results
                                       0x40, 0x01,                            //   single_utterance
                                       0x60, 0x01,  //   enable_word_time_offsets
                                   })));
  // The audio: the leg's mu-law decoded once into PCM, a contiguous run of what the caller
  // said as the leg carried it, all of the voice, then the client's half-close.
  EXPECT_EQ(st.non_audio_messages, 0u);
  const auto pcm = samples_of(st.audio);
  EXPECT_GE(pcm.size(), 8000u * 12 / 10);
  EXPECT_TRUE(testing::is_run_of(pcm, testing::as_carried(p.audio)));
  EXPECT_TRUE(st.half_closed);
  EXPECT_TRUE(st.status.ok());
  // The turn ended at Vosk's final chunk: it came before the stream was closed.
  bool final_seen = false;
  for (const auto& resp : st.responses) {
    for (const auto& c : resp.chunks()) {
      if (c.final() && !c.alternatives().empty() &&
          c.alternatives(0).text() == "I would like to talk to sales") {
        final_seen = true;
      }
    }
  }
  EXPECT_TRUE(final_seen);
  const std::string m = testing::metrics_of(s);
  EXPECT_TRUE(testing::has(m, R"(voxbridge_vosk_events_total{recognizer="v",event="final"} 1)"))
      << m;
}

TEST(Vosk, AFailedStreamIsRetriedOnceWithTheWholeUtterance) {
  MockVosk mock;
  MockVosk::StreamScript fail;
  fail.fail_after_audio = 3;
  fail.fail_code = grpc::StatusCode::UNAVAILABLE;
  mock.script_stream(fail);
  mock.script_text("sales");  // what the failed stream had begun to hear
  mock.script_text("sales");  // and its retry
  testing::RunningServer s(
      config_of("[vosk-v]\naddress = " + mock.address() + "\n", "asr = v\ntts = builtin\n"));
  auto p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.2, 4.5}}));
  ASSERT_TRUE(sim::place_call(p).connected);
  const std::string ev = testing::events_of(s, p);
  EXPECT_EQ(testing::count(ev, R"("type":"user","text":"sales")"), 1u) << ev;
  EXPECT_TRUE(testing::has(ev, R"("action":"transfer","target":"100")")) << ev;
  ASSERT_TRUE(mock.wait_done(2, 5s));
  const auto st = mock.streams();
  EXPECT_EQ(st[0].status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(st[1].status.ok());
  EXPECT_EQ(st[0].first_message, st[1].first_message);
  // The retry carries the utterance from its start: what the failed stream had is its prefix.
  ASSERT_GE(st[1].audio.size(), st[0].audio.size());
  EXPECT_EQ(st[1].audio.substr(0, st[0].audio.size()), st[0].audio);
  const std::string m = testing::metrics_of(s);
  EXPECT_TRUE(testing::has(m, R"(voxbridge_vosk_events_total{recognizer="v",event="failed"} 1)"))
      << m;
}

TEST(Vosk, AServerThatSaysTooMuchIsCutAt4KiB) {
  // A hostile or broken server's transcript is not trusted to be short: 6,000 bytes of words
  // reach the pipeline as their first 4,096.
  std::string said;
  while (said.size() < 6000) said += "sales ";
  said.pop_back();
  MockVosk mock;
  mock.script_text(said);
  testing::RunningServer s(
      config_of("[vosk-v]\naddress = " + mock.address() + "\n", "asr = v\ntts = builtin\n"));
  auto p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.2, 4.5}}));
  ASSERT_TRUE(sim::place_call(p).connected);
  const std::string ev = testing::events_of(s, p);
  const std::string key = R"("type":"user","text":")";
  const auto at = ev.find(key);
  ASSERT_NE(at, std::string::npos) << ev;
  const auto from = at + key.size();
  EXPECT_EQ(ev.substr(from, ev.find('"', from) - from), said.substr(0, 4096));
}

TEST(Riva, TheLegsMulawGoesAsItIsAndTheReplyIsSpokenAtTheAgentsRate) {
  MockRiva mock;
  mock.script_text({"I would like to talk to sales", 0.9f});
  testing::RunningServer s(
      config_of("[riva-r]\naddress = " + mock.address() + "\nvoice = English-US.Female-1\n",
                "asr = r\ntts = r\n"));
  auto p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.2, 4.5}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = testing::events_of(s, p);
  // Riva punctuates (enable_automatic_punctuation): the words as its final result has them.
  EXPECT_TRUE(testing::has(ev, R"("type":"user","text":"I would like to talk to sales.")")) << ev;
  EXPECT_TRUE(testing::has(ev, R"("type":"agent","turn":1,"text":"Connecting you to sales.")"))
      << ev;
  ASSERT_TRUE(mock.wait_asr_done(1, 5s));
  const auto a = mock.asr_stream(0);
  EXPECT_EQ(hex(a.first_message), hex(bytes({
                                      0x0a, 47,          // streaming_config = 1
                                      0x0a, 43,          //   config = 1
                                      0x08, 0x03,        //     MULAW
                                      0x10, 0xc0, 0x3e,  //     8000 Hz
                                      0x1a, 5,    'e',  'n',  '-',  'U', 'S',  //     language_code
                                      0x20, 0x01,  //     max_alternatives
                                      0x32, 21,    //     speech_contexts
                                      0x0a, 5,    's',  'a',  'l',  'e', 's',  //       phrases
                                      0x0a, 7,    's',  'u',  'p',  'p', 'o', 'r', 't',  //  phrases
                                      0x25, 0x00, 0x00, 0x20, 0x41,  //       boost 10
                                      0x38, 0x01,                    //     audio_channel_count
                                      0x40, 0x01,                    //     enable_word_time_offsets
                                      0x58, 0x01,  //     enable_automatic_punctuation
                                      0x10, 0x01,  //   interim_results
                                  })));
  // The leg's mu-law codes as the session decoded them, encoded back: the same bytes (but
  // 0x7f, mu-law's negative zero, which comes back 0xff), never resampled.
  const std::vector<char> sent(a.audio.begin(), a.audio.end());
  EXPECT_GE(sent.size(), 8000u * 12 / 10);
  EXPECT_TRUE(testing::is_run_of(sent, ulaw_bytes(testing::as_carried(p.audio))));
  EXPECT_TRUE(a.half_closed);
  // The reply: one SynthesizeOnline per sentence, the request exactly, all its audio played.
  ASSERT_TRUE(mock.wait_tts_done(1, 5s));
  const auto t = mock.tts_streams();
  ASSERT_EQ(t.size(), 1u);
  ASSERT_EQ(t[0].requests.size(), 1u);
  const auto& q = t[0].requests[0].request;
  EXPECT_EQ(q.text(), "Connecting you to sales.");
  EXPECT_EQ(q.language_code(), "en-US");
  EXPECT_EQ(q.encoding(), nvidia::riva::LINEAR_PCM);
  EXPECT_EQ(q.sample_rate_hz(), 8000);
  EXPECT_EQ(q.voice_name(), "English-US.Female-1");
  EXPECT_TRUE(t[0].half_closed);
  EXPECT_TRUE(t[0].completed);
  EXPECT_NEAR(testing::tone_ms(r), 60.0 * 24, 100.0) << "heard " << testing::tone_ms(r) << " ms";
  EXPECT_TRUE(testing::has(ev, R"(,"llm":"builtin","llm_turns":1,"tts":"r","tts_streams":1,)"
                               R"("tts_characters":24,"tts_audio_ms":1440})"))
      << ev;
  const std::string m = testing::metrics_of(s);
  EXPECT_TRUE(testing::has(m, R"(voxbridge_riva_characters_total{server="r"} 24)")) << m;
  EXPECT_TRUE(testing::has(m, R"(voxbridge_riva_events_total{server="r",event="sentence"} 1)"))
      << m;
}

TEST(Riva, NvidiasHostedServiceGetsTheKeyAndEachServicesFunctionIdOverTls) {
  MockRiva::Options o;
  o.tls = true;
  o.api_key = "nvapi-test";
  o.asr_function_id = "fn-asr";
  o.tts_function_id = "fn-tts";
  MockRiva mock(o);
  mock.script_text({"sales", 1.0f});
  ::setenv("VB_TEST_RIVA_KEY", "nvapi-test", 1);
  testing::RunningServer s(config_of("[riva-r]\naddress = " + mock.address() +
                                         "\ntls = yes\nca_file = " + mock.ca_file() +
                                         "\napi_key = ${VB_TEST_RIVA_KEY}\n"
                                         "asr_function_id = fn-asr\ntts_function_id = fn-tts\n",
                                     "asr = r\ntts = r\n"));
  auto p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.0, 4.0}}));
  ASSERT_TRUE(sim::place_call(p).connected);
  const std::string ev = testing::events_of(s, p);
  EXPECT_TRUE(testing::has(ev, R"("action":"transfer","target":"100")")) << ev;
  ASSERT_TRUE(mock.wait_tts_done(1, 5s));
  const auto a = mock.asr_stream(0);
  auto one = [](const std::multimap<std::string, std::string>& m, const std::string& k) {
    const auto [b, e] = m.equal_range(k);
    return std::distance(b, e) == 1 ? b->second
                                    : std::string("(") + std::to_string(std::distance(b, e)) + ")";
  };
  EXPECT_EQ(one(a.metadata, "authorization"), "Bearer nvapi-test");
  EXPECT_EQ(one(a.metadata, "function-id"), "fn-asr");
  EXPECT_TRUE(a.status.ok()) << a.status.error_message();
  const auto t = mock.tts_stream(0);
  EXPECT_EQ(one(t.metadata, "authorization"), "Bearer nvapi-test");
  EXPECT_EQ(one(t.metadata, "function-id"), "fn-tts");
  EXPECT_TRUE(t.completed);
}

TEST(Riva, TheCallerTalkingOverTheReplyCancelsTheSentenceUnderWay) {
  MockRiva mock;
  mock.script_text({"I have a question", 1.0f});
  mock.script_text({"sales please", 1.0f});
  // A slow voice: each sentence comes at real time (200 ms of audio every 200 ms), so the
  // reprompt is still being sent when the caller talks over it.
  MockRiva::TtsScript slow;
  slow.chunk_bytes = 3200;
  slow.chunk_delay_ms = 200;
  for (int i = 0; i < 3; ++i) mock.script_tts(slow);
  testing::RunningServer s(
      config_of("[riva-r]\naddress = " + mock.address() + "\n", "asr = r\ntts = r\n"));
  sim::CallPlan p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.0, 3.0}}));
  testing::append(p.audio, testing::voice(8000, 1.0, 24000));  // louder than the reply's echo
  testing::append(p.audio, testing::silence(8000, 6.0));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = testing::events_of(s, p);
  EXPECT_TRUE(testing::has(ev, R"("type":"barge_in")")) << ev;
  EXPECT_TRUE(testing::has(ev, R"("type":"user","text":"Sales please.")")) << ev;
  ASSERT_TRUE(mock.wait_tts_streams(2, 5s));
  const auto t = mock.tts_streams();
  const auto cut = std::find_if(t.begin(), t.end(), [](const auto& x) { return x.cancelled; });
  ASSERT_NE(cut, t.end()) << "no sentence was cancelled mid-answer";
  EXPECT_FALSE(cut->completed);
  ASSERT_EQ(cut->requests.size(), 1u);
  EXPECT_LT(
      cut->audio_bytes_sent,
      MockRiva::tts_audio(cut->requests[0].request.text(), 8000, nvidia::riva::LINEAR_PCM).size());
  ASSERT_TRUE(mock.wait_tts_done(t.size(), 5s));
  const auto last = mock.tts_streams().back();
  ASSERT_EQ(last.requests.size(), 1u);
  EXPECT_EQ(last.requests[0].request.text(), "Connecting you to sales.");
  EXPECT_TRUE(last.completed);
}

TEST(Riva, AVoiceRivaDoesNotHaveIsRetriedOnceThenTheFallbackPlays) {
  MockRiva mock;
  mock.script_text({"sales", 1.0f});
  testing::RunningServer s(
      config_of("[riva-r]\naddress = " + mock.address() + "\nvoice = Klingon.Female-1\n",
                "asr = r\ntts = r\n"));
  auto p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.0, 4.0}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);  // the fallback prompt, then the server's hangup
  ASSERT_TRUE(mock.wait_tts_done(2, 5s));
  const auto t = mock.tts_streams();
  ASSERT_EQ(t.size(), 2u);  // the reply, its one retry
  for (const auto& x : t) {
    EXPECT_EQ(x.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(x.status.error_message(), MockRiva::voice_not_found("Klingon.Female-1", "en-US"));
  }
  const std::string m = testing::metrics_of(s);
  EXPECT_TRUE(testing::has(m, R"(voxbridge_riva_events_total{server="r",event="failed"} 2)")) << m;
}

TEST(Riva, ServedOverGrpcByTheProviderHost) {
  MockRiva mock;
  mock.script_text({"I would like to talk to sales", 1.0f});
  riva::RivaOptions ro;
  ro.name = "remote-riva";
  ro.address = mock.address();
  ro.voice = "English-US.Male-1";
  auto backend = std::make_shared<riva::RivaBackend>(ro);
  provider_host::BuiltinOptions bo;
  bo.listen = "127.0.0.1:0";
  bo.asr = bo.llm = bo.tts = false;
  bo.asr_backend = bo.tts_backend = backend;
  bo.asr_target.name = bo.tts_target.name = "remote";
  bo.asr_target.backend = bo.tts_target.backend = "riva:remote-riva";
  provider_host::BuiltinProviders host(std::move(bo));
  testing::RunningServer s(config_of("[provider-remote]\naddress = " + host.address() + "\n",
                                     "asr = remote\ntts = remote\n"));
  auto p = testing::ulaw_call(s.port, testing::caller(0.5, {{1.2, 4.5}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = testing::events_of(s, p);
  EXPECT_TRUE(testing::has(ev, R"("type":"user","text":"I would like to talk to sales.")")) << ev;
  ASSERT_TRUE(mock.wait_tts_done(1, 5s));
  const auto t = mock.tts_streams();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].requests[0].request.text(), "Connecting you to sales.");
  EXPECT_EQ(t[0].requests[0].request.voice_name(), "English-US.Male-1");
  EXPECT_EQ(t[0].requests[0].request.sample_rate_hz(), 8000);
  // The contract carried the leg's mu-law to the host, and the host passed it on as it was.
  EXPECT_EQ(mock.asr_stream(0).config.config().encoding(), nvidia::riva::MULAW);
  EXPECT_NEAR(testing::tone_ms(r), 60.0 * 24, 100.0);
  host.shutdown();
}

}  // namespace
}  // namespace voxbridge
