// The OpenAI-compatible LLM provider against a mock that speaks the real wire format (chunked
// server-sent events, tool-call deltas, [DONE], HTTP errors, a stalled stream), directly and
// through a whole call.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/fake_providers.hpp"
#include "support/mock_chat_server.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "support/tool_server.hpp"
#include "voxbridge/llm_openai/openai.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/sim/sim_call.hpp"
#include "voxbridge/tools/options.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::MockChatServer;
namespace json = boost::json;

struct Outcome {
  std::vector<std::pair<std::string, double>> texts;  // text, ms since the turn started
  std::vector<common::v1::Action> actions;
  std::vector<common::v1::ToolCall> tool_calls;
  llm_openai::TurnError error;
  double took_ms = 0;
};

Outcome turn(
    const llm_openai::OpenAiOptions& o, const std::string& user,
    std::function<bool()> cancelled = [] { return false; }) {
  llm::v1::TurnRequest req;
  auto* h = req.add_history();
  h->set_role(llm::v1::ASSISTANT);
  h->set_text("Hello, how can I help?");
  req.set_user_text(user);
  req.add_events()->mutable_dtmf()->set_digits("5");
  Outcome out;
  const auto t0 = Clock::now();
  llm_openai::TurnSink sink;
  sink.text = [&](const std::string& t) {
    out.texts.emplace_back(t, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  };
  sink.action = [&](const common::v1::Action& a) { out.actions.push_back(a); };
  sink.cancelled = std::move(cancelled);
  out.error = llm_openai::run_turn(o, req, sink);
  out.took_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return out;
}

llm_openai::OpenAiOptions options_for(const MockChatServer& m) {
  llm_openai::OpenAiOptions o;
  o.base_url = m.base_url();
  o.model = "test-model";
  o.api_key = "sk-test";
  o.system_prompt = "Be brief.";
  o.temperature = 0.2;
  return o;
}

TEST(OpenAi, TextStreamsOutAsItArrivesAndTheRequestIsChatCompletions) {
  MockChatServer m;
  m.set_script({200,
                "",
                {MockChatServer::text("Sure, "), MockChatServer::text("one moment.", 400),
                 MockChatServer::done()}});
  const auto r = turn(options_for(m), "I need help");
  ASSERT_EQ(r.error.code, 0) << r.error.message;
  ASSERT_EQ(r.texts.size(), 2u);
  EXPECT_EQ(r.texts[0].first, "Sure, ");
  EXPECT_EQ(r.texts[1].first, "one moment.");
  EXPECT_LT(r.texts[0].second + 300, r.texts[1].second);  // passed on before the stream ended

  const auto reqs = m.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/v1/chat/completions");
  EXPECT_EQ(reqs[0].authorization, "Bearer sk-test");
  const auto body = json::parse(reqs[0].body).as_object();
  EXPECT_EQ(body.at("model").as_string(), "test-model");
  EXPECT_TRUE(body.at("stream").as_bool());
  EXPECT_DOUBLE_EQ(body.at("temperature").as_double(), 0.2);
  const auto& msgs = body.at("messages").as_array();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].at("role").as_string(), "system");
  EXPECT_EQ(msgs[0].at("content").as_string(), "Be brief.");
  EXPECT_EQ(msgs[1].at("role").as_string(), "assistant");
  EXPECT_EQ(msgs[2].at("role").as_string(), "user");
  EXPECT_EQ(msgs[2].at("content").as_string(), "[The caller pressed 5] I need help");
  std::vector<std::string> tools;
  for (const auto& t : body.at("tools").as_array()) {
    tools.emplace_back(t.at("function").at("name").as_string());
  }
  EXPECT_EQ(tools, (std::vector<std::string>{"transfer", "hang_up", "send_dtmf"}));
}

