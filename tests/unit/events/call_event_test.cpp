#include "voxbridge/events/call_event.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace voxbridge::events {
namespace {

using std::chrono::milliseconds;

/// `line` parsed back (strictly: Boost.JSON refuses text that is not UTF-8 by default).
boost::json::value parsed(const std::string& line) {
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << line;
  return v;
}

CallFacts facts() {
  CallFacts f;
  f.uuid = "0f0e0d0c-0b0a-4908-8706-050403020100";
  f.listener = "main";
  f.agent = "receptionist";
  f.peer = "127.0.0.1:40000";
  f.started_unix_ms = 1700000000123;
  return f;
}

TEST(CallEvent, StartSaysTheSchemaVersionThenTheCallsFacts) {
  EXPECT_EQ(start(facts()).serialize(milliseconds(0)),
            R"({"t_ms":0,"type":"start","schema":2,"uuid":"0f0e0d0c-0b0a-4908-8706-050403020100",)"
            R"("listener":"main","agent":"receptionist","route":"","peer":"127.0.0.1:40000",)"
            R"("started_unix_ms":1700000000123})");
  auto f = facts();
  f.route = "sales";
  f.channel = "PJSIP/trunk-00000012";
  f.caller_number = "+15551234567";
  f.caller_name = "Ann";
  f.called_number = "100";
  f.variables = {{"VB_LANGUAGE", "de"}, {"VB_AGENT", "sales"}};
  EXPECT_EQ(start(f).serialize(milliseconds(7)),
            R"({"t_ms":7,"type":"start","schema":2,"uuid":"0f0e0d0c-0b0a-4908-8706-050403020100",)"
            R"("listener":"main","agent":"receptionist","route":"sales","peer":"127.0.0.1:40000",)"
            R"("started_unix_ms":1700000000123,"channel":"PJSIP/trunk-00000012",)"
            R"("caller_number":"+15551234567","caller_name":"Ann","called_number":"100",)"
            R"("variables":{"VB_AGENT":"sales","VB_LANGUAGE":"de"}})");
  EXPECT_EQ(start(f).type(), Type::start);
}

TEST(CallEvent, WhatTheCallerSaidIsUserOrInterim) {
  EXPECT_EQ(user("i would like to talk to sales").serialize(milliseconds(3480)),
            R"({"t_ms":3480,"type":"user","text":"i would like to talk to sales"})");
  EXPECT_EQ(interim("i would").serialize(milliseconds(3120)),
            R"({"t_ms":3120,"type":"interim","text":"i would"})");
}

TEST(CallEvent, APipelineReplyHasItsTurnAndLatencyAnS2sTranscriptOnlyItsText) {
  EXPECT_EQ(agent_reply(2, "Connecting you to sales.", 730).serialize(milliseconds(4210)),
            R"({"t_ms":4210,"type":"agent","turn":2,"text":"Connecting you to sales.",)"
            R"("latency_ms":730})");
  EXPECT_EQ(agent_reply(1, "Hello.", std::nullopt).serialize(milliseconds(900)),
            R"({"t_ms":900,"type":"agent","turn":1,"text":"Hello.","latency_ms":null})");
  EXPECT_EQ(agent_reply("Hi there").serialize(milliseconds(5)),
            R"({"t_ms":5,"type":"agent","text":"Hi there"})");
}

TEST(CallEvent, BargeInHasThePipelinesOrTheS2sAgentsShape) {
  EXPECT_EQ(barge_in(3, 1240, "Our opening hours", "Our opening hours are nine to five.")
                .serialize(milliseconds(8000)),
            R"({"t_ms":8000,"type":"barge_in","turn":3,"heard_ms":1240,)"
            R"("heard":"Our opening hours","reply":"Our opening hours are nine to five."})");
  EXPECT_EQ(barge_in(std::int64_t{460}).serialize(milliseconds(8000)),
            R"({"t_ms":8000,"type":"barge_in","dropped_ms":460})");
}

TEST(CallEvent, DtmfAndEnd) {
  EXPECT_EQ(dtmf('5').serialize(milliseconds(5020)), R"({"t_ms":5020,"type":"dtmf","digit":"5"})");
  EXPECT_EQ(end("caller", "caller hung up", 9800).serialize(milliseconds(9800)),
            R"({"t_ms":9800,"type":"end","by":"caller","reason":"caller hung up",)"
            R"("duration_ms":9800})");
}

TEST(CallEvent, EachActionKindWritesItsOwnMembersThenTheResult) {
  ActionFields t;
  t.kind = ActionFields::Kind::transfer;
  t.target = "100";
  EXPECT_EQ(action(t, "").serialize(milliseconds(6200)),
            R"({"t_ms":6200,"type":"action","action":"transfer","target":"100","context":"",)"
            R"("ok":true})");
  EXPECT_EQ(action(t, "", "the socket closes after the reply").serialize(milliseconds(1)),
            R"({"t_ms":1,"type":"action","action":"transfer","target":"100","context":"",)"
            R"("ok":true,"how":"the socket closes after the reply"})");
  EXPECT_EQ(action(t, "denied: not in the allowlist").serialize(milliseconds(1)),
            R"({"t_ms":1,"type":"action","action":"transfer","target":"100","context":"",)"
            R"("ok":false,"error":"denied: not in the allowlist"})");

  ActionFields h;
  h.kind = ActionFields::Kind::hangup;
  h.final_words = "Goodbye.";
  EXPECT_EQ(action(h, "").serialize(milliseconds(2)),
            R"({"t_ms":2,"type":"action","action":"hangup","reason":"",)"
            R"("final_words":"Goodbye.","ok":true})");

  ActionFields d;
  d.kind = ActionFields::Kind::send_dtmf;
  d.digits = "12w#";
  d.duration_ms = 120;
  EXPECT_EQ(action(d, "").serialize(milliseconds(3)),
            R"({"t_ms":3,"type":"action","action":"send_dtmf","digits":"12w#",)"
            R"("duration_ms":120,"ok":true})");

  ActionFields v;
  v.kind = ActionFields::Kind::set_variable;
  v.name = "VB_RESULT";
  v.value = "paid";
  EXPECT_EQ(action(v, "").serialize(milliseconds(4)),
            R"({"t_ms":4,"type":"action","action":"set_variable","name":"VB_RESULT",)"
            R"("value":"paid","ok":true})");

  ActionFields o;
  o.kind = ActionFields::Kind::originate;
  o.number = "2001";
  o.agent = "brief";
  o.variables = {{"VB_TOPIC", "refund"}};
  EXPECT_EQ(action(o, "not configured: no Asterisk control path").serialize(milliseconds(5)),
            R"({"t_ms":5,"type":"action","action":"originate","number":"2001","agent":"brief",)"
            R"("variables":{"VB_TOPIC":"refund"},"ok":false,)"
            R"("error":"not configured: no Asterisk control path"})");

  EXPECT_EQ(action(ActionFields{}, "unknown action").serialize(milliseconds(6)),
            R"({"t_ms":6,"type":"action","action":"unknown","ok":false,"error":"unknown action"})");
}

TEST(CallEvent, HostileTextStaysOneStringMember) {
  // A model's reply that tries to close the string and add members, with control bytes.
  const std::string hostile =
      std::string("a\"b\\c\n\r\t\b\f\x01\x1f\x7f") + '\0' + "\",\"ok\":true";
  const std::string line = user(hostile).serialize(milliseconds(1));
  EXPECT_EQ(line, R"({"t_ms":1,"type":"user","text":"a\"b\\c\n\r\t\b\f\u0001\u001f)"
                  "\x7f"
                  R"(\u0000\",\"ok\":true"})");
  const auto v = parsed(line);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.as_object().size(), 3u);
  EXPECT_EQ(v.at("text").as_string(), hostile);
}

