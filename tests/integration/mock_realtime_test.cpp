// The OpenAI Realtime mock against a plain Beast WebSocket client: it answers the reference's
// examples (tests/data/openai_realtime/) as the reference says, refuses what the service
// refuses, and its scripted responses, VAD and truncation follow the documented rules.
#include "support/mock_realtime.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::ip::tcp;
using voxbridge::testing::MockRealtime;
using namespace std::chrono_literals;

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(VB_TEST_DATA) + "/openai_realtime/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string b64(const std::vector<std::uint8_t>& in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    unsigned v = unsigned{in[i]} << 16;
    if (i + 1 < in.size()) v |= unsigned{in[i + 1]} << 8;
    if (i + 2 < in.size()) v |= in[i + 2];
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < in.size() ? k[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? k[v & 63] : '=';
  }
  return out;
}

std::vector<std::uint8_t> unb64(std::string_view s) {
  auto val = [](char c) -> unsigned {
    if (c >= 'A' && c <= 'Z') return static_cast<unsigned>(c - 'A');
    if (c >= 'a' && c <= 'z') return static_cast<unsigned>(c - 'a' + 26);
    if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0' + 52);
    return c == '+' ? 62u : 63u;
  };
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 3 < s.size(); i += 4) {
    const unsigned v = (val(s[i]) << 18) | (val(s[i + 1]) << 12) |
                       (s[i + 2] == '=' ? 0 : val(s[i + 2]) << 6) |
                       (s[i + 3] == '=' ? 0 : val(s[i + 3]));
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    if (s[i + 2] != '=') out.push_back(static_cast<std::uint8_t>((v >> 8) & 0xff));
    if (s[i + 3] != '=') out.push_back(static_cast<std::uint8_t>(v & 0xff));
  }
  return out;
}

/// PCM16 little-endian: `ms` of a 1 kHz tone at `amplitude` (0: silence), 24 kHz.
std::vector<std::uint8_t> pcm(int ms, double amplitude) {
  std::vector<std::uint8_t> out;
  for (int i = 0; i < ms * 24; ++i) {
    const auto s = static_cast<std::int16_t>(
        std::lround(amplitude * std::sin(6.283185307179586 * 1000.0 * i / 24000.0)));
    out.push_back(static_cast<std::uint8_t>(static_cast<std::uint16_t>(s) & 0xff));
    out.push_back(static_cast<std::uint8_t>(static_cast<std::uint16_t>(s) >> 8));
  }
  return out;
}

std::string append(const std::vector<std::uint8_t>& audio) {
  return json::serialize(
      json::object{{"type", "input_audio_buffer.append"}, {"audio", b64(audio)}});
}

/// A plain client: blocking writes, reads bounded by a deadline.
class Client {
 public:
  explicit Client(const MockRealtime& mock, std::string target = {},
                  std::vector<std::pair<std::string, std::string>> headers = {})
      : ws_(io_) {
    if (target.empty()) {  // the path and query of url()
      const auto url = mock.url();
      target = url.substr(url.find('/', url.find("://") + 3));
    }
    if (headers.empty()) headers = mock.auth_headers();
    beast::get_lowest_layer(ws_).connect({asio::ip::make_address("127.0.0.1"), mock.port()});
    ws_.set_option(websocket::stream_base::decorator([headers](websocket::request_type& r) {
      for (const auto& [k, v] : headers) r.set(k, v);
    }));
    ws_.handshake(response_, "127.0.0.1", target, ec_);
  }
  beast::error_code handshake_error() const { return ec_; }
  const websocket::response_type& response() const { return response_; }

