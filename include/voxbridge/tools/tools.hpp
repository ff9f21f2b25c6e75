// Business tools: the server-wide ToolRunner that calls the [tool-NAME] HTTP(S) endpoints the
// models ask for, and the per-call agent::CallTools handles it hands out (agent/tools.hpp).
//
// The request (POST, the default):
//   POST <url's path and query>      Host, User-Agent: voxbridge, Content-Type: application/json,
//                                    X-Voxbridge-Call-Id: <uuid>, X-Voxbridge-Tool: <name>,
//                                    then the tool's own `header =` lines (secrets: never logged)
//   {"tool":NAME,"arguments":{...the model's object...},
//    "call":{"uuid","caller_number","caller_name","called_number","variables":{VB_* only}}}
// With method = GET: no body; the arguments' members are appended to the query string
// (name=value, percent-encoded; strings as they are, other values as JSON text), and the call's
// facts go in headers: X-Voxbridge-Caller-Number, X-Voxbridge-Caller-Name,
// X-Voxbridge-Called-Number, X-Voxbridge-Variables (a JSON object), control characters made
// spaces.
// URL templates: each {NAME} in the url is the argument NAME (a string, number or boolean),
// percent-encoded with only A-Z a-z 0-9 - . _ ~ left as they are, so that a value cannot add a
// path segment, a query or another host; "." and ".." are refused. The host the request would
// reach must equal the tool's allowed_host (default: the url's host), or the call is refused
// without any request. Redirects are not followed.
//
// The result: 2xx = ok, the body as the output (bytes that are not UTF-8 become U+FFFD); a
// body over max_response_bytes is an error result ("larger than N bytes"), never truncated
// (half a JSON document misleads a model more than none); any other status is an error
// "HTTP 503 from the tool: <the first 200 bytes of the body>"; no answer within timeout_ms (one
// deadline for resolving, connecting, TLS, the request and the whole response), a refused
// connection or a failed TLS handshake is an error saying so. Refused at once, without a
// request (an error result too): a tool not offered on the call, arguments that are not a JSON
// object or over kMaxArgumentsBytes, the tool's max_per_call on this call, its max_concurrent
// requests in flight or its max_per_minute (all calls together).
//
// Each outcome is counted (voxbridge_tool_calls_total{tool,outcome}, the latency of the
// requests made in voxbridge_tool_duration_seconds{tool}) and written to the call's transcript
// as a `tool` event (docs/events.md).
//
// Threads: the runner has its own threads (net::IoPool, `threads`, 1 by default) for all network
// work and JSON; a call's requests all run on one of them. for_call() and the handle's members
// run on the call's io thread; results are posted back with the call's Poster, once per run(),
// unless stop() (or the handle's end) came first: then they are dropped, and the requests still
// running are cancelled. Ownership: the server owns the runner and keeps it until every call
// has ended; a handle keeps what it uses of the runner alive, and after the runner stopped its
// run() refuses every call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/agent/tools.hpp"
#include "voxbridge/metrics/metrics.hpp"
#include "voxbridge/net/url.hpp"
#include "voxbridge/tools/options.hpp"

namespace voxbridge::tools {

struct RunnerOptions {
  std::vector<ToolOptions> tools;
  std::size_t threads = 1;
  /// Speaks a filler phrase (at the server's internal rate), called once per distinct phrase
  /// in the constructor, on its thread; null = fillers have no audio (Filler::audio is null).
  std::function<std::vector<std::int16_t>(const std::string& phrase)> voice;
};

class ToolRunner {
 public:
  /// Prepares every tool (TLS contexts, URLs, filler audio). Throws std::runtime_error naming
  /// the tool when its ca_file cannot be loaded.
  explicit ToolRunner(RunnerOptions options);
  /// stop() unless stopped already.
  ~ToolRunner();
  ToolRunner(const ToolRunner&) = delete;
  ToolRunner& operator=(const ToolRunner&) = delete;

  /// Starts the threads (once).
  void start();
  /// Cancels every request and ends the threads; results still owed are dropped. The handles
  /// refuse every call from now on.
  void stop();

  /// Whether the agent named `agent` offers any tool.
  bool offers(const std::string& agent) const;
  /// The tools handle of one call whose agent is `agent` (null if it offers none): `info`'s
  /// uuid, caller and called numbers and VB_* variables go with every request, and its
  /// transcript (if set) gets the `tool` events. On the call's io thread; `post` runs functions
  /// there.
  std::shared_ptr<agent::CallTools> for_call(const std::string& agent, const agent::CallInfo& info,
                                             agent::CallControl::Poster post);

  /// The tool metrics, in the Prometheus text format (any thread).
  void write_metrics(metrics::Writer& w) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

/// What a URL template's placeholders and a GET's query get (net::percent_encode).
using net::percent_encode;

}  // namespace voxbridge::tools