TEST(OpenAi, ToolCallDeltasBecomeActions) {
  MockChatServer m;
  m.set_script(
      {200,
       "",
       {MockChatServer::text("Transferring you."), MockChatServer::tool(0, "transfer", R"({"tar)"),
        MockChatServer::tool(0, "", R"(get": "100"})"),
        MockChatServer::tool(1, "send_dtmf", R"({"digits":"12#"})"),
        MockChatServer::tool(2, "hang_up", R"({"final_words":"Bye."})"), MockChatServer::done()}});
  const auto r = turn(options_for(m), "sales please");
  ASSERT_EQ(r.error.code, 0) << r.error.message;
  ASSERT_EQ(r.actions.size(), 3u);
  EXPECT_EQ(r.actions[0].transfer().target(), "100");
  EXPECT_EQ(r.actions[1].send_dtmf().digits(), "12#");
  EXPECT_EQ(r.actions[2].hangup().final_words(), "Bye.");
}

/// Runs `req` as it is.
Outcome run(const llm_openai::OpenAiOptions& o, const llm::v1::TurnRequest& req) {
  Outcome out;
  llm_openai::TurnSink sink;
  sink.text = [&](const std::string& t) { out.texts.emplace_back(t, 0); };
  sink.action = [&](const common::v1::Action& a) { out.actions.push_back(a); };
  sink.tool_call = [&](const common::v1::ToolCall& c) { out.tool_calls.push_back(c); };
  sink.cancelled = [] { return false; };
  out.error = llm_openai::run_turn(o, req, sink);
  return out;
}

common::v1::ToolDefinition tool_def(const std::string& name, const std::string& params) {
  common::v1::ToolDefinition t;
  t.set_name(name);
  t.set_description("Look up " + name);
  t.set_parameters_json(params);
  return t;
}

const char* kOrderParams =
    R"({"type":"object","properties":{"order":{"type":"string"}},"required":["order"]})";

common::v1::ToolCall call(const std::string& id, const std::string& name, const std::string& args) {
  common::v1::ToolCall c;
  c.set_id(id);
  c.set_name(name);
  c.set_arguments_json(args);
  return c;
}

TEST(OpenAi, BusinessToolsFollowTheActionsAndTheirCallsComeBackWithTheStreamsIds) {
  MockChatServer m;
  m.set_script(
      {200,
       "",
       {MockChatServer::text("Let me check."),
        MockChatServer::tool_call(0, "call_A1", "order_status", R"({"ord)"),
        MockChatServer::tool(0, "", R"(er":"A-17"})"),
        MockChatServer::tool_call(1, "call_B2", "send_dtmf", R"({"digits":"1"})"),
        MockChatServer::tool_call(2, "call_C3", "not_offered", "{}"), MockChatServer::done()}});
  llm::v1::TurnRequest req;
  req.set_turn(1);
  req.set_user_text("where is my order");
  *req.add_tools() = tool_def("order_status", kOrderParams);
  *req.add_tools() = tool_def("hang_up", "{}");        // an action's name: not offered
  *req.add_tools() = tool_def("broken", "{not json");  // not offered
  const auto r = run(options_for(m), req);
  ASSERT_EQ(r.error.code, 0) << r.error.message;
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].id(), "call_A1");
  EXPECT_EQ(r.tool_calls[0].name(), "order_status");
  EXPECT_EQ(r.tool_calls[0].arguments_json(), R"({"order":"A-17"})");
  ASSERT_EQ(r.actions.size(), 1u);  // the unknown tool is dropped
  EXPECT_EQ(r.actions[0].send_dtmf().digits(), "1");
  EXPECT_EQ(r.actions[0].tool_call_id(), "call_B2");
  const auto body = json::parse(m.requests().at(0).body).as_object();
  const auto& tools = body.at("tools").as_array();
  ASSERT_EQ(tools.size(), 4u);
  EXPECT_EQ(tools[2].at("function").at("name"), "send_dtmf");
  EXPECT_EQ(tools[3],
            (json::object{{"type", "function"},
                          {"function", json::object{{"name", "order_status"},
                                                    {"description", "Look up order_status"},
                                                    {"parameters", json::parse(kOrderParams)}}}}));
}

TEST(OpenAi, AServerWithoutIdsGetsIdsMadeUpUniqueInTheCall) {
  MockChatServer m;
  m.set_script(
      {200,
       "",
       {MockChatServer::tool(0, "order_status", "{}"),
        MockChatServer::tool(1, "order_status", R"({"order":"2"})"), MockChatServer::done()}});
  llm::v1::TurnRequest req;
  req.set_turn(4);
  req.add_history()->set_text("hi");
  *req.add_tools() = tool_def("order_status", kOrderParams);
  const auto r = run(options_for(m), req);
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].id(), "call_vb4_1_0");
  EXPECT_EQ(r.tool_calls[1].id(), "call_vb4_1_1");
}