  void send(const std::string& text) { ws_.write(asio::buffer(text)); }
  json::object next(std::chrono::milliseconds timeout = 5000ms) {
    bool done = false;
    beast::error_code ec;
    ws_.async_read(buf_, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    io_.restart();
    io_.run_for(timeout);
    if (!done) {
      beast::get_lowest_layer(ws_).cancel();
      io_.restart();
      io_.run();
      ADD_FAILURE() << "no event within " << timeout.count() << " ms";
      return {};
    }
    if (ec) {
      ADD_FAILURE() << "read: " << ec.message();
      return {};
    }
    auto v = json::parse(beast::buffers_to_string(buf_.data()));
    buf_.consume(buf_.size());
    return v.as_object();
  }
  /// Reads until the connection ends; the error that ended it (closed: a close frame came).
  beast::error_code read_end(std::chrono::milliseconds timeout = 5000ms) {
    beast::error_code ec;
    for (int i = 0; i < 100 && !ec; ++i) {
      bool done = false;
      ws_.async_read(buf_, [&](beast::error_code e, std::size_t) {
        ec = e;
        done = true;
      });
      io_.restart();
      io_.run_for(timeout);
      if (!done) return beast::error::timeout;
      buf_.consume(buf_.size());
    }
    return ec;
  }
  websocket::close_reason close_reason() const { return ws_.reason(); }

  /// Reads until an event of `type`; returns every event read, that one last.
  std::vector<json::object> until(std::string_view type) {
    std::vector<json::object> out;
    for (int i = 0; i < 2000; ++i) {
      out.push_back(next());
      if (out.back().empty() || std::string(out.back()["type"].as_string()) == type) return out;
    }
    ADD_FAILURE() << "no " << type;
    return out;
  }

 private:
  asio::io_context io_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buf_;
  websocket::response_type response_;
  beast::error_code ec_;
};

std::vector<std::string> types_of(const std::vector<json::object>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.emplace_back(e.at("type").as_string());
  return out;
}

const json::object& err_of(const json::object& e) {
  return e.at("error").as_object();
}

json::object turn_off_vad() {
  return json::object{
      {"type", "session.update"},
      {"session",
       json::object{
           {"type", "realtime"},
           {"audio", json::object{{"input", json::object{{"turn_detection", nullptr}}}}}}}};
}

TEST(MockRealtime, SessionCreatedThenTheReferenceSessionUpdateIsEchoed) {
  MockRealtime mock;
  Client c(mock);
  ASSERT_FALSE(c.handshake_error()) << c.handshake_error().message();
  auto created = c.next();
  EXPECT_EQ(created["type"], "session.created");
  EXPECT_EQ(created["event_id"], "event_0_1");
  const auto& s = created["session"].as_object();
  EXPECT_EQ(s.at("type"), "realtime");
  EXPECT_EQ(s.at("object"), "realtime.session");
  EXPECT_EQ(s.at("model"), "gpt-realtime");
  EXPECT_EQ(s.at("audio").at("input").at("format"),
            (json::object{{"type", "audio/pcm"}, {"rate", 24000}}));
  EXPECT_EQ(s.at("audio").at("input").at("turn_detection").at("type"), "server_vad");

  c.send(fixture("session_update.json"));
  auto updated = c.next();
  ASSERT_EQ(updated["type"], "session.updated") << json::serialize(updated);
  const auto& u = updated["session"].as_object();
  EXPECT_EQ(u.at("instructions"), "You are a creative assistant that helps with design tasks.");
  EXPECT_EQ(u.at("tools").at(0).at("name"), "display_color_palette");
  EXPECT_EQ(u.at("tool_choice"), "auto");
  EXPECT_EQ(u.at("audio").at("output").at("voice"), "alloy");  // untouched fields stay

  // G.711 both ways, semantic VAD: the effective session fills the defaults.
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{
      "input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"semantic_vad"}},
      "output":{"format":{"type":"audio/pcma"},"voice":"marin"}}}})");
  updated = c.next();
  ASSERT_EQ(updated["type"], "session.updated") << json::serialize(updated);
  const auto& a = updated["session"].at("audio");
  EXPECT_EQ(a.at("input").at("format"), (json::object{{"type", "audio/pcmu"}}));
  EXPECT_EQ(a.at("output").at("format"), (json::object{{"type", "audio/pcma"}}));
  EXPECT_EQ(a.at("input").at("turn_detection"), (json::object{{"type", "semantic_vad"},
                                                              {"eagerness", "auto"},
                                                              {"create_response", true},
                                                              {"interrupt_response", true}}));
  EXPECT_EQ(mock.session(0).at("audio").at("output").at("voice"), "marin");
  EXPECT_EQ(mock.types(0), (std::vector<std::string>{"session.update", "session.update"}));
  const auto received = mock.received(0);
  EXPECT_EQ(received[0].json.at("event_id"), "5fc543c4-f59c-420f-8fb9-68c45d1546a7");
  EXPECT_EQ(received[0].raw, fixture("session_update.json"));
  EXPECT_EQ(received[0].conn, 0u);
  EXPECT_LE(received[0].at, received[1].at);
  EXPECT_EQ(mock.sent_types(0),
            (std::vector<std::string>{"session.created", "session.updated", "session.updated"}));
}

