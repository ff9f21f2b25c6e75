// The OpenAI Realtime mock (see mock_realtime.hpp for the references and the behaviour).
// Wording of error messages: "reference" = the published reference or an error the service was
// seen to send (threads named in the header); "mock wording" = neither says, the text is ours.
#include "support/mock_realtime.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "support/ws_server.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/base64/base64.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// ---- base64 (RFC 4648 section 4; strict decoding) ----

std::string b64_encode(const std::vector<std::uint8_t>& in) {
  std::string out;
  base64::encode(std::span<const std::uint8_t>(in), out);
  return out;
}

bool b64_decode(std::string_view in, std::vector<std::uint8_t>& out) {
  return base64::decode(in, out);
}

// ---- errors in the vendor's shape ----

struct Err {
  std::string code;  ///< "" -> null
  std::string message;
  std::string param;  ///< "" -> null
};
using Check = std::optional<Err>;

std::string kind_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "value";
}

std::string as_text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

/// "'a', 'b', and 'c'" (OpenAI's way of listing supported values).
std::string supported(std::initializer_list<std::string_view> values) {
  std::string out;
  std::size_t i = 0;
  for (const auto v : values) {
    if (i > 0) out += values.size() == 2 ? " and " : (i + 1 == values.size() ? ", and " : ", ");
    out += "'" + std::string(v) + "'";
    ++i;
  }
  return out;
}

// Messages below follow the service's (reference) patterns: "Unknown parameter: 'x'.",
// "Missing required parameter: 'x'.", "Invalid type for 'x': expected ..., but got ... instead.",
// "Invalid value: 'v'. Supported values are: ...", "Invalid 'x': integer below minimum value...".
Err unknown_param(const std::string& path) {
  return {"unknown_parameter", "Unknown parameter: '" + path + "'.", path};
}
Err missing(const std::string& path) {
  return {"missing_required_parameter", "Missing required parameter: '" + path + "'.", path};
}
Err bad_type(const std::string& path, std::string_view expected, const json::value& got) {
  return {"invalid_type",
          "Invalid type for '" + path + "': expected " + std::string(expected) + ", but got " +
              kind_of(got) + " instead.",
          path};
}
Err bad_value(const std::string& path, const json::value& got,
              std::initializer_list<std::string_view> values) {
  return {"invalid_value",
          "Invalid value: '" + as_text(got) + "'. Supported values are: " + supported(values) + ".",
          path};
}
Err below_min(const std::string& path, std::string_view what, const std::string& min,
              const json::value& got) {
  return {std::string(what) + "_below_min_value",
          "Invalid '" + path + "': " + std::string(what == "integer" ? "integer" : "decimal") +
              " below minimum value. Expected a value >= " + min + ", but got " + as_text(got) +
              " instead.",
          path};
}
Err above_max(const std::string& path, std::string_view what, const std::string& max,
              const json::value& got) {
  return {std::string(what) + "_above_max_value",
          "Invalid '" + path + "': " + std::string(what == "integer" ? "integer" : "decimal") +
              " above maximum value. Expected a value <= " + max + ", but got " + as_text(got) +
              " instead.",
          path};
}

bool in(std::string_view v, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

Check only_keys(const json::object& o, std::initializer_list<std::string_view> known,
                const std::string& path) {
  for (const auto& kv : o)
    if (!in(kv.key(), known)) return unknown_param(path + "." + std::string(kv.key()));
  return std::nullopt;
}

Check want_bool(const json::object& o, std::string_view key, const std::string& path) {
  if (const auto* v = o.if_contains(key); v && !v->is_bool())
    return bad_type(path + "." + std::string(key), "a boolean", *v);
  return std::nullopt;
}
Check want_string(const json::object& o, std::string_view key, const std::string& path) {
  if (const auto* v = o.if_contains(key); v && !v->is_string())
    return bad_type(path + "." + std::string(key), "a string", *v);
  return std::nullopt;
}
bool is_int(const json::value& v) {
  return v.is_int64() || v.is_uint64();
}
std::int64_t to_int(const json::value& v) {
  return v.is_int64() ? v.as_int64() : static_cast<std::int64_t>(v.as_uint64());
}
bool is_num(const json::value& v) {
  return is_int(v) || v.is_double();
}
double to_num(const json::value& v) {
  return v.is_double() ? v.as_double() : static_cast<double>(to_int(v));
}

Check want_int_min(const json::object& o, std::string_view key, const std::string& path,
                   std::int64_t min, bool nullable = false) {
  const auto* v = o.if_contains(key);
  if (!v || (nullable && v->is_null())) return std::nullopt;
  const auto p = path + "." + std::string(key);
  if (!is_int(*v)) return bad_type(p, "an integer", *v);
  if (to_int(*v) < min) return below_min(p, "integer", std::to_string(min), *v);
  return std::nullopt;
}
Check want_num_range(const json::object& o, std::string_view key, const std::string& path,
                     double min, double max, const char* min_text, const char* max_text) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  const auto p = path + "." + std::string(key);
  if (!is_num(*v)) return bad_type(p, "a number", *v);
  if (to_num(*v) < min) return below_min(p, "decimal", min_text, *v);
  if (to_num(*v) > max) return above_max(p, "decimal", max_text, *v);
  return std::nullopt;
}

// ---- session validation (RealtimeSessionCreateRequest, GA) ----

/// An audio format object; `out` gets the effective one (audio/pcm with its rate).
Check check_format(const json::value& v, const std::string& path, json::object& out) {
  if (!v.is_object()) return bad_type(path, "an object", v);
  const auto& o = v.as_object();
  if (auto e = only_keys(o, {"type", "rate"}, path)) return e;
  const auto* t = o.if_contains("type");
  if (!t) return missing(path + ".type");
  if (!t->is_string()) return bad_type(path + ".type", "a string", *t);
  const std::string type(t->as_string());
  if (!in(type, {"audio/pcm", "audio/pcmu", "audio/pcma"}))
    return bad_value(path + ".type", *t, {"audio/pcm", "audio/pcmu", "audio/pcma"});
  if (const auto* r = o.if_contains("rate")) {
    if (type != "audio/pcm") return unknown_param(path + ".rate");
    if (!is_int(*r) || to_int(*r) != 24000) return bad_value(path + ".rate", *r, {"24000"});
  }
  out = {{"type", type}};
  if (type == "audio/pcm") out["rate"] = 24000;
  return std::nullopt;
}

Check check_turn_detection(const json::value& v, const std::string& path, json::value& out) {
  if (v.is_null()) {
    out = nullptr;
    return std::nullopt;
  }
  if (!v.is_object()) return bad_type(path, "an object", v);
  const auto& o = v.as_object();
  const auto* t = o.if_contains("type");
  if (!t) return missing(path + ".type");
  if (!t->is_string()) return bad_type(path + ".type", "a string", *t);
  json::object eff;
  if (t->as_string() == "server_vad") {
    if (auto e = only_keys(o,
                           {"type", "threshold", "prefix_padding_ms", "silence_duration_ms",
                            "idle_timeout_ms", "create_response", "interrupt_response"},
                           path))
      return e;
    if (auto e = want_num_range(o, "threshold", path, 0.0, 1.0, "0", "1")) return e;
    if (auto e = want_int_min(o, "prefix_padding_ms", path, 0)) return e;
    if (auto e = want_int_min(o, "silence_duration_ms", path, 0)) return e;
    if (auto e = want_int_min(o, "idle_timeout_ms", path, 0, true)) return e;
    eff = {{"type", "server_vad"},       {"threshold", 0.5},           {"prefix_padding_ms", 300},
           {"silence_duration_ms", 200}, {"idle_timeout_ms", nullptr}, {"create_response", true},
           {"interrupt_response", true}};
  } else if (t->as_string() == "semantic_vad") {
    if (auto e = only_keys(o, {"type", "eagerness", "create_response", "interrupt_response"}, path))
      return e;
    if (const auto* g = o.if_contains("eagerness")) {
      if (!g->is_string()) return bad_type(path + ".eagerness", "a string", *g);
      if (!in(g->as_string(), {"low", "medium", "high", "auto"}))
        return bad_value(path + ".eagerness", *g, {"low", "medium", "high", "auto"});
    }
    eff = {{"type", "semantic_vad"},
           {"eagerness", "auto"},
           {"create_response", true},
           {"interrupt_response", true}};
  } else {
    return bad_value(path + ".type", *t, {"server_vad", "semantic_vad"});
  }
  if (auto e = want_bool(o, "create_response", path)) return e;
  if (auto e = want_bool(o, "interrupt_response", path)) return e;
  for (const auto& kv : o) eff[kv.key()] = kv.value();
  out = std::move(eff);
  return std::nullopt;
}

