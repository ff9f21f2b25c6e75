// ElevenLabs through real calls: a voxbridge server with a pipeline agent whose voice is the
// in-process ElevenLabs backend (the words heard by the Deepgram backend, the replies from the
// built-in receptionist rules), a simulated Asterisk placing AudioSocket calls, and the mocks of
// both services' wire protocols (tests/support/mock_elevenlabs.hpp, mock_deepgram.hpp, written
// from the vendors' references) recording every request.
#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "support/http_client.hpp"
#include "support/mock_deepgram.hpp"
#include "support/mock_elevenlabs.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/sim/sim_call.hpp"
#include "voxbridge/tts_elevenlabs/backend.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using testing::MockDeepgram;
using testing::MockElevenLabs;
namespace http = boost::beast::http;

/// The mock's base URL (up to the voice), as [elevenlabs-NAME] url takes it.
std::string base_url(const MockElevenLabs& m) {
  const std::string u = m.url("v");
  return u.substr(0, u.size() - std::string("/v/stream-input").size());
}

/// A server whose agent `bot` hears with [deepgram-dg] and speaks with [elevenlabs-el].
config::Config config_for(const MockDeepgram& dg, const MockElevenLabs& el,
                          const std::string& agent_extra = "", const std::string& el_extra = "",
                          const std::string& tts = "tts = el\n", const std::string& sections = "") {
  ::setenv("VB_TEST_DEEPGRAM_KEY", dg.api_key().c_str(), 1);
  ::setenv("VB_TEST_ELEVENLABS_KEY", el.api_key().c_str(), 1);
  const std::string text =
      "[listener-main]\nbind = 127.0.0.1:0\nagent = bot\n"
      "[agent-bot]\ntype = pipeline\nasr = dg\nllm = builtin\nrules = receptionist\n"
      "greeting = none\nasr_encoding = mulaw\n" +
      tts + agent_extra + "[deepgram-dg]\nurl = " + dg.url() +
      "\napi_key = ${VB_TEST_DEEPGRAM_KEY}\n"
      "[elevenlabs-el]\nurl = " +
      base_url(el) + "\napi_key = ${VB_TEST_ELEVENLABS_KEY}\nvoice_id = voice-1\n" + el_extra +
      sections;
  config::Config c = config::parse_config(text, "elevenlabs_test.conf");
  c.general.http_listen = "127.0.0.1:0";
  c.general.log_level = "warning";
  return c;
}

sim::CallPlan plan(unsigned short port, const std::string& codec, double voice_s, double tail_s) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse(codec);
  const int rate = p.format.rate_hz();
  p.audio = testing::silence(rate, 0.5);
  testing::append(p.audio, testing::voice(rate, voice_s));
  testing::append(p.audio, testing::silence(rate, tail_s));
  p.tail = 0ms;
  p.max_duration = 30s;
  p.uuid = sim::random_uuid();
  return p;
}

