// The OpenAI speech mock against a small blocking Beast HTTP client written here: a multipart
// transcription and what the mock recorded of it (fields, file, WAV format, samples), the event
// stream of a gpt-4o model (exact deltas and done event) and whisper-1 ignoring stream, the
// service's 401 and 400 bodies, two speeches on one persistent connection (exactly
// speech_audio(input) each), a client closing mid-speech, scripted errors, delays and broken
// answers, the 25 MiB limit, many connections at once, and https:// with the mock's CA.
#include "support/mock_openai_speech.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace json = boost::json;
using asio::ip::tcp;
using voxbridge::testing::MockOpenAiSpeech;
using namespace std::chrono_literals;

struct Response {
  beast::error_code ec;  ///< how the read ended (a broken answer: not success)
  int status = 0;
  std::string content_type, allow, body;
  bool chunked = false, keep_alive = false, header_done = false;
};

/// One client connection (http, or https trusting `ca_file` for `host`), blocking.
class Client {
 public:
  explicit Client(std::uint16_t port, const std::string& ca_file = "",
                  const std::string& host = "127.0.0.1") {
    tcp::socket sock(io_);
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
    if (ca_file.empty()) {
      plain_.emplace(std::move(sock));
      return;
    }
    ctx_.emplace(ssl::context::tls_client);
    ctx_->load_verify_file(ca_file);
    ctx_->set_verify_mode(ssl::verify_peer);
    tls_.emplace(std::move(sock), *ctx_);
    tls_->set_verify_callback(ssl::host_name_verification(host));
    tls_->handshake(ssl::stream_base::client);
  }

  template <class F>
  decltype(auto) with(F&& f) {
    if (tls_) return f(*tls_);
    return f(*plain_);
  }

  void send(const std::string& raw) {
    with([&](auto& s) { asio::write(s, asio::buffer(raw)); });
  }

  Response read() {
    http::response_parser<http::string_body> p;
    p.body_limit(boost::none);
    beast::error_code ec;
    with([&](auto& s) { http::read(s, buf_, p, ec); });
    return fill(p, ec);
  }

  /// The response's header and at least `bytes` of its body; then the socket is closed.
  Response read_then_close(std::size_t bytes) {
    http::response_parser<http::string_body> p;
    p.body_limit(boost::none);
    beast::error_code ec;
    with([&](auto& s) {
      http::read_header(s, buf_, p, ec);
      while (!ec && !p.is_done() && p.get().body().size() < bytes) http::read_some(s, buf_, p, ec);
    });
    Response r = fill(p, ec);
    close();
    return r;
  }

  void close() {
    with([](auto& s) {
      beast::error_code ignored;
      beast::get_lowest_layer(s).close(ignored);
    });
  }

 private:
  static Response fill(http::response_parser<http::string_body>& p, beast::error_code ec) {
    Response r;
    r.ec = ec;
    r.header_done = p.is_header_done();
    if (!r.header_done) return r;
    const auto& m = p.get();
    r.status = static_cast<int>(m.result_int());
    r.content_type = std::string(m[http::field::content_type]);
    r.allow = std::string(m[http::field::allow]);
    r.chunked = m.chunked();
    r.keep_alive = m.keep_alive();
    r.body = m.body();
    return r;
  }

  asio::io_context io_;
  std::optional<ssl::context> ctx_;
  std::optional<tcp::socket> plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buf_;
};

// ---- requests ----

std::string request(const std::string& method, const std::string& target,
                    const std::string& content_type, const std::string& body,
                    const std::string& authorization = "Bearer test-key",
                    const std::string& extra = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!authorization.empty()) r += "Authorization: " + authorization + "\r\n";
  if (!content_type.empty()) r += "Content-Type: " + content_type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n";
  return r + body;
}

struct FormPart {
  std::string name, value, filename{}, content_type{};
};

constexpr const char* kBoundary = "vbBoundary7MA4YWxkTrZu0gW";

std::string form(const std::vector<FormPart>& parts) {
  std::string b;
  for (const auto& p : parts) {
    b += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + p.name +
         "\"";
    if (!p.filename.empty()) b += "; filename=\"" + p.filename + "\"";
    b += "\r\n";
    if (!p.content_type.empty()) b += "Content-Type: " + p.content_type + "\r\n";
    b += "\r\n" + p.value + "\r\n";
  }
  return b + "--" + kBoundary + "--\r\n";
}