Check check_tools(const json::value& v, const std::string& path) {
  if (!v.is_array()) return bad_type(path, "an array", v);
  std::size_t i = 0;
  for (const auto& tool : v.as_array()) {
    const auto p = path + "[" + std::to_string(i++) + "]";
    if (!tool.is_object()) return bad_type(p, "an object", tool);
    const auto& o = tool.as_object();
    const auto* t = o.if_contains("type");
    if (!t) return missing(p + ".type");
    if (!t->is_string() || t->as_string() != "function")
      return bad_value(p + ".type", *t, {"function", "mcp"});  // the mock knows functions only
    if (auto e = only_keys(o, {"type", "name", "description", "parameters"}, p)) return e;
    const auto* n = o.if_contains("name");
    if (!n) return missing(p + ".name");
    if (auto e = want_string(o, "name", p)) return e;
    if (auto e = want_string(o, "description", p)) return e;
    if (const auto* params = o.if_contains("parameters"); params && !params->is_object())
      return bad_type(p + ".parameters", "an object", *params);
  }
  return std::nullopt;
}

/// Applies the update `u` (the client's `session`) to `s` (the effective session).
Check apply_session(const json::value& uv, json::object& s, bool audio_sent) {
  const std::string path = "session";
  if (!uv.is_object()) return bad_type(path, "an object", uv);
  const auto& u = uv.as_object();
  if (auto e = only_keys(
          u,
          {"type", "output_modalities", "model", "instructions", "audio", "include", "tracing",
           "tools", "tool_choice", "max_output_tokens", "truncation", "prompt"},
          path))
    return e;
  const auto* type = u.if_contains("type");
  if (!type) return missing("session.type");
  if (!type->is_string() || !in(type->as_string(), {"realtime", "transcription"}))
    return bad_value("session.type", *type, {"realtime", "transcription"});
  if (type->as_string() != "realtime")  // mock wording
    return Err{"invalid_value",
               "Invalid value: 'transcription'. This session is a 'realtime' session and its type "
               "cannot be changed.",
               "session.type"};
  if (const auto* m = u.if_contains("model")) {
    if (!m->is_string()) return bad_type("session.model", "a string", *m);
    if (m->as_string() != s["model"].as_string())  // mock wording
      return Err{"invalid_value", "Cannot update a session's model.", "session.model"};
  }
  if (const auto* m = u.if_contains("output_modalities")) {
    if (!m->is_array()) return bad_type("session.output_modalities", "an array", *m);
    const auto& a = m->as_array();
    if (a.size() != 1 || !a[0].is_string() || !in(a[0].as_string(), {"audio", "text"}))
      return bad_value("session.output_modalities", *m, {"[\"audio\"]", "[\"text\"]"});
  }
  if (auto e = want_string(u, "instructions", path)) return e;
  if (const auto* t = u.if_contains("tools"))
    if (auto e = check_tools(*t, "session.tools")) return e;
  if (const auto* c = u.if_contains("tool_choice")) {
    if (c->is_string()) {
      if (!in(c->as_string(), {"none", "auto", "required"}))
        return bad_value("session.tool_choice", *c, {"none", "auto", "required"});
    } else if (c->is_object()) {
      const auto& co = c->as_object();
      if (auto e = only_keys(co, {"type", "name"}, "session.tool_choice")) return e;
      const auto* ct = co.if_contains("type");
      if (!ct || !ct->is_string() || ct->as_string() != "function")
        return ct ? bad_value("session.tool_choice.type", *ct, {"function", "mcp"})
                  : missing("session.tool_choice.type");
      if (!co.if_contains("name")) return missing("session.tool_choice.name");
      if (auto e = want_string(co, "name", "session.tool_choice")) return e;
    } else {
      return bad_type("session.tool_choice", "a string or an object", *c);
    }
  }
  if (const auto* m = u.if_contains("max_output_tokens")) {
    if (m->is_string()) {
      if (m->as_string() != "inf") return bad_value("session.max_output_tokens", *m, {"inf"});
    } else if (!is_int(*m)) {
      return bad_type("session.max_output_tokens", "an integer or 'inf'", *m);
    } else if (to_int(*m) < 1) {
      return below_min("session.max_output_tokens", "integer", "1", *m);
    } else if (to_int(*m) > 4096) {
      return above_max("session.max_output_tokens", "integer", "4096", *m);
    }
  }
  if (const auto* inc = u.if_contains("include"); inc && !inc->is_null()) {
    if (!inc->is_array()) return bad_type("session.include", "an array", *inc);
    for (const auto& x : inc->as_array())
      if (!x.is_string() || x.as_string() != "item.input_audio_transcription.logprobs")
        return bad_value("session.include", x, {"item.input_audio_transcription.logprobs"});
  }
  json::object audio = s["audio"].as_object();
  json::object ain = audio["input"].as_object();
  json::object aout = audio["output"].as_object();
  if (const auto* a = u.if_contains("audio")) {
    if (!a->is_object()) return bad_type("session.audio", "an object", *a);
    const auto& ao = a->as_object();
    if (auto e = only_keys(ao, {"input", "output"}, "session.audio")) return e;
    if (const auto* i = ao.if_contains("input")) {
      const std::string p = "session.audio.input";
      if (!i->is_object()) return bad_type(p, "an object", *i);
      const auto& io = i->as_object();
      if (auto e =
              only_keys(io, {"format", "noise_reduction", "transcription", "turn_detection"}, p))
        return e;
      if (const auto* f = io.if_contains("format")) {
        json::object fmt;
        if (auto e = check_format(*f, p + ".format", fmt)) return e;
        ain["format"] = std::move(fmt);
      }
      if (const auto* n = io.if_contains("noise_reduction")) {
        if (!n->is_null()) {
          if (!n->is_object()) return bad_type(p + ".noise_reduction", "an object", *n);
          if (auto e = only_keys(n->as_object(), {"type"}, p + ".noise_reduction")) return e;
          const auto* nt = n->as_object().if_contains("type");
          if (nt && (!nt->is_string() || !in(nt->as_string(), {"near_field", "far_field"})))
            return bad_value(p + ".noise_reduction.type", *nt, {"near_field", "far_field"});
        }
        ain["noise_reduction"] = *n;
      }
      if (const auto* t = io.if_contains("transcription")) {
        if (!t->is_null()) {
          if (!t->is_object()) return bad_type(p + ".transcription", "an object", *t);
          const auto& to = t->as_object();
          if (auto e = only_keys(to, {"model", "language", "prompt"}, p + ".transcription"))
            return e;
          for (const auto* k : {"model", "language", "prompt"})
            if (auto e = want_string(to, k, p + ".transcription")) return e;
        }
        ain["transcription"] = *t;
      }
      if (const auto* t = io.if_contains("turn_detection")) {
        json::value td;
        if (auto e = check_turn_detection(*t, p + ".turn_detection", td)) return e;
        ain["turn_detection"] = std::move(td);
      }
    }
    if (const auto* o = ao.if_contains("output")) {
      const std::string p = "session.audio.output";
      if (!o->is_object()) return bad_type(p, "an object", *o);
      const auto& oo = o->as_object();
      if (auto e = only_keys(oo, {"format", "voice", "speed"}, p)) return e;
      if (const auto* f = oo.if_contains("format")) {
        json::object fmt;
        if (auto e = check_format(*f, p + ".format", fmt)) return e;
        aout["format"] = std::move(fmt);
      }
      if (const auto* v = oo.if_contains("voice")) {
        if (v->is_string()) {
          if (!in(v->as_string(), {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer",
                                   "verse", "marin", "cedar"}))
            return bad_value(p + ".voice", *v,
                             {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse",
                              "marin", "cedar"});
        } else if (!v->is_object() || !v->as_object().if_contains("id")) {
          return bad_type(p + ".voice", "a string or an object with an id", *v);
        }
        if (audio_sent && *v != aout["voice"])  // reference (the service's error)
          return Err{"cannot_update_voice",
                     "Cannot update a conversation's voice if assistant audio is present.",
                     p + ".voice"};
        aout["voice"] = *v;
      }
      if (auto e = want_num_range(oo, "speed", p, 0.25, 1.5, "0.25", "1.5")) return e;
      if (const auto* sp = oo.if_contains("speed")) aout["speed"] = *sp;
    }
  }
  // Everything checked: apply.
  audio["input"] = std::move(ain);
  audio["output"] = std::move(aout);
  s["audio"] = std::move(audio);
  for (const auto* k : {"output_modalities", "instructions", "include", "tracing", "tools",
                        "tool_choice", "max_output_tokens", "truncation", "prompt"})
    if (const auto* v = u.if_contains(k)) s[k] = *v;
  return std::nullopt;
}

