// The Gemini Live mock against a plain Beast WebSocket client: it wants setup first and once,
// closes what the service refuses with 1007 and the service's reasons, answers a valid setup
// (tests/data/gemini_live/setup.json) with setupComplete and a resumption handle, and resumes a
// session from a handle it issued. For the benchmarks: Options::observer sees the setup, the
// realtimeInput audio and each model turn's audio chunks as they go out, with no_delay and two
// io threads, and nothing kept when record_sent is off.
#include "support/mock_gemini_live.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::ip::tcp;
using voxbridge::testing::MockGeminiLive;
using namespace std::chrono_literals;

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(VB_TEST_DATA) + "/gemini_live/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

/// A client of the mock: connects with the key in the header (or none).
struct Client {
  asio::io_context io;
  websocket::stream<tcp::socket> ws{io};
  beast::flat_buffer buf;

  Client(const MockGeminiLive& m, const std::string& key) {
    tcp::resolver r(io);
    asio::connect(ws.next_layer(), r.resolve("127.0.0.1", std::to_string(m.port())));
    ws.set_option(websocket::stream_base::decorator([key](websocket::request_type& req) {
      if (!key.empty()) req.set("x-goog-api-key", key);
    }));
    ws.handshake("127.0.0.1", MockGeminiLive::kPath);
  }
  void send(const std::string& text) { ws.write(asio::buffer(text)); }
  /// The next message, or nullopt when the socket closed (then ws.reason() says how).
  std::optional<json::value> next() {
    beast::error_code ec;
    buf.consume(buf.size());
    ws.read(buf, ec);
    if (ec) return std::nullopt;
    EXPECT_TRUE(ws.got_binary());  // the service's JSON comes in binary frames
    return json::parse(beast::buffers_to_string(buf.data()));
  }
  /// Reads until the close; its code and reason.
  std::pair<int, std::string> closed() {
    while (next()) {
    }
    return {static_cast<int>(ws.reason().code), std::string(ws.reason().reason.c_str())};
  }
};

TEST(MockGeminiLive, AValidSetupGetsSetupCompleteAndAResumptionHandle) {
  MockGeminiLive mock;
  Client c(mock, mock.api_key());
  c.send(fixture("setup.json"));
  EXPECT_EQ(*c.next(), json::parse(R"({"setupComplete":{}})"));
  EXPECT_EQ(
      *c.next(),
      json::parse(R"({"sessionResumptionUpdate":{"newHandle":"handle_0_1","resumable":true}})"));
  EXPECT_EQ(mock.setup(0), json::parse(fixture("setup.json")).at("setup").as_object());
}

TEST(MockGeminiLive, SetupMustComeFirst) {
  MockGeminiLive mock;
  Client c(mock, mock.api_key());
  c.send(R"({"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"AAAA"}}})");
  EXPECT_EQ(c.closed(),
            (std::pair<int, std::string>{1007, "Request contains an invalid argument."}));
}

TEST(MockGeminiLive, ASecondSetupIsRefused) {
  MockGeminiLive mock;
  Client c(mock, mock.api_key());
  c.send(fixture("setup.json"));
  c.next();
  c.send(fixture("setup.json"));
  EXPECT_EQ(c.closed().first, 1007);
}

TEST(MockGeminiLive, AnUnknownFieldClosesWithGooglesWording) {
  MockGeminiLive mock;
  Client c(mock, mock.api_key());
  c.send(R"({"setup":{"model":"models/x","generationConfig":{"voice":"Puck"}}})");
  EXPECT_EQ(c.closed(),
            (std::pair<int, std::string>{1007,
                                         "Invalid JSON payload received. Unknown name \"voice\" at "
                                         "'setup.generation_config': Cannot find field."}));
}

TEST(MockGeminiLive, ALowercaseSchemaTypeOrABadEnumIsRefused) {
  MockGeminiLive mock;
  Client c(mock, mock.api_key());
  c.send(R"({"setup":{"model":"models/x","tools":[{"functionDeclarations":[{"name":"f",
    "parameters":{"type":"object"}}]}]}})");
  EXPECT_EQ(c.closed().first, 1007);
}