TEST(MockRealtime, MalformedUnknownAndInvalidEventsGetTheVendorsErrorShape) {
  MockRealtime mock;
  Client c(mock);
  c.next();
  // The reference's own example: no type.
  const auto ref = json::parse(fixture("error.json")).as_object();
  c.send(R"({"event_id":"event_567"})");
  auto e = c.next();
  EXPECT_EQ(e["type"], "error");
  EXPECT_EQ(err_of(e), ref.at("error").as_object());

  c.send("{not json");
  e = c.next();
  EXPECT_EQ(err_of(e).at("type"), "invalid_request_error");
  EXPECT_EQ(err_of(e).at("code"), "invalid_json");
  EXPECT_TRUE(err_of(e).at("event_id").is_null());

  c.send(R"({"type":"response.audio.delta","event_id":"evt_1"})");  // a beta name
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "invalid_value");
  EXPECT_EQ(err_of(e).at("param"), "type");
  EXPECT_EQ(err_of(e).at("event_id"), "evt_1");
  EXPECT_EQ(std::string(err_of(e).at("message").as_string()).substr(0, 41),
            "Invalid value: 'response.audio.delta'. Su");

  c.send(R"({"type":"session.update","event_id":"evt_2","session":{"type":"realtime",
      "audio":{"input":{"format":{"type":"audio/opus"}}}}})");
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "invalid_value");
  EXPECT_EQ(err_of(e).at("param"), "session.audio.input.format.type");
  EXPECT_EQ(err_of(e).at("message"),
            "Invalid value: 'audio/opus'. Supported values are: 'audio/pcm', 'audio/pcmu', and "
            "'audio/pcma'.");
  EXPECT_EQ(err_of(e).at("event_id"), "evt_2");

  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"input":{
      "format":{"type":"audio/pcm","rate":16000}}}}})");
  EXPECT_EQ(err_of(c.next()).at("param"), "session.audio.input.format.rate");

  c.send(R"({"type":"session.update","session":{"modalities":["audio"]}})");  // beta field
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "unknown_parameter");
  EXPECT_EQ(err_of(e).at("message"), "Unknown parameter: 'session.modalities'.");

  c.send(R"({"type":"session.update","session":{"instructions":"x"}})");
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "missing_required_parameter");
  EXPECT_EQ(err_of(e).at("param"), "session.type");

  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"input":{
      "turn_detection":{"type":"server_vad","threshold":2}}}}})");
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "decimal_above_max_value");
  EXPECT_EQ(err_of(e).at("param"), "session.audio.input.turn_detection.threshold");

  c.send(
      R"({"type":"session.update","session":{"type":"realtime","tools":[{"type":"function"}]}})");
  EXPECT_EQ(err_of(c.next()).at("param"), "session.tools[0].name");

  c.send(R"({"type":"response.cancel","event_id":"evt_3"})");
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "response_cancel_not_active");
  EXPECT_EQ(err_of(e).at("event_id"), "evt_3");

  c.send(R"({"type":"input_audio_buffer.commit"})");
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "input_audio_buffer_commit_empty");

  // None of this closed the session or changed it.
  c.send(R"({"type":"session.update","session":{"type":"realtime"}})");
  EXPECT_EQ(c.next()["type"], "session.updated");
  EXPECT_EQ(mock.session(0).at("audio").at("input").at("format").at("type"), "audio/pcm");
  EXPECT_EQ(mock.open_count(), 1u);
}

