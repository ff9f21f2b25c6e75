// The Deepgram mock driven by voxbridge's own WebSocket client (net::WsClient): the upgrades it
// refuses (401 and 400 with Deepgram's error JSON), the exact messages a tone between silences
// makes (SpeechStarted, interim results, a final with speech_final, UtteranceEnd, their times in
// seconds of audio), Finalize, CloseStream (the last result, Metadata, close 1000), NET-0001 on an
// idle socket and KeepAlive keeping one open, a text message that is no control message (1008
// DATA-0000), result_delay, and wss:// with the mock's CA.
#include "support/mock_deepgram.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/ws_client.hpp"

namespace {

namespace asio = boost::asio;
namespace net = voxbridge::net;
using voxbridge::testing::MockDeepgram;
using namespace std::chrono_literals;

/// net::WsClient on an io thread of its own, keeping what it receives and how it ended.
class Client {
 public:
  Client(std::string url, std::string authorization,
         std::shared_ptr<asio::ssl::context> tls = nullptr) {
    net::WsOptions o;
    o.url = std::move(url);
    if (!authorization.empty()) o.headers.emplace_back("Authorization", std::move(authorization));
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
  void close() {
    asio::post(io_, [ws = ws_] { ws->close(); });
  }

  bool wait_open() {
    return wait([this] { return opened_ || closed_.has_value(); }, 5s) && opened_;
  }
  std::optional<net::WsClose> wait_closed(std::chrono::milliseconds t = 5s) {
    wait([this] { return closed_.has_value(); }, t);
    std::lock_guard lock(mu_);
    return closed_;
  }
  /// Waits for `n` messages (or the close); every message so far.
  std::vector<std::string> wait_messages(std::size_t n) {
    wait([&] { return messages_.size() >= n || closed_.has_value(); }, 5s);
    return messages();
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

// ---- audio ----

/// `ms` of a 400 Hz tone of `amplitude` (0: silence) at `rate`, as s16 samples.
std::vector<std::int16_t> tone(int ms, int rate, double amplitude) {
  std::vector<std::int16_t> out(static_cast<std::size_t>(ms * rate / 1000));
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::int16_t>(
        std::lround(amplitude * std::sin(6.283185307179586 * 400.0 * static_cast<double>(i) /
                                         static_cast<double>(rate))));
  }
  return out;
}

/// G.711 by search: the byte whose decoding (the mock's decoder, checked against G.711's table
/// in its own test) is nearest each sample.
std::string g711(const std::vector<std::int16_t>& pcm, std::int16_t (*decode)(std::uint8_t)) {
  std::string out;
  for (auto s : pcm) {
    int best = 0;
    for (int b = 1; b < 256; ++b) {
      if (std::abs(decode(static_cast<std::uint8_t>(b)) - s) <
          std::abs(decode(static_cast<std::uint8_t>(best)) - s)) {
        best = b;
      }
    }
    out += static_cast<char>(best);
  }
  return out;
}
std::string mulaw(const std::vector<std::int16_t>& pcm) {
  return g711(pcm, MockDeepgram::mulaw_to_s16);
}

std::string linear16(const std::vector<std::int16_t>& pcm) {
  std::string out;
  for (auto s : pcm) {
    const auto u = static_cast<std::uint16_t>(s);
    out += static_cast<char>(u & 0xff);
    out += static_cast<char>(u >> 8);
  }
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d, &n, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", d[i]);
    hex += b;
  }
  return hex;
}

// ---- expected messages, spelled out ----

struct Word {
  std::string word, start, end, punctuated;
};

std::string results(const std::string& request, const std::string& model,
                    const std::string& duration, const std::string& start, bool is_final,
                    bool speech_final, const std::string& transcript,
                    const std::vector<Word>& words, bool from_finalize) {
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  std::string w;
  for (const auto& x : words) {
    if (!w.empty()) w += ',';
    w += R"({"word":")" + x.word + R"(","start":)" + x.start + R"(,"end":)" + x.end +
         R"(,"confidence":0.98,"punctuated_word":")" + x.punctuated + R"("})";
  }
  return R"({"type":"Results","channel_index":[0,1],"duration":)" + duration + R"(,"start":)" +
         start + R"(,"is_final":)" + b(is_final) + R"(,"speech_final":)" + b(speech_final) +
         R"(,"channel":{"alternatives":[{"transcript":")" + transcript + R"(","confidence":)" +
         (words.empty() ? "0.0" : "0.98") + R"(,"words":[)" + w +
         R"(]}]},"metadata":{"request_id":")" + request + R"(","model_info":{"name":")" + model +
         R"(","version":"mock","arch":")" + model +
         R"("},"model_uuid":"6d6f636b-0000-4000-8000-000000000000"},"from_finalize":)" +
         b(from_finalize) + "}";
}