TEST(OpenAi, ToolCallsInTheHistoryGoOutAsAssistantToolCallsAndToolMessages) {
  MockChatServer m;
  m.set_script({200, "", {MockChatServer::text("It shipped."), MockChatServer::done()}});
  llm::v1::TurnRequest req;
  req.set_turn(2);
  *req.add_tools() = tool_def("order_status", kOrderParams);
  auto* u = req.add_history();
  u->set_role(llm::v1::USER);
  u->set_text("where is A-17");
  auto* a = req.add_history();
  a->set_role(llm::v1::ASSISTANT);
  a->set_text("Let me check.");
  *a->add_tool_calls() = call("call_1", "order_status", R"({"order":"A-17"})");
  *a->add_tool_calls() = call("call_2", "send_dtmf", R"({"digits":"1"})");
  auto* t1 = req.add_history();
  t1->set_role(llm::v1::TOOL);
  t1->set_tool_call_id("call_1");
  t1->set_text(R"({"status":"shipped"})");
  auto* t2 = req.add_history();
  t2->set_role(llm::v1::TOOL);
  t2->set_tool_call_id("call_2");
  t2->set_text("ok");
  auto* silent = req.add_history();  // a call without words: content null
  silent->set_role(llm::v1::ASSISTANT);
  *silent->add_tool_calls() = call("call_3", "order_status", "{}");
  auto* t3 = req.add_history();
  t3->set_role(llm::v1::TOOL);
  t3->set_tool_call_id("call_3");
  t3->set_text("error: the tool did not answer within 5000 ms");
  // The action's result, already answered in the history: no note in a user message.
  auto* e = req.add_events()->mutable_action_result();
  e->mutable_action()->mutable_send_dtmf()->set_digits("1");
  e->mutable_action()->set_tool_call_id("call_2");
  e->set_ok(true);
  const auto r = run(options_for(m), req);
  ASSERT_EQ(r.error.code, 0) << r.error.message;  // the mock checks as the API does
  const auto msgs = json::parse(m.requests().at(0).body).at("messages").as_array();
  const json::array want{
      json::object{{"role", "system"}, {"content", "Be brief."}},
      json::object{{"role", "user"}, {"content", "where is A-17"}},
      json::object{
          {"role", "assistant"},
          {"content", "Let me check."},
          {"tool_calls",
           json::array{
               json::object{{"id", "call_1"},
                            {"type", "function"},
                            {"function", json::object{{"name", "order_status"},
                                                      {"arguments", R"({"order":"A-17"})"}}}},
               json::object{{"id", "call_2"},
                            {"type", "function"},
                            {"function", json::object{{"name", "send_dtmf"},
                                                      {"arguments", R"({"digits":"1"})"}}}}}}},
      json::object{
          {"role", "tool"}, {"tool_call_id", "call_1"}, {"content", R"({"status":"shipped"})"}},
      json::object{{"role", "tool"}, {"tool_call_id", "call_2"}, {"content", "ok"}},
      json::object{{"role", "assistant"},
                   {"content", nullptr},
                   {"tool_calls",
                    json::array{json::object{{"id", "call_3"},
                                             {"type", "function"},
                                             {"function", json::object{{"name", "order_status"},
                                                                       {"arguments", "{}"}}}}}}},
      json::object{{"role", "tool"},
                   {"tool_call_id", "call_3"},
                   {"content", "error: the tool did not answer within 5000 ms"}}};
  EXPECT_EQ(msgs, want);
}