json::object default_session(std::size_t conn, const std::string& model) {
  const json::object pcm{{"type", "audio/pcm"}, {"rate", 24000}};
  return json::object{
      {"type", "realtime"},
      {"object", "realtime.session"},
      {"id", "sess_" + std::to_string(conn)},
      {"model", model},
      {"output_modalities", json::array{"audio"}},
      {"instructions", ""},
      {"tools", json::array{}},
      {"tool_choice", "auto"},
      {"max_output_tokens", "inf"},
      {"tracing", nullptr},
      {"truncation", "auto"},
      {"prompt", nullptr},
      {"expires_at", 1767225600},
      {"audio",
       json::object{{"input", json::object{{"format", pcm},
                                           {"transcription", nullptr},
                                           {"noise_reduction", nullptr},
                                           {"turn_detection",
                                            json::object{{"type", "server_vad"},
                                                         {"threshold", 0.5},
                                                         {"prefix_padding_ms", 300},
                                                         {"silence_duration_ms", 200},
                                                         {"idle_timeout_ms", nullptr},
                                                         {"create_response", true},
                                                         {"interrupt_response", true}}}}},
                    {"output", json::object{{"format", pcm}, {"voice", "alloy"}, {"speed", 1.0}}}}},
      {"include", nullptr}};
}

