#include "voxbridge/asr_openai/transcription.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace voxbridge::asr_openai {
namespace {

TEST(Wav, HeaderAndSamplesAreExact) {
  const std::vector<std::int16_t> pcm = {1, -2, 0x1234};
  const std::string w = wav_file(pcm, 16000);
  ASSERT_EQ(w.size(), 44u + 6u);
  const std::string expected_header(
      "RIFF\x2a\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00"
      "\x00\x7d\x00\x00\x02\x00\x10\x00"
      "data\x06\x00\x00\x00",
      44);
  EXPECT_EQ(w.substr(0, 44), expected_header);
  EXPECT_EQ(w.substr(44), std::string("\x01\x00\xfe\xff\x34\x12", 6));
}

TEST(Request, TakesTheAgentsLanguageSubtagAndHintsWhenTheOptionsNameNone) {
  TranscriptionOptions o;
  o.model = "whisper-1";
  const std::vector<std::string> hints = {"Voxbridge", "FreePBX", "bad\nhint", ""};
  const auto r = make_request(o, "en-US", hints);
  EXPECT_EQ(r.model, "whisper-1");
  EXPECT_EQ(r.language, "en");
  EXPECT_EQ(r.prompt, "Voxbridge, FreePBX");

  o.language = "de";
  o.prompt = "Namen: Müller";
  const auto r2 = make_request(o, "en-US", hints);
  EXPECT_EQ(r2.language, "de");
  EXPECT_EQ(r2.prompt, "Namen: Müller");
}

TEST(Request, ThePromptFromHintsStaysUnder800Bytes) {
  TranscriptionOptions o;
  const std::vector<std::string> hints(100, std::string(30, 'x'));
  const auto r = make_request(o, "", hints);
  EXPECT_LE(r.prompt.size(), 800u);
  EXPECT_GT(r.prompt.size(), 760u);
  EXPECT_TRUE(r.language.empty());
}

TEST(Multipart, TheBodyIsExactlyRfc7578) {
  TranscriptionRequest r;
  r.model = "gpt-4o-mini-transcribe";
  r.language = "en";
  r.prompt = "";
  r.response_format = "json";
  r.stream = true;
  r.temperature = 0.2;
  const std::string b = multipart_body(r, std::string("RIFF\0\r\n", 7));
  const std::string d = "--" + std::string(kBoundary);
  const std::string expected =
      d + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o-mini-transcribe\r\n" +
      d + "\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nen\r\n" + d +
      "\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\njson\r\n" + d +
      "\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\ntrue\r\n" + d +
      "\r\nContent-Disposition: form-data; name=\"temperature\"\r\n\r\n0.2\r\n" + d +
      "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"utterance.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\n" +
      std::string("RIFF\0\r\n", 7) + "\r\n" + d + "--\r\n";
  EXPECT_EQ(b, expected);
  EXPECT_EQ(multipart_content_type(), "multipart/form-data; boundary=" + std::string(kBoundary));
}

TEST(Multipart, AFieldHoldingTheBoundaryOrACrIsRefused) {
  TranscriptionRequest r;
  r.model = "m";
  r.prompt = "x--" + std::string(kBoundary);
  EXPECT_THROW(multipart_body(r, "w"), std::invalid_argument);
  r.prompt = "a\rb";
  EXPECT_THROW(multipart_body(r, "w"), std::invalid_argument);
}

TEST(Answer, PlainJsonWithTokenUsage) {
  const auto t = parse_transcript(
      R"({"text":"I need a plumber.","usage":{"type":"tokens","input_tokens":14,)"
      R"("input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":45,"total_tokens":59}})",
      "application/json", 0.6);
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.text, "I need a plumber.");
  EXPECT_EQ(t.usage_input_tokens, 14u);
  EXPECT_EQ(t.usage_output_tokens, 45u);
}

TEST(Answer, DurationUsageAndPlainText) {
  const auto t = parse_transcript(R"({"text":"hi","usage":{"type":"duration","seconds":3}})",
                                  "application/json", 0.6);
  ASSERT_TRUE(t.ok);
  EXPECT_DOUBLE_EQ(t.usage_seconds, 3.0);
  const auto p = parse_transcript("hello there\n", "text/plain; charset=utf-8", 0.6);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.text, "hello there");
}