TEST(OpenAi, AHistoryBrokenAroundToolCallsIsMendedBeforeTheApiWouldRefuseIt) {
  // What the mock (like the API) refuses: an unanswered call id, an answer to no call.
  EXPECT_NE(
      MockChatServer::check_request(
          R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"x","arguments":"{}"}}]},{"role":"user","content":"hi"}]})")
          .find("The following tool_call_ids did not have response messages: call_9"),
      std::string::npos);
  EXPECT_NE(MockChatServer::check_request(
                R"({"messages":[{"role":"tool","tool_call_id":"call_1","content":"x"}]})")
                .find("messages with role 'tool' must be a response to a preceeding message with "
                      "'tool_calls'"),
            std::string::npos);
  MockChatServer m;
  m.set_script({200, "", {MockChatServer::text("Sorry."), MockChatServer::done()}});
  llm::v1::TurnRequest req;
  auto* orphan = req.add_history();  // its call was capped away
  orphan->set_role(llm::v1::TOOL);
  orphan->set_tool_call_id("call_0");
  orphan->set_text("old");
  auto* a = req.add_history();
  a->set_role(llm::v1::ASSISTANT);
  a->set_text("Checking.");
  *a->add_tool_calls() = call("call_1", "order_status", "{}");
  auto* e = req.add_events()->mutable_action_result();  // an action without a call id
  e->mutable_action()->mutable_send_dtmf()->set_digits("1");
  e->set_ok(false);
  e->set_error("no control path");
  req.set_user_text("hello?");
  const auto r = run(options_for(m), req);
  ASSERT_EQ(r.error.code, 0) << r.error.message;
  const auto msgs = json::parse(m.requests().at(0).body).at("messages").as_array();
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[1].at("role"), "assistant");
  EXPECT_EQ(msgs[2],
            (json::object{{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "no result"}}));
  EXPECT_EQ(msgs[3],
            (json::object{{"role", "user"},
                          {"content", "[Your last action failed: no control path] hello?"}}));
}

TEST(OpenAi, HttpErrorsStallsAndDeadServersEndTheTurnWithAnError) {
  MockChatServer m;
  auto o = options_for(m);
  m.set_script({401, R"({"error":{"message":"Incorrect API key"}})", {}});
  auto r = turn(o, "hi");
  EXPECT_EQ(r.error.code, 14);  // UNAVAILABLE: the pipeline retries, then its fallback
  EXPECT_NE(r.error.message.find("HTTP 401"), std::string::npos) << r.error.message;
  EXPECT_NE(r.error.message.find("Incorrect API key"), std::string::npos) << r.error.message;
  m.set_script({404, R"({"error":{"message":"model not found"}})", {}});
  EXPECT_EQ(turn(o, "hi").error.code, 3);  // INVALID_ARGUMENT: a configuration mistake

  o.stall_timeout = 300ms;
  m.set_script({200, "", {MockChatServer::text("Let me")}, true});
  r = turn(o, "hi");
  EXPECT_EQ(r.error.code, 4);  // DEADLINE_EXCEEDED
  ASSERT_EQ(r.texts.size(), 1u);
  EXPECT_LT(r.took_ms, 2000);

  m.set_script({200, "", {{"{not json", 0}, MockChatServer::done()}});
  EXPECT_EQ(turn(o, "hi").error.code, 13);  // INTERNAL: malformed stream

  o.base_url = "http://127.0.0.1:1/v1";  // nobody listens
  r = turn(o, "hi");
  EXPECT_EQ(r.error.code, 14);
  EXPECT_LT(r.took_ms, 2000);
}

// A hostile or broken server: each response below breaks one limit of openai.hpp, and the turn
// ends with RESOURCE_EXHAUSTED naming it, having held no more than that limit.
constexpr int kResourceExhausted = 8;

TEST(OpenAi, AnEndlessLineEndsTheTurnAtTheLineLimit) {
  MockChatServer m;
  MockChatServer::Script s{200, "", {MockChatServer::text("Hi. ")}};
  s.flood = R"(data: {"choices":[{"delta":{"content":")" + std::string(1000, 'a');
  s.flood_bytes = 8u << 20;  // 8 MiB and never a line end
  m.set_script(s);
  const auto r = turn(options_for(m), "hi");
  EXPECT_EQ(r.error.code, kResourceExhausted) << r.error.message;
  EXPECT_EQ(r.error.message,
            "the model's response broke a limit: event-stream line longer than 65536 bytes");
  ASSERT_EQ(r.texts.size(), 1u);
  EXPECT_LT(r.took_ms, 3000);
}

