// The ElevenLabs mock driven by voxbridge's own WebSocket client (net::WsClient): a wrong key
// and an unknown voice refused after the socket opens (the error JSON, then close 1008), queries
// refused at the upgrade (403, 404), two sentences with a flush then the end (the exact audio
// messages, their alignment, isFinal, close 1000), the chunk_length_schedule and
// try_trigger_generation without a flush, ulaw_8000 against pcm_16000, the inactivity timeout and
// a keep-alive, malformed messages, and wss:// with the mock's CA.
#include "support/mock_elevenlabs.hpp"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "voxbridge/base64/base64.hpp"
#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/ws_client.hpp"

namespace {

namespace asio = boost::asio;
namespace net = voxbridge::net;
using voxbridge::testing::MockElevenLabs;
using Trigger = MockElevenLabs::Trigger;
using namespace std::chrono_literals;

/// net::WsClient on an io thread of its own, keeping what it receives and how it ended.
class Client {
 public:
  Client(std::string url, std::string xi_api_key,
         std::shared_ptr<asio::ssl::context> tls = nullptr) {
    net::WsOptions o;
    o.url = std::move(url);
    if (!xi_api_key.empty()) o.headers.emplace_back("xi-api-key", std::move(xi_api_key));
    net::WsHandlers h;
    h.open = [this] { update([this] { opened_ = true; }); };
    h.message = [this](std::string_view m) { update([&] { messages_.emplace_back(m); }); };
    h.closed = [this](const net::WsClose& c) { update([&] { closed_ = c; }); };
    ws_ =
        net::WsClient::create(io_.get_executor(), std::move(tls), true, std::move(o), std::move(h));
    asio::post(io_, [ws = ws_] { ws->connect(); });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Client() {
    asio::post(io_, [ws = ws_] { ws->abort(); });
    wait([this] { return closed_.has_value(); }, 5s);
    work_.reset();
    io_.stop();
    thread_.join();
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(std::string text) {
    asio::post(io_, [ws = ws_, t = std::move(text)]() mutable { ws->send(std::move(t)); });
  }
  void send_binary(std::string bytes) {
    asio::post(io_, [ws = ws_, b = std::move(bytes)]() mutable { ws->send_binary(std::move(b)); });
  }

  bool wait_open() {
    return wait([this] { return opened_ || closed_.has_value(); }, 5s) && opened_;
  }
  std::optional<net::WsClose> wait_closed(std::chrono::milliseconds t = 5s) {
    wait([this] { return closed_.has_value(); }, t);
    std::lock_guard lock(mu_);
    return closed_;
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  bool is_closed() {
    std::lock_guard lock(mu_);
    return closed_.has_value();
  }

 private:
  template <class F>
  void update(F&& f) {
    std::lock_guard lock(mu_);
    f();
    cv_.notify_all();
  }
  template <class P>
  bool wait(P&& pred, std::chrono::milliseconds t) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, t, pred);
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::shared_ptr<net::WsClient> ws_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool opened_ = false;
  std::vector<std::string> messages_;
  std::optional<net::WsClose> closed_;
};

// ---- expected messages, spelled out ----

const std::string kInit = R"({"text":" "})";
const std::string kEnd = R"({"text":""})";
const std::string kFinal =
    R"({"audio":null,"isFinal":true,"normalizedAlignment":null,"alignment":null})";
const std::string kVoice = "JBFqnCBsd6RMkjVDRZzb";

std::string b64(std::string_view bytes) {
  return voxbridge::base64::encode(bytes);
}

/// An alignment object: `chars` (one character each) starting at `starts` ms, 60 ms each.
std::string align(const std::string& chars, const std::vector<int>& starts) {
  std::string c, s, d;
  for (std::size_t i = 0; i < chars.size(); ++i) {
    if (i > 0) c += ',', s += ',', d += ',';
    c += '"' + std::string(1, chars[i]) + '"';
    s += std::to_string(starts[i]);
    d += "60";
  }
  return R"({"chars":[)" + c + R"(],"charStartTimesMs":[)" + s + R"(],"charDurationsMs":[)" + d +
         "]}";
}

/// An audio message; `alignment` "null" or an object.
std::string audio(std::string_view bytes, const std::string& alignment) {
  return R"({"audio":")" + b64(bytes) + R"(","isFinal":null,"normalizedAlignment":)" + alignment +
         R"(,"alignment":)" + alignment + "}";
}

std::string error(const std::string& message, const std::string& code) {
  return R"({"message":")" + message + R"(","error":")" + code + R"(","code":1008})";
}

const std::string kParseError =
    "Could not parse input message, make sure it is a json and follows the schema outlined in "
    "protocol.";

bool wait_ended(const MockElevenLabs& mock, std::size_t i) {
  return mock.wait_for([&] { return mock.connection(i).end != MockElevenLabs::End::open; });
}

TEST(MockElevenLabs, AWrongKeyOpensTheSocketThenClosesItWithInvalidApiKey) {
  MockElevenLabs mock;
  const std::string url = mock.url(kVoice) + "?model_id=eleven_flash_v2_5&output_format=pcm_16000";
  const std::string refused = error("Invalid API key", "invalid_api_key");
  {
    Client header(url, "not-the-key");  // checked at once
    const auto closed = header.wait_closed();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->http_status, 0);
    EXPECT_TRUE(closed->clean);
    EXPECT_EQ(closed->code, 1008);
    EXPECT_EQ(closed->reason, "Invalid API key");
    EXPECT_EQ(header.messages(), std::vector<std::string>{refused});
  }
  {
    Client in_message(url, "");  // checked on the first message
    ASSERT_TRUE(in_message.wait_open());
    in_message.send(R"({"text":" ","xi_api_key":"not-the-key"})");
    EXPECT_EQ(in_message.wait_closed()->code, 1008);
    EXPECT_EQ(in_message.messages(), std::vector<std::string>{refused});
  }
  {
    Client right(url, "");
    right.send(R"({"text":" ","xi_api_key":")" + mock.api_key() + R"("})");
    right.send(kEnd);
    const auto closed = right.wait_closed();
    EXPECT_EQ(closed->code, 1000);
    EXPECT_EQ(right.messages(), std::vector<std::string>{kFinal});
  }
  const auto c = mock.connections();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].status, 101);
  EXPECT_EQ(c[0].xi_api_key, "not-the-key");
  EXPECT_EQ(c[0].error, "invalid_api_key");
  EXPECT_EQ(c[0].end, MockElevenLabs::End::closed_by_mock);
  EXPECT_EQ(c[1].xi_api_key, "");
  EXPECT_EQ(c[1].message_api_key, "not-the-key");
  EXPECT_EQ(c[2].message_api_key, mock.api_key());
  EXPECT_EQ(c[2].error, "");
  EXPECT_EQ(c[2].close_code, 1000);
}