TEST(MockRealtime, AppendKeepsDecodedAudioAndRejectsBadBase64AndHalfSamples) {
  MockRealtime mock;
  Client c(mock);
  c.next();
  c.send(json::serialize(turn_off_vad()));
  c.next();
  const std::vector<std::uint8_t> a{1, 2, 3, 4, 250, 251};
  c.send(append(a));
  c.send(R"({"type":"input_audio_buffer.append","audio":"AQID*A=="})");
  auto e = c.next();
  EXPECT_EQ(err_of(e).at("param"), "audio");
  c.send(R"({"type":"input_audio_buffer.append","audio":"AQID"})");  // 3 bytes of PCM16
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "invalid_value");
  EXPECT_EQ(mock.appended_audio(0), a);
  EXPECT_EQ(mock.appended_bytes(0), 6u);
  // Whole samples, 120 ms: the commit makes the user item.
  c.send(append(pcm(120, 0) /* silence */));
  c.send(R"({"type":"input_audio_buffer.commit","event_id":"c1"})");
  const auto got = c.until("conversation.item.done");
  EXPECT_EQ(types_of(got),
            (std::vector<std::string>{"input_audio_buffer.committed", "conversation.item.added",
                                      "conversation.item.done"}));
  EXPECT_EQ(got[1].at("item").at("role"), "user");
  EXPECT_EQ(got[1].at("item").at("content").at(0).at("type"), "input_audio");
  c.send(R"({"type":"input_audio_buffer.clear"})");
  EXPECT_EQ(c.next()["type"], "input_audio_buffer.cleared");
}

TEST(MockRealtime, ResponseCreateStreamsTheScriptedReplyInTheOutputFormat) {
  MockRealtime mock;
  mock.push_script(MockRealtime::Script::speech("Hi there friend.", 250));
  Client c(mock);
  c.next();
  c.send(fixture("conversation_item_create.json"));
  auto got = c.until("conversation.item.done");
  ASSERT_EQ(types_of(got),
            (std::vector<std::string>{"conversation.item.added", "conversation.item.done"}));
  EXPECT_EQ(got[0].at("item").at("content").at(0).at("text"), "hi");
  EXPECT_EQ(got[0].at("item").at("status"), "completed");

  c.send(R"({"type":"response.create"})");
  got = c.until("response.done");
  std::vector<std::string> want{"response.created", "response.output_item.added",
                                "conversation.item.added", "response.content_part.added"};
  // 250 ms in 100 ms chunks: 3 deltas; the 3 words spread over them (before each chunk).
  for (int i = 0; i < 3; ++i) {
    want.push_back("response.output_audio_transcript.delta");
    want.push_back("response.output_audio.delta");
  }
  for (const char* t : {"response.output_audio.done", "response.output_audio_transcript.done",
                        "response.content_part.done", "response.output_item.done",
                        "conversation.item.done", "response.done"})
    want.push_back(t);
  ASSERT_EQ(types_of(got), want);
  std::vector<std::uint8_t> audio;
  std::string transcript;
  for (const auto& e : got) {
    if (e.at("type") == "response.output_audio.delta")
      for (auto b : unb64(e.at("delta").as_string())) audio.push_back(b);
    if (e.at("type") == "response.output_audio_transcript.delta")
      transcript += e.at("delta").as_string();
  }
  EXPECT_EQ(audio, MockRealtime::test_signal("audio/pcm", 0, 250 * 24));
  EXPECT_EQ(transcript, "Hi there friend.");
  const auto& r = got.back().at("response");
  EXPECT_EQ(r.at("status"), "completed");
  EXPECT_EQ(r.at("output").at(0).at("content").at(0),
            (json::object{{"type", "output_audio"}, {"transcript", "Hi there friend."}}));
  // Usage: output 3 words + 250/50 audio; input ("hi": 2 bytes)/4 = 0 text, no audio.
  const auto& usage = r.at("usage");
  EXPECT_EQ(usage.at("output_tokens"), 8);
  EXPECT_EQ(usage.at("output_token_details"),
            (json::object{{"text_tokens", 3}, {"audio_tokens", 5}}));
  EXPECT_EQ(usage.at("input_tokens"), 0);
  EXPECT_EQ(usage.at("total_tokens"), 8);

  // A second response while one is active: the service's error, naming the client event.
  mock.push_script(MockRealtime::Script::speech("Long one.", 1000, 100));
  c.send(R"({"type":"response.create","event_id":"rc1"})");
  c.until("response.output_audio.delta");
  c.send(R"({"type":"response.create","event_id":"rc2"})");
  got = c.until("error");
  const auto& err = err_of(got.back());
  EXPECT_EQ(err.at("code"), "conversation_already_has_active_response");
  EXPECT_EQ(err.at("event_id"), "rc2");
  EXPECT_EQ(err.at("message"),
            "Conversation already has an active response in progress: resp_0_2. Wait until the "
            "response is finished before creating a new one.");
  c.send(R"({"type":"response.cancel"})");
  got = c.until("response.done");
  EXPECT_EQ(got.back().at("response").at("status"), "cancelled");
  EXPECT_EQ(got.back().at("response").at("status_details"),
            (json::object{{"type", "cancelled"}, {"reason", "client_cancelled"}}));
  EXPECT_EQ(got.back().at("response").at("output").at(0).at("status"), "incomplete");
}