std::string transcription(const std::vector<FormPart>& parts,
                          const std::string& authorization = "Bearer test-key") {
  return request("POST", "/v1/audio/transcriptions",
                 std::string("multipart/form-data; boundary=") + kBoundary, form(parts),
                 authorization);
}

std::string speech(const std::string& json_body,
                   const std::string& authorization = "Bearer test-key") {
  return request("POST", "/v1/audio/speech", "application/json", json_body, authorization);
}

// ---- audio ----

/// `ms` of a deterministic pattern at `rate`, mono.
std::vector<std::int16_t> pattern(int ms, int rate) {
  std::vector<std::int16_t> out(static_cast<std::size_t>(ms * rate / 1000));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::int16_t>(static_cast<int>(i * 37 % 2000) - 1000);
  return out;
}

std::string wav(const std::vector<std::int16_t>& samples, int rate) {
  std::string h;
  auto u32 = [&h](std::uint32_t v) {
    for (int k = 0; k < 4; ++k) h += static_cast<char>((v >> (8 * k)) & 0xFF);
  };
  auto u16 = [&h](std::uint16_t v) {
    h += static_cast<char>(v & 0xFF);
    h += static_cast<char>(v >> 8);
  };
  const auto bytes = static_cast<std::uint32_t>(samples.size() * 2);
  h += "RIFF";
  u32(36 + bytes);
  h += "WAVEfmt ";
  u32(16);
  u16(1);
  u16(1);
  u32(static_cast<std::uint32_t>(rate));
  u32(static_cast<std::uint32_t>(rate * 2));
  u16(2);
  u16(16);
  h += "data";
  u32(bytes);
  for (auto s : samples) u16(static_cast<std::uint16_t>(s));
  return h;
}

const std::string& half_second_wav() {
  static const std::string w = wav(pattern(500, 16000), 16000);
  return w;
}

FormPart wav_file(const std::string& name = "utterance.wav") {
  return {"file", half_second_wav(), name, "audio/wav"};
}

std::string error_body(const std::string& message, const std::string& type,
                       const std::string& param, const std::string& code) {
  return MockOpenAiSpeech::error_json(message, type, param, code);
}

json::object error_of(const Response& r) {
  return json::parse(r.body).as_object().at("error").as_object();
}

// ---- transcriptions ----

TEST(MockOpenAiSpeech, TranscriptionRecordsTheFormAndTheWav) {
  MockOpenAiSpeech mock;
  Client c(mock.port());
  c.send(transcription({{"model", "whisper-1"},
                        {"language", "en"},
                        {"prompt", "a greeting"},
                        {"response_format", "json"},
                        {"temperature", "0"},
                        wav_file()}));
  const Response r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  // whisper-1's usage: the audio's duration, whole seconds (0.5 s -> 1).
  EXPECT_EQ(r.body, R"({"text":"hello","usage":{"type":"duration","seconds":1}})");

  ASSERT_TRUE(mock.wait_transcriptions(1, 2s));
  const auto t = mock.transcriptions().at(0);
  EXPECT_EQ(t.authorization, "Bearer test-key");
  const std::map<std::string, std::string> fields = {{"model", "whisper-1"},
                                                     {"language", "en"},
                                                     {"prompt", "a greeting"},
                                                     {"response_format", "json"},
                                                     {"temperature", "0"}};
  EXPECT_EQ(t.fields, fields);
  EXPECT_EQ(t.file_name, "utterance.wav");
  EXPECT_EQ(t.file_content_type, "audio/wav");
  EXPECT_EQ(t.file, half_second_wav());
  EXPECT_EQ(t.wav_rate, 16000);
  EXPECT_EQ(t.wav_channels, 1);
  EXPECT_EQ(t.wav_bits, 16);
  EXPECT_EQ(t.samples, pattern(500, 16000));
  EXPECT_EQ(t.connection, 0u);
  EXPECT_EQ(t.status, 200);
  EXPECT_FALSE(t.streamed);
  EXPECT_EQ(t.response, r.body);
}