TEST(MockGeminiLive, AWrongKeyOpensTheSocketAndClosesItWith1007) {
  MockGeminiLive mock;
  Client c(mock, "AIza-wrong");
  EXPECT_EQ(c.closed(),
            (std::pair<int, std::string>{1007, "API key not valid. Please pass a valid API key."}));
}

TEST(MockGeminiLive, ASessionResumesFromAHandleItIssuedAndNotFromAnother) {
  MockGeminiLive mock;
  {
    Client c(mock, mock.api_key());
    c.send(fixture("setup.json"));
    c.next();
    c.next();
  }
  auto with_handle = [](const std::string& h) {
    json::value s = json::parse(fixture("setup.json"));
    s.at("setup").as_object()["sessionResumption"] = json::object{{"handle", h}};
    return json::serialize(s);
  };
  Client ok(mock, mock.api_key());
  ok.send(with_handle("handle_0_1"));
  EXPECT_EQ(*ok.next(), json::parse(R"({"setupComplete":{}})"));
  EXPECT_EQ(mock.resumed_handle(1), "handle_0_1");
  Client bad(mock, mock.api_key());
  bad.send(with_handle("handle_9_9"));
  EXPECT_EQ(bad.closed().first, 1007);
}

TEST(MockGeminiLive, GoAwayTellsTheTimeLeftThenClosesNormally) {
  MockGeminiLive mock;
  Client c(mock, mock.api_key());
  c.send(fixture("setup.json"));
  c.next();
  c.next();
  mock.go_away(0, 100ms);
  EXPECT_EQ(*c.next(), json::parse(R"({"goAway":{"timeLeft":"0.100s"}})"));
  EXPECT_EQ(c.closed().first, 1000);
}

TEST(MockGeminiLive, TheObserverSeesSetupInputAudioAndEachTurnsAudioChunks) {
  std::mutex mu;
  std::string instruction;
  std::vector<std::uint8_t> audio;
  int rate = 0;
  std::vector<std::size_t> chunks;
  MockGeminiLive::Options o;
  o.no_delay = true;
  o.io_threads = 2;
  o.record_sent = false;
  o.observer.setup = [&](std::size_t conn, const json::object& setup) {
    std::lock_guard lock(mu);
    EXPECT_EQ(conn, 0u);
    instruction = setup.at("systemInstruction").at("parts").at(0).at("text").as_string();
  };
  o.observer.input_audio = [&](std::size_t, const std::vector<std::uint8_t>& pcm, int r) {
    std::lock_guard lock(mu);
    audio.insert(audio.end(), pcm.begin(), pcm.end());
    rate = r;
  };
  o.observer.audio_chunk = [&](std::size_t, std::size_t chunk) {
    std::lock_guard lock(mu);
    chunks.push_back(chunk);
  };
  MockGeminiLive mock(o);
  mock.set_default_script(MockGeminiLive::Script::speech("Hi.", 250));
  Client c(mock, mock.api_key());
  c.send(
      R"({"setup":{"model":"models/x","systemInstruction":{"parts":[{"text":"call_id=<id-1>"}]}}})");
  EXPECT_TRUE(c.next()->as_object().contains("setupComplete"));
  c.send(R"({"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"AQACAA=="}}})");
  for (int turn = 0; turn < 2; ++turn) {
    c.send(R"({"clientContent":{"turnComplete":true}})");
    for (;;) {
      const auto m = c.next();
      ASSERT_TRUE(m);
      const auto* sc = m->as_object().if_contains("serverContent");
      if (sc && sc->as_object().contains("turnComplete")) break;
    }
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(instruction, "call_id=<id-1>");
  EXPECT_EQ(audio, (std::vector<std::uint8_t>{1, 0, 2, 0}));
  EXPECT_EQ(rate, 16000);
  // 250 ms in 100 ms chunks: three per turn, each turn's first is chunk 0.
  EXPECT_EQ(chunks, (std::vector<std::size_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_TRUE(mock.sent(0).empty());
}

}  // namespace