TEST(CallEvent, BoostJsonWouldWriteBytesThatAreNotUtf8AsTheyAre) {
  // Why every string goes through valid_utf8(): Boost.JSON's serializer copies such bytes, and
  // its parser (like any strict consumer) refuses the result.
  const std::string raw = boost::json::serialize(boost::json::string("a\xff"));
  EXPECT_EQ(raw, "\"a\xff\"");
  boost::system::error_code ec;
  (void)boost::json::parse(raw, ec);
  EXPECT_TRUE(ec);
}

TEST(CallEvent, BytesThatAreNotUtf8BecomeReplacementCharactersAndTheLineStaysValid) {
  const std::string bad =
      "caf\xe9 \xc3\xa9 \xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 \xe2\x82";
  const std::string line = user(bad).serialize(milliseconds(0));
  const auto v = parsed(line);
  ASSERT_TRUE(v.is_object());
  // é (Latin-1) -> U+FFFD; é and 😀 (UTF-8) kept; a surrogate (ED A0 80), an overlong '/'
  // (C0 AF), a code point above U+10FFFF and a cut sequence -> one U+FFFD per maximal subpart.
  EXPECT_EQ(v.at("text").as_string(),
            "caf\xef\xbf\xbd \xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
            "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
            "\xef\xbf\xbd");
  // A digit byte from the wire that is no character at all.
  EXPECT_EQ(dtmf('\x80').serialize(milliseconds(0)),
            "{\"t_ms\":0,\"type\":\"dtmf\",\"digit\":\"\xef\xbf\xbd\"}");
  // Keys of variables are mended too.
  auto f = facts();
  f.variables = {{"VB_\xff", "x\xfe"}};
  const auto s = parsed(start(f).serialize(milliseconds(0)));
  EXPECT_EQ(s.at("variables").at("VB_\xef\xbf\xbd").as_string(), "x\xef\xbf\xbd");
}