std::string metadata(const std::string& request, const std::string& sha256,
                     const std::string& duration, const std::string& model) {
  std::string m = R"({"type":"Metadata","transaction_key":"deprecated","request_id":")" + request +
                  R"(","sha256":")" + sha256 +
                  R"(","created":"2025-01-31T12:00:00.000Z","duration":)" + duration;
  if (model.empty()) return m + R"(,"channels":0})";
  return m + R"(,"channels":1,"models":["6d6f636b-0000-4000-8000-000000000000"],)" +
         R"("model_info":{"6d6f636b-0000-4000-8000-000000000000":{"name":")" + model +
         R"(","version":"mock","arch":")" + model + R"("}}})";
}

MockDeepgram::Options fixed(MockDeepgram::Options o = {}) {
  o.created = "2025-01-31T12:00:00.000Z";
  return o;
}

const std::string kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(MockDeepgram, DecodesG711AsTheStandardTableSays) {
  EXPECT_EQ(MockDeepgram::mulaw_to_s16(0x00), -32124);
  EXPECT_EQ(MockDeepgram::mulaw_to_s16(0x80), 32124);
  EXPECT_EQ(MockDeepgram::mulaw_to_s16(0xFF), 0);
  EXPECT_EQ(MockDeepgram::mulaw_to_s16(0x7F), 0);
  EXPECT_EQ(MockDeepgram::mulaw_to_s16(0xFE), 8);
  EXPECT_EQ(MockDeepgram::mulaw_to_s16(0xEF), 132);
  EXPECT_EQ(MockDeepgram::alaw_to_s16(0xD5), 8);
  EXPECT_EQ(MockDeepgram::alaw_to_s16(0x55), -8);
  EXPECT_EQ(MockDeepgram::alaw_to_s16(0xAA), 32256);
  EXPECT_EQ(MockDeepgram::alaw_to_s16(0x2A), -32256);
}

TEST(MockDeepgram, RefusesAMissingOrWrongKeyWith401AndTakesTokenOrBearer) {
  MockDeepgram mock;
  const std::string url = mock.url() + "?encoding=mulaw&sample_rate=8000";
  {
    Client none(url, "");
    const auto closed = none.wait_closed();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->http_status, 401);
    EXPECT_EQ(closed->http_body, R"({"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.",)"
                                 R"("request_id":")" +
                                     MockDeepgram::request_id(0) + R"("})");
  }
  {
    Client wrong(url, "Token not-the-key");
    EXPECT_EQ(wrong.wait_closed()->http_status, 401);
  }
  Client token(url, "Token " + mock.api_key());
  EXPECT_TRUE(token.wait_open());
  Client bearer(url, "Bearer " + mock.api_key());
  EXPECT_TRUE(bearer.wait_open());
  const auto c = mock.connections();
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].authorization, "");
  EXPECT_EQ(c[0].end, MockDeepgram::End::refused);
  EXPECT_EQ(c[1].authorization, "Token not-the-key");
  EXPECT_EQ(c[1].status, 401);
  EXPECT_EQ(c[2].status, 101);
  EXPECT_EQ(c[3].authorization, "Bearer " + mock.api_key());
  EXPECT_EQ(c[3].request_id, "6d6f636b-0000-4000-8000-000000000003");
  EXPECT_EQ(mock.open_connections(), 2u);
}