TEST(OpenAi, HugeToolArgumentsEndTheTurnAtTheirLimit) {
  MockChatServer m;
  MockChatServer::Script s{200, "", {MockChatServer::tool(0, "transfer", R"({"target":")")}};
  for (int i = 0; i < 1000; ++i) s.events.push_back(MockChatServer::tool(0, "", "9011441234567"));
  s.events.push_back(MockChatServer::tool(0, "", R"("})"));
  s.events.push_back(MockChatServer::done());
  m.set_script(s);
  const auto r = turn(options_for(m), "hi");
  EXPECT_EQ(r.error.code, kResourceExhausted) << r.error.message;
  EXPECT_EQ(r.error.message,
            "the model's response broke a limit: tool arguments longer than 8192 bytes");
  EXPECT_TRUE(r.actions.empty());
}

TEST(OpenAi, ThousandsOfToolIndexesEndTheTurnAtTheToolCallLimit) {
  MockChatServer m;
  MockChatServer::Script s{200, "", {}};
  for (int i = 0; i < 5000; ++i) {
    s.events.push_back(MockChatServer::tool(i, "send_dtmf", R"({"digits":"1"})"));
  }
  s.events.push_back(MockChatServer::done());
  m.set_script(s);
  auto r = turn(options_for(m), "hi");
  EXPECT_EQ(r.error.code, kResourceExhausted) << r.error.message;
  EXPECT_EQ(r.error.message,
            "the model's response broke a limit: tool call index 8 (at most 8 tool calls a turn, "
            "index 0-7)");
  EXPECT_TRUE(r.actions.empty());

  // A negative or absurd index is refused the same way (never a huge map key).
  m.set_script({200, "", {MockChatServer::tool(-1, "hang_up", "{}"), MockChatServer::done()}});
  r = turn(options_for(m), "hi");
  EXPECT_EQ(r.error.code, kResourceExhausted) << r.error.message;
  EXPECT_NE(r.error.message.find("tool call index -1"), std::string::npos) << r.error.message;

  // A long tool name too.
  m.set_script(
      {200, "", {MockChatServer::tool(0, std::string(65, 'x'), "{}"), MockChatServer::done()}});
  r = turn(options_for(m), "hi");
  EXPECT_EQ(r.error.message, "the model's response broke a limit: tool name longer than 64 bytes");
}

TEST(OpenAi, ABodyThatNeverEndsIsCutAtTheResponseLimit) {
  MockChatServer m;
  MockChatServer::Script s{200, "", {MockChatServer::text("Hi. ")}};
  s.flood = ": keep-alive\n\n";  // valid comments, forever
  s.flood_bytes = 64u << 20;
  m.set_script(s);
  const auto r = turn(options_for(m), "hi");
  EXPECT_EQ(r.error.code, kResourceExhausted) << r.error.message;
  EXPECT_EQ(r.error.message,
            "the model's response broke a limit: response body longer than 1048576 bytes");
  EXPECT_LT(r.took_ms, 3000);
  // The client hung up at its limit: the server could not write what it meant to.
  EXPECT_LT(m.body_bytes_sent(), 32u << 20);
}

TEST(OpenAi, HttpsVerifiesTheServerAgainstTheConfiguredCa) {
  MockChatServer m(true);  // https://localhost:PORT, a self-signed certificate
  m.set_script({200, "", {MockChatServer::text("Secure hello."), MockChatServer::done()}});
  auto o = options_for(m);
  o.ca_file = m.ca_file();
  auto r = turn(o, "hi");
  ASSERT_EQ(r.error.code, 0) << r.error.message;
  ASSERT_EQ(r.texts.size(), 1u);
  EXPECT_EQ(r.texts[0].first, "Secure hello.");
  EXPECT_EQ(m.requests().size(), 1u);

  o.ca_file.clear();  // the system's roots do not know this certificate
  r = turn(o, "hi");
  EXPECT_EQ(r.error.code, 14);
  EXPECT_NE(r.error.message.find("certificate"), std::string::npos) << r.error.message;
  EXPECT_EQ(m.requests().size(), 1u);  // nothing was sent to an unverified server
}

TEST(OpenAi, ACancelledTurnStopsAtOnce) {
  MockChatServer m;
  m.set_script({200, "", {MockChatServer::text("Well")}, true});
  bool seen = false;
  llm_openai::OpenAiOptions o = options_for(m);
  Outcome r;
  const auto t0 = Clock::now();
  r = turn(o, "hi", [&] { return seen || (seen = Clock::now() - t0 > 200ms); });
  EXPECT_EQ(r.error.code, 1);  // CANCELLED
  EXPECT_LT(r.took_ms, 1000);
}

TEST(BuiltinProviders, NoOtherUserOfTheHostCanReachTheInProcessProviders) {
  // They serve the OpenAI-compatible LLM with the configured key: a local user who could reach
  // them could spend it.
  MockChatServer m;
  provider_host::BuiltinOptions bo;
  bo.asr = bo.tts = false;
  bo.openai["gpt"] = options_for(m);
  std::string dir;
  {
    provider_host::BuiltinProviders host(bo);
    const std::string addr = host.address();
    // A process of another user (root here drops to nobody) tries to connect, over TCP or the
    // Unix socket, whichever the providers use.
    sockaddr_storage sa{};
    socklen_t sa_len = 0;
    if (addr.rfind("unix:", 0) == 0) {
      auto* un = reinterpret_cast<sockaddr_un*>(&sa);
      un->sun_family = AF_UNIX;
      ASSERT_LT(addr.size() - 5, sizeof un->sun_path);
      std::memcpy(un->sun_path, addr.data() + 5, addr.size() - 5);
      sa_len = sizeof(sockaddr_un);
    } else {
      auto* in = reinterpret_cast<sockaddr_in*>(&sa);
      in->sin_family = AF_INET;
      in->sin_port = htons(static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1))));
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      sa_len = sizeof(sockaddr_in);
    }
    if (::geteuid() == 0) {
      const pid_t pid = ::fork();
      if (pid == 0) {  // only async-signal-safe calls from here
        constexpr long kNobody = 65534;
        if (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
            ::syscall(SYS_setresgid, kNobody, kNobody, kNobody) != 0 ||
            ::syscall(SYS_setresuid, kNobody, kNobody, kNobody) != 0) {
          ::_exit(3);
        }
        const int fd = ::socket(sa.ss_family, SOCK_STREAM, 0);
        if (fd < 0) ::_exit(4);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sa_len) == 0) ::_exit(1);
        ::_exit(errno == EACCES ? 0 : 2);
      }
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0) << "1 = user nobody connected to the providers at " << addr;
    }
    ASSERT_EQ(addr.rfind("unix:", 0), 0u) << addr;
    dir = std::filesystem::path(addr.substr(5)).parent_path().string();
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    EXPECT_EQ(st.st_uid, ::geteuid());
  }
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;  // removed when the providers stop
}