std::string pct_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::unordered_map<std::string, std::string> parse_query(std::string_view q) {
  std::unordered_map<std::string, std::string> out;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const auto part = q.substr(0, amp);
    const auto eq = part.find('=');
    try {
      out[pct_decode(part.substr(0, eq))] =
          eq == std::string_view::npos ? "" : pct_decode(part.substr(eq + 1));
    } catch (...) {
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::string error_body(std::string_view message, std::string_view type, std::string_view code,
                       std::string_view param = {}) {
  json::object e{{"message", message},
                 {"type", type},
                 {"param", param.empty() ? json::value(nullptr) : json::value(param)},
                 {"code", code.empty() ? json::value(nullptr) : json::value(code)}};
  return json::serialize(json::object{{"error", std::move(e)}});
}

}  // namespace

// ---------------------------------------------------------------------------------------------

namespace mock_realtime_detail {

struct Record {
  std::vector<MockRealtime::ClientEvent> received;
  std::vector<std::string> sent;
  std::vector<std::uint8_t> audio;
  std::size_t audio_total = 0;
  json::object session;
  bool open = true;
};

class Conn;

}  // namespace mock_realtime_detail

using mock_realtime_detail::Conn;
using mock_realtime_detail::Record;

struct MockRealtime::Impl {
  Options opt;
  // First: destroyed last, after the connections it still holds (they refer to this Impl).
  std::unique_ptr<WsServer> server;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::uint64_t version = 0;
  std::vector<std::unique_ptr<Record>> records;
  std::vector<std::shared_ptr<Conn>> conns;
  std::deque<Script> scripts;
  Script default_script;
  std::deque<std::string> transcripts;
  struct Refusal {
    int status;
    std::string body, retry_after;
  };
  std::optional<Refusal> refusal;
  std::vector<Upgrade> upgrades;

  void changed() {  // with mu held
    ++version;
    cv.notify_all();
  }
  std::shared_ptr<Conn> conn(std::size_t i) const {
    std::lock_guard lock(mu);
    return i < conns.size() ? conns[i] : nullptr;
  }
};

namespace mock_realtime_detail {

class Conn : public WsServer::Connection {
 public:
  using Impl = MockRealtime::Impl;
  using Script = MockRealtime::Script;

  Conn(Impl& m, WsServer::Accepted a)
      : WsServer::Connection(std::move(a)), m_(m), timer_(executor()) {}

  // Called from any thread: post to the strand.
  void post(std::function<void(Conn&)> f) {
    asio::post(executor(), [self = self<Conn>(), f = std::move(f)] { f(*self); });
  }

  void send_raw(std::string text) {
    {
      std::lock_guard lock(m_.mu);
      if (m_.opt.record_sent && rec_) rec_->sent.push_back(text);
      m_.changed();
    }
    write(std::move(text));
  }
  using WsServer::Connection::drop;  // breaks the socket once what is queued is written
  void close(std::uint16_t code, std::string reason) {
    if (closing_ || close_when_open_) return;
    close_code_ = code;
    close_reason_ = std::move(reason);
    if (!open_) {  // still in the handshake: after session.created
      close_when_open_ = true;
      return;
    }
    closing_ = true;
    WsServer::Connection::close(close_code_, close_reason_);
  }
  void resume() {
    if (active_ && active_->stalled) {
      active_->stalled = false;
      active_->stall_after_ms = -1;
      tick();
    }
  }
  void rate_limits() {
    auto e = base("rate_limits.updated");
    e["rate_limits"] = json::array{
        json::object{
            {"name", "requests"}, {"limit", 1000}, {"remaining", 999}, {"reset_seconds", 60}},
        json::object{
            {"name", "tokens"}, {"limit", 50000}, {"remaining", 49000}, {"reset_seconds", 60}}};
    emit(std::move(e));
  }

 private:
  // ---- upgrade ----

  Refusal decide(const Upgrade& req, std::string& auth) {
    const auto& o = m_.opt;
    const auto bearer = req.header("Authorization");
    const auto api_key = req.header("api-key");
    auth = !bearer.empty() ? "bearer" : (!api_key.empty() ? "api-key" : "");
    {
      std::lock_guard lock(m_.mu);
      if (m_.refusal) {
        Refusal d{m_.refusal->status, m_.refusal->body, "application/json",
                  m_.refusal->retry_after};
        m_.refusal.reset();
        return d;
      }
    }
    if (!req.websocket)  // mock wording
      return {426, error_body("Expected a WebSocket upgrade.", "invalid_request_error", "")};
    const std::string& target = req.target;
    const auto qpos = target.find('?');
    const std::string path = target.substr(0, qpos);
    const auto query = parse_query(
        qpos == std::string::npos ? std::string_view{} : std::string_view(target).substr(qpos + 1));
    const auto beta = req.header("OpenAI-Beta");
    if (o.api == MockRealtime::Api::openai) {
      if (path != "/v1/realtime")  // the service's 404 body
        return {404, error_body("Invalid URL (GET " + path + ")", "invalid_request_error", "")};
      if (bearer.empty())
        return {401,
                error_body("You didn't provide an API key. You need to provide your API key in an "
                           "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                           "YOUR_KEY).",
                           "invalid_request_error", "")};
      if (bearer != "Bearer " + o.api_key) {
        const std::string given(bearer.substr(std::min<std::size_t>(bearer.size(), 7)));
        const std::string masked =
            given.size() > 8 ? std::string(given.size() - 4, '*') + given.substr(given.size() - 4)
                             : std::string(given.size(), '*');
        return {401, error_body("Incorrect API key provided: " + masked +
                                    ". You can find your API key at "
                                    "https://platform.openai.com/account/api-keys.",
                                "invalid_request_error", "invalid_api_key")};
      }
      const auto model = query.find("model");
      if (model == query.end())
        return {400, error_body("Missing required parameter: 'model'.", "invalid_request_error",
                                "missing_required_parameter", "model")};
      if (model->second != o.model)
        return {404, error_body("The model '" + model->second +
                                    "' does not exist or you do not have access to it.",
                                "invalid_request_error", "model_not_found")};
    } else {
      const bool ga = path == "/openai/v1/realtime";
      if (!ga && path != "/openai/realtime")
        return {404, R"({"error":{"code":"404","message":"Resource not found"}})"};
      if (api_key != o.api_key)
        return {
            401,
            R"({"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})"};
      const auto dep = query.find(ga ? "model" : "deployment");
      if (!ga && query.find("api-version") == query.end())
        return {404, R"({"error":{"code":"404","message":"Resource not found"}})"};
      if (dep == query.end() || dep->second != o.model)
        return {
            404,
            R"({"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}})"};
    }
    // With this header the service speaks the 2024 beta protocol; the mock speaks GA only
    // (mock wording): a client that sends it would not get what it expects.
    if (beta.find("realtime=v1") != std::string::npos)
      return {400, error_body("This mock serves the GA Realtime interface only; do not send "
                              "'OpenAI-Beta: realtime=v1'.",
                              "invalid_request_error", "")};
    return {101, "", "", ""};
  }

  std::optional<Refusal> on_upgrade(const Upgrade& req) override {
    std::string auth;
    Refusal d = decide(req, auth);
    {
      std::lock_guard lock(m_.mu);
      m_.upgrades.push_back({req.target, auth, d.status});
      m_.changed();
    }
    if (d.status != 101) return d;
    // The index is taken before the 101 goes out: a client that has its handshake done has
    // its connection index (clients that connect one after the other get 0, 1, 2...).
    std::lock_guard lock(m_.mu);
    idx_ = m_.conns.size();
    m_.conns.push_back(self<Conn>());
    m_.records.push_back(std::make_unique<Record>());
    rec_ = m_.records.back().get();
    m_.changed();
    return std::nullopt;
  }

  // What tests pushed during the handshake goes after session.created (the transport sends
  // what was queued before the socket opened after what on_open() queues).
  void on_open() override {
    open_ = true;
    session_ = default_session(idx_, m_.opt.model);
    auto e = base("session.created");
    e["session"] = session_;
    emit(std::move(e));
    if (close_when_open_) {
      closing_ = true;
      WsServer::Connection::close(close_code_, close_reason_);
    }
  }

  // ---- transport ----

  void on_closed() override {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    active_.reset();
    std::lock_guard lock(m_.mu);
    if (rec_) rec_->open = false;
    m_.changed();
  }

  /// `chunk`: an audio delta's index in its response, for Options::observer (kNoChunk: none).
  void write(std::string text, std::size_t chunk = kNoChunk) {
    if (closing_ || closed_) return;
    send(std::move(text), chunk);
  }
  // An audio delta is timed as it is handed to the socket: what waited in the queue before it
  // (the mock's own) is not in the time.
  void on_handed(std::size_t chunk) override {
    if (m_.opt.observer.audio_delta) m_.opt.observer.audio_delta(idx_, chunk);
  }

  // ---- events out ----

  std::string next_id(std::string_view prefix, std::size_t& n) {
    return std::string(prefix) + std::to_string(idx_) + "_" + std::to_string(++n);
  }
  json::object base(std::string_view type) {
    return json::object{{"type", type}, {"event_id", next_id("event_", n_event_)}};
  }
  void emit(json::object e, std::size_t chunk = kNoChunk) {
    std::string text = json::serialize(e);
    {
      std::lock_guard lock(m_.mu);
      if (m_.opt.record_sent) rec_->sent.push_back(text);
      if (e["type"] == "session.created" || e["type"] == "session.updated")
        rec_->session = session_;
      m_.changed();
    }
    write(std::move(text), chunk);
  }
  void error(const json::object* ev, const Err& err) {
    json::value client_id = nullptr;
    if (ev)
      if (const auto* id = ev->if_contains("event_id"); id && id->is_string()) client_id = *id;
    auto e = base("error");
    e["error"] =
        json::object{{"type", "invalid_request_error"},
                     {"code", err.code.empty() ? json::value(nullptr) : json::value(err.code)},
                     {"message", err.message},
                     {"param", err.param.empty() ? json::value(nullptr) : json::value(err.param)},
                     {"event_id", client_id}};
    emit(std::move(e));
  }

  // ---- events in ----

  void on_message(std::string raw) override {
    MockRealtime::ClientEvent ce;
    ce.conn = idx_;
    ce.at = std::chrono::steady_clock::now();
    boost::system::error_code ec;
    json::value v = json::parse(raw, ec);
    if (!ec && v.is_object())
      if (const auto* t = v.as_object().if_contains("type"); t && t->is_string())
        ce.type = std::string(t->as_string());
    if (ec) v = nullptr;
    {
      std::lock_guard lock(m_.mu);
      if (m_.opt.record_appends || ce.type != "input_audio_buffer.append") {
        ce.raw = raw;
        ce.json = v;
        rec_->received.push_back(std::move(ce));
      }
      m_.changed();
    }
    if (ec)  // mock wording (the reference names no code for unparsable JSON)
      return error(nullptr, {"invalid_json", "Invalid JSON: " + ec.message() + ".", ""});
    if (!v.is_object())
      return error(nullptr, {"invalid_event",
                             "Expected a JSON object, but got " + kind_of(v) + " instead.", ""});
    const auto& ev = v.as_object();
    const auto* t = ev.if_contains("type");
    if (!t)  // the reference's own example
      return error(&ev, {"invalid_event", "The 'type' field is missing.", ""});
    if (!t->is_string()) return error(&ev, bad_type("type", "a string", *t));
    if (const auto* id = ev.if_contains("event_id"); id && !id->is_string())
      return error(&ev, bad_type("event_id", "a string", *id));
    const std::string type(t->as_string());
    if (type == "session.update") return on_session_update(ev);
    if (type == "input_audio_buffer.append") return on_append(ev);
    if (type == "input_audio_buffer.commit") return on_commit(ev);
    if (type == "input_audio_buffer.clear") return on_clear(ev);
    if (type == "conversation.item.create") return on_item_create(ev);
    if (type == "conversation.item.truncate") return on_truncate(ev);
    if (type == "conversation.item.delete") return on_item_delete(ev);
    if (type == "conversation.item.retrieve") return on_item_retrieve(ev);
    if (type == "response.create") return on_response_create(ev);
    if (type == "response.cancel") return on_response_cancel(ev);
    if (type == "output_audio_buffer.clear")  // mock wording: WebRTC/SIP only per the reference
      return error(&ev, {"invalid_value",
                         "output_audio_buffer.clear is only supported for WebRTC and SIP "
                         "connections.",
                         "type"});
    error(&ev, bad_value("type", *t,
                         {"session.update", "input_audio_buffer.append",
                          "input_audio_buffer.commit", "input_audio_buffer.clear",
                          "conversation.item.create", "conversation.item.retrieve",
                          "conversation.item.truncate", "conversation.item.delete",
                          "response.create", "response.cancel", "output_audio_buffer.clear"}));
  }

  Check only_event_keys(const json::object& ev, std::initializer_list<std::string_view> keys) {
    for (const auto& kv : ev)
      if (kv.key() != "type" && kv.key() != "event_id" && !in(kv.key(), keys))
        return unknown_param(std::string(kv.key()));
    return std::nullopt;
  }

  void on_session_update(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"session"})) return error(&ev, *e);
    const auto* s = ev.if_contains("session");
    if (!s) return error(&ev, missing("session"));
    json::object next = session_;
    if (auto e = apply_session(*s, next, audio_sent_)) return error(&ev, *e);
    session_ = std::move(next);
    if (m_.opt.observer.session) m_.opt.observer.session(idx_, session_);
    auto e = base("session.updated");
    e["session"] = session_;
    emit(std::move(e));
  }

  std::string in_format() {
    return std::string(session_["audio"].at("input").at("format").at("type").as_string());
  }
  std::string out_format() {
    return std::string(session_["audio"].at("output").at("format").at("type").as_string());
  }
  const json::value& turn_detection() { return session_["audio"].at("input").at("turn_detection"); }
  static std::size_t bytes_per_ms(const std::string& fmt) { return fmt == "audio/pcm" ? 48 : 8; }
  static std::size_t samples_per_ms(const std::string& fmt) { return fmt == "audio/pcm" ? 24 : 8; }

  void on_append(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"audio"})) return error(&ev, *e);
    const auto* a = ev.if_contains("audio");
    if (!a) return error(&ev, missing("audio"));
    if (!a->is_string()) return error(&ev, bad_type("audio", "a string", *a));
    std::vector<std::uint8_t> bytes;
    if (!b64_decode(a->as_string(), bytes))  // mock wording
      return error(
          &ev, {"invalid_value", "Invalid 'audio': expected base64-encoded audio bytes.", "audio"});
    const auto fmt = in_format();
    if (fmt == "audio/pcm" && bytes.size() % 2 != 0)  // mock wording
      return error(&ev, {"invalid_value",
                         "Invalid 'audio': audio/pcm is 16-bit samples, but got " +
                             std::to_string(bytes.size()) + " bytes (not a whole sample).",
                         "audio"});
    {
      std::lock_guard lock(m_.mu);
      rec_->audio_total += bytes.size();
      const auto room =
          m_.opt.max_kept_audio_bytes - std::min(m_.opt.max_kept_audio_bytes, rec_->audio.size());
      rec_->audio.insert(rec_->audio.end(), bytes.begin(),
                         bytes.begin() + static_cast<std::ptrdiff_t>(std::min(room, bytes.size())));
      m_.changed();
    }
    buffer_fmt_ = fmt;
    if (m_.opt.observer.append) m_.opt.observer.append(idx_, bytes, fmt);
    if (turn_detection().is_object())
      vad(bytes, fmt);  // counts the buffer block by block: a commit takes audio up to its block
    else
      buffer_bytes_ += bytes.size();
  }

  // Energy VAD over 20 ms blocks (see the header for the rules).
  void vad(const std::vector<std::uint8_t>& bytes, const std::string& fmt) {
    const auto& td = turn_detection().as_object();
    const bool server = td.at("type") == "server_vad";
    const double threshold = server ? to_num(td.at("threshold")) : 0.5;
    const std::int64_t prefix = server ? to_int(td.at("prefix_padding_ms")) : 300;
    const std::int64_t silence = server ? to_int(td.at("silence_duration_ms")) : 500;
    const std::size_t block = 20 * samples_per_ms(fmt);
    auto push = [&](std::int16_t s) {
      block_.push_back(s);
      if (block_.size() < block) return;
      double sum = 0;
      for (const auto x : block_) sum += static_cast<double>(x) * x;
      const bool voiced = std::sqrt(sum / static_cast<double>(block_.size())) >= 2000.0 * threshold;
      block_.clear();
      const std::int64_t start = input_ms_;
      input_ms_ += 20;
      if (!speaking_) {
        if (!voiced) {
          voiced_run_ = 0;
          return;
        }
        if (voiced_run_++ == 0) first_voiced_ms_ = start;
        if (voiced_run_ < 3) return;
        speaking_ = true;
        silent_ms_ = 0;
        vad_item_ = next_id("item_", n_item_);
        auto e = base("input_audio_buffer.speech_started");
        e["audio_start_ms"] = std::max<std::int64_t>(0, first_voiced_ms_ - prefix);
        e["item_id"] = vad_item_;
        emit(std::move(e));
        if (active_ && td.at("interrupt_response") != false) finish("cancelled", "turn_detected");
        return;
      }
      silent_ms_ = voiced ? 0 : silent_ms_ + 20;
      if (silent_ms_ < silence) return;
      speaking_ = false;
      voiced_run_ = 0;
      auto e = base("input_audio_buffer.speech_stopped");
      e["audio_end_ms"] = input_ms_;
      e["item_id"] = vad_item_;
      emit(std::move(e));
      commit(vad_item_);
      if (td.at("create_response") != false && !active_) start_response();
    };
    if (fmt == "audio/pcm") {
      for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) {
        buffer_bytes_ += 2;
        push(static_cast<std::int16_t>(bytes[i] | (bytes[i + 1] << 8)));
      }
    } else {
      for (const auto b : bytes) {
        buffer_bytes_ += 1;
        push(fmt == "audio/pcmu" ? audio::ulaw_to_linear(b) : audio::alaw_to_linear(b));
      }
    }
  }

  void reset_vad() {
    speaking_ = false;
    voiced_run_ = 0;
    silent_ms_ = 0;
  }

  /// The buffer becomes user item `item_id`: committed, item added/done, transcription.
  void commit(const std::string& item_id) {
    const auto ms = buffer_bytes_ / bytes_per_ms(buffer_fmt_.empty() ? in_format() : buffer_fmt_);
    committed_ms_ += ms;
    buffer_bytes_ = 0;
    auto c = base("input_audio_buffer.committed");
    c["previous_item_id"] = last_item();
    c["item_id"] = item_id;
    emit(std::move(c));
    json::object item{
        {"id", item_id},
        {"object", "realtime.item"},
        {"type", "message"},
        {"status", "completed"},
        {"role", "user"},
        {"content", json::array{json::object{{"type", "input_audio"}, {"transcript", nullptr}}}}};
    add_item(item, "message", "user", 0);
    const auto& tr = session_["audio"].at("input").at("transcription");
    if (tr.is_object()) {
      std::string text = "hello";
      {
        std::lock_guard lock(m_.mu);
        if (!m_.transcripts.empty()) {
          text = std::move(m_.transcripts.front());
          m_.transcripts.pop_front();
        }
      }
      auto t = base("conversation.item.input_audio_transcription.completed");
      t["item_id"] = item_id;
      t["content_index"] = 0;
      t["transcript"] = text;
      t["usage"] =
          json::object{{"type", "duration"}, {"seconds", static_cast<double>(ms) / 1000.0}};
      emit(std::move(t));
    }
  }

  json::value last_item() {
    return order_.empty() ? json::value(nullptr) : json::value(order_.back());
  }

  /// Appends `item` to the conversation and sends conversation.item.added and .done.
  void add_item(const json::object& item, std::string kind, std::string role,
                std::size_t text_bytes) {
    auto a = base("conversation.item.added");
    a["previous_item_id"] = last_item();
    a["item"] = item;
    emit(std::move(a));
    const std::string id(item.at("id").as_string());
    order_.push_back(id);
    items_[id] = Item{std::move(kind), std::move(role), 0, text_bytes, item};
    text_bytes_ += text_bytes;
    auto d = base("conversation.item.done");
    d["previous_item_id"] = order_.size() > 1 ? json::value(order_[order_.size() - 2]) : nullptr;
    d["item"] = item;
    emit(std::move(d));
  }

  void on_commit(const json::object& ev) {
    if (auto e = only_event_keys(ev, {})) return error(&ev, *e);
    const auto fmt = buffer_fmt_.empty() ? in_format() : buffer_fmt_;
    const double ms = static_cast<double>(buffer_bytes_) / static_cast<double>(bytes_per_ms(fmt));
    if (ms < 100.0) {  // reference (the service's error)
      char msg[200];
      std::snprintf(msg, sizeof msg,
                    "Error committing input audio buffer: buffer too small. Expected at least "
                    "100ms of audio, but buffer only has %.2fms of audio.",
                    ms);
      return error(&ev, {"input_audio_buffer_commit_empty", msg, ""});
    }
    const std::string id = speaking_ ? vad_item_ : next_id("item_", n_item_);
    reset_vad();
    commit(id);
  }

  void on_clear(const json::object& ev) {
    if (auto e = only_event_keys(ev, {})) return error(&ev, *e);
    buffer_bytes_ = 0;
    reset_vad();
    emit(base("input_audio_buffer.cleared"));
  }

  void on_item_create(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"previous_item_id", "item"})) return error(&ev, *e);
    if (const auto* p = ev.if_contains("previous_item_id"); p && !p->is_null()) {
      if (!p->is_string()) return error(&ev, bad_type("previous_item_id", "a string", *p));
      if (p->as_string() != "root" && !items_.count(std::string(p->as_string())))  // mock wording
        return error(&ev, {"invalid_value",
                           "Invalid 'previous_item_id': the item with id '" +
                               std::string(p->as_string()) + "' does not exist.",
                           "previous_item_id"});
    }
    const auto* iv = ev.if_contains("item");
    if (!iv) return error(&ev, missing("item"));
    if (!iv->is_object()) return error(&ev, bad_type("item", "an object", *iv));
    json::object item = iv->as_object();
    const auto* t = item.if_contains("type");
    if (!t) return error(&ev, missing("item.type"));
    if (!t->is_string() ||
        !in(t->as_string(), {"message", "function_call", "function_call_output"}))
      return error(
          &ev, bad_value("item.type", *t, {"message", "function_call", "function_call_output"}));
    const std::string type(t->as_string());
    std::string role;
    std::size_t text_bytes = 0;
    if (type == "message") {
      if (auto e = only_keys(item, {"id", "type", "object", "status", "role", "content"}, "item"))
        return error(&ev, *e);
      const auto* r = item.if_contains("role");
      if (!r) return error(&ev, missing("item.role"));
      if (!r->is_string() || !in(r->as_string(), {"user", "assistant", "system"}))
        return error(&ev, bad_value("item.role", *r, {"user", "assistant", "system"}));
      role = std::string(r->as_string());
      const auto* c = item.if_contains("content");
      if (!c) return error(&ev, missing("item.content"));
      if (!c->is_array()) return error(&ev, bad_type("item.content", "an array", *c));
      std::size_t i = 0;
      for (const auto& part : c->as_array()) {
        const auto p = "item.content[" + std::to_string(i++) + "]";
        if (!part.is_object()) return error(&ev, bad_type(p, "an object", part));
        const auto& po = part.as_object();
        const auto* pt = po.if_contains("type");
        if (!pt) return error(&ev, missing(p + ".type"));
        if (role == "assistant") {
          if (!pt->is_string() || !in(pt->as_string(), {"output_text", "output_audio"}))
            return error(&ev, bad_value(p + ".type", *pt, {"output_text", "output_audio"}));
        } else if (role == "system") {
          if (!pt->is_string() || pt->as_string() != "input_text")
            return error(&ev, bad_value(p + ".type", *pt, {"input_text"}));
        } else if (!pt->is_string() ||
                   !in(pt->as_string(), {"input_text", "input_audio", "input_image"})) {
          return error(&ev,
                       bad_value(p + ".type", *pt, {"input_text", "input_audio", "input_image"}));
        }
        if (auto e =
                only_keys(po, {"type", "text", "audio", "transcript", "image_url", "detail"}, p))
          return error(&ev, *e);
        if (pt->as_string() == "input_text" || pt->as_string() == "output_text") {
          const auto* tx = po.if_contains("text");
          if (!tx) return error(&ev, missing(p + ".text"));
          if (!tx->is_string()) return error(&ev, bad_type(p + ".text", "a string", *tx));
          text_bytes += tx->as_string().size();
        }
        if (pt->as_string() == "input_audio") {
          const auto* au = po.if_contains("audio");
          std::vector<std::uint8_t> tmp;
          if (au && (!au->is_string() || !b64_decode(au->as_string(), tmp)))  // mock wording
            return error(&ev, {"invalid_value",
                               "Invalid '" + p + ".audio': expected base64-encoded audio bytes.",
                               p + ".audio"});
        }
      }
    } else if (type == "function_call_output") {
      if (auto e = only_keys(item, {"id", "type", "object", "status", "call_id", "output"}, "item"))
        return error(&ev, *e);
      const auto* cid = item.if_contains("call_id");
      if (!cid) return error(&ev, missing("item.call_id"));
      if (!cid->is_string()) return error(&ev, bad_type("item.call_id", "a string", *cid));
      const auto* out = item.if_contains("output");
      if (!out) return error(&ev, missing("item.output"));
      if (!out->is_string()) return error(&ev, bad_type("item.output", "a string", *out));
      if (!call_ids_.count(std::string(cid->as_string())))  // mock wording
        return error(&ev, {"invalid_value",
                           "Invalid 'item.call_id': no function call with call_id '" +
                               std::string(cid->as_string()) + "' in this conversation.",
                           "item.call_id"});
      text_bytes = out->as_string().size();
    } else {
      if (auto e = only_keys(
              item, {"id", "type", "object", "status", "call_id", "name", "arguments"}, "item"))
        return error(&ev, *e);
      for (const auto* k : {"call_id", "name", "arguments"}) {
        if (!item.if_contains(k)) return error(&ev, missing(std::string("item.") + k));
        if (auto e = want_string(item, k, "item")) return error(&ev, *e);
      }
      call_ids_.insert(std::string(item.at("call_id").as_string()));
    }
    if (const auto* id = item.if_contains("id"); id && !id->is_string())
      return error(&ev, bad_type("item.id", "a string", *id));
    if (!item.if_contains("id")) item["id"] = next_id("item_", n_item_);
    if (items_.count(std::string(item.at("id").as_string())))  // mock wording
      return error(&ev, {"invalid_value",
                         "Invalid 'item.id': an item with id '" +
                             std::string(item.at("id").as_string()) + "' already exists.",
                         "item.id"});
    item["object"] = "realtime.item";
    item["status"] = "completed";
    add_item(item, type, role, text_bytes);
  }

  void on_item_delete(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"item_id"})) return error(&ev, *e);
    const auto* id = ev.if_contains("item_id");
    if (!id) return error(&ev, missing("item_id"));
    if (!id->is_string()) return error(&ev, bad_type("item_id", "a string", *id));
    const std::string sid(id->as_string());
    if (!items_.count(sid))  // the service's error
      return error(
          &ev, {"item_delete_invalid_item_id",
                "Error deleting item: the item with id '" + sid + "' does not exist.", "item_id"});
    text_bytes_ -= items_[sid].text_bytes;
    items_.erase(sid);
    order_.erase(std::find(order_.begin(), order_.end(), sid));
    auto e = base("conversation.item.deleted");
    e["item_id"] = sid;
    emit(std::move(e));
  }

  void on_item_retrieve(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"item_id"})) return error(&ev, *e);
    const auto* id = ev.if_contains("item_id");
    if (!id) return error(&ev, missing("item_id"));
    if (!id->is_string()) return error(&ev, bad_type("item_id", "a string", *id));
    const auto it = items_.find(std::string(id->as_string()));
    if (it == items_.end())  // mock wording, after the delete error
      return error(&ev, {"item_retrieve_invalid_item_id",
                         "Error retrieving item: the item with id '" +
                             std::string(id->as_string()) + "' does not exist.",
                         "item_id"});
    auto e = base("conversation.item.retrieved");
    e["item"] = it->second.obj;
    emit(std::move(e));
  }

  void on_truncate(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"item_id", "content_index", "audio_end_ms"}))
      return error(&ev, *e);
    for (const auto* k : {"item_id", "content_index", "audio_end_ms"})
      if (!ev.if_contains(k)) return error(&ev, missing(k));
    const auto& id = ev.at("item_id");
    if (!id.is_string()) return error(&ev, bad_type("item_id", "a string", id));
    const auto& ci = ev.at("content_index");
    if (!is_int(ci)) return error(&ev, bad_type("content_index", "an integer", ci));
    const auto& end = ev.at("audio_end_ms");
    if (!is_int(end)) return error(&ev, bad_type("audio_end_ms", "an integer", end));
    if (to_int(end) < 0)  // reference (the service's error)
      return error(&ev, below_min("audio_end_ms", "integer", "0", end));
    const std::string sid(id.as_string());
    const auto it = items_.find(sid);
    if (it == items_.end())  // mock wording, after the delete error
      return error(&ev, {"item_truncate_invalid_item_id",
                         "Error truncating item: the item with id '" + sid + "' does not exist.",
                         "item_id"});
    if (it->second.role != "assistant" || it->second.kind != "message")  // mock wording
      return error(
          &ev, {"invalid_value",
                "Invalid 'item_id': only assistant message items can be truncated.", "item_id"});
    if (to_int(ci) != 0)  // mock wording
      return error(&ev, {"invalid_value",
                         "Invalid 'content_index': the item has audio in content part 0 only.",
                         "content_index"});
    if (to_int(end) > it->second.audio_ms)  // reference (the service's error; code null)
      return error(&ev, {"",
                         "Audio content of " + std::to_string(it->second.audio_ms) +
                             "ms is already shorter than " + std::to_string(to_int(end)) + "ms",
                         ""});
    it->second.audio_ms = to_int(end);
    auto e = base("conversation.item.truncated");
    e["item_id"] = sid;
    e["content_index"] = 0;
    e["audio_end_ms"] = to_int(end);
    emit(std::move(e));
  }

  void on_response_create(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"response"})) return error(&ev, *e);
    if (const auto* r = ev.if_contains("response")) {
      if (!r->is_object()) return error(&ev, bad_type("response", "an object", *r));
      if (auto e = only_keys(r->as_object(),
                             {"conversation", "output_modalities", "instructions", "audio", "tools",
                              "tool_choice", "max_output_tokens", "metadata", "input", "prompt"},
                             "response"))
        return error(&ev, *e);
      if (auto e = want_string(r->as_object(), "instructions", "response")) return error(&ev, *e);
      if (const auto* t = r->as_object().if_contains("tools"))
        if (auto e = check_tools(*t, "response.tools")) return error(&ev, *e);
    }
    if (active_)  // reference (the service's error)
      return error(&ev, {"conversation_already_has_active_response",
                         "Conversation already has an active response in progress: " + active_->id +
                             ". Wait until the response is finished before creating a new one.",
                         ""});
    start_response();
  }

  void on_response_cancel(const json::object& ev) {
    if (auto e = only_event_keys(ev, {"response_id"})) return error(&ev, *e);
    const auto* rid = ev.if_contains("response_id");
    if (rid && !rid->is_string()) return error(&ev, bad_type("response_id", "a string", *rid));
    if (!active_ || (rid && rid->as_string() != active_->id))  // the service's error
      return error(
          &ev, {"response_cancel_not_active", "Cancellation failed: no active response found", ""});
    finish("cancelled", "client_cancelled");
  }

  // ---- responses ----

  struct Active {
    std::string id, item_id, fmt;
    Script script;
    std::int64_t sent_ms = 0;
    int stall_after_ms = -1;
    bool stalled = false;
    std::size_t chunks = 0, chunks_sent = 0, words_sent = 0;
    std::vector<std::string> words;
    std::string transcript;
  };

  static std::vector<std::string> split_words(const std::string& text) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size()) {
      auto j = text.find(' ', i);
      j = j == std::string::npos ? text.size() : j + 1;
      out.push_back(text.substr(i, j - i));
      i = j;
    }
    return out;
  }

  json::object response_object(const std::string& id, std::string_view status) {
    const auto& out = session_["audio"].at("output").as_object();
    return json::object{
        {"object", "realtime.response"},
        {"id", id},
        {"status", status},
        {"status_details", nullptr},
        {"output", json::array{}},
        {"conversation_id", "conv_" + std::to_string(idx_)},
        {"output_modalities", session_["output_modalities"]},
        {"max_output_tokens", session_["max_output_tokens"]},
        {"audio", json::object{{"output", json::object{{"format", out.at("format")},
                                                       {"voice", out.at("voice")}}}}},
        {"usage", nullptr},
        {"metadata", nullptr}};
  }

  json::object usage(std::size_t out_text_tokens, std::int64_t out_audio_ms) {
    const std::int64_t in_text =
        static_cast<std::int64_t>(session_["instructions"].as_string().size() + text_bytes_) / 4;
    const std::int64_t in_audio = committed_ms_ / 100;
    const std::int64_t out_text = static_cast<std::int64_t>(out_text_tokens);
    const std::int64_t out_audio = out_audio_ms / 50;
    return json::object{
        {"total_tokens", in_text + in_audio + out_text + out_audio},
        {"input_tokens", in_text + in_audio},
        {"output_tokens", out_text + out_audio},
        {"input_token_details",
         json::object{
             {"text_tokens", in_text},
             {"audio_tokens", in_audio},
             {"image_tokens", 0},
             {"cached_tokens", 0},
             {"cached_tokens_details",
              json::object{{"text_tokens", 0}, {"audio_tokens", 0}, {"image_tokens", 0}}}}},
        {"output_token_details",
         json::object{{"text_tokens", out_text}, {"audio_tokens", out_audio}}}};
  }

  Script next_script() {
    std::lock_guard lock(m_.mu);
    if (m_.scripts.empty()) return m_.default_script;
    Script s = std::move(m_.scripts.front());
    m_.scripts.pop_front();
    return s;
  }

  void start_response() {
    Script s = next_script();
    const std::string rid = next_id("resp_", n_resp_);
    auto c = base("response.created");
    c["response"] = response_object(rid, "in_progress");
    emit(std::move(c));
    const std::string item_id = next_id("item_", n_item_);
    if (s.kind == Script::Kind::function_call) {
      std::vector<Script::Call> calls{{s.name, s.arguments, s.call_id}};
      calls.insert(calls.end(), s.more_calls.begin(), s.more_calls.end());
      json::array output;
      std::size_t words = 0;
      for (std::size_t k = 0; k < calls.size(); ++k) {
        const auto& fc = calls[k];
        const std::string fc_item = k == 0 ? item_id : next_id("item_", n_item_);
        const std::string call_id = fc.call_id.empty() ? next_id("call_", n_call_) : fc.call_id;
        call_ids_.insert(call_id);
        json::object item{{"id", fc_item},           {"object", "realtime.item"},
                          {"type", "function_call"}, {"status", "in_progress"},
                          {"name", fc.name},         {"call_id", call_id},
                          {"arguments", ""}};
        auto a = base("response.output_item.added");
        a["response_id"] = rid;
        a["output_index"] = k;
        a["item"] = item;
        emit(std::move(a));
        auto ca = base("conversation.item.added");
        ca["previous_item_id"] = last_item();
        ca["item"] = item;
        emit(std::move(ca));
        const auto half = fc.arguments.size() / 2;
        for (const auto& piece : {fc.arguments.substr(0, half), fc.arguments.substr(half)}) {
          auto d = base("response.function_call_arguments.delta");
          d["response_id"] = rid;
          d["item_id"] = fc_item;
          d["output_index"] = k;
          d["call_id"] = call_id;
          d["delta"] = piece;
          emit(std::move(d));
        }
        auto dn = base("response.function_call_arguments.done");
        dn["response_id"] = rid;
        dn["item_id"] = fc_item;
        dn["output_index"] = k;
        dn["call_id"] = call_id;
        dn["name"] = fc.name;
        dn["arguments"] = fc.arguments;
        emit(std::move(dn));
        item["status"] = "completed";
        item["arguments"] = fc.arguments;
        auto od = base("response.output_item.done");
        od["response_id"] = rid;
        od["output_index"] = k;
        od["item"] = item;
        emit(std::move(od));
        order_.push_back(fc_item);
        items_[fc_item] = Item{"function_call", "", 0, fc.arguments.size(), item};
        text_bytes_ += fc.arguments.size();
        words += split_words(fc.arguments).size();
        auto cd = base("conversation.item.done");
        cd["previous_item_id"] =
            order_.size() > 1 ? json::value(order_[order_.size() - 2]) : nullptr;
        cd["item"] = item;
        emit(std::move(cd));
        output.push_back(std::move(item));
      }
      auto r = response_object(rid, "completed");
      r["output"] = std::move(output);
      r["usage"] = usage(words, 0);
      auto done = base("response.done");
      done["response"] = std::move(r);
      emit(std::move(done));
      return;
    }
    Active a;
    a.id = rid;
    a.item_id = item_id;
    a.fmt = out_format();
    a.stall_after_ms = s.stall_after_ms;
    a.words = split_words(s.text);
    const auto chunk = static_cast<std::int64_t>(std::max(1, m_.opt.chunk_ms));
    a.chunks = static_cast<std::size_t>((std::max(0, s.reply_ms) + chunk - 1) / chunk);
    a.script = std::move(s);
    json::object item{{"id", item_id},       {"object", "realtime.item"},
                      {"type", "message"},   {"status", "in_progress"},
                      {"role", "assistant"}, {"content", json::array{}}};
    auto oa = base("response.output_item.added");
    oa["response_id"] = rid;
    oa["output_index"] = 0;
    oa["item"] = item;
    emit(std::move(oa));
    auto ca = base("conversation.item.added");
    ca["previous_item_id"] = last_item();
    ca["item"] = item;
    emit(std::move(ca));
    order_.push_back(item_id);
    items_[item_id] = Item{"message", "assistant", 0, 0, item};
    auto pa = base("response.content_part.added");
    pa["response_id"] = rid;
    pa["item_id"] = item_id;
    pa["output_index"] = 0;
    pa["content_index"] = 0;
    pa["part"] = json::object{{"type", "audio"}, {"transcript", ""}};
    emit(std::move(pa));
    active_ = std::move(a);
    tick();
  }

  json::object part_event(std::string_view type) {
    auto e = base(type);
    e["response_id"] = active_->id;
    e["item_id"] = active_->item_id;
    e["output_index"] = 0;
    e["content_index"] = 0;
    return e;
  }

  void tick() {
    if (!active_ || active_->stalled) return;
    auto& a = *active_;
    if (a.chunks_sent >= a.chunks) return finish("completed", "");
    const std::int64_t chunk =
        std::min<std::int64_t>(std::max(1, m_.opt.chunk_ms), a.script.reply_ms - a.sent_ms);
    ++a.chunks_sent;
    const std::size_t due = (a.chunks_sent * a.words.size() + a.chunks - 1) / a.chunks;
    for (; a.words_sent < due; ++a.words_sent) {
      auto t = part_event("response.output_audio_transcript.delta");
      t["delta"] = a.words[a.words_sent];
      a.transcript += a.words[a.words_sent];
      emit(std::move(t));
    }
    const auto spm = samples_per_ms(a.fmt);
    const auto pcm = MockRealtime::test_signal(a.fmt, static_cast<std::size_t>(a.sent_ms) * spm,
                                               static_cast<std::size_t>(chunk) * spm);
    auto d = part_event("response.output_audio.delta");
    d["delta"] = b64_encode(pcm);
    emit(std::move(d), a.chunks_sent - 1);
    a.sent_ms += chunk;
    audio_sent_ = true;
    items_[a.item_id].audio_ms = a.sent_ms;
    if (a.chunks_sent >= a.chunks) return finish("completed", "");
    if (a.stall_after_ms >= 0 && a.sent_ms >= a.stall_after_ms) {
      a.stalled = true;
      return;
    }
    const auto gen = ++tick_gen_;
    timer_.expires_after(std::chrono::milliseconds(m_.opt.chunk_interval_ms));
    timer_.async_wait([self = self<Conn>(), gen](boost::system::error_code ec) {
      if (!ec && gen == self->tick_gen_) self->tick();
    });
  }

  /// Ends the active spoken response: `status` "completed" or "cancelled" (with `reason`).
  void finish(std::string_view status, std::string_view reason) {
    ++tick_gen_;
    timer_.cancel();
    auto& a = *active_;
    emit(part_event("response.output_audio.done"));
    auto td = part_event("response.output_audio_transcript.done");
    td["transcript"] = a.transcript;
    emit(std::move(td));
    auto pd = part_event("response.content_part.done");
    pd["part"] = json::object{{"type", "audio"}, {"transcript", a.transcript}};
    emit(std::move(pd));
    json::object item{{"id", a.item_id},
                      {"object", "realtime.item"},
                      {"type", "message"},
                      {"status", status == "completed" ? "completed" : "incomplete"},
                      {"role", "assistant"},
                      {"content", json::array{json::object{{"type", "output_audio"},
                                                           {"transcript", a.transcript}}}}};
    auto od = base("response.output_item.done");
    od["response_id"] = a.id;
    od["output_index"] = 0;
    od["item"] = item;
    emit(std::move(od));
    auto& stored = items_[a.item_id];
    stored.obj = item;
    auto pos = std::find(order_.begin(), order_.end(), a.item_id);
    auto cd = base("conversation.item.done");
    cd["previous_item_id"] = pos == order_.begin() || pos == order_.end() ? json::value(nullptr)
                                                                          : json::value(*(pos - 1));
    cd["item"] = item;
    emit(std::move(cd));
    auto r = response_object(a.id, status);
    if (status == "cancelled")
      r["status_details"] = json::object{{"type", "cancelled"}, {"reason", reason}};
    r["output"] = json::array{item};
    r["usage"] = usage(a.words_sent, a.sent_ms);
    auto done = base("response.done");
    done["response"] = std::move(r);
    active_.reset();
    emit(std::move(done));
  }

  struct Item {
    std::string kind, role;
    std::int64_t audio_ms = 0;
    std::size_t text_bytes = 0;
    json::object obj;
  };

  Impl& m_;
  static constexpr std::size_t kNoChunk = WsServer::Connection::kNoTag;
  bool open_ = false, closing_ = false, closed_ = false;
  bool close_when_open_ = false;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  asio::steady_timer timer_;
  std::uint64_t tick_gen_ = 0;
  std::size_t idx_ = 0;
  Record* rec_ = nullptr;

  json::object session_;
  std::size_t n_event_ = 0, n_item_ = 0, n_resp_ = 0, n_call_ = 0;
  std::size_t buffer_bytes_ = 0;
  std::string buffer_fmt_;
  std::int64_t committed_ms_ = 0;
  std::size_t text_bytes_ = 0;
  bool audio_sent_ = false;
  std::vector<std::string> order_;
  std::unordered_map<std::string, Item> items_;
  std::unordered_set<std::string> call_ids_;
  std::optional<Active> active_;
  // VAD
  std::vector<std::int16_t> block_;
  std::int64_t input_ms_ = 0, first_voiced_ms_ = 0, silent_ms_ = 0;
  int voiced_run_ = 0;
  bool speaking_ = false;
  std::string vad_item_;
};

}  // namespace mock_realtime_detail