TEST(MockDeepgram, RefusesWhatItCannotServeWith400AndDeepgramsErrorJson) {
  MockDeepgram mock;
  const std::string auth = "Token " + mock.api_key();
  const std::pair<std::string, std::string> cases[] = {
      {"?encoding=opus&sample_rate=48000", "Invalid 'encoding' value of 'opus'."},
      {"?encoding=mulaw", "'sample_rate' is required with 'encoding'."},
      {"?encoding=linear16&sample_rate=16000&channels=2", "Invalid 'channels' value of '2'."},
      {"?encoding=mulaw&sample_rate=8000&interim_results=true&utterance_end_ms=999",
       "Invalid 'utterance_end_ms' value of '999'."},
      {"?encoding=mulaw&sample_rate=8000&utterance_end_ms=1000",
       "'utterance_end_ms' requires 'interim_results=true'."},
      {"?encoding=mulaw&sample_rate=8000&endpointing=soon",
       "Invalid 'endpointing' value of 'soon'."},
  };
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    Client c(mock.url() + cases[i].first, auth);
    const auto closed = c.wait_closed();
    ASSERT_TRUE(closed) << cases[i].first;
    EXPECT_EQ(closed->http_status, 400) << cases[i].first;
    EXPECT_EQ(closed->http_body, R"({"err_code":"Bad Request","err_msg":")" + cases[i].second +
                                     R"(","request_id":")" + MockDeepgram::request_id(i) + R"("})");
  }
  Client wrong_path("ws://127.0.0.1:" + std::to_string(mock.port()) + "/v2/listen", auth);
  EXPECT_EQ(wrong_path.wait_closed()->http_status, 404);
}

TEST(MockDeepgram, AToneBetweenSilencesMakesSpeechStartedInterimsAFinalAndUtteranceEnd) {
  MockDeepgram mock(fixed());
  mock.push_transcript("Book a table for two.");
  const std::string query =
      "?model=nova-3&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true"
      "&endpointing=300&utterance_end_ms=1000&vad_events=true&smart_format=true"
      "&keyterm=table&keyterm=for%20two&no_such_option=x";
  Client c(mock.url() + query, "Token " + mock.api_key());
  ASSERT_TRUE(c.wait_open());
  // 0.5 s silence, 1 s tone, 1.5 s silence, in 100 ms messages.
  std::string audio = mulaw(tone(500, 8000, 0));
  audio += mulaw(tone(1000, 8000, 8000));
  audio += mulaw(tone(1500, 8000, 0));
  for (std::size_t i = 0; i < audio.size(); i += 800) c.send_binary(audio.substr(i, 800));

  const std::string id = MockDeepgram::request_id(0);
  auto interim = [&](const char* duration, std::size_t k) {
    const std::vector<Word> all = {{"book", "0.5", "0.7", "Book"},
                                   {"a", "0.7", "0.9", "a"},
                                   {"table", "0.9", "1.1", "table"},
                                   {"for", "1.1", "1.3", "for"},
                                   {"two", "1.3", "1.5", "two."}};
    const char* texts[] = {"Book", "Book a", "Book a table", "Book a table for",
                           "Book a table for two."};
    return results(id, "nova-3", duration, "0.0", false, false, texts[k - 1],
                   std::vector<Word>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k)),
                   false);
  };
  const std::vector<std::string> expected = {
      R"({"type":"SpeechStarted","channel":[0,1],"timestamp":0.5})",
      // k words spread over [0.5, the end of the last voiced block]
      results(id, "nova-3", "0.7", "0.0", false, false, "Book", {{"book", "0.5", "0.7", "Book"}},
              false),
      results(id, "nova-3", "0.9", "0.0", false, false, "Book a",
              {{"book", "0.5", "0.7", "Book"}, {"a", "0.7", "0.9", "a"}}, false),
      interim("1.1", 3),
      interim("1.3", 4),
      interim("1.5", 5),
      interim("1.7", 5),
      // 300 ms of silence after the tone: the final, speech_final
      results(id, "nova-3", "1.8", "0.0", true, true, "Book a table for two.",
              {{"book", "0.5", "0.7", "Book"},
               {"a", "0.7", "0.9", "a"},
               {"table", "0.9", "1.1", "table"},
               {"for", "1.1", "1.3", "for"},
               {"two", "1.3", "1.5", "two."}},
              false),
      // 1 s of audio after the last word's end
      R"({"type":"UtteranceEnd","channel":[0,1],"last_word_end":1.5})",
  };
  EXPECT_EQ(c.wait_messages(expected.size()), expected);
  EXPECT_TRUE(mock.wait_for([&] { return mock.connection(0).audio_bytes == audio.size(); }));

  c.close();
  EXPECT_TRUE(c.wait_closed());
  ASSERT_TRUE(
      mock.wait_for([&] { return mock.connection(0).end == MockDeepgram::End::ended_by_client; }));
  const auto r = mock.connection(0);
  EXPECT_EQ(r.target, std::string(MockDeepgram::kPath) + query);
  EXPECT_EQ(r.query.count("keyterm"), 2u);
  EXPECT_EQ(std::next(r.query.find("keyterm"))->second, "for two");
  EXPECT_EQ(r.query.find("no_such_option")->second, "x");  // ignored, as the service does
  EXPECT_EQ(r.sent, expected);
  EXPECT_EQ(r.received.size(), 30u);
  EXPECT_TRUE(r.received[0].binary);
  EXPECT_EQ(std::string(r.audio.begin(), r.audio.end()), audio);
}