TEST(MockOpenAiSpeech, StreamedTranscriptionSendsOneDeltaPerWordThenDone) {
  MockOpenAiSpeech mock;
  mock.script_transcription({.text = "hello there world"});
  Client c(mock.port());
  c.send(transcription({{"model", "gpt-4o-mini-transcribe"}, {"stream", "true"}, wav_file()}));
  const Response r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/event-stream; charset=utf-8");
  EXPECT_TRUE(r.chunked);
  // Tokens: no prompt; 0.5 s of audio = 5 audio tokens (one per 100 ms); 3 words out.
  EXPECT_EQ(r.body,
            "data: {\"type\":\"transcript.text.delta\",\"delta\":\"hello\"}\n\n"
            "data: {\"type\":\"transcript.text.delta\",\"delta\":\" there\"}\n\n"
            "data: {\"type\":\"transcript.text.delta\",\"delta\":\" world\"}\n\n"
            "data: {\"type\":\"transcript.text.done\",\"text\":\"hello there world\","
            "\"usage\":{\"type\":\"tokens\",\"input_tokens\":5,\"input_token_details\":"
            "{\"text_tokens\":0,\"audio_tokens\":5},\"output_tokens\":3,\"total_tokens\":8}}\n\n");
  ASSERT_TRUE(mock.wait_transcriptions(1, 2s));
  EXPECT_TRUE(mock.transcriptions()[0].streamed);
  EXPECT_EQ(mock.transcriptions()[0].response, r.body);
}

TEST(MockOpenAiSpeech, WhisperIgnoresStreamAndServesItsFormatsOnOneConnection) {
  MockOpenAiSpeech mock;
  Client c(mock.port());
  // reference: "Streaming is not supported for the whisper-1 model and will be ignored."
  c.send(transcription(
      {{"model", "whisper-1"}, {"stream", "true"}, {"response_format", "text"}, wav_file()}));
  Response r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_FALSE(r.chunked);
  EXPECT_EQ(r.body, "hello");

  c.send(transcription({{"model", "whisper-1"},
                        {"language", "en"},
                        {"response_format", "verbose_json"},
                        wav_file()}));
  r = c.read();
  ASSERT_EQ(r.status, 200);
  const auto v = json::parse(r.body).as_object();
  EXPECT_EQ(v.at("task").as_string(), "transcribe");
  EXPECT_EQ(v.at("language").as_string(), "english");
  EXPECT_EQ(v.at("duration").as_double(), 0.5);
  EXPECT_EQ(v.at("text").as_string(), "hello");
  const auto& seg = v.at("segments").as_array().at(0).as_object();
  EXPECT_EQ(seg.at("end").as_double(), 0.5);
  EXPECT_TRUE(seg.contains("no_speech_prob"));
  EXPECT_TRUE(seg.contains("avg_logprob"));

  // The gpt-4o models take json or text only (reference: the service's 400).
  c.send(transcription(
      {{"model", "gpt-4o-transcribe"}, {"response_format", "verbose_json"}, wav_file()}));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, error_body("response_format 'verbose_json' is not compatible with model "
                               "'gpt-4o-transcribe'. Use 'json' or 'text' instead.",
                               "invalid_request_error", "response_format", "unsupported_value"));
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(mock.connections(), 1u);
  EXPECT_EQ(mock.requests(), 3u);
}

TEST(MockOpenAiSpeech, AWrongOrMissingKeyIsAnswered401AsOpenAiAnswersIt) {
  MockOpenAiSpeech mock;
  mock.script_transcription({.text = "kept for the first valid request"});
  Client c(mock.port());
  c.send(transcription({{"model", "whisper-1"}, wav_file()},
                       "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"));
  Response r = c.read();
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.content_type, "application/json");
  // The service shows the key's first 8 and last 4 characters, a '*' for each one between.
  EXPECT_EQ(r.body,
            "{\n    \"error\": {\n        \"message\": \"Incorrect API key provided: "
            "sk-proj-" +
                std::string(32, '*') +
                "6789. You can find your API key at "
                "https://platform.openai.com/account/api-keys.\",\n        \"type\": "
                "\"invalid_request_error\",\n        \"param\": null,\n        "
                "\"code\": \"invalid_api_key\"\n    }\n}\n");

  c.send(transcription({{"model", "whisper-1"}, wav_file()}, ""));
  r = c.read();
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(error_of(r).at("code").is_null());
  EXPECT_TRUE(error_of(r).at("message").as_string().starts_with("You didn't provide an API key."));

  c.send(transcription({{"model", "whisper-1"}, wav_file()}));
  r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body).at("text").as_string(), "kept for the first valid request");

  ASSERT_TRUE(mock.wait_transcriptions(3, 2s));
  const auto ts = mock.transcriptions();
  EXPECT_EQ(ts[0].status, 401);
  EXPECT_EQ(ts[0].authorization, "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz0123456789");
  EXPECT_EQ(ts[0].fields.at("model"), "whisper-1");  // recorded all the same
  EXPECT_EQ(ts[1].authorization, "");
  EXPECT_EQ(ts[2].status, 200);
}