TEST(MockRealtime, G711OutputIsEightKilohertzMuLaw) {
  MockRealtime mock;
  mock.push_script(MockRealtime::Script::speech("Hey.", 100));
  Client c(mock);
  c.next();
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{
      "output":{"format":{"type":"audio/pcmu"}}}}})");
  c.next();
  c.send(R"({"type":"response.create"})");
  std::vector<std::uint8_t> audio;
  for (const auto& e : c.until("response.done"))
    if (e.at("type") == "response.output_audio.delta") audio = unb64(e.at("delta").as_string());
  EXPECT_EQ(audio, MockRealtime::test_signal("audio/pcmu", 0, 800));
  EXPECT_EQ(audio.size(), 800u);
  // Assistant audio exists now: the voice can no longer change (the service's error).
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{
      "output":{"voice":"cedar"}}}})");
  const auto e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "cannot_update_voice");
}

TEST(MockRealtime, TruncateBeyondTheAudioSentIsAnError) {
  MockRealtime mock;
  mock.push_script(MockRealtime::Script::speech("One two.", 300));
  Client c(mock);
  c.next();
  c.send(R"({"type":"response.create"})");
  auto got = c.until("response.done");
  const std::string item(got[1].at("item").at("id").as_string());
  EXPECT_EQ(item, "item_0_1");
  auto truncate = [&](std::string_view id, std::int64_t ms, int content = 0) {
    c.send(json::serialize(json::object{{"type", "conversation.item.truncate"},
                                        {"event_id", "t1"},
                                        {"item_id", id},
                                        {"content_index", content},
                                        {"audio_end_ms", ms}}));
    return c.next();
  };
  auto e = truncate(item, 301);
  EXPECT_EQ(e["type"], "error");
  EXPECT_EQ(err_of(e).at("message"), "Audio content of 300ms is already shorter than 301ms");
  EXPECT_EQ(err_of(e).at("event_id"), "t1");
  e = truncate(item, -1);
  EXPECT_EQ(err_of(e).at("code"), "integer_below_min_value");
  e = truncate(item, 100, 1);
  EXPECT_EQ(err_of(e).at("param"), "content_index");
  // The reference's example names an item this conversation does not have.
  c.send(fixture("conversation_item_truncate.json"));
  e = c.next();
  EXPECT_EQ(err_of(e).at("code"), "item_truncate_invalid_item_id");
  EXPECT_EQ(err_of(e).at("event_id"), "event_678");
  e = truncate(item, 200);
  EXPECT_EQ(e, (json::object{{"type", "conversation.item.truncated"},
                             {"event_id", e.at("event_id")},
                             {"item_id", item},
                             {"content_index", 0},
                             {"audio_end_ms", 200}}));
  e = truncate(item, 250);  // the item now holds 200 ms
  EXPECT_EQ(err_of(e).at("message"), "Audio content of 200ms is already shorter than 250ms");
}