// ---------------------------------------------------------------------------------------------

MockRealtime::MockRealtime(Options options) : impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  m.opt = std::move(options);
  WsServer::Options so;
  so.port = m.opt.port;
  so.tls = m.opt.tls;
  so.cert_host = m.opt.cert_host;
  so.ca_file_prefix = "vb_mock_realtime_ca_";
  so.io_threads = m.opt.io_threads;
  so.no_delay = m.opt.no_delay;  // see Options::no_delay
  so.max_message_bytes = m.opt.max_message_bytes;
  m.server = std::make_unique<WsServer>(std::move(so), [&m](WsServer::Accepted a) {
    return std::make_shared<Conn>(m, std::move(a));
  });
}

MockRealtime::~MockRealtime() {
  auto& m = *impl_;
  m.server->stop();
  std::lock_guard lock(m.mu);
  m.conns.clear();
}

unsigned short MockRealtime::port() const {
  return impl_->server->port();
}

std::string MockRealtime::url() const {
  const auto& o = impl_->opt;
  const std::string host = o.tls ? o.cert_host : "127.0.0.1";
  const std::string path =
      o.api == Api::openai ? "/v1/realtime?model=" : "/openai/v1/realtime?model=";
  return (o.tls ? "wss://" : "ws://") + host + ":" + std::to_string(impl_->server->port()) + path +
         o.model;
}