TEST(MockOpenAiSpeech, FormProblemsAreAnswered400WithOpenAisBodies) {
  MockOpenAiSpeech mock;
  Client c(mock.port());
  // No model: the service's words, param and code null (reference).
  c.send(transcription({{"language", "en"}, wav_file()}));
  Response r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            error_body("you must provide a model parameter", "invalid_request_error", "", ""));
  // No file.
  c.send(transcription({{"model", "whisper-1"}}));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r).at("message").as_string(),
            "1 validation error for Request\nbody -> file\n  field required "
            "(type=value_error.missing)");
  // A name the service does not take.
  c.send(transcription({{"model", "whisper-1"}, {"file", "abc", "notes.txt", "text/plain"}}));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(error_of(r).at("message").as_string().starts_with("Invalid file format."));
  // A .wav that is no WAV.
  c.send(transcription({{"model", "whisper-1"}, {"file", "not a wav", "a.wav", "audio/wav"}}));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r).at("message").as_string(),
            "The audio file could not be decoded or its format is not supported.");
  // Under 0.1 s.
  c.send(transcription(
      {{"model", "whisper-1"}, {"file", wav(pattern(50, 16000), 16000), "a.wav", "audio/wav"}}));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r).at("param").as_string(), "file");
  EXPECT_EQ(error_of(r).at("code").as_string(), "audio_too_short");

  ASSERT_TRUE(mock.wait_transcriptions(5, 2s));
  const auto ts = mock.transcriptions();
  EXPECT_EQ(ts[3].wav_rate, 0);  // not a RIFF/WAVE file
  EXPECT_TRUE(ts[3].samples.empty());
  EXPECT_EQ(ts[4].wav_rate, 16000);  // a WAV, too short
  EXPECT_EQ(ts[4].samples.size(), 800u);
}

// ---- speech ----

TEST(MockOpenAiSpeech, TwoSpeechesOnOneConnectionEachGiveExactlyTheirAudio) {
  MockOpenAiSpeech mock;
  Client c(mock.port());
  c.send(speech(R"({"model":"gpt-4o-mini-tts","input":"Hello there.","voice":"coral",)"
                R"("response_format":"pcm","speed":1.25,"instructions":"Cheerful."})"));
  Response a = c.read();
  c.send(speech(R"({"model":"tts-1","input":"Bye!","voice":"alloy","response_format":"pcm"})"));
  Response b = c.read();

  ASSERT_FALSE(a.ec) << a.ec.message();
  ASSERT_FALSE(b.ec) << b.ec.message();
  for (const Response* r : {&a, &b}) {
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->content_type, "audio/pcm");
    EXPECT_TRUE(r->chunked);
    EXPECT_TRUE(r->keep_alive);
  }
  EXPECT_EQ(a.body, MockOpenAiSpeech::speech_pcm("Hello there."));
  EXPECT_EQ(b.body, MockOpenAiSpeech::speech_pcm("Bye!"));
  // 60 ms per character at 24 kHz, s16le.
  EXPECT_EQ(a.body.size(), 12u * 1440u * 2u);
  const auto samples = MockOpenAiSpeech::speech_audio("Bye!");
  ASSERT_EQ(samples.size(), 4u * 1440u);
  EXPECT_EQ(static_cast<std::uint8_t>(b.body[2]), static_cast<std::uint16_t>(samples[1]) & 0xFF);

  EXPECT_EQ(mock.connections(), 1u);
  ASSERT_TRUE(mock.wait_speech_done(1, 2s));
  const auto sp = mock.speeches();
  ASSERT_EQ(sp.size(), 2u);
  EXPECT_EQ(sp[0].model, "gpt-4o-mini-tts");
  EXPECT_EQ(sp[0].input, "Hello there.");
  EXPECT_EQ(sp[0].voice, "coral");
  EXPECT_EQ(sp[0].response_format, "pcm");
  EXPECT_EQ(sp[0].instructions, "Cheerful.");
  EXPECT_EQ(sp[0].speed, 1.25);
  EXPECT_EQ(sp[1].speed, 1.0);
  for (const auto& s : sp) {
    EXPECT_EQ(s.connection, 0u);
    EXPECT_EQ(s.status, 200);
    EXPECT_TRUE(s.completed);
    EXPECT_EQ(s.authorization, "Bearer test-key");
  }
  EXPECT_EQ(sp[0].audio_bytes_sent, a.body.size());
}