TEST(MockDeepgram, FinalizeMidUtteranceSendsTheUtteranceSoFarFromFinalize) {
  MockDeepgram mock(fixed());
  mock.push_transcript("Two please.");
  Client c(mock.url() + "?model=nova-3&encoding=linear16&sample_rate=16000",
           "Token " + mock.api_key());
  ASSERT_TRUE(c.wait_open());
  c.send_binary(linear16(tone(100, 16000, 0)));
  c.send_binary(linear16(tone(600, 16000, 8000)));
  c.send(R"({"type":"Finalize"})");
  c.send(R"({"type":"Finalize"})");  // no audio since: no answer
  c.send_binary(linear16(tone(40, 16000, 0)));
  c.send(R"({"type":"Finalize"})");  // silence since: an empty final
  const std::string id = MockDeepgram::request_id(0);
  const std::vector<std::string> expected = {
      results(id, "nova-3", "0.7", "0.0", true, false, "Two please.",
              {{"two", "0.1", "0.4", "Two"}, {"please", "0.4", "0.7", "please."}}, true),
      results(id, "nova-3", "0.04", "0.7", true, false, "", {}, true),
  };
  EXPECT_EQ(c.wait_messages(expected.size()), expected);
  c.send(R"({"type":"CloseStream"})");
  EXPECT_EQ(c.wait_closed()->code, 1000);
  EXPECT_EQ(c.messages().size(), 3u);  // and Metadata: the second Finalize had no answer
  EXPECT_EQ(mock.connection(0).texts(),
            (std::vector<std::string>{R"({"type":"Finalize"})", R"({"type":"Finalize"})",
                                      R"({"type":"Finalize"})", R"({"type":"CloseStream"})"}));
}

TEST(MockDeepgram, CloseStreamSendsTheLastResultMetadataThenCloses1000) {
  MockDeepgram mock(fixed());
  Client c(mock.url() + "?encoding=alaw&sample_rate=8000", "Token " + mock.api_key());
  ASSERT_TRUE(c.wait_open());
  // 300 ms of tone and 5 samples more (a partial block: heard at the end of the stream).
  const std::string audio = g711(tone(300, 8000, 8000), MockDeepgram::alaw_to_s16) +
                            std::string(5, static_cast<char>(0xD5));
  c.send_binary(audio);
  c.send(R"({"type":"CloseStream"})");
  const auto closed = c.wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_TRUE(closed->clean);
  EXPECT_EQ(closed->code, 1000);
  const std::string id = MockDeepgram::request_id(0);
  EXPECT_EQ(c.messages(), (std::vector<std::string>{
                              results(id, "general", "0.300625", "0.0", true, false, "hello",
                                      {{"hello", "0.0", "0.3", "hello"}}, false),
                              metadata(id, sha256_hex(audio), "0.300625", "general"),
                          }));
  const auto r = mock.connection(0);
  EXPECT_EQ(r.end, MockDeepgram::End::closed_by_mock);
  EXPECT_EQ(r.close_code, 1000);
  EXPECT_EQ(r.audio_bytes, 2405u);
}

TEST(MockDeepgram, AnIdleSocketGetsMetadataThenNet0001) {
  MockDeepgram::Options o = fixed();
  o.idle_timeout = 150ms;
  MockDeepgram mock(o);
  const auto start = std::chrono::steady_clock::now();
  Client c(mock.url() + "?encoding=mulaw&sample_rate=8000", "Token " + mock.api_key());
  const auto closed = c.wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_TRUE(closed->clean);
  EXPECT_EQ(closed->code, 1011);
  EXPECT_EQ(closed->reason,
            "Deepgram did not receive audio data or a text message within the timeout window. "
            "See https://dpgr.am/net0001");
  EXPECT_EQ(
      c.messages(),
      (std::vector<std::string>{metadata(MockDeepgram::request_id(0), kEmptySha256, "0.0", "")}));
  EXPECT_EQ(mock.connection(0).close_code, 1011);
}