TEST(Answer, VerboseJsonDropsTheSegmentsWhisperCallsSilence) {
  const auto t = parse_transcript(
      R"({"task":"transcribe","language":"english","duration":4.2,"text":" Thank you. Book a room.",)"
      R"("segments":[{"id":0,"text":" Thank you.","avg_logprob":-1.4,"no_speech_prob":0.82},)"
      R"({"id":1,"text":" Book a room.","avg_logprob":-0.2,"no_speech_prob":0.01}]})",
      "application/json", 0.6);
  ASSERT_TRUE(t.ok);
  EXPECT_EQ(t.text, "Book a room.");
  EXPECT_EQ(t.silent_segments, 1);
  EXPECT_DOUBLE_EQ(t.usage_seconds, 4.2);
}

TEST(Answer, MalformedAnswersAreErrorsNotText) {
  EXPECT_FALSE(parse_transcript("not json", "application/json", 0.6).ok);
  EXPECT_FALSE(parse_transcript("[1,2]", "application/json", 0.6).ok);
  EXPECT_FALSE(parse_transcript(R"({"text":5})", "application/json", 0.6).ok);
  EXPECT_EQ(parse_transcript(R"({"txt":"a"})", "application/json", 0.6).error,
            "the answer has no \"text\"");
}

TEST(Stream, DeltaDoneOtherAndMalformed) {
  auto e = parse_stream_event(R"({"type":"transcript.text.delta","delta":" I","logprobs":null})");
  EXPECT_EQ(e.kind, StreamEvent::Kind::delta);
  EXPECT_EQ(e.text, " I");
  e = parse_stream_event(
      R"({"type":"transcript.text.done","text":"I see.","usage":{"type":"tokens","input_tokens":7,"output_tokens":3,"total_tokens":10}})");
  EXPECT_EQ(e.kind, StreamEvent::Kind::done);
  EXPECT_EQ(e.text, "I see.");
  EXPECT_EQ(e.usage.usage_output_tokens, 3u);
  EXPECT_EQ(parse_stream_event(R"({"type":"transcript.text.segment"})").kind,
            StreamEvent::Kind::other);
  EXPECT_EQ(parse_stream_event(R"({"type":"transcript.text.delta"})").kind,
            StreamEvent::Kind::malformed);
  EXPECT_EQ(parse_stream_event("{").kind, StreamEvent::Kind::malformed);
}

TEST(Errors, OpenAiAndFastApiBodies) {
  EXPECT_EQ(
      error_message(
          R"({"error":{"message":"Incorrect API key provided: sk-...","type":"invalid_request_error"}})"),
      "Incorrect API key provided: sk-...");
  EXPECT_EQ(error_message(R"({"detail":"Model not found"})"), "Model not found");
  EXPECT_EQ(error_message(std::string(300, 'x')), std::string(200, 'x'));
}

TEST(Answer, ATranscriptOverTheCapIsCutAtACharacterBoundary) {
  std::string t(kMaxTranscriptBytes - 1, 'a');
  t += "\xc3\xa9 and more words";  // é straddles the cap
  cap_transcript(t);
  EXPECT_EQ(t, std::string(kMaxTranscriptBytes - 1, 'a'));
  std::string short_text = "I need a plumber.";
  cap_transcript(short_text);
  EXPECT_EQ(short_text, "I need a plumber.");
}

TEST(Filter, EmptyTranscriptsAreNothingACallerSaid) {
  EXPECT_TRUE(is_empty_transcript(""));
  EXPECT_TRUE(is_empty_transcript(" . . ."));
  EXPECT_TRUE(is_empty_transcript("[BLANK_AUDIO]"));
  EXPECT_TRUE(is_empty_transcript(" (silence) [Music] "));
  EXPECT_FALSE(is_empty_transcript("[Music] yes"));
  EXPECT_FALSE(is_empty_transcript("no"));
  EXPECT_FALSE(is_empty_transcript("42"));
  EXPECT_FALSE(is_empty_transcript("Grüße"));
}

TEST(Filter, KnownPhrasesCompareWithoutCaseSpacesOrPunctuation) {
  EXPECT_EQ(normalized("  Thanks for watching!  "), "thanks for watching");
  EXPECT_EQ(normalized("THANK-YOU..."), "thank you");
  const TranscriptionOptions o;
  EXPECT_TRUE(is_known_phrase("Thank you.", o.hallucinations));
  EXPECT_TRUE(is_known_phrase(" you", o.hallucinations));
  EXPECT_FALSE(is_known_phrase("Thank you, I need a room.", o.hallucinations));
  EXPECT_FALSE(is_known_phrase("...", o.hallucinations));
}

}  // namespace
}  // namespace voxbridge::asr_openai
