// The pipeline's bounds on model text: the sentence splitter's longest piece and the capped
// conversation history.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "voxbridge/pipeline/pipeline.hpp"

namespace voxbridge::pipeline {
namespace {

std::size_t total(const std::vector<std::string>& v) {
  std::size_t n = 0;
  for (const auto& s : v) n += s.size();
  return n;
}

TEST(SentenceSplitter, SplitsAtSentenceEndsAsBefore) {
  SentenceSplitter s;
  EXPECT_EQ(s.add("Hello there. How are"), (std::vector<std::string>{"Hello there."}));
  EXPECT_EQ(s.add(" you today? Fine"), (std::vector<std::string>{"How are you today?"}));
  EXPECT_EQ(s.flush(), "Fine");
}

TEST(SentenceSplitter, TextWithoutSentenceEndsIsCutAtTheLastSpaceBeforeTheLimit) {
  SentenceSplitter s(12, 20);
  std::vector<std::string> out;
  for (int i = 0; i < 10; ++i) {
    for (auto& p : s.add("word ")) out.push_back(p);
  }
  // 50 bytes, no sentence end: pieces of at most 20 bytes, cut after whole words.
  EXPECT_EQ(out, (std::vector<std::string>{"word word word word", "word word word word"}));
  EXPECT_EQ(s.flush(), "word word ");
}

TEST(SentenceSplitter, ALongWordIsCutAtTheLimitButNeverInsideAUtf8Character) {
  SentenceSplitter s(12, 8);
  // "aaaaaaa" + "é" (2 bytes) would reach 9 bytes: the cut falls before the "é".
  const auto out = s.add(
      "aaaaaaa\xc3\xa9"
      "bbbbbbbbbbbbbbbbb");
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out[0], "aaaaaaa");
  EXPECT_EQ(out[1],
            "\xc3\xa9"
            "bbbbbb");
  for (const auto& p : out) EXPECT_LE(p.size(), 8u);
}

TEST(SentenceSplitter, NeverHoldsMoreThanItsLimitWhateverTheDelta) {
  SentenceSplitter s;  // kMaxSentenceBytes
  const std::string huge(1 << 20, 'x');
  const auto out = s.add(huge);
  for (const auto& p : out) ASSERT_EQ(p.size(), kMaxSentenceBytes);
  EXPECT_EQ(total(out) + s.flush().size(), huge.size());  // nothing lost, nothing added
}

TEST(ConversationHistory, DropsTheOldestMessagesOverTheCountKeepingSystemOnes) {
  ConversationHistory h(3, 1000);
  h.add(llm::v1::SYSTEM, "rules");
  h.add(llm::v1::ASSISTANT, "a1");
  h.add(llm::v1::USER, "u1");
  h.add(llm::v1::ASSISTANT, "a2");
  ASSERT_EQ(h.messages().size(), 3u);
  EXPECT_EQ(h.messages()[0].text(), "rules");
  EXPECT_EQ(h.messages()[1].text(), "u1");
  EXPECT_EQ(h.messages()[2].text(), "a2");
  EXPECT_EQ(h.bytes(), 9u);
}

TEST(ConversationHistory, DropsTheOldestMessagesOverTheBytesButKeepsTheNewest) {
  ConversationHistory h(100, 10);
  h.add(llm::v1::USER, "12345");
  h.add(llm::v1::ASSISTANT, "6789");
  h.add(llm::v1::USER, "abc");  // 12 bytes: the first goes
  ASSERT_EQ(h.messages().size(), 2u);
  EXPECT_EQ(h.messages()[0].text(), "6789");
  EXPECT_EQ(h.bytes(), 7u);
  h.add(llm::v1::ASSISTANT, std::string(50, 'z'));  // alone over the cap: kept, alone
  ASSERT_EQ(h.messages().size(), 1u);
  EXPECT_EQ(h.bytes(), 50u);
  EXPECT_FALSE(h.drop_last_if(llm::v1::USER, std::string(50, 'z')));
  EXPECT_TRUE(h.drop_last_if(llm::v1::ASSISTANT, std::string(50, 'z')));
  EXPECT_EQ(h.bytes(), 0u);
}

TEST(ConversationHistory, AThousandTurnsStayWithinTheDefaultCaps) {
  ConversationHistory h;
  for (int i = 0; i < 1000; ++i) {
    h.add(llm::v1::USER, std::string(300, 'u'));
    h.add(llm::v1::ASSISTANT, std::string(kMaxReplyBytes, 'a'));
  }
  EXPECT_LE(h.messages().size(), kMaxHistoryMessages);
  EXPECT_LE(h.bytes(), kMaxHistoryBytes);
  EXPECT_EQ(h.messages().back().text().size(), kMaxReplyBytes);
}

TEST(ConversationHistory, AToolRoundGoesWholeSoNoCallIsLeftWithoutItsAnswer) {
  ConversationHistory h(3, 1000);
  common::v1::ToolCall c;
  c.set_id("call_1");
  c.set_name("order_status");
  c.set_arguments_json("{}");  // 2 bytes, counted
  h.add(llm::v1::USER, "u1");
  h.add_tool_round("a1", {c}, {}, "no result yet");
  ASSERT_EQ(h.messages().size(), 3u);
  EXPECT_EQ(h.messages()[2].role(), llm::v1::TOOL);
  EXPECT_EQ(h.messages()[2].tool_call_id(), "call_1");
  EXPECT_EQ(h.messages()[2].text(), "no result yet");
  EXPECT_TRUE(h.answer("call_1", "ok"));
  EXPECT_FALSE(h.answer("call_9", "ok"));
  EXPECT_EQ(h.messages()[2].text(), "ok");
  EXPECT_EQ(h.bytes(), 2u + 2u + 2u + 2u);
  h.add(llm::v1::USER, "u2");  // over the count: u1 goes
  ASSERT_EQ(h.messages().size(), 3u);
  EXPECT_EQ(h.messages()[0].tool_calls_size(), 1);
  h.add(llm::v1::ASSISTANT, "a2");  // the call goes with its answer
  ASSERT_EQ(h.messages().size(), 2u);
  EXPECT_EQ(h.messages()[0].text(), "u2");
  EXPECT_EQ(h.messages()[1].text(), "a2");
  EXPECT_EQ(h.bytes(), 4u);
  // A reply with calls is not dropped as if it were a plain one (barge-in bookkeeping).
  h.add_tool_round("a3", {c}, {"ok"}, "");
  EXPECT_FALSE(h.drop_last_if(llm::v1::ASSISTANT, "a3"));
}

}  // namespace
}  // namespace voxbridge::pipeline
