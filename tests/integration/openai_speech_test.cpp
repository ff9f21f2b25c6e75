// OpenAI-compatible speech servers through real calls: a voxbridge server with a pipeline agent
// that hears with the in-process transcription backend ([transcription-NAME]) and speaks with
// the speech backend ([speech-NAME]), the replies from the built-in receptionist rules, a
// simulated Asterisk placing AudioSocket calls, and the mock of OpenAI's speech API
// (tests/support/mock_openai_speech.hpp, written from OpenAI's reference) recording every
// request.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.hpp"
#include "support/mock_openai_speech.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/asr_openai/backend.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/sim/sim_call.hpp"
#include "voxbridge/tts_openai/backend.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using testing::MockOpenAiSpeech;
namespace http = boost::beast::http;

constexpr const char* kAgent =
    "[agent-bot]\ntype = pipeline\nllm = builtin\nrules = receptionist\ngreeting = none\n"
    "asr_encoding = mulaw\nlanguage = en-US\nphrase_hints = sales, support\ntts_rate = 24000\n";

/// A server whose agent `bot` hears with [transcription-w] and speaks with [speech-k], both at
/// the mock (`asr`, `tts` override which).
config::Config config_for(const MockOpenAiSpeech& m, const std::string& w_extra = "",
                          const std::string& k_extra = "",
                          const std::string& pick = "asr = w\ntts = k\n",
                          const std::string& sections = "") {
  ::setenv("VB_TEST_OPENAI_SPEECH_KEY", m.api_key().c_str(), 1);
  const std::string text =
      "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n" + std::string(kAgent) + pick +
      "[transcription-w]\nbase_url = " + m.base_url() +
      "\napi_key = ${VB_TEST_OPENAI_SPEECH_KEY}\nmodel = whisper-1\n" + w_extra +
      "[speech-k]\nbase_url = " + m.base_url() +
      "\napi_key = ${VB_TEST_OPENAI_SPEECH_KEY}\nmodel = gpt-4o-mini-tts\nvoice = coral\n" +
      k_extra + sections;
  config::Config c = config::parse_config(text, "openai_speech_test.conf");
  c.general.http_listen = "127.0.0.1:0";
  c.general.log_level = "warning";
  return c;
}

/// The caller: `lead_s` of silence, then for each utterance `voice_s` of voice and `gap_s` of
/// silence.
std::vector<std::int16_t> caller(double lead_s, std::vector<std::pair<double, double>> turns) {
  auto a = testing::silence(8000, lead_s);
  for (const auto& [voice_s, gap_s] : turns) {
    testing::append(a, testing::voice(8000, voice_s));
    testing::append(a, testing::silence(8000, gap_s));
  }
  return a;
}

sim::CallPlan plan(unsigned short port, std::vector<std::int16_t> audio) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse("ulaw");
  p.audio = std::move(audio);
  p.tail = 0ms;
  p.hangup_at_end = true;
  p.max_duration = 30s;
  p.uuid = sim::random_uuid();
  return p;
}