TEST(MockRealtime, ServerVadDetectsSpeechCancelsTheResponseAndAnswersTheTurn) {
  MockRealtime mock;
  mock.push_script(MockRealtime::Script::speech("Still talking.", 2000, 200));
  mock.push_script(MockRealtime::Script::speech("Next.", 100));
  mock.push_transcript("stop please");
  Client c(mock);
  c.next();
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"input":{
      "transcription":{"model":"gpt-4o-transcribe"},
      "turn_detection":{"type":"server_vad","prefix_padding_ms":100,"silence_duration_ms":200}}}}})");
  ASSERT_EQ(c.next()["type"], "session.updated");
  c.send(R"({"type":"response.create"})");
  c.until("response.output_audio.delta");
  c.until("response.output_audio.delta");  // stalled after 200 ms: in progress
  // 200 ms of silence, then loud speech: voiced from 200 ms, started after 3 blocks.
  c.send(append(pcm(200, 0)));
  c.send(append(pcm(100, 8000)));
  auto got = c.until("response.done");
  ASSERT_EQ(got.front()["type"], "input_audio_buffer.speech_started");
  EXPECT_EQ(got.front()["audio_start_ms"], 100);  // 200 - prefix_padding_ms
  EXPECT_EQ(got.front()["item_id"], "item_0_2");
  EXPECT_EQ(got.back().at("response").at("status_details").at("reason"), "turn_detected");
  // Silence: stopped after 200 ms of it, committed, transcribed, answered.
  c.send(append(pcm(300, 0)));
  got = c.until("response.created");
  EXPECT_EQ(types_of(got),
            (std::vector<std::string>{
                "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
                "conversation.item.added", "conversation.item.done",
                "conversation.item.input_audio_transcription.completed", "response.created"}));
  EXPECT_EQ(got[0]["audio_end_ms"], 500);  // 300 ms of audio + 200 ms of silence
  EXPECT_EQ(got[0]["item_id"], "item_0_2");
  EXPECT_EQ(got[1]["item_id"], "item_0_2");
  EXPECT_EQ(got[4]["transcript"], "stop please");
  got = c.until("response.done");
  EXPECT_EQ(got.back().at("response").at("status"), "completed");
  // Committed user audio: up to the stop, 500 ms -> 5 input audio tokens.
  EXPECT_EQ(got.back().at("response").at("usage").at("input_token_details").at("audio_tokens"), 5);
  EXPECT_EQ(mock.appended_bytes(0), 600u * 48u);
}

TEST(MockRealtime, FunctionCallThenItsOutput) {
  MockRealtime mock;
  mock.push_script(MockRealtime::Script::function_call("transfer_call", R"({"to":"sales"})"));
  Client c(mock);
  c.next();
  c.send(R"({"type":"response.create"})");
  auto got = c.until("response.done");
  EXPECT_EQ(types_of(got),
            (std::vector<std::string>{
                "response.created", "response.output_item.added", "conversation.item.added",
                "response.function_call_arguments.delta", "response.function_call_arguments.delta",
                "response.function_call_arguments.done", "response.output_item.done",
                "conversation.item.done", "response.done"}));
  const auto& done = got[5];
  EXPECT_EQ(done.at("call_id"), "call_0_1");
  EXPECT_EQ(done.at("name"), "transfer_call");
  EXPECT_EQ(done.at("arguments"), R"({"to":"sales"})");
  EXPECT_EQ(
      std::string(got[3].at("delta").as_string()) + std::string(got[4].at("delta").as_string()),
      R"({"to":"sales"})");
  c.send(R"({"type":"conversation.item.create","event_id":"o1","item":{
      "type":"function_call_output","call_id":"call_9","output":"{}"}})");
  auto e = c.next();
  EXPECT_EQ(err_of(e).at("param"), "item.call_id");
  EXPECT_EQ(err_of(e).at("event_id"), "o1");
  c.send(R"({"type":"conversation.item.create","item":{
      "type":"function_call_output","call_id":"call_0_1","output":"{\"ok\":true}"}})");
  e = c.next();
  EXPECT_EQ(e["type"], "conversation.item.added");
  EXPECT_EQ(e["previous_item_id"], "item_0_1");
  EXPECT_EQ(e.at("item").at("call_id"), "call_0_1");
}