std::vector<std::pair<std::string, std::string>> MockRealtime::auth_headers() const {
  const auto& o = impl_->opt;
  if (o.api == Api::openai) return {{"Authorization", "Bearer " + o.api_key}};
  return {{"api-key", o.api_key}};
}

std::string MockRealtime::ca_file() const {
  return impl_->server->ca_file();
}

void MockRealtime::push_script(Script s) {
  std::lock_guard lock(impl_->mu);
  impl_->scripts.push_back(std::move(s));
}
void MockRealtime::set_default_script(Script s) {
  std::lock_guard lock(impl_->mu);
  impl_->default_script = std::move(s);
}
void MockRealtime::push_transcript(std::string text) {
  std::lock_guard lock(impl_->mu);
  impl_->transcripts.push_back(std::move(text));
}
void MockRealtime::refuse_next(int status, std::string body, std::string retry_after) {
  std::lock_guard lock(impl_->mu);
  impl_->refusal = Impl::Refusal{status, std::move(body), std::move(retry_after)};
}

void MockRealtime::send(std::size_t conn, std::string json_text) {
  if (auto c = impl_->conn(conn))
    c->post([t = std::move(json_text)](Conn& x) mutable { x.send_raw(std::move(t)); });
}
void MockRealtime::drop(std::size_t conn) {
  if (auto c = impl_->conn(conn)) c->post([](Conn& x) { x.drop(); });
}
void MockRealtime::close(std::size_t conn, std::uint16_t code, std::string reason) {
  if (auto c = impl_->conn(conn))
    c->post([code, r = std::move(reason)](Conn& x) mutable { x.close(code, std::move(r)); });
}
void MockRealtime::send_rate_limits(std::size_t conn) {
  if (auto c = impl_->conn(conn)) c->post([](Conn& x) { x.rate_limits(); });
}
void MockRealtime::resume(std::size_t conn) {
  if (auto c = impl_->conn(conn)) c->post([](Conn& x) { x.resume(); });
}