/// A call into voxbridge whose ASR and TTS are the scripted fakes and whose LLM is the built-in
/// provider host's OpenAI-compatible dialogue talking to the mock.
struct CallThroughHost {
  MockChatServer m;
  testing::FakeRecognizer asr;
  testing::FakeSynthesizer tts;
  testing::FakeProviderServer fakes{{&asr, &tts}};
  provider_host::BuiltinProviders host{host_options(m)};
  testing::RunningServer s{server_config(fakes.address(), host.address())};
  sim::CallPlan plan = call_plan(s.port);

  static provider_host::BuiltinOptions host_options(const MockChatServer& m) {
    provider_host::BuiltinOptions bo;
    bo.asr = bo.tts = false;
    bo.openai["gpt"] = options_for(m);
    return bo;
  }
  static config::Config server_config(const std::string& fakes, const std::string& host) {
    config::Config c = config::default_config();
    c.listeners[0].port = 0;
    c.listeners[0].agent = "bot";
    c.general.threads = 2;
    c.general.log_level = "warning";
    agent::AgentSpec a;
    a.name = "bot";
    a.type = agent::AgentSpec::Type::pipeline;
    c.agents.push_back(a);
    pipeline::PipelineSpec p;
    p.greeting = "";
    p.asr = p.tts = {"fake", fakes, false, "", 0ms, {}, "", ""};
    p.llm = {"gpt", host, false, "", 0ms, {{"vb-openai", "gpt"}}, "", ""};
    c.pipelines["bot"] = p;
    return c;
  }
  static sim::CallPlan call_plan(unsigned short port) {
    std::vector<std::int16_t> audio = testing::silence(16000, 0.3);
    testing::append(audio, testing::voice(16000, 0.6));
    testing::append(audio, testing::silence(16000, 2.5));
    sim::CallPlan plan;
    plan.port = port;
    plan.format = *sim::LegFormat::parse("slin16");
    plan.audio = audio;
    plan.hangup_at_end = false;
    plan.max_duration = 15s;
    return plan;
  }
};

