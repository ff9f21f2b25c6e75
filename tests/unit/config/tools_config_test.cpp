// [tool-NAME] sections: every key, its default, and every error (naming file, line, section).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "voxbridge/config/config.hpp"

namespace voxbridge::config {
namespace {

using namespace std::chrono_literals;

/// An s2s agent `bot` (on a gRPC provider) and a pipeline agent, then `tools`.
std::string with_agents(const std::string& tools) {
  return "[provider-p]\naddress = 127.0.0.1:9\n"
         "[agent-bot]\ntype = s2s\nprovider = p\n"
         "[agent-greeting]\ntype = echo\n" +
         tools;
}

std::string error_of(const std::string& text) {
  try {
    parse_config(with_agents(text), "voxbridge.conf");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

constexpr const char* kMinimal =
    "[tool-lookup]\ndescription = Looks things up.\nurl = http://127.0.0.1:8080/x\n"
    "agents = bot\n";

TEST(ToolsConfig, AMinimalToolGetsTheDefaults) {
  const Config c = parse_config(with_agents(kMinimal), "voxbridge.conf");
  ASSERT_EQ(c.tools.size(), 1u);
  const auto& t = c.tools.at("lookup");
  EXPECT_EQ(t.name, "lookup");
  EXPECT_EQ(t.description, "Looks things up.");
  EXPECT_EQ(t.url, "http://127.0.0.1:8080/x");
  EXPECT_EQ(t.parameters_json, R"({"type":"object","properties":{}})");
  EXPECT_EQ(t.method, "POST");
  EXPECT_TRUE(t.headers.empty());
  EXPECT_EQ(t.timeout, 5000ms);
  EXPECT_EQ(t.max_response_bytes, 16u * 1024);
  EXPECT_EQ(t.allowed_host, "");
  EXPECT_EQ(t.agents, (std::vector<std::string>{"bot"}));
  EXPECT_EQ(t.max_per_call, 10u);
  EXPECT_EQ(t.max_concurrent, 8u);
  EXPECT_EQ(t.max_per_minute, 60u);
  EXPECT_EQ(t.ca_file, "");
  EXPECT_EQ(t.filler, "One moment, please.");
  EXPECT_EQ(t.filler_after, 1500ms);
  EXPECT_EQ(t.filler_moh, "");
}

TEST(ToolsConfig, ReadsEveryKey) {
  ::setenv("VB_TOOLS_TEST_TOKEN", "s3cret", 1);
  const auto schema = std::filesystem::temp_directory_path() / "vb_tools_schema.json";
  std::ofstream(schema) << "{\n  \"type\": \"object\",\n  \"properties\": {\"a\": {\"type\": "
                           "\"string\"}}\n}\n";
  const Config c = parse_config(
      with_agents(
          "[tool-a_b-9]\ndescription = D\n"
          "parameters = {\"type\":\"object\", \"properties\":{\"id\":{\"type\":\"string\"}}}\n"
          "url = https://{region}.example.com/orders/{id}?full=1\nmethod = get\n"
          "header = Authorization: Bearer ${VB_TOOLS_TEST_TOKEN}\n"
          "header = X-Api-Version: 2\ntimeout_ms = 250\nmax_response_bytes = 100\n"
          "allowed_host = EU.Example.com\nagents = bot, realtime\nmax_per_call = 3\n"
          "max_concurrent = 4\nmax_per_minute = 5\nca_file = /etc/ca.pem\n"
          "filler = Hold on.\nfiller_after_ms = 0\nfiller_moh = default\n"
          "[tool-second]\ndescription = E\nurl = http://h/x\nagents = bot\n"
          "parameters_file = " +
          schema.string() + "\n"),
      "voxbridge.conf");
  std::filesystem::remove(schema);
  const auto& t = c.tools.at("a_b-9");
  EXPECT_EQ(t.parameters_json, R"({"type":"object","properties":{"id":{"type":"string"}}})");
  EXPECT_EQ(t.url, "https://{region}.example.com/orders/{id}?full=1");
  EXPECT_EQ(t.method, "GET");
  ASSERT_EQ(t.headers.size(), 2u);
  EXPECT_EQ(t.headers[0], (std::pair<std::string, std::string>{"Authorization", "Bearer s3cret"}));
  EXPECT_EQ(t.headers[1], (std::pair<std::string, std::string>{"X-Api-Version", "2"}));
  EXPECT_EQ(t.timeout, 250ms);
  EXPECT_EQ(t.max_response_bytes, 100u);
  EXPECT_EQ(t.allowed_host, "eu.example.com");
  EXPECT_EQ(t.agents, (std::vector<std::string>{"bot", "realtime"}));
  EXPECT_EQ(t.max_per_call, 3u);
  EXPECT_EQ(t.max_concurrent, 4u);
  EXPECT_EQ(t.max_per_minute, 5u);
  EXPECT_EQ(t.ca_file, "/etc/ca.pem");
  EXPECT_EQ(t.filler, "Hold on.");
  EXPECT_EQ(t.filler_after, 0ms);
  EXPECT_EQ(t.filler_moh, "default");
  EXPECT_EQ(c.tools.at("second").parameters_json,
            R"({"type":"object","properties":{"a":{"type":"string"}}})");
  ::unsetenv("VB_TOOLS_TEST_TOKEN");
}

TEST(ToolsConfig, RefusesBadNamesAndValuesNamingTheLine) {
  // The agents' sections take lines 1-7.
  EXPECT_EQ(error_of("[tool-transfer]\n"),
            "voxbridge.conf:8: [tool-transfer] 'transfer' is a built-in action: name the tool "
            "otherwise");
  EXPECT_EQ(error_of("[tool-hang_up]\n").find("built-in action") != std::string::npos, true);
  EXPECT_EQ(error_of("[tool-a.b]\n"),
            "voxbridge.conf:8: [tool-a.b] a tool's name is 1 to 64 letters, digits, _ and -");
  EXPECT_NE(error_of("[tool-" + std::string(65, 'a') + "]\n").find("1 to 64"), std::string::npos);
  EXPECT_EQ(error_of("[tool-t]\nbogus = 1\n"), "voxbridge.conf:9: [tool-t] bogus: unknown option");
  EXPECT_EQ(error_of("[tool-t]\nparameters = {nope\n")
                .rfind("voxbridge.conf:9: [tool-t] parameters: not JSON: ", 0),
            0u);
  EXPECT_EQ(error_of("[tool-t]\nparameters = [1]\n"),
            "voxbridge.conf:9: [tool-t] parameters: the parameters' schema must be a JSON object");
  EXPECT_EQ(error_of("[tool-t]\nparameters = {\"type\":\"string\"}\n"),
            "voxbridge.conf:9: [tool-t] parameters: the parameters' schema must have "
            "\"type\":\"object\"");
  EXPECT_EQ(error_of("[tool-t]\nparameters_file = /nonexistent/s.json\n"),
            "voxbridge.conf:9: [tool-t] parameters_file: cannot read /nonexistent/s.json");
  EXPECT_EQ(error_of("[tool-t]\nurl = ftp://h/x\n"),
            "voxbridge.conf:9: [tool-t] url: 'ftp://h/x' is not an http:// or https:// URL");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/{a\n"),
            "voxbridge.conf:9: [tool-t] url: '{' without '}'");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/a}\n"),
            "voxbridge.conf:9: [tool-t] url: '}' without '{'");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/{a/b}\n"),
            "voxbridge.conf:9: [tool-t] url: '{a/b}' is not a placeholder ({NAME}: letters, "
            "digits, _ and -)");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://user:pw@h/x\n")
                .rfind("voxbridge.conf:9: [tool-t] url: 'http://user:pw@h/x': ", 0),
            0u);
  EXPECT_EQ(error_of("[tool-t]\nmethod = PUT\n"),
            "voxbridge.conf:9: [tool-t] method: 'PUT' is not GET or POST");
  EXPECT_EQ(error_of("[tool-t]\nheader = NoColon\n"),
            "voxbridge.conf:9: [tool-t] header: expected 'Name: value'");
  EXPECT_EQ(error_of("[tool-t]\nheader = Bad Name: v\n"),
            "voxbridge.conf:9: [tool-t] header: 'Bad Name' is not a header name");
  EXPECT_EQ(error_of("[tool-t]\nheader = Host: evil\n"),
            "voxbridge.conf:9: [tool-t] header: voxbridge sets Host itself");
  ::setenv("VB_TOOLS_TEST_CRLF", "a\r\nX-Injected: 1", 1);
  const std::string crlf = error_of("[tool-t]\nheader = X-A: ${VB_TOOLS_TEST_CRLF}\n");
  EXPECT_EQ(crlf,
            "voxbridge.conf:9: [tool-t] header: the value of X-A holds control characters "
            "(CR, LF...)");
  EXPECT_EQ(crlf.find("Injected"), std::string::npos);  // the value is never shown
  ::unsetenv("VB_TOOLS_TEST_CRLF");
  EXPECT_EQ(error_of("[tool-t]\nheader = X-A: ${VB_TOOLS_TEST_UNSET}\n"),
            "voxbridge.conf:9: [tool-t] header: environment variable VB_TOOLS_TEST_UNSET is not "
            "set");
  EXPECT_EQ(error_of("[tool-t]\ntimeout_ms = 5\n"),
            "voxbridge.conf:9: [tool-t] timeout_ms: '5' is out of range 10..120000");
  EXPECT_EQ(error_of("[tool-t]\nmax_response_bytes = 0\n"),
            "voxbridge.conf:9: [tool-t] max_response_bytes: '0' is out of range 1..1048576");
  EXPECT_EQ(error_of("[tool-t]\nmax_per_call = 0\n"),
            "voxbridge.conf:9: [tool-t] max_per_call: '0' is out of range 1..1000");
  EXPECT_EQ(error_of("[tool-t]\nmax_concurrent = 0\n"),
            "voxbridge.conf:9: [tool-t] max_concurrent: '0' is out of range 1..10000");
  EXPECT_EQ(error_of("[tool-t]\nmax_per_minute = 0\n"),
            "voxbridge.conf:9: [tool-t] max_per_minute: '0' is out of range 1..100000");
  EXPECT_EQ(error_of("[tool-t]\nfiller_after_ms = -1\n"),
            "voxbridge.conf:9: [tool-t] filler_after_ms: '-1' is out of range 0..60000");
  EXPECT_EQ(error_of("[tool-t]\ndescription = a\n[tool-t]\n"),
            "voxbridge.conf:10: [tool-t] section defined twice (first at line 8)");
}