std::size_t MockRealtime::connection_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->records.size();
}
std::size_t MockRealtime::open_count() const {
  std::lock_guard lock(impl_->mu);
  return static_cast<std::size_t>(std::count_if(impl_->records.begin(), impl_->records.end(),
                                                [](const auto& r) { return r->open; }));
}
std::vector<MockRealtime::Upgrade> MockRealtime::upgrades() const {
  std::lock_guard lock(impl_->mu);
  return impl_->upgrades;
}

namespace {
template <class F>
auto with_record(const MockRealtime::Impl& m, std::size_t conn, F&& f) -> decltype(f(Record{})) {
  std::lock_guard lock(m.mu);
  if (conn >= m.records.size()) return {};
  return f(*m.records[conn]);
}
}  // namespace

std::vector<MockRealtime::ClientEvent> MockRealtime::received(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.received; });
}
std::vector<std::string> MockRealtime::types(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) {
    std::vector<std::string> out;
    for (const auto& e : r.received) out.push_back(e.type);
    return out;
  });
}
std::vector<std::string> MockRealtime::sent(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.sent; });
}
std::vector<json::value> MockRealtime::sent_json(std::size_t conn) const {
  std::vector<json::value> out;
  for (const auto& s : sent(conn)) {
    boost::system::error_code ec;
    auto v = json::parse(s, ec);
    out.push_back(ec ? json::value(nullptr) : std::move(v));
  }
  return out;
}
std::vector<std::string> MockRealtime::sent_types(std::size_t conn) const {
  std::vector<std::string> out;
  for (const auto& v : sent_json(conn)) {
    const auto* t = v.is_object() ? v.as_object().if_contains("type") : nullptr;
    out.emplace_back(t && t->is_string() ? std::string(t->as_string()) : std::string());
  }
  return out;
}
std::vector<std::uint8_t> MockRealtime::appended_audio(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.audio; });
}
std::size_t MockRealtime::appended_bytes(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.audio_total; });
}
json::object MockRealtime::session(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.session; });
}