TEST(MockRealtime, UpgradesAreRefusedLikeTheService) {
  MockRealtime mock;
  {
    Client c(mock, "/v1/realtime?model=gpt-realtime",
             {{"Authorization", "Bearer sk-wrong-key-1234"}});
    EXPECT_EQ(c.handshake_error(), websocket::error::upgrade_declined);
    EXPECT_EQ(c.response().result_int(), 401);
    const auto body = json::parse(c.response().body());
    EXPECT_EQ(body.at("error").at("code"), "invalid_api_key");
    EXPECT_EQ(body.at("error").at("type"), "invalid_request_error");
    EXPECT_EQ(c.response().body().find("sk-wrong"), std::string::npos);  // the key is masked
  }
  {
    Client c(mock, "/v1/realtime/other?model=gpt-realtime");
    EXPECT_EQ(c.response().result_int(), 404);
  }
  {
    Client c(mock, "/v1/realtime?model=gpt-4o");
    EXPECT_EQ(c.response().result_int(), 404);
    EXPECT_EQ(json::parse(c.response().body()).at("error").at("code"), "model_not_found");
  }
  {
    Client c(mock, {},
             {{"Authorization", "Bearer sk-mock-0123456789"}, {"OpenAI-Beta", "realtime=v1"}});
    EXPECT_EQ(c.response().result_int(), 400);
  }
  mock.refuse_next(429, R"({"error":{"code":"rate_limit_exceeded"}})", "7");
  {
    Client c(mock);
    EXPECT_EQ(c.response().result_int(), 429);
    EXPECT_EQ(c.response()["Retry-After"], "7");
    EXPECT_EQ(c.response().body(), R"({"error":{"code":"rate_limit_exceeded"}})");
  }
  Client ok(mock);
  EXPECT_FALSE(ok.handshake_error());
  EXPECT_EQ(ok.next()["type"], "session.created");
  EXPECT_EQ(mock.connection_count(), 1u);
  const auto ups = mock.upgrades();
  ASSERT_EQ(ups.size(), 6u);
  EXPECT_EQ(ups[0].status, 401);
  EXPECT_EQ(ups[0].auth, "bearer");
  EXPECT_EQ(ups[5].status, 101);
}

TEST(MockRealtime, AzureModeWantsTheApiKeyHeaderAndTheDeployment) {
  MockRealtime::Options o;
  o.api = MockRealtime::Api::azure;
  o.model = "my-realtime";
  MockRealtime mock(o);
  {
    Client c(mock, "/openai/v1/realtime?model=my-realtime",
             {{"Authorization", "Bearer sk-mock-0123456789"}});
    EXPECT_EQ(c.response().result_int(), 401);
  }
  {
    Client c(mock, "/openai/v1/realtime?model=other");
    EXPECT_EQ(c.response().result_int(), 404);
  }
  Client preview(mock, "/openai/realtime?api-version=2025-04-01-preview&deployment=my-realtime");
  EXPECT_FALSE(preview.handshake_error());
  Client ga(mock);  // url(): /openai/v1/realtime?model=my-realtime, api-key header
  EXPECT_FALSE(ga.handshake_error());
  EXPECT_EQ(ga.next()["type"], "session.created");
  EXPECT_EQ(mock.connection_count(), 2u);
}

TEST(MockRealtime, TlsWithTheMocksCertificate) {
  MockRealtime::Options o;
  o.tls = true;
  MockRealtime mock(o);
  EXPECT_EQ(mock.url().substr(0, 16), "wss://localhost:");
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(mock.ca_file());
  websocket::stream<asio::ssl::stream<tcp::socket>> ws(io, ctx);
  beast::get_lowest_layer(ws).connect({asio::ip::make_address("127.0.0.1"), mock.port()});
  ws.next_layer().set_verify_mode(asio::ssl::verify_peer);
  ws.next_layer().set_verify_callback(asio::ssl::host_name_verification("localhost"));
  ASSERT_TRUE(SSL_set_tlsext_host_name(ws.next_layer().native_handle(), "localhost"));
  ws.next_layer().handshake(asio::ssl::stream_base::client);
  const auto headers = mock.auth_headers();
  ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& r) {
    for (const auto& [k, v] : headers) r.set(k, v);
  }));
  ws.handshake("localhost", "/v1/realtime?model=gpt-realtime");
  beast::flat_buffer buf;
  ws.read(buf);
  EXPECT_EQ(json::parse(beast::buffers_to_string(buf.data())).at("type"), "session.created");
}