TEST(OpenAi, InACallTheModelsWordsAreSpokenAndItsFailuresGetTheFallback) {
  CallThroughHost call;
  auto& m = call.m;
  auto& tts = call.tts;
  const auto& plan = call.plan;
  m.set_script({200,
                "",
                {MockChatServer::text("Hello there, "), MockChatServer::text("friend."),
                 MockChatServer::tool(0, "hang_up", R"({"final_words":"Goodbye."})"),
                 MockChatServer::done()}});
  auto r = sim::place_call(plan);
  EXPECT_EQ(tts.texts(), (std::vector<std::string>{"Hello there, friend.", "Goodbye."}));
  EXPECT_TRUE(r.server_sent_hangup);
  ASSERT_EQ(m.requests().size(), 1u);
  EXPECT_NE(m.requests()[0].body.find("hello world"), std::string::npos);  // what the ASR heard

  m.set_script({500, "upstream exploded", {}});
  r = sim::place_call(plan);
  EXPECT_TRUE(r.server_sent_hangup);  // retried once, then the fallback beeps and a hangup
  EXPECT_EQ(m.requests().size(), 3u);
  EXPECT_LT(r.duration_ms, 6000);

  // A hostile server (a line that never ends) is a failure like any other: one retry, then the
  // fallback; the call is not held while the server streams.
  MockChatServer::Script endless{200, "", {}};
  endless.flood = "data: " + std::string(4096, 'z');
  endless.flood_bytes = 8u << 20;
  m.set_script(endless);
  r = sim::place_call(plan);
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_EQ(m.requests().size(), 5u);
  EXPECT_LT(r.duration_ms, 6000);
}

TEST(OpenAi, InACallAnActionsResultGoesBackAsAToolMessageWithItsCallId) {
  // The pipeline through a real call: the model presses a key as tool call call_D1; the result
  // (no control path here: refused) is the `tool` message answering call_D1 in the next
  // request, right after the assistant message that made the call; the mock refuses (400) a
  // request where it is not.
  CallThroughHost call;
  auto& m = call.m;
  m.push_script({200,
                 "",
                 {MockChatServer::text("Pressing one for you."),
                  MockChatServer::tool_call(0, "call_D1", "send_dtmf", R"({"digits":"1"})"),
                  MockChatServer::done()}});
  m.push_script(
      {200,
       "",
       {MockChatServer::text("Goodbye."), MockChatServer::tool_call(0, "call_H2", "hang_up", "{}"),
        MockChatServer::done()}});
  auto plan = call.plan;
  plan.dtmf = {{2500ms, '5'}};
  const auto r = sim::place_call(plan);
  EXPECT_TRUE(r.server_sent_hangup);
  const auto reqs = m.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const auto msgs = json::parse(reqs[1].body).at("messages").as_array();
  const json::array want{
      json::object{{"role", "system"}, {"content", "Be brief."}},
      json::object{{"role", "user"}, {"content", "hello world"}},
      json::object{
          {"role", "assistant"},
          {"content", "Pressing one for you."},
          {"tool_calls", json::array{json::object{
                             {"id", "call_D1"},
                             {"type", "function"},
                             {"function", json::object{{"name", "send_dtmf"},
                                                       {"arguments", R"({"digits":"1"})"}}}}}}},
      json::object{{"role", "tool"},
                   {"tool_call_id", "call_D1"},
                   {"content", "not configured: no Asterisk control path"}},
      json::object{{"role", "user"}, {"content", "[The caller pressed 5] "}}};
  EXPECT_EQ(msgs, want);
  EXPECT_EQ(call.tts.texts(), (std::vector<std::string>{"Pressing one for you.", "Goodbye."}));
}