TEST(MockDeepgram, KeepAliveKeepsASocketThatHadAudioOpenPastTheIdleTimeout) {
  MockDeepgram::Options o = fixed();
  o.idle_timeout = 400ms;
  MockDeepgram mock(o);
  Client c(mock.url() + "?encoding=mulaw&sample_rate=8000", "Token " + mock.api_key());
  ASSERT_TRUE(c.wait_open());
  const std::string keepalive = R"({"type":"KeepAlive"})";
  c.send_binary(keepalive);  // a KeepAlive in a binary frame is audio (20 mu-law bytes)
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(100ms);
    c.send(keepalive);
  }
  EXPECT_FALSE(c.is_closed());  // 1 s, with a 400 ms idle timeout
  EXPECT_EQ(mock.open_connections(), 1u);
  EXPECT_TRUE(c.messages().empty());  // no answer to KeepAlive
  EXPECT_EQ(c.wait_closed()->code, 1011);
  const auto r = mock.connection(0);
  ASSERT_EQ(r.received.size(), 11u);
  EXPECT_TRUE(r.received[0].binary);
  EXPECT_EQ(r.received[0].data, keepalive);
  EXPECT_EQ(r.audio_bytes, keepalive.size());
  EXPECT_EQ(r.texts(), std::vector<std::string>(10, keepalive));
}

TEST(MockDeepgram, KeepAliveAloneBeforeAnyAudioDoesNotKeepASocketOpen) {
  MockDeepgram::Options o = fixed();
  o.idle_timeout = 300ms;
  MockDeepgram mock(o);
  Client c(mock.url() + "?encoding=mulaw&sample_rate=8000", "Token " + mock.api_key());
  ASSERT_TRUE(c.wait_open());
  for (int i = 0; i < 30 && !c.is_closed(); ++i) {
    c.send(R"({"type":"KeepAlive"})");
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(c.is_closed());
  EXPECT_EQ(c.wait_closed()->code, 1011);
}

TEST(MockDeepgram, ATextMessageThatIsNoControlMessageCloses1008Data0000) {
  MockDeepgram mock;
  const std::string url = mock.url() + "?encoding=mulaw&sample_rate=8000";
  for (const char* text : {R"({"type":"Configure"})", "KeepAlive"}) {
    Client c(url, "Token " + mock.api_key());
    ASSERT_TRUE(c.wait_open());
    c.send(text);
    const auto closed = c.wait_closed();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1008) << text;
    EXPECT_EQ(closed->reason, "DATA-0000") << text;
    EXPECT_TRUE(c.messages().empty());
  }
}

TEST(MockDeepgram, ResultDelayHoldsResultsAndWhatFollowsThem) {
  MockDeepgram::Options o = fixed();
  o.result_delay = 100ms;
  MockDeepgram mock(o);
  Client c(mock.url() + "?encoding=linear16&sample_rate=16000&model=nova-3",
           "Token " + mock.api_key());
  ASSERT_TRUE(c.wait_open());
  c.send_binary(linear16(tone(200, 16000, 8000)));
  EXPECT_TRUE(mock.wait_for([&] { return mock.connection(0).audio_bytes == 6400; }));
  const auto sent = std::chrono::steady_clock::now();
  c.send(R"({"type":"Finalize"})");
  c.send(R"({"type":"CloseStream"})");
  ASSERT_EQ(c.wait_messages(1).size(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 100ms);
  EXPECT_EQ(c.wait_closed()->code, 1000);
  const auto m = c.messages();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_NE(m[0].find(R"("from_finalize":true)"), std::string::npos);
  EXPECT_EQ(m[1].rfind(R"({"type":"Metadata")", 0), 0u);
}

TEST(MockDeepgram, ServesWssWithItsOwnCa) {
  MockDeepgram::Options o = fixed();
  o.tls = true;
  MockDeepgram mock(o);
  auto tls =
      std::make_shared<asio::ssl::context>(net::tls_client_context({.ca_file = mock.ca_file()}));
  Client c(mock.url() + "?encoding=linear16&sample_rate=16000", "Token " + mock.api_key(), tls);
  ASSERT_TRUE(c.wait_open());
  c.send(R"({"type":"CloseStream"})");
  EXPECT_EQ(c.wait_closed()->code, 1000);
  EXPECT_EQ(
      c.messages(),
      (std::vector<std::string>{metadata(MockDeepgram::request_id(0), kEmptySha256, "0.0", "")}));
}

}  // namespace