/// Milliseconds of the reply audio whose 20 ms blocks carry the mock's tone (RMS over 1000),
/// from `from_s` of the call on.
double tone_ms(const sim::CallResult& r, double from_s) {
  const int rate = r.reply_rate_hz();
  const std::size_t block = static_cast<std::size_t>(rate / 50);
  double ms = 0;
  for (std::size_t i = static_cast<std::size_t>(from_s * rate); i + block <= r.received.size();
       i += block) {
    double e = 0;
    for (std::size_t k = i; k < i + block; ++k) e += double(r.received[k]) * r.received[k];
    if (std::sqrt(e / double(block)) > 1000) ms += 20;
  }
  return ms;
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

/// The letters and digits of `text`: what the mock speaks as tone (60 ms each).
std::size_t letters(const std::string& text) {
  std::size_t n = 0;
  for (unsigned char c : text) n += std::isalnum(c) != 0 ? 1 : 0;
  return n;
}

TEST(ElevenLabs, TheRepliesTextGoesOutSentenceBySentenceAndItsAudioIsPlayed) {
  MockDeepgram dg;
  dg.push_transcript("I would like to talk to sales");
  MockElevenLabs::Options eo;
  eo.tls = true;  // as the service: wss://, the certificate checked against the test CA
  MockElevenLabs el(eo);
  testing::RunningServer s(
      config_for(dg, el, "tts_rate = 8000\n", "ca_file = " + el.ca_file() + "\nstability = 0.5\n"));
  auto p = plan(s.port, "ulaw", 1.2, 4.5);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  ASSERT_TRUE(has(ev, R"("type":"agent","turn":1,"text":"Connecting you to sales.")")) << ev;
  ASSERT_TRUE(el.wait_for([&] { return el.open_connections() == 0; }, 5s));
  const auto conns = el.connections();
  ASSERT_EQ(conns.size(), 1u);  // one socket for the reply
  const auto& c = conns[0];
  // The socket for an 8 kHz reply: the voice, the model, ulaw_8000, per-message alignment.
  EXPECT_EQ(c.target,
            "/v1/text-to-speech/voice-1/stream-input?model_id=eleven_flash_v2_5"
            "&output_format=ulaw_8000&inactivity_timeout=60&sync_alignment=true");
  EXPECT_EQ(c.xi_api_key, el.api_key());
  // The messages, exactly: the initialize, the sentence with flush, the end.
  std::vector<std::string> texts;
  for (const auto& m : c.received) {
    EXPECT_FALSE(m.binary);
    texts.push_back(m.data);
  }
  const std::vector<std::string> expected = {
      R"({"text":" ","voice_settings":{"stability":5E-1},)"
      R"("generation_config":{"chunk_length_schedule":[50,120,160,250]}})",
      R"({"text":"Connecting you to sales. ","flush":true})",
      R"({"text":""})",
  };
  EXPECT_EQ(texts, expected);
  // All of it spoken, and the caller heard it: 20 letters of tone, 60 ms each.
  ASSERT_EQ(c.generations.size(), 1u);
  EXPECT_EQ(c.generations[0].text, "Connecting you to sales. ");
  EXPECT_EQ(c.audio_bytes, 25u * 480u);  // 25 characters x 60 ms x 8 bytes a ms (mu-law)
  EXPECT_EQ(c.end, MockElevenLabs::End::closed_by_mock);
  EXPECT_EQ(c.close_code, 1000);
  const double heard = tone_ms(r, 0);
  const double said = 60.0 * static_cast<double>(letters("Connecting you to sales."));
  EXPECT_NEAR(heard, said, 100.0) << "heard " << heard << " ms of tone";
  const std::string metrics =
      testing::http_request(s.server.http_port(), http::verb::get, "/metrics").second;
  EXPECT_TRUE(has(metrics, R"(voxbridge_elevenlabs_characters_total{voice="el"} 25)")) << metrics;
  std::string after = metrics;
  for (int i = 0; i < 100 && !has(after, R"(voxbridge_elevenlabs_sockets{voice="el"} 0)"); ++i) {
    std::this_thread::sleep_for(20ms);
    after = testing::http_request(s.server.http_port(), http::verb::get, "/metrics").second;
  }
  EXPECT_TRUE(has(after, R"(voxbridge_elevenlabs_sockets{voice="el"} 0)")) << after;
}

TEST(ElevenLabs, AWidebandReplyIsPcm16000) {
  MockDeepgram dg;
  dg.push_transcript("sales");
  MockElevenLabs el;
  testing::RunningServer s(config_for(dg, el, "tts_rate = 16000\nasr_encoding = linear16\n"));
  auto p = plan(s.port, "slin16", 1.0, 4.0);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(el.wait_for([&] { return el.open_connections() == 0; }, 5s));
  const auto c = el.connection(0);
  EXPECT_EQ(c.query.find("output_format")->second, "pcm_16000");
  EXPECT_EQ(c.audio_bytes, 25u * 60u * 32u);  // s16le at 16 kHz: 32 bytes a ms
  EXPECT_NEAR(tone_ms(r, 0), 60.0 * 20, 100.0);
}

TEST(ElevenLabs, TheCallerTalkingOverTheReplyCancelsItsStreamAndTheRestIsNeverPlayed) {
  MockDeepgram dg;
  dg.push_transcript("I have a question");
  dg.push_transcript("sales please");
  // A slow voice: the reprompt's audio comes 2.5 s after its text, all of it at once (faster
  // than real time, as the service sends it), so most of it still waits in the backend, held
  // while the call pauses reads, when the caller talks over its start.
  MockElevenLabs::Options eo;
  eo.first_audio_delay = 2500ms;
  MockElevenLabs el(eo);
  testing::RunningServer s(config_for(dg, el, "tts_rate = 8000\n"));
  // The rules do not know the first words; their reprompt's first sentence plays from about
  // 4.2 s; the caller talks over it at 4.5 s, louder than the mock's tone (the echo gate takes
  // what is not above the agent's own level for its echo).
  sim::CallPlan p = plan(s.port, "ulaw", 1.0, 3.0);
  testing::append(p.audio, testing::voice(8000, 1.0, 24000));
  testing::append(p.audio, testing::silence(8000, 6.0));
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  const std::string ev = events_of(s, p);
  EXPECT_TRUE(has(ev, R"("type":"barge_in")")) << ev;
  EXPECT_TRUE(has(ev, R"("type":"user","text":"sales please")")) << ev;
  EXPECT_TRUE(has(ev, R"("action":"transfer","target":"100")")) << ev;
  ASSERT_TRUE(el.wait_for([&] { return el.open_connections() == 0; }, 5s));
  const auto conns = el.connections();
  ASSERT_EQ(conns.size(), 2u);  // the reprompt's socket, the transfer reply's
  EXPECT_EQ(conns[1].texts, std::vector<std::string>({"Connecting you to sales. "}));
  // The caller heard part of the reprompt's first sentence (20 letters, 1.2 s), then all of
  // "Connecting you to sales." (20 letters); the reprompt's stream ended cancelled, what it
  // still held dropped.
  const double reprompt = tone_ms(r, 0) - 60.0 * 20;
  EXPECT_GT(reprompt, 100.0);
  EXPECT_LT(reprompt, 1200.0);
}

TEST(ElevenLabs, ARefusedKeyIsRetriedOnceThenTheFallbackPlays) {
  MockDeepgram dg;
  dg.push_transcript("sales");
  MockElevenLabs el;
  ::setenv("VB_TEST_ELEVENLABS_WRONG", "not-the-key", 1);
  testing::RunningServer s(config_for(
      dg, el, "tts_rate = 8000\n", "", "tts = wrong\n",
      "[elevenlabs-wrong]\nurl = " + base_url(el) + "\napi_key = ${VB_TEST_ELEVENLABS_WRONG}\n"));
  auto p = plan(s.port, "ulaw", 1.0, 4.0);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);  // the fallback prompt, then the server's hangup
  ASSERT_TRUE(el.wait_for([&] { return el.open_connections() == 0; }, 5s));
  const auto conns = el.connections();
  ASSERT_EQ(conns.size(), 2u);  // the reply's one retry, then the fallback
  for (const auto& c : conns) {
    EXPECT_EQ(c.xi_api_key, "not-the-key");
    EXPECT_EQ(c.error, "invalid_api_key");
    EXPECT_EQ(c.audio_bytes, 0u);
  }
}