TEST(OpenAi, InACallABusinessToolsResultGoesBackAsAToolMessageAndTheModelAnswers) {
  // The pipeline through a real call with a [tool-NAME] for its agent: the model is offered the
  // tool, calls it (call_T1), voxbridge's tool runner makes the request, and the follow-up
  // request carries the assistant message with the call and the tool's body as the `tool`
  // message answering it; the model's answer is spoken.
  testing::ToolServer tools;
  tools.script("/orders/A-17", {200, R"({"status":"shipped"})"});
  MockChatServer m;
  testing::FakeRecognizer asr;
  testing::FakeSynthesizer tts;
  testing::FakeProviderServer fakes{{&asr, &tts}};
  provider_host::BuiltinProviders host{CallThroughHost::host_options(m)};
  config::Config c = CallThroughHost::server_config(fakes.address(), host.address());
  tools::ToolOptions t;
  t.name = "order_status";
  t.description = "Where an order is.";
  t.parameters_json = R"({"type":"object","properties":{"order":{"type":"string"}}})";
  t.url = tools.url("/orders/{order}");
  t.allowed_host = "127.0.0.1";
  t.agents = {"bot"};
  t.filler_after = 0ms;
  c.tools[t.name] = t;
  testing::RunningServer s{c};
  m.push_script({200,
                 "",
                 {MockChatServer::tool_call(0, "call_T1", "order_status", R"({"order":"A-17"})"),
                  MockChatServer::done()}});
  m.push_script(
      {200,
       "",
       {MockChatServer::text("It shipped."),
        MockChatServer::tool_call(0, "call_H2", "hang_up", "{}"), MockChatServer::done()}});
  const auto r = sim::place_call(CallThroughHost::call_plan(s.port));
  EXPECT_TRUE(r.server_sent_hangup);
  ASSERT_TRUE(tools.wait_for(1));
  const auto req = tools.requests().at(0);
  EXPECT_EQ(req.target, "/orders/A-17");
  EXPECT_EQ(json::parse(req.body).at("arguments"), json::parse(R"({"order":"A-17"})"));
  const auto reqs = m.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const auto offered = json::parse(reqs[0].body).at("tools").as_array();
  ASSERT_EQ(offered.size(), 4u);  // transfer, hang_up, send_dtmf, then the business tool
  EXPECT_EQ(offered.at(3).at("function").at("name"), "order_status");
  const auto msgs = json::parse(reqs[1].body).at("messages").as_array();
  const json::array want{
      json::object{{"role", "system"}, {"content", "Be brief."}},
      json::object{{"role", "user"}, {"content", "hello world"}},
      json::object{
          {"role", "assistant"},
          {"content", nullptr},
          {"tool_calls", json::array{json::object{
                             {"id", "call_T1"},
                             {"type", "function"},
                             {"function", json::object{{"name", "order_status"},
                                                       {"arguments", R"({"order":"A-17"})"}}}}}}},
      json::object{
          {"role", "tool"}, {"tool_call_id", "call_T1"}, {"content", R"({"status":"shipped"})"}}};
  EXPECT_EQ(msgs, want);
  EXPECT_EQ(tts.texts(), (std::vector<std::string>{"It shipped."}));
}

TEST(OpenAi, TheModelsTextCannotForgeALogLine) {
  // The reply goes into the turn's log line (info): a line break in it must not start a line.
  auto out = std::make_shared<std::ostringstream>();
  const auto previous = spdlog::default_logger();
  {
    CallThroughHost call;
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(*out)));
    spdlog::set_level(spdlog::level::info);
    call.m.set_script(
        {200,
         "",
         {MockChatServer::text("Hello.\nFORGED call end uuid=0 by=caller\r\u2028 \"x"),
          MockChatServer::tool(0, "hang_up", R"({"final_words":"Bye."})"),
          MockChatServer::done()}});
    const auto r = sim::place_call(call.plan);
    EXPECT_TRUE(r.server_sent_hangup);
  }  // the server has stopped: nothing writes to `out` any more
  spdlog::set_default_logger(previous);
  const std::string log = out->str();
  std::istringstream lines(log);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    EXPECT_EQ(line.rfind("[20", 0), 0u) << "a line not written by the logger: " << line;
  }
  EXPECT_GT(n, 0);
  EXPECT_NE(log.find(R"(reply="Hello.\nFORGED call end uuid=0 by=caller\r\u2028 \"xBye.")"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace voxbridge