TEST(MockRealtime, ThreeHundredCallsAtOnceEachWithItsOwnSessionAndReply) {
  MockRealtime::Options o;
  o.io_threads = 3;
  o.record_sent = false;
  MockRealtime mock(o);
  mock.set_default_script(MockRealtime::Script::speech("Hi.", 200));
  constexpr std::size_t kCalls = 300;  // what the benchmark holds
  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t i = 0; i < kCalls; ++i) clients.push_back(std::make_unique<Client>(mock));
  for (auto& c : clients) EXPECT_EQ(c->next()["type"], "session.created");
  ASSERT_TRUE(mock.wait_until([&] { return mock.open_count() == kCalls; }));
  std::set<std::string> ids;
  for (std::size_t i = 0; i < kCalls; ++i)
    ids.insert(std::string(mock.session(i).at("id").as_string()));
  EXPECT_EQ(ids.size(), kCalls);
  // Every call has a response in flight at once; each gets all of its own audio.
  for (auto& c : clients) c->send(R"({"type":"response.create"})");
  for (std::size_t i = 0; i < kCalls; ++i) {
    std::size_t bytes = 0;
    for (const auto& e : clients[i]->until("response.done"))
      if (e.at("type") == "response.output_audio.delta")
        bytes += unb64(e.at("delta").as_string()).size();
    EXPECT_EQ(bytes, 200u * 48u) << "call " << i;
  }
  EXPECT_TRUE(mock.sent(0).empty());  // record_sent off
  clients[3].reset();
  EXPECT_TRUE(mock.wait_until([&] { return mock.open_count() == kCalls - 1; }));
  mock.send(5, R"({"type":"rate_limits.updated","custom":1})");
  EXPECT_EQ(clients[5]->next()["custom"], 1);
  mock.send_rate_limits(6);
  EXPECT_EQ(clients[6]->next()["type"], "rate_limits.updated");
  mock.close(7, 4000, "bye");
  EXPECT_EQ(clients[7]->read_end(), websocket::error::closed);
  EXPECT_EQ(clients[7]->close_reason().code, 4000);
  EXPECT_EQ(clients[7]->close_reason().reason, "bye");
  mock.drop(8);
  const auto ec = clients[8]->read_end();
  EXPECT_TRUE(ec && ec != websocket::error::closed && ec != beast::error::timeout) << ec.message();
  EXPECT_TRUE(mock.wait_until([&] { return mock.open_count() == kCalls - 3; }));
}

}  // namespace

TEST(MockRealtime, TheObserverSeesSessionsAppendsAndEachDeltaAsItIsWritten) {
  struct Seen {
    std::mutex mu;
    std::string instructions, format;
    std::vector<std::uint8_t> audio;
    std::vector<std::size_t> chunks;
  };
  auto seen = std::make_shared<Seen>();
  MockRealtime::Options o;
  o.record_appends = false;
  o.observer.session = [seen](std::size_t conn, const json::object& s) {
    std::lock_guard lock(seen->mu);
    EXPECT_EQ(conn, 0u);
    seen->instructions = std::string(s.at("instructions").as_string());
  };
  o.observer.append = [seen](std::size_t, const std::vector<std::uint8_t>& a,
                             const std::string& f) {
    std::lock_guard lock(seen->mu);
    seen->audio.insert(seen->audio.end(), a.begin(), a.end());
    seen->format = f;
  };
  o.observer.audio_delta = [seen](std::size_t, std::size_t chunk) {
    std::lock_guard lock(seen->mu);
    seen->chunks.push_back(chunk);
  };
  MockRealtime mock(o);
  mock.push_script(MockRealtime::Script::speech("Hi there friend.", 250));
  Client c(mock);
  c.next();
  auto update = turn_off_vad();
  update["session"].as_object()["instructions"] = "call_id=<abc>";
  c.send(json::serialize(update));
  c.next();
  const std::vector<std::uint8_t> a{1, 2, 3, 4, 250, 251};
  c.send(append(a));
  c.send(R"({"type":"response.create"})");
  c.until("response.done");
  std::lock_guard lock(seen->mu);
  EXPECT_EQ(seen->instructions, "call_id=<abc>");
  EXPECT_EQ(seen->audio, a);
  EXPECT_EQ(seen->format, "audio/pcm");
  // 250 ms in 100 ms chunks: three deltas, each told once, in order.
  EXPECT_EQ(seen->chunks, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(mock.types(0),
            (std::vector<std::string>{"session.update", "response.create"}));  // no append kept
}

TEST(MockRealtime, ListensOnTheGivenPort) {
  unsigned short port = 0;
  {
    MockRealtime any;
    port = any.port();  // free a moment ago
  }
  MockRealtime::Options o;
  o.port = port;
  MockRealtime mock(o);
  EXPECT_EQ(mock.port(), port);
  Client c(mock);
  EXPECT_FALSE(c.handshake_error());
  EXPECT_EQ(c.next()["type"], "session.created");
}