std::string events_of(const testing::RunningServer& s, const sim::CallPlan& p) {
  std::string body;
  for (int i = 0; i < 100 && body.find("\"ended\":true") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(30ms);
    body = testing::http_request(s.server.http_port(), http::verb::get,
                                 "/v1/calls/" + std::string(p.uuid->text().data()) + "/events")
               .second;
  }
  return body;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string metrics_of(const testing::RunningServer& s) {
  return testing::http_request(s.server.http_port(), http::verb::get, "/metrics").second;
}

/// Milliseconds of the reply audio whose 20 ms blocks carry the mock's tone (RMS over 1000).
double tone_ms(const sim::CallResult& r) {
  const int rate = r.reply_rate_hz();
  const std::size_t block = static_cast<std::size_t>(rate / 50);
  double ms = 0;
  for (std::size_t i = 0; i + block <= r.received.size(); i += block) {
    double e = 0;
    for (std::size_t k = i; k < i + block; ++k) e += double(r.received[k]) * r.received[k];
    if (std::sqrt(e / double(block)) > 1000) ms += 20;
  }
  return ms;
}

/// The caller's audio as the leg carried it: each sample through mu-law and back.
std::vector<std::int16_t> as_carried(const std::vector<std::int16_t>& audio) {
  std::vector<std::int16_t> out(audio.size());
  for (std::size_t i = 0; i < audio.size(); ++i) {
    out[i] = audio::ulaw_to_linear(audio::linear_to_ulaw(audio[i]));
  }
  return out;
}

/// True if `part` is a contiguous run of `whole`.
bool is_run_of(const std::vector<std::int16_t>& part, const std::vector<std::int16_t>& whole) {
  return !part.empty() &&
         std::search(whole.begin(), whole.end(), part.begin(), part.end()) != whole.end();
}

TEST(OpenAiSpeech, TheCallersUtteranceGoesAsOneWavAndTheReplyIsSpokenFromPcm) {
  MockOpenAiSpeech::Options mo;
  mo.tls = true;  // as the service: https://, the certificate checked against the test CA
  MockOpenAiSpeech mock(mo);
  MockOpenAiSpeech::TranscriptionScript t;
  t.text = "I would like to talk to sales";
  mock.script_transcription(t);
  testing::RunningServer s(
      config_for(mock, "ca_file = " + mock.ca_file() + "\n", "ca_file = " + mock.ca_file() + "\n"));
  auto p = plan(s.port, caller(0.5, {{1.2, 4.5}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  EXPECT_TRUE(has(ev, R"("type":"user","text":"I would like to talk to sales")")) << ev;
  EXPECT_TRUE(has(ev, R"("type":"agent","turn":1,"text":"Connecting you to sales.")")) << ev;
  // The utterance: one multipart request, the form exactly as configured.
  const auto ts = mock.transcriptions();
  ASSERT_EQ(ts.size(), 1u);
  const auto& tr = ts[0];
  EXPECT_EQ(tr.authorization, "Bearer " + mock.api_key());
  const std::map<std::string, std::string> fields = {{"model", "whisper-1"},
                                                     {"language", "en"},
                                                     {"prompt", "sales, support"},
                                                     {"response_format", "json"}};
  EXPECT_EQ(tr.fields, fields);
  EXPECT_EQ(tr.file_name, "utterance.wav");
  EXPECT_EQ(tr.file_content_type, "audio/wav");
  EXPECT_EQ(tr.status, 200);
  // The WAV: 16-bit mono at the leg's 8 kHz, the caller's own audio as the G.711 leg carried
  // it (decoded once, never resampled), from just before the voice to the end of speech.
  EXPECT_EQ(tr.wav_rate, 8000);
  EXPECT_EQ(tr.wav_channels, 1);
  EXPECT_EQ(tr.wav_bits, 16);
  EXPECT_GE(tr.samples.size(), 8000u * 12 / 10);  // all 1.2 s of the voice
  EXPECT_LE(tr.samples.size(), 8000u * 30 / 10);  // and no more than its edges
  EXPECT_TRUE(is_run_of(tr.samples, as_carried(p.audio)));
  // The reply: one request for its one sentence, the body exactly, its audio played.
  ASSERT_TRUE(mock.wait_speech_done(0, 5s));
  const auto ss = mock.speeches();
  ASSERT_EQ(ss.size(), 1u);
  EXPECT_EQ(ss[0].authorization, "Bearer " + mock.api_key());
  EXPECT_EQ(ss[0].body,
            R"({"model":"gpt-4o-mini-tts","input":"Connecting you to sales.","voice":"coral",)"
            R"("response_format":"pcm"})");
  EXPECT_TRUE(ss[0].completed);
  const double said = 60.0 * 24;  // 24 characters, 60 ms of tone each
  EXPECT_NEAR(tone_ms(r), said, 100.0) << "heard " << tone_ms(r) << " ms of tone";
  // The call's usage, counted by the pipeline in the units the services bill by: the audio
  // sent (the WAV's length), the characters sent and the audio they became.
  EXPECT_TRUE(has(ev, R"("type":"usage","asr":"w","asr_streams":1,"asr_audio_ms":)" +
                          std::to_string(tr.samples.size() / 8) +
                          R"(,"llm":"builtin","llm_turns":1,"tts":"k","tts_streams":1,)"
                          R"("tts_characters":24,"tts_audio_ms":1440})"))
      << ev;
  const std::string m = metrics_of(s);
  EXPECT_TRUE(has(m, R"(voxbridge_transcription_events_total{recognizer="w",event="request"} 1)"))
      << m;
  EXPECT_TRUE(has(m, R"(voxbridge_speech_characters_total{voice="k"} 24)")) << m;
}

TEST(OpenAiSpeech, TheCallsRequestsShareKeptAliveConnections) {
  MockOpenAiSpeech mock;
  MockOpenAiSpeech::TranscriptionScript a, b;
  a.text = "I have a question";
  b.text = "sales please";
  mock.script_transcription(a);
  mock.script_transcription(b);
  testing::RunningServer s(config_for(mock));
  // The rules do not know the first words (their reprompt plays, several sentences), the
  // second go to sales.
  auto p = plan(s.port, caller(0.5, {{1.0, 9.0}, {1.0, 4.0}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  EXPECT_TRUE(has(ev, R"("type":"user","text":"sales please")")) << ev;
  EXPECT_TRUE(has(ev, R"("action":"transfer","target":"100")")) << ev;
  const auto ts = mock.transcriptions();
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].connection, ts[1].connection);
  const auto ss = mock.speeches();
  ASSERT_GE(ss.size(), 2u);  // the reprompt's sentences, then "Connecting you to sales."
  EXPECT_EQ(ss.back().input, "Connecting you to sales.");
  for (const auto& sp : ss) {
    EXPECT_EQ(sp.connection, ss[0].connection) << sp.input;
    EXPECT_TRUE(sp.completed) << sp.input;
  }
  // One connection for the recognizer, one for the voice: no handshake per request.
  EXPECT_EQ(mock.connections(), 2u);
  const std::string m = metrics_of(s);
  EXPECT_TRUE(has(m, R"(voxbridge_transcription_events_total{recognizer="w",event="reused"} 1)"))
      << m;
  EXPECT_TRUE(has(m, R"(voxbridge_speech_events_total{voice="k",event="connection"} 1)")) << m;
}

TEST(OpenAiSpeech, TooLittleSpeechIsNeverSentAndAKnownHallucinationIsDropped) {
  MockOpenAiSpeech mock;
  MockOpenAiSpeech::TranscriptionScript t;
  t.text = "Thank you.";
  mock.script_transcription(t);
  testing::RunningServer s(
      config_for(mock, "min_speech_ms = 500\nhallucination_guard_ms = 1500\n"));
  // A 0.3 s sound: voxbridge's VAD hears an utterance, the gate finds too little speech in it.
  auto p1 = plan(s.port, caller(0.5, {{0.3, 3.0}}));
  ASSERT_TRUE(sim::place_call(p1).connected);
  const std::string ev1 = events_of(s, p1);
  EXPECT_FALSE(has(ev1, R"("type":"user")")) << ev1;
  EXPECT_EQ(mock.transcriptions().size(), 0u);
  // 1 s of voice is sent; Whisper's "Thank you." from under 1.5 s of it is dropped.
  auto p2 = plan(s.port, caller(0.5, {{1.0, 3.0}}));
  ASSERT_TRUE(sim::place_call(p2).connected);
  const std::string ev2 = events_of(s, p2);
  EXPECT_FALSE(has(ev2, R"("type":"user")")) << ev2;
  EXPECT_EQ(mock.transcriptions().size(), 1u);
  const std::string m = metrics_of(s);
  EXPECT_TRUE(has(m, R"(voxbridge_transcription_events_total{recognizer="w",event="gated"} 1)"))
      << m;
  EXPECT_TRUE(
      has(m, R"(voxbridge_transcription_events_total{recognizer="w",event="dropped_phrase"} 1)"))
      << m;
}

TEST(OpenAiSpeech, AStreamingModelsDeltasMakeTheTranscript) {
  MockOpenAiSpeech mock;
  MockOpenAiSpeech::TranscriptionScript t;
  t.text = "I would like to talk to sales";
  mock.script_transcription(t);
  testing::RunningServer s(config_for(mock, "model = gpt-4o-mini-transcribe\nstream = yes\n"));
  auto p = plan(s.port, caller(0.5, {{1.2, 4.5}}));
  ASSERT_TRUE(sim::place_call(p).connected);
  const std::string ev = events_of(s, p);
  EXPECT_TRUE(has(ev, R"("type":"user","text":"I would like to talk to sales")")) << ev;
  const auto ts = mock.transcriptions();
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_EQ(ts[0].fields.at("model"), "gpt-4o-mini-transcribe");
  EXPECT_EQ(ts[0].fields.at("stream"), "true");
  EXPECT_TRUE(ts[0].streamed);  // answered with transcript.text.delta events, then done
  EXPECT_TRUE(has(ts[0].response, R"("type":"transcript.text.delta")")) << ts[0].response;
}

TEST(OpenAiSpeech, AFailedTranscriptionIsSentAgainWholeThenTheTurnGoesOn) {
  MockOpenAiSpeech mock;
  MockOpenAiSpeech::TranscriptionScript fail;
  fail.status = 500;
  MockOpenAiSpeech::TranscriptionScript ok;
  ok.text = "sales";
  mock.script_transcription(fail);
  mock.script_transcription(ok);
  testing::RunningServer s(config_for(mock));
  auto p = plan(s.port, caller(0.5, {{1.2, 4.5}}));
  ASSERT_TRUE(sim::place_call(p).connected);
  const std::string ev = events_of(s, p);
  EXPECT_EQ(count(ev, R"("type":"user","text":"sales")"), 1u) << ev;
  EXPECT_TRUE(has(ev, R"("action":"transfer","target":"100")")) << ev;
  const auto ts = mock.transcriptions();
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].status, 500);
  EXPECT_EQ(ts[1].status, 200);
  EXPECT_EQ(ts[0].file, ts[1].file);  // the utterance from its start, byte for byte
  const std::string m = metrics_of(s);
  EXPECT_TRUE(has(m, R"(voxbridge_transcription_events_total{recognizer="w",event="failed"} 1)"))
      << m;
}

TEST(OpenAiSpeech, ARefusedKeyIsRetriedOnceThenTheFallbackPlays) {
  MockOpenAiSpeech mock;
  ::setenv("VB_TEST_OPENAI_SPEECH_WRONG", "not-the-key", 1);
  testing::RunningServer s(config_for(mock, "", "", "asr = w\ntts = wrong\n",
                                      "[speech-wrong]\nbase_url = " + mock.base_url() +
                                          "\napi_key = ${VB_TEST_OPENAI_SPEECH_WRONG}\n"));
  MockOpenAiSpeech::TranscriptionScript t;
  t.text = "sales";
  mock.script_transcription(t);
  auto p = plan(s.port, caller(0.5, {{1.0, 4.0}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);  // the fallback prompt, then the server's hangup
  const auto ss = mock.speeches();
  ASSERT_EQ(ss.size(), 2u);  // the reply's one retry, then the fallback
  for (const auto& sp : ss) {
    EXPECT_EQ(sp.authorization, "Bearer not-the-key");
    EXPECT_EQ(sp.status, 401);
  }
}

TEST(OpenAiSpeech, TheCallerTalkingOverTheReplyCutsItsRequestAndItsConnectionIsNotReused) {
  MockOpenAiSpeech mock;
  MockOpenAiSpeech::TranscriptionScript a, b;
  a.text = "I have a question";
  b.text = "sales please";
  mock.script_transcription(a);
  mock.script_transcription(b);
  // A slow voice: each sentence comes at real time, 100 ms every 100 ms, so the reprompt is
  // still being sent when the caller talks over it.
  MockOpenAiSpeech::SpeechScript slow;
  slow.chunk_delay_ms = 100;
  for (int i = 0; i < 3; ++i) mock.script_speech(slow);
  testing::RunningServer s(config_for(mock));
  sim::CallPlan p = plan(s.port, caller(0.5, {{1.0, 3.0}}));
  testing::append(p.audio, testing::voice(8000, 1.0, 24000));  // louder than the reply's echo
  testing::append(p.audio, testing::silence(8000, 6.0));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  EXPECT_TRUE(has(ev, R"("type":"barge_in")")) << ev;
  EXPECT_TRUE(has(ev, R"("type":"user","text":"sales please")")) << ev;
  ASSERT_TRUE(mock.wait_speeches(2, 5s));
  const auto ss = mock.speeches();
  ASSERT_GE(ss.size(), 2u);
  const auto cut = std::find_if(ss.begin(), ss.end(), [](const auto& x) { return !x.completed; });
  ASSERT_NE(cut, ss.end()) << "no request was cut off mid-answer";
  EXPECT_LT(cut->audio_bytes_sent, MockOpenAiSpeech::speech_pcm(cut->input).size());
  EXPECT_EQ(ss.back().input, "Connecting you to sales.");
  EXPECT_TRUE(ss.back().completed);
  EXPECT_NE(ss.back().connection, cut->connection);  // the cut connection was closed
}

TEST(OpenAiSpeech, ServedOverGrpcByTheProviderHost) {
  MockOpenAiSpeech mock;
  MockOpenAiSpeech::TranscriptionScript t;
  t.text = "I would like to talk to sales";
  mock.script_transcription(t);
  asr_openai::TranscriptionOptions ao;
  ao.name = "remote-asr";
  ao.base_url = mock.base_url();
  ao.api_key = mock.api_key();
  ao.model = "whisper-1";
  tts_openai::SpeechOptions so;
  so.name = "remote-tts";
  so.base_url = mock.base_url();
  so.api_key = mock.api_key();
  so.model = "tts-1";
  so.voice = "nova";
  provider_host::BuiltinOptions bo;
  bo.listen = "127.0.0.1:0";
  bo.asr = bo.llm = bo.tts = false;
  bo.asr_backend = std::make_shared<asr_openai::TranscriptionBackend>(ao);
  bo.asr_target.name = "remote";
  bo.asr_target.backend = "transcription:remote-asr";
  bo.tts_backend = std::make_shared<tts_openai::SpeechBackend>(so);
  bo.tts_target.name = "remote";
  bo.tts_target.backend = "speech:remote-tts";
  provider_host::BuiltinProviders host(std::move(bo));
  testing::RunningServer s(config_for(mock, "", "", "asr = remote\ntts = remote\n",
                                      "[provider-remote]\naddress = " + host.address() + "\n"));
  auto p = plan(s.port, caller(0.5, {{1.2, 4.5}}));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  EXPECT_TRUE(has(ev, R"("type":"user","text":"I would like to talk to sales")")) << ev;
  ASSERT_TRUE(mock.wait_speech_done(0, 5s));
  const auto ss = mock.speeches();
  ASSERT_EQ(ss.size(), 1u);
  EXPECT_EQ(ss[0].model, "tts-1");
  EXPECT_EQ(ss[0].voice, "nova");
  EXPECT_EQ(ss[0].input, "Connecting you to sales.");
  EXPECT_NEAR(tone_ms(r), 60.0 * 24, 100.0);
  host.shutdown();
}

}  // namespace
}  // namespace voxbridge