TEST(MockElevenLabs, AnUnknownVoiceIsRefusedAfterTheSocketOpens) {
  MockElevenLabs::Options o;
  o.voice_ids = {kVoice};
  MockElevenLabs mock(o);
  Client c(mock.url("no-such-voice") + "?output_format=ulaw_8000", mock.api_key());
  EXPECT_EQ(c.wait_closed()->code, 1008);
  EXPECT_EQ(c.messages(),
            std::vector<std::string>{
                error("A voice with voice_id 'no-such-voice' was not found.", "voice_not_found")});
  EXPECT_EQ(mock.connection(0).voice_id, "no-such-voice");
}

TEST(MockElevenLabs, RefusesAQueryItCannotServeWith403AndAnUnknownPathWith404) {
  MockElevenLabs mock;
  const std::pair<std::string, std::string> cases[] = {
      {"?output_format=wav_8000", "output_format 'wav_8000' is not one of the service's formats."},
      {"?output_format=pcm_16000&inactivity_timeout=0",
       "inactivity_timeout must be an integer in 1..180, not '0'."},
      {"?output_format=pcm_16000&inactivity_timeout=181",
       "inactivity_timeout must be an integer in 1..180, not '181'."},
      {"?output_format=pcm_16000&model_id=eleven_v3",
       "The model eleven_v3 is not available on this WebSocket."},
      {"?output_format=pcm_16000&sync_alignment=maybe",
       "sync_alignment must be a boolean, not 'maybe'."},
      {"?output_format=mp3_44100_128",
       "The mock produces pcm_*, ulaw_8000 and alaw_8000 only, not 'mp3_44100_128': set "
       "output_format."},
      {"",
       "The mock produces pcm_*, ulaw_8000 and alaw_8000 only, not 'mp3_44100_128': set "
       "output_format."},
  };
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    Client c(mock.url(kVoice) + cases[i].first, mock.api_key());
    const auto closed = c.wait_closed();
    ASSERT_TRUE(closed) << cases[i].first;
    EXPECT_EQ(closed->http_status, 403) << cases[i].first;
    EXPECT_EQ(closed->http_body, cases[i].second) << cases[i].first;
    EXPECT_EQ(mock.connection(i).status, 403);
  }
  const std::string base = "ws://127.0.0.1:" + std::to_string(mock.port());
  for (const char* path : {"/v1/text-to-speech/stream-input", "/v1/text-to-speech/a/b/stream-input",
                           "/v1/text-to-speech/a/multi-stream-input"}) {
    Client c(base + path + "?output_format=pcm_16000", mock.api_key());
    EXPECT_EQ(c.wait_closed()->http_status, 404) << path;
  }
  // Parameters the mock does not know are accepted, as the service does.
  Client extra(mock.url(kVoice) + "?output_format=pcm_16000&optimize_streaming_latency=3",
               mock.api_key());
  EXPECT_TRUE(extra.wait_open());
  EXPECT_EQ(mock.connections().back().query.find("optimize_streaming_latency")->second, "3");
}

