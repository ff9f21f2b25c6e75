// One business tool ([tool-NAME]) as plain data: config fills it, the ToolRunner (tools.hpp)
// runs it. No component code here, so config links nothing of the runner.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace voxbridge::tools {

/// The largest arguments (JSON text) a model may send to a tool; larger ones are refused.
inline constexpr std::size_t kMaxArgumentsBytes = 8 * 1024;

struct ToolOptions {
  /// [A-Za-z0-9_-]{1,64}, never transfer, hang_up, send_dtmf or set_variable.
  std::string name;
  /// For the model: what the tool does and when to use it.
  std::string description;
  /// The arguments' JSON Schema (JSON text of an object with "type":"object").
  std::string parameters_json = R"({"type":"object","properties":{}})";
  /// http:// or https://; {NAME} placeholders are filled from the arguments, percent-encoded.
  std::string url;
  /// "POST" (arguments and call facts in a JSON body) or "GET" (arguments in the query string,
  /// call facts in X-Voxbridge-* headers).
  std::string method = "POST";
  /// Extra request headers (values already expanded: secrets; never logged).
  std::vector<std::pair<std::string, std::string>> headers;
  /// One deadline for resolving, connecting, TLS, the request and the whole response.
  std::chrono::milliseconds timeout{5000};
  /// Larger response bodies are an error result (never truncated).
  std::size_t max_response_bytes = 16 * 1024;
  /// The only host a request may reach (lower case); empty = the URL's own host.
  std::string allowed_host;
  /// The agents ([agent-NAME] names) that may offer the tool to their model.
  std::vector<std::string> agents;
  std::size_t max_per_call = 10;    ///< calls of this tool per phone call
  std::size_t max_concurrent = 8;   ///< requests in flight at once, all calls together
  std::size_t max_per_minute = 60;  ///< requests started in any 60 s, all calls together
  std::string ca_file;              ///< PEM CAs to trust for https; empty = the system's
  /// What the caller hears while the tool runs longer than filler_after (0 = never).
  std::string filler = "One moment, please.";
  std::chrono::milliseconds filler_after{1500};
  /// ARI mode: a music-on-hold class (musiconhold.conf) Asterisk plays to the caller instead of
  /// the phrase; empty = the phrase (also in AMI mode, or when Asterisk refuses it).
  std::string filler_moh;

  bool operator==(const ToolOptions&) const = default;
};

}  // namespace voxbridge::tools
