// The rules dialogue on its own: which intent a turn picks, how slots are filled, and what a
// turn answers over the LLM contract (served in process, read back as a pipeline would).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "voxbridge/dialogue_rules/rules.hpp"

namespace voxbridge::dialogue_rules {
namespace {

RuleSet front_desk() {
  RuleSet r;
  r.name = "front";
  r.fallback = "Sorry?";
  r.no_input = "Still there?";
  r.intents.push_back({"sales",
                       {"sales", "buy"},
                       "1",
                       "Sales, {caller_id}.",
                       Intent::Action::transfer,
                       "100",
                       "from-internal"});
  r.intents.push_back({"person",
                       {"talk to a person", "operator"},
                       "0",
                       "One moment.",
                       Intent::Action::transfer,
                       "200",
                       ""});
  r.intents.push_back(
      {"bye", {"goodbye"}, "9", "Goodbye {caller_name}.", Intent::Action::hangup, "", ""});
  r.intents.push_back(
      {"hours", {"open", "hours"}, "", "It is {time} on {date}.", Intent::Action::none, "", ""});
  return r;
}

std::string name_of(const Intent* i) {
  return i == nullptr ? "(none)" : i->name;
}

TEST(RulesMatch, KeywordsAndPhrasesAreWholeWordsFirstIntentWins) {
  const RuleSet r = front_desk();
  EXPECT_EQ(name_of(match(r, "i would like to talk to sales", "")), "sales");
  EXPECT_EQ(name_of(match(r, "Sales, please!", "")), "sales");  // case and punctuation
  EXPECT_EQ(name_of(match(r, "can i talk to a person", "")), "person");
  EXPECT_EQ(name_of(match(r, "talk to the person", "")), "(none)");  // a phrase is whole
  EXPECT_EQ(name_of(match(r, "salesforce", "")), "(none)");          // whole words only
  EXPECT_EQ(name_of(match(r, "are you open", "")), "hours");
  // Both "buy" (sales) and "operator" (person): the intent written first wins.
  EXPECT_EQ(name_of(match(r, "operator i want to buy", "")), "sales");
  EXPECT_EQ(name_of(match(r, "", "")), "(none)");
  EXPECT_EQ(name_of(match(r, "  ", "")), "(none)");
}

TEST(RulesMatch, DigitsPickTheirIntentBeforeWords) {
  const RuleSet r = front_desk();
  EXPECT_EQ(name_of(match(r, "", "0")), "person");
  EXPECT_EQ(name_of(match(r, "sales", "9")), "bye");
  EXPECT_EQ(name_of(match(r, "sales", "7")), "sales");  // unknown digits: the words decide
  EXPECT_EQ(name_of(match(r, "", "12")), "(none)");     // the whole string must match
}

TEST(RulesSlots, CallerTimeAndDateAreFilled) {
  common::v1::CallInfo call;
  call.set_caller_number("5551234");
  call.set_caller_name("Ada");
  call.set_called_number("7016");
  std::tm t{};
  t.tm_year = 2026 - 1900;
  t.tm_mon = 10;
  t.tm_mday = 3;
  t.tm_wday = 2;
  t.tm_hour = 15;
  t.tm_min = 5;
  EXPECT_EQ(fill_slots("{caller_name} at {caller_id} called {called}.", call, t),
            "Ada at 5 5 5 1 2 3 4 called 7016.");
  EXPECT_EQ(fill_slots("It is {time} on {date}.", call, t),
            "It is 3:05 PM on Tuesday, November 3.");
  t.tm_hour = 0;
  EXPECT_EQ(fill_slots("{time}", call, t), "12:05 AM");
  t.tm_hour = 12;
  EXPECT_EQ(fill_slots("{time}", call, t), "12:05 PM");
  EXPECT_EQ(fill_slots("{caller_id} {caller_name}", common::v1::CallInfo(), t), "unknown caller");
  EXPECT_EQ(fill_slots("{unknown} stays", call, t), "{unknown} stays");
}

/// The service in process; each turn is read back whole.
struct Served {
  explicit Served(std::map<std::string, RuleSet> sets) : service(std::move(sets)) {
    grpc::ServerBuilder b;
    b.RegisterService(&service);
    server = b.BuildAndStart();
    stub = llm::v1::Dialogue::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  }
  ~Served() { server->Shutdown(); }

  struct Turn {
    grpc::Status status;
    std::vector<llm::v1::TurnResponse> said;
  };
  Turn turn(const llm::v1::TurnRequest& req, const std::string& rule_set = "") {
    grpc::ClientContext ctx;
    if (!rule_set.empty()) ctx.AddMetadata("vb-rules", rule_set);
    Turn t;
    auto reader = stub->Turn(&ctx, req);
    llm::v1::TurnResponse r;
    while (reader->Read(&r)) t.said.push_back(r);
    t.status = reader->Finish();
    return t;
  }

  RulesDialogue service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<llm::v1::Dialogue::Stub> stub;
};

llm::v1::TurnRequest words(const std::string& text) {
  llm::v1::TurnRequest req;
  req.set_user_text(text);
  req.mutable_call()->set_caller_number("5551234");
  return req;
}

TEST(RulesDialogue, ATurnSpeaksTheReplyThenAsksForTheAction) {
  Served s({{"front", front_desk()}});
  const auto t = s.turn(words("sales please"));
  ASSERT_TRUE(t.status.ok()) << t.status.error_message();
  ASSERT_EQ(t.said.size(), 3u);
  EXPECT_EQ(t.said[0].text_delta(), "Sales, 5 5 5 1 2 3 4.");
  ASSERT_TRUE(t.said[1].has_action());
  EXPECT_EQ(t.said[1].action().transfer().target(), "100");
  EXPECT_EQ(t.said[1].action().transfer().context(), "from-internal");
  EXPECT_TRUE(t.said[2].has_end_of_turn());
}

TEST(RulesDialogue, HangupCarriesTheFinalWordsAndNothingElse) {
  Served s({{"front", front_desk()}});
  auto req = words("");
  req.add_events()->mutable_dtmf()->set_digits("9");
  const auto t = s.turn(req);
  ASSERT_TRUE(t.status.ok());
  ASSERT_EQ(t.said.size(), 1u);
  EXPECT_EQ(t.said[0].action().hangup().final_words(), "Goodbye caller.");
  EXPECT_EQ(t.said[0].action().hangup().reason(), "rules: bye");
}

TEST(RulesDialogue, SilenceGetsTheRepromptAndAnythingElseTheFallback) {
  Served s({{"front", front_desk()}});
  auto quiet = words("");
  quiet.add_events()->mutable_no_input();
  const auto t = s.turn(quiet);
  ASSERT_EQ(t.said.size(), 2u);
  EXPECT_EQ(t.said[0].text_delta(), "Still there?");
  EXPECT_TRUE(t.said[1].has_end_of_turn());
  const auto other = s.turn(words("what is the weather"));
  ASSERT_EQ(other.said.size(), 2u);
  EXPECT_EQ(other.said[0].text_delta(), "Sorry?");
}

TEST(RulesDialogue, TheMetadataNamesTheRuleSetWhenThereAreSeveral) {
  RuleSet night = front_desk();
  night.fallback = "We are closed.";
  Served s({{"front", front_desk()}, {"night", night}});
  EXPECT_EQ(s.turn(words("hello"), "night").said.at(0).text_delta(), "We are closed.");
  EXPECT_EQ(s.turn(words("hello"), "front").said.at(0).text_delta(), "Sorry?");
  EXPECT_EQ(s.turn(words("hello"), "day").status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.turn(words("hello")).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace voxbridge::dialogue_rules