TEST(MockOpenAiSpeech, AClientClosingMidSpeechLeavesItIncomplete) {
  MockOpenAiSpeech mock;
  mock.script_speech({.chunk_delay_ms = 30});
  Client c(mock.port());
  c.send(
      speech(R"({"model":"tts-1","input":"hello there","voice":"alloy","response_format":"pcm"})"));
  const Response r = c.read_then_close(4800);  // the first 100 ms, then barge-in
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(r.body.size(), 4800u);
  ASSERT_TRUE(mock.wait_speech_done(0, 5s));
  const auto sp = mock.speeches().at(0);
  EXPECT_FALSE(sp.completed);
  EXPECT_LT(sp.audio_bytes_sent, MockOpenAiSpeech::speech_pcm("hello there").size());
}

TEST(MockOpenAiSpeech, ScriptsAnswerInOrderWithErrorsDelaysAndBrokenAnswers) {
  MockOpenAiSpeech mock;
  mock.script_speech({.status = 429});
  mock.script_speech({.first_byte_delay_ms = 150, .chunk_bytes = 1000});
  mock.script_speech({.close_mid_body = true});
  const std::string body =
      R"({"model":"tts-1","input":"abcd","voice":"alloy","response_format":"pcm"})";
  const std::string pcm = MockOpenAiSpeech::speech_pcm("abcd");

  Client c(mock.port());
  c.send(speech(body));
  Response r = c.read();
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(error_of(r).at("type").as_string(), "requests");
  EXPECT_EQ(error_of(r).at("code").as_string(), "rate_limit_exceeded");

  const auto t0 = std::chrono::steady_clock::now();
  c.send(speech(body));
  r = c.read();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, pcm);

  c.send(speech(body));
  r = c.read();  // half the audio, then the connection closes: a broken chunked body
  EXPECT_TRUE(r.ec);
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(mock.wait_speech_done(2, 2s));
  EXPECT_EQ(mock.speeches()[2].audio_bytes_sent, pcm.size() / 2);
  EXPECT_FALSE(mock.speeches()[2].completed);

  // Transcriptions: a scripted status with the caller's body, then a close without an answer.
  mock.script_transcription({.status = 503, .error_body = R"({"error":"busy"})"});
  mock.script_transcription({.close_without_answer = true});
  Client d(mock.port());
  d.send(transcription({{"model", "whisper-1"}, wav_file()}));
  r = d.read();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":"busy"})");
  d.send(transcription({{"model", "whisper-1"}, wav_file()}));
  r = d.read();
  EXPECT_FALSE(r.header_done);
  EXPECT_TRUE(r.ec);
  ASSERT_TRUE(mock.wait_transcriptions(2, 2s));
  EXPECT_EQ(mock.transcriptions()[1].status, 0);
  EXPECT_EQ(mock.connections(), 2u);
}

TEST(MockOpenAiSpeech, SpeechRequestsAreCheckedAsOpenAiChecksThem) {
  MockOpenAiSpeech mock;
  mock.script_speech({.status = 500});  // taken by the first valid request only
  Client c(mock.port());
  c.send(speech(R"({"model":"tts-1","input":")" + std::string(4097, 'a') +
                R"(","voice":"alloy","response_format":"pcm"})"));
  Response r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, error_body("Invalid 'input': string too long. Expected a string with maximum "
                               "length 4096, but got a string with length 4097 instead.",
                               "invalid_request_error", "input", "string_above_max_length"));
  c.send(speech(R"({"model":"tts-1","input":"hi","response_format":"pcm"})"));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r).at("param").as_string(), "voice");
  EXPECT_EQ(error_of(r).at("code").as_string(), "missing_required_parameter");
  c.send(speech(R"({"input":"hi","voice":"alloy"})"));
  r = c.read();
  EXPECT_EQ(error_of(r).at("message").as_string(), "you must provide a model parameter");
  c.send(speech(R"({"model":"tts-1","input":"hi","voice":"alloy"})"));  // mp3, the default
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r).at("param").as_string(), "response_format");
  c.send(speech("{not json"));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(error_of(r).at("message").as_string().starts_with(
      "We could not parse the JSON body of your request."));
  c.send(speech(R"({"model":"tts-1","input":"hi","voice":"alloy","response_format":"wav"})"));
  r = c.read();
  EXPECT_EQ(r.status, 500);  // the script
  c.send(speech(R"({"model":"tts-1","input":"hi","voice":"alloy","response_format":"wav"})"));
  r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "audio/wav");
  const std::string pcm = MockOpenAiSpeech::speech_pcm("hi");
  ASSERT_EQ(r.body.size(), 44 + pcm.size());
  EXPECT_EQ(r.body.substr(0, 4), "RIFF");
  EXPECT_EQ(r.body.substr(44), pcm);
  EXPECT_EQ(mock.speeches().size(), 7u);
}

