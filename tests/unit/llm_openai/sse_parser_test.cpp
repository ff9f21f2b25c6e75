#include "voxbridge/llm_openai/sse_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace voxbridge::llm_openai {
namespace {

struct Fed {
  std::vector<std::string> data;
  std::error_code error;
};

Fed feed_all(SseParser& p, const std::vector<std::string_view>& chunks) {
  Fed out;
  for (const auto c : chunks) {
    out.error = p.feed(c, [&](std::string_view d) { out.data.emplace_back(d); });
  }
  return out;
}

// What a Chat Completions stream looks like, with every line end the format allows, a comment
// (OpenRouter and others send ": keep-alive"), fields we ignore, and the closing [DONE].
const std::string kStream =
    ": OPENROUTER PROCESSING\r\n\r\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
    "event: message\r"
    "id: 7\r\n"
    "data:{\"choices\":[]}\r\r"
    "retry: 1000\n"
    "data: [DONE]\r\n\r\n";
const std::vector<std::string> kData = {R"({"choices":[{"delta":{"content":"Hi"}}]})",
                                        R"({"choices":[]})", "[DONE]"};

TEST(SseParser, HandsOnEachDataLineWhereverTheChunksAreCut) {
  for (std::size_t cut = 0; cut <= kStream.size(); ++cut) {
    SseParser p;
    const std::string_view s = kStream;
    const auto r = feed_all(p, {s.substr(0, cut), s.substr(cut)});
    EXPECT_FALSE(r.error) << "cut at " << cut;
    EXPECT_EQ(r.data, kData) << "cut at " << cut;
    EXPECT_EQ(p.pending_bytes(), 0u);
  }
  // And one byte at a time.
  SseParser p;
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < kStream.size(); ++i)
    bytes.push_back(std::string_view(kStream).substr(i, 1));
  EXPECT_EQ(feed_all(p, bytes).data, kData);
}

TEST(SseParser, ACrLfSplitAcrossChunksIsOneLineEnd) {
  // CR ends the line at once (the data is handed on before the LF arrives); the LF that follows
  // in the next chunk is not a second, blank line.
  SseParser p;
  std::vector<std::string> seen;
  const auto on = [&](std::string_view d) { seen.emplace_back(d); };
  EXPECT_FALSE(p.feed("data: a\r", on));
  EXPECT_EQ(seen, std::vector<std::string>{"a"});
  EXPECT_FALSE(p.feed("", on));  // an empty read keeps the pending CR
  EXPECT_FALSE(p.feed("\ndata: b\n", on));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
}

TEST(SseParser, ReadsFieldsAsTheFormatSays) {
  SseParser p;
  const auto r = feed_all(p, {"data\n"               // no colon: the field, empty value
                              "data:  two spaces\n"  // only one space is dropped
                              "data:\n"
                              "dataX: not data\n"
                              " data: not data\n"
                              ":data: a comment\n"
                              "data: a: b\n"
                              "data: no line end yet"});
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.data, (std::vector<std::string>{"", " two spaces", "", "a: b"}));
  EXPECT_EQ(p.pending_bytes(), std::string("data: no line end yet").size());
}

TEST(SseParser, ALineOverTheLimitStopsTheParserAndFreesTheLine) {
  SseParser p(16);
  std::vector<std::string> seen;
  const auto on = [&](std::string_view d) { seen.emplace_back(d); };
  EXPECT_FALSE(p.feed("data: 0123456789\n", on));  // 16 bytes: at the limit is fine
  EXPECT_FALSE(p.feed("data: 01234", on));
  EXPECT_FALSE(p.feed("56789", on));  // 16 held
  EXPECT_EQ(p.pending_bytes(), 16u);
  EXPECT_EQ(p.feed("X", on), SseError::line_too_long);
  EXPECT_EQ(p.pending_bytes(), 0u);
  EXPECT_EQ(p.feed("\ndata: late\n", on), SseError::line_too_long);  // stays stopped
  EXPECT_EQ(seen, std::vector<std::string>{"0123456789"});

  // A long line inside one chunk, complete or not, is refused the same way.
  SseParser q(16);
  EXPECT_EQ(q.feed("data: " + std::string(11, 'x') + "\n", on), SseError::line_too_long);
  SseParser r(16);
  EXPECT_EQ(r.feed(std::string(1 << 20, 'x'), on), SseError::line_too_long);
  EXPECT_EQ(r.pending_bytes(), 0u);
  EXPECT_EQ(make_error_code(SseError::line_too_long).message(),
            "event-stream line longer than the limit");
}

TEST(SseParser, ManySmallChunksOfOneLongLineAreEachScannedOnce) {
  // 64 KiB line fed one byte at a time: the held line grows by one byte per feed and the data
  // is handed on once, whole.
  SseParser p;
  std::vector<std::string> seen;
  const auto on = [&](std::string_view d) { seen.emplace_back(d); };
  const std::string line = "data: " + std::string(SseParser::kMaxLineBytes - 6, 'y');
  for (std::size_t i = 0; i < line.size(); ++i) {
    ASSERT_FALSE(p.feed(std::string_view(line).substr(i, 1), on));
    ASSERT_EQ(p.pending_bytes(), i + 1);
  }
  EXPECT_FALSE(p.feed("\n", on));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].size(), SseParser::kMaxLineBytes - 6);
}

}  // namespace
}  // namespace voxbridge::llm_openai