TEST(ToolsConfig, RefusesWhatTheSectionsSayOfEachOther) {
  EXPECT_EQ(error_of("[tool-t]\ndescription = D\nagents = bot\n"),
            "voxbridge.conf: [tool-t] url: missing: the tool's http:// or https:// URL");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/\nagents = bot\n"),
            "voxbridge.conf: [tool-t] description: missing: tell the model what the tool does");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/\ndescription = D\n"),
            "voxbridge.conf: [tool-t] agents: missing: the agents that may offer the tool");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/\ndescription = D\nagents = bot, nobody\n"),
            "voxbridge.conf: [tool-t] agents: no agent named 'nobody'");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/\ndescription = D\nagents = greeting\n"),
            "voxbridge.conf: [tool-t] agents: 'greeting' has no model to offer tools to (only "
            "s2s and pipeline agents)");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://{sub}.h/\ndescription = D\nagents = bot\n"),
            "voxbridge.conf: [tool-t] allowed_host: missing: the url's host has a placeholder; "
            "say which host it must be");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://127.0.0.1:8/\ndescription = D\nagents = bot\n"
                     "allowed_host = localhost\n"),
            "voxbridge.conf: [tool-t] allowed_host: 'localhost' is not the url's host "
            "'127.0.0.1': no request could be made");
  EXPECT_EQ(error_of("[tool-t]\nurl = http://h/\ndescription = D\nagents = bot\nca_file = x\n"),
            "voxbridge.conf: [tool-t] ca_file: needs an https:// url");
}

}  // namespace
}  // namespace voxbridge::config
