// Deepgram's Live Audio protocol as voxbridge speaks it (listen.hpp): the socket's URL for a
// call's audio, and the server's messages taken apart, shaped as the reference's examples
// (https://developers.deepgram.com/reference/speech-to-text/listen-streaming).
#include "voxbridge/asr_deepgram/listen.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace voxbridge::asr_deepgram {
namespace {

using Enc = AudioFormat::Encoding;

TEST(DeepgramListen, TheUrlOfAG711LegAsksForMulawAt8kHzWithTheTurnOptions) {
  DeepgramOptions o;
  const std::vector<std::string> none;
  EXPECT_EQ(listen_url(o, {Enc::mulaw, 8000}, "en-US", none),
            "wss://api.deepgram.com/v1/listen?model=nova-3&encoding=mulaw&sample_rate=8000"
            "&channels=1&interim_results=true&endpointing=300&utterance_end_ms=1000"
            "&vad_events=true&smart_format=true&language=en-US");
}

TEST(DeepgramListen, OptionsOverrideTheAgentsLanguageAndOffSwitchesAreSpelledOut) {
  DeepgramOptions o;
  o.url = "ws://127.0.0.1:9/v1/listen";
  o.model = "nova-2-phonecall";
  o.language = "de";
  o.endpointing = std::chrono::milliseconds(0);
  o.utterance_end = std::chrono::milliseconds(0);
  o.vad_events = false;
  o.smart_format = false;
  const std::vector<std::string> none;
  EXPECT_EQ(listen_url(o, {Enc::linear16, 16000}, "en-US", none),
            "ws://127.0.0.1:9/v1/listen?model=nova-2-phonecall&encoding=linear16"
            "&sample_rate=16000&channels=1&interim_results=true&endpointing=false"
            "&vad_events=false&smart_format=false&language=de");
}

TEST(DeepgramListen, HintsAreKeytermsForNova3AndKeywordsBeforeItPercentEncodedAndBounded) {
  DeepgramOptions o;
  std::vector<std::string> hints = {"sales", "Acme & Co", "", std::string(101, 'x')};
  const std::string u3 = listen_url(o, {Enc::mulaw, 8000}, "", hints);
  EXPECT_NE(u3.find("&keyterm=sales&keyterm=Acme%20%26%20Co"), std::string::npos) << u3;
  EXPECT_EQ(u3.find("keyterm=&"), std::string::npos);  // empty hints are not sent
  EXPECT_EQ(u3.find("xxxxx"), std::string::npos);      // nor ones over 100 bytes
  EXPECT_EQ(u3.find("language="), std::string::npos);  // no language: Deepgram's default
  o.model = "nova-2";
  const std::string u2 = listen_url(o, {Enc::mulaw, 8000}, "", hints);
  EXPECT_NE(u2.find("&keywords=sales&keywords=Acme%20%26%20Co"), std::string::npos) << u2;
  std::vector<std::string> many(80, "w");
  const std::string u = listen_url(o, {Enc::mulaw, 8000}, "", many);
  std::size_t n = 0;
  for (auto at = u.find("keywords="); at != std::string::npos; at = u.find("keywords=", at + 1)) {
    ++n;
  }
  EXPECT_EQ(n, kMaxHints);
}

TEST(DeepgramListen, AResultsMessageFromTheReferenceIsTakenApart) {
  const auto m = parse_server_message(R"({
    "type": "Results", "channel_index": [0, 1], "duration": 1.98, "start": 5.99,
    "is_final": true, "speech_final": true,
    "channel": {"alternatives": [{"transcript": "Another big problem in the speech analytics space.",
      "confidence": 0.99902344, "words": [{"word": "another", "start": 6.08, "end": 6.32,
      "confidence": 0.9980469, "punctuated_word": "Another"}]}]},
    "metadata": {"request_id": "a5ca5c5e", "model_info": {"name": "2-general-nova",
      "version": "2024-01-18.26916", "arch": "nova-3"}, "model_uuid": "c0d1a568"},
    "from_finalize": false})");
  EXPECT_EQ(m.type, ServerMessage::Type::results);
  EXPECT_EQ(m.transcript, "Another big problem in the speech analytics space.");
  EXPECT_DOUBLE_EQ(m.start, 5.99);
  EXPECT_DOUBLE_EQ(m.duration, 1.98);
  EXPECT_NEAR(m.confidence, 0.99902344, 1e-9);
  EXPECT_TRUE(m.is_final);
  EXPECT_TRUE(m.speech_final);
  EXPECT_FALSE(m.from_finalize);
}

TEST(DeepgramListen, TheOtherMessagesAndTheirTimes) {
  const auto u =
      parse_server_message(R"({"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.395})");
  EXPECT_EQ(u.type, ServerMessage::Type::utterance_end);
  EXPECT_DOUBLE_EQ(u.time, 2.395);
  const auto s = parse_server_message(R"({"type":"SpeechStarted","channel":[0],"timestamp":9.54})");
  EXPECT_EQ(s.type, ServerMessage::Type::speech_started);
  EXPECT_DOUBLE_EQ(s.time, 9.54);
  const auto md = parse_server_message(
      R"({"type":"Metadata","transaction_key":"deprecated","request_id":"8c8ebea9-dbec-45fa-a035-e4632cb05b5f","sha256":"e3b0","created":"2024-08-29T22:37:55.202Z","duration":12.5,"channels":1})");
  EXPECT_EQ(md.type, ServerMessage::Type::metadata);
  EXPECT_DOUBLE_EQ(md.time, 12.5);
  EXPECT_EQ(md.request_id, "8c8ebea9-dbec-45fa-a035-e4632cb05b5f");
  // A type the service may add later is passed over, not an error.
  EXPECT_EQ(parse_server_message(R"({"type":"SomethingNew","x":1})").type,
            ServerMessage::Type::other);
  // An empty alternatives list is a result without words.
  const auto e = parse_server_message(
      R"({"type":"Results","start":1,"duration":0.5,"is_final":true,"channel":{"alternatives":[]}})");
  EXPECT_EQ(e.type, ServerMessage::Type::results);
  EXPECT_EQ(e.transcript, "");
}

TEST(DeepgramListen, MalformedMessagesAreNamedNotTrusted) {
  using T = ServerMessage::Type;
  const char* bad[] = {
      "not json",
      "[1,2]",
      R"({"no":"type"})",
      R"({"type":"Results","start":"1","channel":{"alternatives":[]}})",
      R"({"type":"Results","start":-1,"channel":{"alternatives":[]}})",
      R"({"type":"Results","start":1e308,"channel":{"alternatives":[]}})",
      R"({"type":"Results","is_final":"yes","channel":{"alternatives":[]}})",
      R"({"type":"Results","start":1})",
      R"({"type":"Results","channel":{"alternatives":[{"confidence":0.5}]}})",
      R"({"type":"Results","channel":{"alternatives":[{"transcript":"a","confidence":7}]}})",
      R"({"type":"UtteranceEnd","last_word_end":"soon"})",
      R"({"type":"SpeechStarted","timestamp":[1]})",
  };
  for (const char* b : bad) {
    const auto m = parse_server_message(b);
    EXPECT_EQ(m.type, T::malformed) << b;
    EXPECT_FALSE(m.why.empty()) << b;
  }
  const std::string huge = R"({"type":"Results","channel":{"alternatives":[{"transcript":")" +
                           std::string(kMaxTranscriptBytes + 1, 'a') + "\"}]}}";
  EXPECT_EQ(parse_server_message(huge).type, T::malformed);
}

}  // namespace
}  // namespace voxbridge::asr_deepgram
