#include "voxbridge/llm_openai/openai.hpp"
#include "voxbridge/llm_openai/sse_parser.hpp"
#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/url.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace voxbridge::llm_openai {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;

namespace {

constexpr int kOk = 0, kCancelled = 1, kInvalidArgument = 3, kDeadlineExceeded = 4,
              kResourceExhausted = 8, kUnavailable = 14, kInternal = 13;

/// The base URL ("http[s]://host[:port]/v1"): requests go to its path + "/chat/completions".
std::optional<net::HttpUrl> parse_base_url(const std::string& s) {
  try {
    net::HttpUrl u = net::parse_http_url(s);
    if (u.target.find('?') != std::string::npos) return std::nullopt;
    while (!u.target.empty() && u.target.back() == '/') u.target.pop_back();
    return u;
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

json::object tool(const char* name, const char* description, json::object properties,
                  json::array required) {
  return {
      {"type", "function"},
      {"function",
       {{"name", name},
        {"description", description},
        {"parameters",
         {{"type", "object"}, {"properties", std::move(properties)}, {"required", required}}}}}};
}

/// One tool call being streamed: its id (first delta), name and JSON arguments arrive in pieces.
struct ToolCall {
  std::string id, name, arguments;
};

constexpr std::string_view kActionNames[] = {"transfer", "hang_up", "send_dtmf"};

bool action_name(std::string_view name) {
  return std::find(std::begin(kActionNames), std::end(kActionNames), name) !=
         std::end(kActionNames);
}

/// The business tools of `turn` that can be offered: a name free of the actions' (and of the
/// ones before it), parameters that are a JSON object. In TurnRequest order.
std::vector<std::pair<std::string, json::object>> offered_tools(const llm::v1::TurnRequest& turn) {
  std::vector<std::pair<std::string, json::object>> out;
  for (const auto& t : turn.tools()) {
    if (t.name().empty() || action_name(t.name())) continue;
    if (std::any_of(out.begin(), out.end(), [&](const auto& o) { return o.first == t.name(); }))
      continue;
    boost::system::error_code ec;
    json::value p = json::parse(t.parameters_json(), ec);
    if (ec || !p.is_object()) continue;
    out.emplace_back(t.name(), std::move(p.as_object()));
  }
  return out;
}

common::v1::Action to_action(const ToolCall& t) {
  common::v1::Action a;
  json::object args;
  if (!t.arguments.empty()) {
    boost::system::error_code ec;
    auto v = json::parse(t.arguments, ec);
    if (!ec && v.is_object()) args = v.as_object();
  }
  auto str = [&](const char* key) -> std::string {
    const auto* v = args.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  if (t.name == "transfer") {
    a.mutable_transfer()->set_target(str("target"));
    a.mutable_transfer()->set_context(str("context"));
  } else if (t.name == "hang_up") {
    a.mutable_hangup()->set_final_words(str("final_words"));
    a.mutable_hangup()->set_reason(str("reason").empty() ? "the assistant hung up" : str("reason"));
  } else if (t.name == "send_dtmf") {
    a.mutable_send_dtmf()->set_digits(str("digits"));
  }
  return a;
}

std::string limit_error(const std::string& what) {
  return "the model's response broke a limit: " + what;
}

/// The tool calls of one turn, by the server's `index` (0 .. kMaxToolCalls-1).
struct ToolCalls {
  std::array<ToolCall, kMaxToolCalls> calls;
  std::array<bool, kMaxToolCalls> used{};

  /// Adds one `tool_calls` delta; returns an error message when it breaks a limit.
  std::optional<std::string> add(const json::object& t) {
    std::int64_t i = 0;  // a server that sends no index has one call
    if (const auto* idx = t.if_contains("index")) {
      if (!idx->is_int64() || idx->as_int64() < 0 ||
          idx->as_int64() >= static_cast<std::int64_t>(kMaxToolCalls)) {
        return limit_error("tool call index " + json::serialize(*idx).substr(0, 40) + " (at most " +
                           std::to_string(kMaxToolCalls) + " tool calls a turn, index 0-" +
                           std::to_string(kMaxToolCalls - 1) + ")");
      }
      i = idx->as_int64();
    }
    auto& call = calls[static_cast<std::size_t>(i)];
    if (const auto* id = t.if_contains("id"); id && id->is_string()) {
      // The first delta of a call carries its id (OpenAI: "call_..."); later ones none.
      if (id->as_string().size() > kMaxToolCallIdBytes) {
        return limit_error("tool call id longer than " + std::to_string(kMaxToolCallIdBytes) +
                           " bytes");
      }
      call.id.assign(id->as_string().data(), id->as_string().size());
    }
    const auto* f = t.if_contains("function");
    if (f == nullptr || !f->is_object()) return std::nullopt;
    used[static_cast<std::size_t>(i)] = true;
    if (const auto* nm = f->as_object().if_contains("name"); nm && nm->is_string()) {
      if (call.name.size() + nm->as_string().size() > kMaxToolNameBytes) {
        return limit_error("tool name longer than " + std::to_string(kMaxToolNameBytes) + " bytes");
      }
      call.name.append(nm->as_string().data(), nm->as_string().size());
    }
    if (const auto* ar = f->as_object().if_contains("arguments"); ar && ar->is_string()) {
      if (call.arguments.size() + ar->as_string().size() > kMaxToolArgumentsBytes) {
        return limit_error("tool arguments longer than " + std::to_string(kMaxToolArgumentsBytes) +
                           " bytes");
      }
      call.arguments.append(ar->as_string().data(), ar->as_string().size());
    }
    return std::nullopt;
  }
};

template <class Stream>
asio::awaitable<void> exchange(Stream& s, beast::tcp_stream& tcp, const OpenAiOptions& o,
                               const llm::v1::TurnRequest& turn,
                               http::request<http::string_body>& req, const TurnSink& sink,
                               TurnError& err) {
  tcp.expires_after(o.stall_timeout);
  co_await http::async_write(s, req, asio::use_awaitable);
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> p;
  p.body_limit(kMaxResponseBytes);
  co_await http::async_read_header(s, buf, p, asio::use_awaitable);
  const auto status = p.get().result_int();
  ToolCalls tools;
  std::string error_body;
  bool done = false;
  SseParser sse(kMaxSseLineBytes);
  const SseParser::OnData on_data = [&](std::string_view data) {
    if (done) return;
    if (data == "[DONE]") {
      done = true;
      return;
    }
    boost::system::error_code jec;
    const json::value v = json::parse(data, jec);
    if (jec || !v.is_object()) {
      err = {kInternal, "malformed event from the model: " + std::string(data.substr(0, 200))};
      done = true;
      return;
    }
    if (const auto* e = v.as_object().if_contains("error")) {
      err = {kUnavailable, "the model reported an error: " + json::serialize(*e).substr(0, 1000)};
      done = true;
      return;
    }
    const auto* choices = v.as_object().if_contains("choices");
    if (choices == nullptr || !choices->is_array() || choices->as_array().empty()) return;
    const auto& choice = choices->as_array()[0];
    if (!choice.is_object()) return;
    const auto* delta = choice.as_object().if_contains("delta");
    if (delta == nullptr || !delta->is_object()) return;
    if (const auto* c = delta->as_object().if_contains("content"); c && c->is_string()) {
      if (!c->as_string().empty()) sink.text(std::string(c->as_string()));
    }
    if (const auto* tc = delta->as_object().if_contains("tool_calls"); tc && tc->is_array()) {
      for (const auto& t : tc->as_array()) {
        if (!t.is_object()) continue;
        if (auto bad = tools.add(t.as_object())) {
          err = {kResourceExhausted, std::move(*bad)};
          done = true;
          return;
        }
      }
    }
  };
  char chunk[8192];
  while (!p.is_done() && !done) {
    p.get().body().data = chunk;
    p.get().body().size = sizeof chunk;
    tcp.expires_after(o.stall_timeout);
    // read_some: hand on each piece as it arrives (async_read would wait for a full buffer).
    auto [ec, n] = co_await http::async_read_some(s, buf, p, asio::as_tuple(asio::use_awaitable));
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::body_limit && status != 200) break;  // the error body so far
    if (ec == http::error::body_limit) {
      err = {kResourceExhausted, limit_error("response body longer than " +
                                             std::to_string(kMaxResponseBytes) + " bytes")};
      co_return;
    }
    if (ec) throw boost::system::system_error(ec);
    const std::size_t got = sizeof chunk - p.get().body().size;
    if (status != 200) {
      if (error_body.size() < 4096)
        error_body.append(chunk, std::min(got, 4096 - error_body.size()));
      continue;
    }
    if (sse.feed({chunk, got}, on_data)) {
      err = {kResourceExhausted, limit_error("event-stream line longer than " +
                                             std::to_string(kMaxSseLineBytes) + " bytes")};
      co_return;
    }
  }
  if (status != 200) {
    err = {status == 400 || status == 404 || status == 422 ? kInvalidArgument : kUnavailable,
           "HTTP " + std::to_string(status) + " from the model: " + error_body};
    co_return;
  }
  if (err.code != kOk) co_return;
  const auto offered = offered_tools(turn);
  std::set<std::string> ids;  // a server that repeats an id gets ours for the repeat
  for (std::size_t i = 0; i < kMaxToolCalls; ++i) {
    if (!tools.used[i]) continue;
    const ToolCall& t = tools.calls[i];
    std::string id = t.id;
    if (id.empty() || !ids.insert(id).second) {
      // Some servers (Ollama, llama.cpp) send no id: one unique within the call (the history
      // grows with every turn and round).
      id = "call_vb" + std::to_string(turn.turn()) + "_" + std::to_string(turn.history_size()) +
           "_" + std::to_string(i);
      ids.insert(id);
    }
    if (std::any_of(offered.begin(), offered.end(),
                    [&](const auto& x) { return x.first == t.name; })) {
      if (!sink.tool_call) continue;
      common::v1::ToolCall c;
      c.set_id(id);
      c.set_name(t.name);
      c.set_arguments_json(t.arguments.empty() ? std::string("{}") : t.arguments);
      sink.tool_call(c);
      continue;
    }
    auto a = to_action(t);
    if (a.kind_case() == common::v1::Action::KIND_NOT_SET) continue;  // not a tool we offered
    a.set_tool_call_id(id);
    sink.action(a);
  }
}

}  // namespace

std::string request_body(const OpenAiOptions& o, const llm::v1::TurnRequest& turn) {
  json::array messages;
  if (!o.system_prompt.empty()) {
    messages.push_back({{"role", "system"}, {"content", o.system_prompt}});
  }
  // The API refuses (400) an assistant message with tool_calls that is not followed by one
  // `tool` message per call id, and a `tool` message that answers no such call. The history
  // keeps them together; should it not (a remote history, a cap), the wire stays valid: a call
  // without its answer gets one saying so, an answer without its call is left out.
  std::vector<std::string> open_ids;
  std::set<std::string> answered;  // every id given a `tool` message
  auto close_open = [&] {
    for (auto& id : open_ids) {
      messages.push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", "no result"}});
      answered.insert(std::move(id));
    }
    open_ids.clear();
  };
  for (const auto& m : turn.history()) {
    if (m.role() == llm::v1::TOOL) {
      const auto it = std::find(open_ids.begin(), open_ids.end(), m.tool_call_id());
      if (it == open_ids.end()) continue;
      open_ids.erase(it);
      answered.insert(m.tool_call_id());
      messages.push_back(
          {{"role", "tool"}, {"tool_call_id", m.tool_call_id()}, {"content", m.text()}});
      continue;
    }
    close_open();
    const char* role = m.role() == llm::v1::ASSISTANT ? "assistant"
                       : m.role() == llm::v1::SYSTEM  ? "system"
                                                      : "user";
    std::string text = m.text();
    if (m.interrupted()) text += " [interrupted by the caller]";
    json::object msg{{"role", role}};
    if (m.role() == llm::v1::ASSISTANT && m.tool_calls_size() > 0) {
      json::array calls;
      for (const auto& c : m.tool_calls()) {
        if (c.id().empty() ||
            std::find(open_ids.begin(), open_ids.end(), c.id()) != open_ids.end()) {
          continue;
        }
        open_ids.push_back(c.id());
        calls.push_back({{"id", c.id()},
                         {"type", "function"},
                         {"function", {{"name", c.name()}, {"arguments", c.arguments_json()}}}});
      }
      msg["content"] = text.empty() && !calls.empty() ? json::value(nullptr) : json::value(text);
      if (!calls.empty()) msg["tool_calls"] = std::move(calls);
    } else {
      msg["content"] = text;
    }
    messages.push_back(std::move(msg));
  }
  close_open();
  std::string user;
  for (const auto& e : turn.events()) {
    if (e.has_dtmf()) user += "[The caller pressed " + e.dtmf().digits() + "] ";
    if (e.has_no_input()) user += "[The caller has said nothing for a while] ";
    if (e.has_barge_in()) user += "[The caller interrupted you] ";
    // An action the model called with an id has its result as a `tool` message in the history.
    if (e.has_action_result() && !answered.count(e.action_result().action().tool_call_id())) {
      user += e.action_result().ok()
                  ? "[Your last action succeeded] "
                  : "[Your last action failed: " + e.action_result().error() + "] ";
    }
  }
  user += turn.user_text();
  if (!user.empty()) messages.push_back({{"role", "user"}, {"content", user}});
  json::array tools;
  tools.push_back(tool("transfer", "Transfer the caller to an extension or phone number.",
                       {{"target", {{"type", "string"}, {"description", "extension or number"}}}},
                       {"target"}));
  tools.push_back(tool("hang_up", "End the call after saying goodbye.",
                       {{"final_words", {{"type", "string"}}}}, {}));
  tools.push_back(tool("send_dtmf", "Send DTMF tones (digits 0-9, * or #) on the line.",
                       {{"digits", {{"type", "string"}}}}, {"digits"}));
  auto offered = offered_tools(turn);
  for (const auto& t : turn.tools()) {
    const auto it = std::find_if(offered.begin(), offered.end(),
                                 [&](const auto& x) { return x.first == t.name(); });
    if (it == offered.end()) continue;
    tools.push_back({{"type", "function"},
                     {"function",
                      {{"name", t.name()},
                       {"description", t.description()},
                       {"parameters", std::move(it->second)}}}});
    offered.erase(it);
  }
  json::object body{{"model", o.model},
                    {"stream", true},
                    {"temperature", o.temperature},
                    {"messages", std::move(messages)},
                    {"tools", std::move(tools)}};
  return json::serialize(body);
}

TurnError run_turn(const OpenAiOptions& o, const llm::v1::TurnRequest& turn, const TurnSink& sink) {
  const auto url = parse_base_url(o.base_url);
  if (!url) return {kInvalidArgument, "base_url '" + o.base_url + "' is not http(s)://host..."};
  http::request<http::string_body> req{http::verb::post, url->target + "/chat/completions", 11};
  req.set(http::field::host, url->authority);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  req.set(http::field::user_agent, "voxbridge");
  if (!o.api_key.empty()) req.set(http::field::authorization, "Bearer " + o.api_key);
  req.body() = request_body(o, turn);
  req.prepare_payload();

  asio::io_context ioc(1);
  TurnError err;
  bool finished = false, cancelled = false;
  beast::tcp_stream tcp(ioc);
  std::optional<asio::ssl::context> tls;  // outlives tls_stream
  std::optional<asio::ssl::stream<beast::tcp_stream&>> tls_stream;
  if (url->tls) {
    try {
      tls.emplace(net::tls_client_context({o.ca_file}));
      tls_stream.emplace(tcp, *tls);
      net::tls_client_prepare(tls_stream->native_handle(), url->host, true);
    } catch (const std::runtime_error& e) {
      return {kInvalidArgument, std::string("TLS: ") + e.what()};
    }
  }
  // Ends the exchange early when the client cancels the turn.
  asio::steady_timer watch(ioc);
  std::function<void()> poll = [&] {
    watch.expires_after(std::chrono::milliseconds(20));
    watch.async_wait([&](boost::system::error_code ec) {
      if (ec || finished) return;
      if (sink.cancelled && sink.cancelled()) {
        cancelled = true;
        tcp.cancel();
        tcp.close();
        return;
      }
      poll();
    });
  };
  poll();
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        tcp::resolver resolver(ioc);
        tcp.expires_after(o.connect_timeout);
        const auto endpoints =
            co_await resolver.async_resolve(url->host, url->port, asio::use_awaitable);
        co_await tcp.async_connect(endpoints, asio::use_awaitable);
        if (tls_stream) {
          tcp.expires_after(o.connect_timeout);
          co_await tls_stream->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
          co_await exchange(*tls_stream, tcp, o, turn, req, sink, err);
        } else {
          co_await exchange(tcp, tcp, o, turn, req, sink, err);
        }
      },
      [&](std::exception_ptr e) {
        finished = true;
        watch.cancel();
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const boost::system::system_error& se) {
          if (cancelled) {
            err = {kCancelled, "cancelled"};
          } else if (se.code() == beast::error::timeout) {
            err = {kDeadlineExceeded, "the model stalled (no data for " +
                                          std::to_string(o.stall_timeout.count()) + " ms)"};
          } else {
            err = {kUnavailable, o.base_url + ": " + se.code().message()};
          }
        } catch (const std::exception& ex) {
          err = {kInternal, ex.what()};
        }
      });
  ioc.run();
  if (cancelled && err.code == kOk) err = {kCancelled, "cancelled"};
  return err;
}

}  // namespace voxbridge::llm_openai