TEST(MockElevenLabs, TwoSentencesWithAFlushThenTheEndMakeExactAudioAlignmentIsFinalAndClose1000) {
  MockElevenLabs mock;
  const std::string query =
      "?model_id=eleven_flash_v2_5&output_format=pcm_16000&sync_alignment=true";
  Client c(mock.url(kVoice) + query, mock.api_key());
  const std::string init =
      R"({"text":" ","voice_settings":{"stability":0.5,"similarity_boost":0.8},)"
      R"("generation_config":{"chunk_length_schedule":[120,160,250,290]}})";
  c.send(init);
  c.send(R"({"text":"Hi there. ","flush":true})");
  c.send(R"({"text":"Bye. "})");
  c.send(kEnd);
  const auto closed = c.wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_TRUE(closed->clean);
  EXPECT_EQ(closed->code, 1000);

  // 10 characters x 60 ms at 16 kHz, s16: 19,200 bytes in messages of 200 ms (6,400 bytes);
  // each message aligns the characters that start in it, from its own first sample.
  const auto first = MockElevenLabs::synthesize("Hi there. ", "pcm_16000", {});
  const auto second = MockElevenLabs::synthesize("Bye. ", "pcm_16000", {});
  ASSERT_EQ(first.size(), 19200u);
  ASSERT_EQ(second.size(), 9600u);
  const std::vector<std::string> expected = {
      audio(first.substr(0, 6400), align("Hi t", {0, 60, 120, 180})),
      audio(first.substr(6400, 6400), align("her", {40, 100, 160})),
      audio(first.substr(12800), align("e. ", {20, 80, 140})),
      audio(second.substr(0, 6400), align("Bye.", {0, 60, 120, 180})),
      audio(second.substr(6400), align(" ", {40})),
      kFinal,
  };
  EXPECT_EQ(c.messages(), expected);

  ASSERT_TRUE(wait_ended(mock, 0));
  const auto r = mock.connection(0);
  EXPECT_EQ(r.target, "/v1/text-to-speech/" + kVoice + "/stream-input" + query);
  EXPECT_EQ(r.voice_id, kVoice);
  EXPECT_EQ(r.query.find("model_id")->second, "eleven_flash_v2_5");
  EXPECT_EQ(r.xi_api_key, mock.api_key());
  ASSERT_EQ(r.received.size(), 4u);
  EXPECT_EQ(r.received[0].data, init);
  EXPECT_FALSE(r.received[0].binary);
  EXPECT_EQ(r.received[3].data, kEnd);
  EXPECT_EQ(r.voice_settings, R"({"stability":0.5,"similarity_boost":0.8})");
  EXPECT_EQ(r.chunk_length_schedule, (std::vector<int>{120, 160, 250, 290}));
  EXPECT_EQ(r.texts, (std::vector<std::string>{"Hi there. ", "Bye. "}));
  ASSERT_EQ(r.generations.size(), 2u);
  EXPECT_EQ(r.generations[0].text, "Hi there. ");
  EXPECT_EQ(r.generations[0].trigger, Trigger::flush);
  EXPECT_EQ(r.generations[0].audio_bytes, 19200u);
  EXPECT_EQ(r.generations[0].messages, 3u);
  EXPECT_EQ(r.generations[1].text, "Bye. ");
  EXPECT_EQ(r.generations[1].trigger, Trigger::end);
  EXPECT_EQ(r.sent, expected);
  EXPECT_EQ(r.sent_messages, 6u);
  EXPECT_EQ(r.audio_bytes, 28800u);
  EXPECT_EQ(r.end, MockElevenLabs::End::closed_by_mock);
  EXPECT_EQ(r.close_code, 1000);
}