// ---- HTTP ----

TEST(MockOpenAiSpeech, UnknownPathsAndMethodsAndOversizedBodies) {
  MockOpenAiSpeech mock;
  Client c(mock.port());
  c.send(request("GET", "/v1/audio/speech", "", ""));
  Response r = c.read();
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "POST");
  c.send(request("POST", "/v1/audio/translations", "application/json", "{}"));
  r = c.read();
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r).at("code").as_string(), "unknown_url");
  // One byte over 25 MiB: read whole, refused 413 as the service refuses it.
  const std::string big(MockOpenAiSpeech::kMaxBodyBytes + 1, 'x');
  c.send(request("POST", "/v1/audio/transcriptions", "multipart/form-data; boundary=x", big));
  r = c.read();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, error_body("Maximum content size limit (26214400) exceeded (26214401 bytes "
                               "read)",
                               "server_error", "", ""));
  // The connection still serves.
  c.send(speech(R"({"model":"tts-1","input":"ok","voice":"alloy","response_format":"pcm"})"));
  r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, MockOpenAiSpeech::speech_pcm("ok"));
  // Connection: close is honoured.
  c.send(request("POST", "/v1/audio/speech", "application/json",
                 R"({"model":"tts-1","input":"ok","voice":"alloy","response_format":"pcm"})",
                 "Bearer test-key", "Connection: close\r\n"));
  r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.keep_alive);
  r = c.read();
  EXPECT_EQ(r.ec, http::error::end_of_stream);
  EXPECT_EQ(mock.connections(), 1u);
  EXPECT_EQ(mock.speeches().size(), 2u);
  EXPECT_EQ(mock.transcriptions().size(), 1u);
}

TEST(MockOpenAiSpeech, ServesManyConnectionsAtOnce) {
  MockOpenAiSpeech::Options o;
  o.threads = 2;
  MockOpenAiSpeech mock(o);
  constexpr std::size_t kClients = 100;
  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(mock.port()));
    clients.back()->send(speech(R"({"model":"tts-1","input":"c)" + std::to_string(i) +
                                R"(","voice":"alloy","response_format":"pcm"})"));
  }
  for (std::size_t i = 0; i < kClients; ++i) {
    const Response r = clients[i]->read();
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.body, MockOpenAiSpeech::speech_pcm("c" + std::to_string(i))) << i;
  }
  EXPECT_EQ(mock.connections(), kClients);
  EXPECT_EQ(mock.speeches().size(), kClients);
}

TEST(MockOpenAiSpeech, HttpsWithTheMocksCa) {
  MockOpenAiSpeech::Options o;
  o.tls = true;
  MockOpenAiSpeech mock(o);
  EXPECT_EQ(mock.base_url(), "https://127.0.0.1:" + std::to_string(mock.port()) + "/v1");
  ASSERT_FALSE(mock.ca_file().empty());
  Client c(mock.port(), mock.ca_file(), "127.0.0.1");
  c.send(transcription({{"model", "gpt-4o-transcribe"}, wav_file()}));
  Response r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body).at("text").as_string(), "hello");
  c.send(speech(R"({"model":"tts-1","input":"secure","voice":"alloy","response_format":"pcm"})"));
  r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, MockOpenAiSpeech::speech_pcm("secure"));
  EXPECT_EQ(mock.connections(), 1u);
  ASSERT_TRUE(mock.wait_transcriptions(1, 2s));
  EXPECT_EQ(mock.transcriptions()[0].samples, pattern(500, 16000));
}

}  // namespace