bool MockRealtime::wait_until(const std::function<bool()>& pred,
                              std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::uint64_t v;
    {
      std::lock_guard lock(impl_->mu);
      v = impl_->version;
    }
    if (pred()) return true;
    std::unique_lock lock(impl_->mu);
    if (!impl_->cv.wait_until(lock, deadline, [&] { return impl_->version != v; })) {
      lock.unlock();
      return pred();
    }
  }
}

std::vector<std::uint8_t> MockRealtime::test_signal(std::string_view format_type, std::size_t first,
                                                    std::size_t count) {
  const bool pcm = format_type == "audio/pcm";
  const double rate = pcm ? 24000.0 : 8000.0;
  constexpr double kTwoPi = 6.283185307179586;
  std::vector<std::uint8_t> out;
  out.reserve(pcm ? count * 2 : count);
  for (std::size_t i = 0; i < count; ++i) {
    const double t = static_cast<double>(first + i) / rate;
    const auto s = static_cast<std::int16_t>(std::lround(8000.0 * std::sin(kTwoPi * 440.0 * t)));
    if (pcm) {
      const auto u = static_cast<std::uint16_t>(s);
      out.push_back(static_cast<std::uint8_t>(u & 0xff));
      out.push_back(static_cast<std::uint8_t>(u >> 8));
    } else {
      out.push_back(format_type == "audio/pcmu" ? audio::linear_to_ulaw(s)
                                                : audio::linear_to_alaw(s));
    }
  }
  return out;
}

}  // namespace voxbridge::testing