TEST(ElevenLabs, ServedOverGrpcByTheProviderHost) {
  MockDeepgram dg;
  dg.push_transcript("I would like to talk to sales");
  MockElevenLabs el;
  tts_elevenlabs::ElevenLabsOptions o;
  o.name = "remote";
  o.url = base_url(el);
  o.api_key = el.api_key();
  o.voice_id = "voice-2";
  provider_host::BuiltinOptions bo;
  bo.listen = "127.0.0.1:0";
  bo.asr = bo.llm = bo.tts = false;
  bo.tts_backend = std::make_shared<tts_elevenlabs::ElevenLabsBackend>(o);
  bo.tts_target.name = "remote";
  bo.tts_target.backend = "elevenlabs:remote";
  provider_host::BuiltinProviders host(std::move(bo));
  testing::RunningServer s(config_for(dg, el, "tts_rate = 8000\n", "", "tts = remote\n",
                                      "[provider-remote]\naddress = " + host.address() + "\n"));
  auto p = plan(s.port, "ulaw", 1.2, 4.5);
  const auto r = sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(el.wait_for([&] { return el.open_connections() == 0; }, 5s));
  const auto conns = el.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].voice_id, "voice-2");
  EXPECT_EQ(conns[0].texts, std::vector<std::string>({"Connecting you to sales. "}));
  EXPECT_NEAR(tone_ms(r, 0), 60.0 * 20, 100.0);
  host.shutdown();
}

/// The backend on its own, as a pipeline drives it: the call's thread is `call`, the events are
/// recorded in order.
struct Reply {
  boost::asio::io_context call;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work{
      call.get_executor()};
  std::thread thread{[this] { call.run(); }};
  std::mutex mu;
  std::vector<std::string> events;  // "audio N", "done ID", "closed CODE"
  std::shared_ptr<providers::TtsStream> stream;