TEST(MockElevenLabs, TheScheduleAndTryTriggerGenerateWithoutAFlush) {
  MockElevenLabs mock;
  Client c(mock.url(kVoice) + "?output_format=pcm_8000", mock.api_key());
  c.send(R"({"text":" ","generation_config":{"chunk_length_schedule":[50,60]}})");
  const std::string twenty = "aaaa bbbb cccc dddd ";  // 20 characters
  for (int i = 0; i < 6; ++i) c.send(R"({"text":")" + twenty + R"("})");
  // 42 characters, 40 of them up to a space: try_trigger_generation needs 50.
  c.send(R"({"text":"eeee ffff gggg hhhh iiii jjjj kkkk llll mm","try_trigger_generation":true})");
  c.send(R"({"text":"mm nnnn ","try_trigger_generation":true})");
  c.send(R"({"text":"oooo"})");
  c.send(kEnd);
  ASSERT_EQ(c.wait_closed()->code, 1000);
  ASSERT_TRUE(wait_ended(mock, 0));
  const auto r = mock.connection(0);
  ASSERT_EQ(r.generations.size(), 4u);
  // 50 characters are needed first: nothing at 20 or 40, all 60 at the third message.
  EXPECT_EQ(r.generations[0].text, twenty + twenty + twenty);
  EXPECT_EQ(r.generations[0].trigger, Trigger::schedule);
  // Then 60 more.
  EXPECT_EQ(r.generations[1].text, twenty + twenty + twenty);
  EXPECT_EQ(r.generations[1].trigger, Trigger::schedule);
  EXPECT_EQ(r.generations[2].text, "eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn ");
  EXPECT_EQ(r.generations[2].trigger, Trigger::try_trigger_generation);
  EXPECT_EQ(r.generations[3].text, "oooo");
  EXPECT_EQ(r.generations[3].trigger, Trigger::end);
  // 60 characters x 60 ms at 8 kHz, s16: 57,600 bytes in 18 messages of 3,200.
  EXPECT_EQ(r.generations[0].audio_bytes, 57600u);
  EXPECT_EQ(r.generations[0].messages, 18u);
  EXPECT_EQ(r.generations[2].audio_bytes, 50u * 960u);
  EXPECT_EQ(r.audio_bytes, (60u + 60u + 50u + 4u) * 960u);
  // Without sync_alignment the first message of a generation aligns all of it, the rest none.
  const auto pcm = MockElevenLabs::synthesize(twenty + twenty + twenty, "pcm_8000", {});
  std::vector<int> starts;
  for (int i = 0; i < 60; ++i) starts.push_back(i * 60);
  const auto m = c.messages();
  ASSERT_EQ(m.size(), 18u + 18u + 15u + 2u + 1u);
  EXPECT_EQ(m[0], audio(pcm.substr(0, 3200), align(twenty + twenty + twenty, starts)));
  EXPECT_EQ(m[1], audio(pcm.substr(3200, 3200), "null"));
  EXPECT_EQ(m.back(), kFinal);
}