TEST(CallEvent, ValidUtf8LeavesValidTextAlone) {
  EXPECT_EQ(valid_utf8(""), "");
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("Grüße, 你好 \xf4\x8f\xbf\xbf"), "Grüße, 你好 \xf4\x8f\xbf\xbf");
  EXPECT_EQ(valid_utf8("\x80"), "\xef\xbf\xbd");
  EXPECT_EQ(valid_utf8("a\xf0\x9f\x98"), "a\xef\xbf\xbd");  // cut at the end: one U+FFFD
}

TEST(CallEvent, WebhookBodiesCarryTheSchemaVersion) {
  EXPECT_EQ(call_started_body(facts()),
            R"({"event":"call_started","schema":2,"uuid":"0f0e0d0c-0b0a-4908-8706-050403020100",)"
            R"("listener":"main","agent":"receptionist","route":"","peer":"127.0.0.1:40000",)"
            R"("started_unix_ms":1700000000123})");
  const std::vector<std::string> lines = {start(facts()).serialize(milliseconds(0)),
                                          dtmf('7').serialize(milliseconds(200))};
  const std::string ended = call_ended_body(facts(), end("caller", "caller hung up", 600), lines);
  EXPECT_EQ(ended,
            R"({"event":"call_ended","schema":2,"uuid":"0f0e0d0c-0b0a-4908-8706-050403020100",)"
            R"("listener":"main","agent":"receptionist","route":"","peer":"127.0.0.1:40000",)"
            R"("started_unix_ms":1700000000123,"by":"caller","reason":"caller hung up",)"
            R"("duration_ms":600,"transcript":[)" +
                lines[0] + "," + lines[1] + "]}");
  EXPECT_EQ(parsed(ended).at("transcript").as_array().size(), 2u);
  EXPECT_EQ(call_ended_body(facts(), end("server", "x", 1), {}).substr(0, 33),
            R"({"event":"call_ended","schema":2,)");
  EXPECT_TRUE(call_ended_body(facts(), end("server", "x", 1), {}).ends_with(R"("transcript":[]})"));
  const std::string item = action(ActionFields{}, "unknown action").serialize(milliseconds(6));
  const std::string body = action_body("0f0e0d0c-0b0a-4908-8706-050403020100", item);
  EXPECT_EQ(body, R"({"event":"action","schema":2,"uuid":"0f0e0d0c-0b0a-4908-8706-050403020100",)"
                  R"("item":)" +
                      item + "}");
  EXPECT_EQ(parsed(body).at("item").at("error").as_string(), "unknown action");
}

TEST(CallEvent, TheEventsApiAnswerCarriesTheSchemaVersion) {
  const std::vector<std::string> lines = {dtmf('5').serialize(milliseconds(200))};
  EXPECT_EQ(events_response("u-1", false, 2, lines),
            R"({"uuid":"u-1","ended":false,"next":2,"events":[)" + lines[0] +
                R"(],"schema":2})"
                "\n");
  EXPECT_EQ(events_response("u-1", true, 3, {}),
            "{\"uuid\":\"u-1\",\"ended\":true,\"next\":3,\"events\":[],\"schema\":2}\n");
  EXPECT_EQ(parsed(events_response("u-1", true, 3, lines)).at("schema").as_int64(), 2);
}

TEST(CallEvent, TypeNamesAreTheSchemas) {
  EXPECT_EQ(type_name(Type::start), "start");
  EXPECT_EQ(type_name(Type::user), "user");
  EXPECT_EQ(type_name(Type::interim), "interim");
  EXPECT_EQ(type_name(Type::agent), "agent");
  EXPECT_EQ(type_name(Type::barge_in), "barge_in");
  EXPECT_EQ(type_name(Type::action), "action");
  EXPECT_EQ(type_name(Type::dtmf), "dtmf");
  EXPECT_EQ(type_name(Type::usage), "usage");
  EXPECT_EQ(type_name(Type::end), "end");
}

TEST(CallEvent, UsageHasItsFourCountsInSchemaOrder) {
  EXPECT_EQ(usage(1200, 340, 61000, 17500).serialize(std::chrono::milliseconds(9000)),
            R"({"t_ms":9000,"type":"usage","input_tokens":1200,"output_tokens":340,)"
            R"("input_audio_ms":61000,"output_audio_ms":17500})");
  // A count beyond JSON's exact integers stays an integer: the largest int64.
  EXPECT_EQ(usage(0, ~std::uint64_t{0}, 0, 0).members().at("output_tokens").as_int64(),
            std::numeric_limits<std::int64_t>::max());
}

}  // namespace
}  // namespace voxbridge::events