  ~Reply() {
    work.reset();
    thread.join();
  }
  void open(tts_elevenlabs::ElevenLabsBackend& b) {
    tts::v1::SynthesisConfig cfg;
    cfg.mutable_format()->set_encoding(common::v1::LINEAR16);
    cfg.mutable_format()->set_sample_rate_hz(16000);
    providers::TtsEvents ev;
    ev.response = [this](tts::v1::SynthesizeResponse& r) {
      std::lock_guard lock(mu);
      events.push_back(r.has_chunk_done() ? "done " + std::to_string(r.chunk_done().chunk_id())
                                          : "audio " + std::to_string(r.audio().size()));
    };
    ev.closed = [this](const providers::StreamStatus& st) {
      std::lock_guard lock(mu);
      events.push_back("closed " + std::to_string(st.code));
    };
    // By value: the call's thread runs it after open() has returned.
    boost::asio::post(call, [this, &b, cfg, ev = std::move(ev)]() mutable {
      stream = b.open_tts(
          {}, cfg, [this](std::function<void()> fn) { boost::asio::post(call, std::move(fn)); },
          std::move(ev), 16);
    });
  }
  /// Runs `fn` on the call's thread and waits for it.
  void on_call(std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(call, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mu);
    return events;
  }
  bool wait_closed(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      const auto e = snapshot();
      if (!e.empty() && e.back().rfind("closed", 0) == 0) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

tts_elevenlabs::ElevenLabsOptions backend_options(const MockElevenLabs& el) {
  tts_elevenlabs::ElevenLabsOptions o;
  o.name = "unit";
  o.url = base_url(el);
  o.api_key = el.api_key();
  return o;
}

TEST(ElevenLabsBackend, ARepliesAudioAndMarksComeInOrderThenClosedOk) {
  MockElevenLabs el;
  tts_elevenlabs::ElevenLabsBackend b(backend_options(el));
  Reply r;
  r.open(b);
  r.on_call([&] {
    r.stream->send_text("Hi there.", 1);
    r.stream->send_text("Bye.", 2);
    r.stream->finish();
  });
  ASSERT_TRUE(r.wait_closed(5s));
  // "Hi there. " is 10 characters, 600 ms at 16 kHz (19,200 bytes) in messages of at most
  // 200 ms, its mark once the alignment has reached its end; then "Bye. " (300 ms), its mark
  // with its last word's audio or after the trailing space's (the space we add need not be
  // aligned by the service, so the mark does not wait for it); closed last.
  auto e = r.snapshot();
  ASSERT_EQ(e.size(), 8u);
  EXPECT_EQ(
      std::vector<std::string>(e.begin(), e.begin() + 5),
      std::vector<std::string>({"audio 6400", "audio 6400", "audio 6400", "done 1", "audio 6400"}));
  const bool mark_first = e[5] == "done 2" && e[6] == "audio 3200";
  const bool audio_first = e[5] == "audio 3200" && e[6] == "done 2";
  EXPECT_TRUE(mark_first || audio_first) << e[5] << ", " << e[6];
  EXPECT_EQ(e[7], "closed 0");
}

TEST(ElevenLabsBackend, CancelWhileTheServiceIsStillGeneratingDropsTheSocket) {
  MockElevenLabs::Options eo;
  eo.first_audio_delay = 3000ms;
  MockElevenLabs el(eo);
  tts_elevenlabs::ElevenLabsBackend b(backend_options(el));
  Reply r;
  r.open(b);
  r.on_call([&] {
    r.stream->send_text("A long sentence the caller will not wait for.", 1);
    r.stream->finish();
  });
  ASSERT_TRUE(el.wait_for([&] { return el.connection(0).texts.size() == 1; }, 5s));
  r.on_call([&] { r.stream->cancel(); });
  ASSERT_TRUE(r.wait_closed(2s));
  EXPECT_EQ(r.snapshot(), std::vector<std::string>({"closed 1"}));  // nothing but cancelled
  ASSERT_TRUE(el.wait_for([&] { return el.open_connections() == 0; }, 5s));
  EXPECT_EQ(el.connection(0).end, MockElevenLabs::End::ended_by_client);
  EXPECT_EQ(el.connection(0).audio_bytes, 0u);
  EXPECT_EQ(b.counters().cancelled.load(), 1u);
}

TEST(ElevenLabsBackend, CancelAfterTheServiceFinishedDropsWhatWasHeldForAPausedCall) {
  MockElevenLabs el;
  tts_elevenlabs::ElevenLabsBackend b(backend_options(el));
  Reply r;
  r.open(b);
  r.on_call([&] {
    r.stream->pause_reads();  // the call's playout is full
    r.stream->send_text("Everything is held while the call takes nothing.", 1);
    r.stream->finish();
  });
  // The service has sent all of it and closed; the call has taken none of it.
  ASSERT_TRUE(
      el.wait_for([&] { return el.open_connections() == 0 && el.connections().size() == 1; }, 5s));
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(r.snapshot().empty());
  r.on_call([&] { r.stream->cancel(); });
  ASSERT_TRUE(r.wait_closed(2s));
  EXPECT_EQ(r.snapshot(), std::vector<std::string>({"closed 1"}));
  EXPECT_EQ(b.counters().cancelled.load(), 1u);
}

}  // namespace
}  // namespace voxbridge