TEST(MockElevenLabs, Ulaw8000AndPcm16000CarryTheSameTextInTheirOwnSizes) {
  MockElevenLabs mock;
  std::map<std::string, std::string> received;
  for (const char* format : {"ulaw_8000", "pcm_16000"}) {
    Client c(mock.url(kVoice) + "?output_format=" + format, mock.api_key());
    c.send(kInit);
    c.send(R"({"text":"Hello ","flush":true})");
    c.send(kEnd);
    ASSERT_EQ(c.wait_closed()->code, 1000);
    std::string bytes;
    for (const auto& m : c.messages()) {
      const auto a = m.find(R"("audio":")");
      if (a == std::string::npos) continue;
      const auto from = a + 9, to = m.find('"', from);
      ASSERT_TRUE(voxbridge::base64::decode(std::string_view(m).substr(from, to - from), bytes));
    }
    received[format] = bytes;
  }
  // 6 characters x 60 ms = 360 ms: 2,880 mu-law bytes at 8 kHz, 11,520 s16 bytes at 16 kHz.
  ASSERT_EQ(received["ulaw_8000"].size(), 2880u);
  ASSERT_EQ(received["pcm_16000"].size(), 11520u);
  EXPECT_EQ(received["ulaw_8000"], MockElevenLabs::synthesize("Hello ", "ulaw_8000", {}));
  EXPECT_EQ(received["pcm_16000"], MockElevenLabs::synthesize("Hello ", "pcm_16000", {}));
  // Letters are a 440 Hz tone near amplitude 8000; the space is silence (mu-law 0xFF).
  const std::string& pcm = received["pcm_16000"];
  int peak = 0;
  for (std::size_t i = 0; i + 1 < 5 * 1920; i += 2) {
    const auto s = static_cast<std::int16_t>(static_cast<std::uint8_t>(pcm[i]) |
                                             (static_cast<std::uint8_t>(pcm[i + 1]) << 8));
    peak = std::max(peak, std::abs(static_cast<int>(s)));
  }
  EXPECT_GE(peak, 7990);
  EXPECT_LE(peak, 8000);
  EXPECT_EQ(pcm.substr(5 * 1920), std::string(1920, '\0'));
  EXPECT_EQ(received["ulaw_8000"].substr(5 * 480), std::string(480, '\xFF'));
}

TEST(MockElevenLabs, NoMessageForTheInactivityTimeoutClosesWithInputTimeoutExceeded) {
  MockElevenLabs::Options o;
  o.inactivity_second = 10ms;  // the default inactivity_timeout, 20 s: 200 ms
  MockElevenLabs mock(o);
  const auto start = std::chrono::steady_clock::now();
  Client c(mock.url(kVoice) + "?output_format=pcm_16000", mock.api_key());
  c.send(kInit);
  const auto closed = c.wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  const std::string message =
      "Have not received a new text input within the timeout of 20 seconds. Streaming input "
      "terminated. Please make sure to either feed the input in the timely manner, or to send "
      "the end of input text (empty string \\\"\\\") when done.";
  EXPECT_EQ(c.messages(), std::vector<std::string>{error(message, "input_timeout_exceeded")});
  EXPECT_TRUE(closed->clean);
  EXPECT_EQ(closed->code, 1008);
  // The reason as the service was seen to send it: the message's first 120 bytes.
  EXPECT_EQ(closed->reason,
            "Have not received a new text input within the timeout of 20 seconds. Streaming input "
            "terminated. Please make sure to eit");
  EXPECT_EQ(mock.connection(0).error, "input_timeout_exceeded");
}

TEST(MockElevenLabs, ASingleSpaceKeepsTheSocketOpenPastTheInactivityTimeout) {
  MockElevenLabs::Options o;
  o.inactivity_second = 100ms;  // inactivity_timeout=5: 500 ms
  MockElevenLabs mock(o);
  Client c(mock.url(kVoice) + "?output_format=pcm_16000&inactivity_timeout=5", mock.api_key());
  c.send(kInit);
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(100ms);
    c.send(kInit);  // {"text":" "}
  }
  EXPECT_FALSE(c.is_closed());  // 600 ms, with a 500 ms timeout
  EXPECT_TRUE(c.messages().empty());
  EXPECT_EQ(c.wait_closed()->code, 1008);
  const auto r = mock.connection(0);
  EXPECT_EQ(r.texts, std::vector<std::string>(6, " "));
  EXPECT_TRUE(r.generations.empty());  // spaces alone generate nothing
}

TEST(MockElevenLabs, AMessageOfTheWrongShapeCloses1008) {
  MockElevenLabs mock;
  const std::string url = mock.url(kVoice) + "?output_format=pcm_16000";
  const std::string parse = error(kParseError, "invalid_input_message");
  for (const char* text : {"not json", R"({"text":5})", R"(["text"])", R"({"flush":true})"}) {
    Client c(url, mock.api_key());
    c.send(kInit);
    c.send(text);
    const auto closed = c.wait_closed();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1008) << text;
    EXPECT_EQ(closed->reason, kParseError) << text;
    EXPECT_EQ(c.messages(), std::vector<std::string>{parse}) << text;
  }
  {
    Client binary(url, mock.api_key());
    binary.send_binary(kInit);
    EXPECT_EQ(binary.wait_closed()->code, 1008);
    EXPECT_EQ(binary.messages(), std::vector<std::string>{parse});
  }
  {
    Client not_first(url, mock.api_key());
    not_first.send(R"({"text":"Hello "})");
    EXPECT_EQ(not_first.wait_closed()->code, 1008);
    EXPECT_EQ(not_first.messages(),
              std::vector<std::string>{error("The first message must initialize the connection: "
                                             "its text must be a single space.",
                                             "invalid_input_message")});
  }
  {
    Client changed(url, mock.api_key());
    changed.send(R"({"text":" ","voice_settings":{"stability":0.5}})");
    changed.send(R"({"text":"Hello ","voice_settings":{"stability":0.5}})");  // unchanged: fine
    changed.send(R"({"text":"again ","voice_settings":{"stability":0.9}})");
    EXPECT_EQ(changed.wait_closed()->code, 1008);
    EXPECT_EQ(changed.messages(),
              std::vector<std::string>{error(
                  "voice_settings field must be provided in the first message and then either be "
                  "not provided or not change.",
                  "invalid_input_message")});
  }
  const auto c = mock.connections();
  ASSERT_EQ(c.size(), 7u);
  EXPECT_TRUE(c[4].received[0].binary);
  EXPECT_EQ(c[6].texts, std::vector<std::string>{"Hello "});
}

TEST(MockElevenLabs, AMessageOverMaxMessageBytesEndsTheSocketWith1009) {
  MockElevenLabs::Options o;
  o.max_message_bytes = 64;
  MockElevenLabs mock(o);
  Client c(mock.url(kVoice) + "?output_format=pcm_16000", mock.api_key());
  c.send(kInit);
  c.send(R"({"text":")" + std::string(100, 'a') + R"( "})");
  const auto closed = c.wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, 1009);
  EXPECT_TRUE(c.messages().empty());
  ASSERT_TRUE(wait_ended(mock, 0));
  EXPECT_EQ(mock.connection(0).received.size(), 1u);
}

TEST(MockElevenLabs, FirstAudioDelayHoldsEachGenerationsFirstMessage) {
  MockElevenLabs::Options o;
  o.first_audio_delay = 100ms;
  MockElevenLabs mock(o);
  Client c(mock.url(kVoice) + "?output_format=ulaw_8000", mock.api_key());
  c.send(kInit);
  const auto sent = std::chrono::steady_clock::now();
  c.send(R"({"text":"Hi ","flush":true})");
  c.send(kEnd);
  ASSERT_EQ(c.wait_closed()->code, 1000);
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 100ms);
  const auto m = c.messages();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1], kFinal);
}

TEST(MockElevenLabs, ServesWssWithItsOwnCa) {
  MockElevenLabs::Options o;
  o.tls = true;
  MockElevenLabs mock(o);
  auto tls =
      std::make_shared<asio::ssl::context>(net::tls_client_context({.ca_file = mock.ca_file()}));
  Client c(mock.url(kVoice) + "?output_format=ulaw_8000", mock.api_key(), tls);
  ASSERT_TRUE(c.wait_open());
  c.send(kInit);
  c.send(R"({"text":"Hi ","flush":true})");
  c.send(kEnd);
  EXPECT_EQ(c.wait_closed()->code, 1000);
  const auto ulaw = MockElevenLabs::synthesize("Hi ", "ulaw_8000", {});
  ASSERT_EQ(ulaw.size(), 1440u);
  EXPECT_EQ(c.messages(), (std::vector<std::string>{
                              audio(ulaw, align("Hi ", {0, 60, 120})),
                              kFinal,
                          }));
}

}  // namespace
