#include "voxbridge/events/call_event.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <limits>

namespace voxbridge::events {

namespace json = boost::json;

/// Makes the events (Event's constructor is private: only the builders below make one).
class EventBuilder {
 public:
  explicit EventBuilder(Type type) : type_(type) {}
  /// A string member; text that is not UTF-8 is mended first.
  EventBuilder& text(std::string_view key, std::string_view value) {
    members_.emplace(key, json::string(valid_utf8(value)));
    return *this;
  }
  EventBuilder& number(std::string_view key, std::int64_t value) {
    members_.emplace(key, value);
    return *this;
  }
  EventBuilder& boolean(std::string_view key, bool value) {
    members_.emplace(key, value);
    return *this;
  }
  EventBuilder& null(std::string_view key) {
    members_.emplace(key, nullptr);
    return *this;
  }
  EventBuilder& strings(std::string_view key, const std::map<std::string, std::string>& m) {
    json::object o;
    o.reserve(m.size());
    for (const auto& [k, v] : m) o.emplace(valid_utf8(k), json::string(valid_utf8(v)));
    members_.emplace(key, std::move(o));
    return *this;
  }
  json::object& members() { return members_; }
  Event done() { return Event(type_, std::move(members_)); }

 private:
  Type type_;
  json::object members_;
};

namespace {

/// The facts as members of `o`, in schema order; unknown control-path facts are left out.
void put_facts(EventBuilder& b, const CallFacts& f) {
  b.text("uuid", f.uuid)
      .text("listener", f.listener)
      .text("agent", f.agent)
      .text("route", f.route)
      .text("peer", f.peer)
      .number("started_unix_ms", f.started_unix_ms);
  if (!f.channel.empty()) b.text("channel", f.channel);
  if (!f.caller_number.empty()) b.text("caller_number", f.caller_number);
  if (!f.caller_name.empty()) b.text("caller_name", f.caller_name);
  if (!f.called_number.empty()) b.text("called_number", f.called_number);
  if (!f.variables.empty()) b.strings("variables", f.variables);
}

/// `o` serialized without its closing brace, so members can follow ("{...").
std::string open_object(const json::object& o) {
  std::string out = json::serialize(o);
  out.pop_back();
  return out;
}

/// Lines (JSON objects already) as the elements of an array, brackets included.
void append_array(std::string& out, std::span<const std::string> lines) {
  out += '[';
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += ',';
    out += lines[i];
  }
  out += ']';
}

/// How long the UTF-8 sequence at `s[i]` is if it is valid, else 0 with `bad` set to the length
/// of its maximal invalid subpart (at least 1).
std::size_t utf8_length(std::string_view s, std::size_t i, std::size_t& bad) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    bad = 1;  // a continuation byte, C0, C1 or F5-FF
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    const bool in_range = i + k < s.size() && (k == 1 ? byte(i + k) >= lo && byte(i + k) <= hi
                                                      : byte(i + k) >= 0x80 && byte(i + k) <= 0xBF);
    if (!in_range) {
      bad = k;
      return 0;
    }
  }
  return n;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  std::size_t copied = 0;  // text before this is in `out` (or nothing was mended yet)
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t bad = 0;
    const std::size_t n = utf8_length(text, i, bad);
    if (n > 0) {
      i += n;
      continue;
    }
    out.append(text.substr(copied, i - copied));
    out += "\xEF\xBF\xBD";  // U+FFFD
    i += bad;
    copied = i;
  }
  if (copied == 0) return std::string(text);
  out.append(text.substr(copied));
  return out;
}

std::string_view type_name(Type type) {
  switch (type) {
    case Type::start:
      return "start";
    case Type::user:
      return "user";
    case Type::interim:
      return "interim";
    case Type::agent:
      return "agent";
    case Type::barge_in:
      return "barge_in";
    case Type::action:
      return "action";
    case Type::dtmf:
      return "dtmf";
    case Type::usage:
      return "usage";
    case Type::tool:
      return "tool";
    case Type::end:
      return "end";
  }
  return "unknown";
}

std::string_view kind_name(ActionFields::Kind kind) {
  using Kind = ActionFields::Kind;
  switch (kind) {
    case Kind::hangup:
      return "hangup";
    case Kind::transfer:
      return "transfer";
    case Kind::send_dtmf:
      return "send_dtmf";
    case Kind::set_variable:
      return "set_variable";
    case Kind::originate:
      return "originate";
    case Kind::unknown:
      break;
  }
  return "unknown";
}

std::string Event::serialize(std::chrono::milliseconds t) const {
  json::object line;
  line.reserve(members_.size() + 2);
  line.emplace("t_ms", static_cast<std::int64_t>(t.count()));
  line.emplace("type", type_name(type_));
  for (const auto& m : members_) line.emplace(m.key(), m.value());
  return json::serialize(line);
}

Event start(const CallFacts& facts) {
  EventBuilder b(Type::start);
  b.number("schema", kSchemaVersion);
  put_facts(b, facts);
  return b.done();
}

Event user(std::string_view text) {
  return EventBuilder(Type::user).text("text", text).done();
}

Event interim(std::string_view text) {
  return EventBuilder(Type::interim).text("text", text).done();
}

Event agent_reply(std::uint32_t turn, std::string_view text,
                  std::optional<std::int64_t> latency_ms) {
  EventBuilder b(Type::agent);
  b.number("turn", turn).text("text", text);
  if (latency_ms) {
    b.number("latency_ms", *latency_ms);
  } else {
    b.null("latency_ms");
  }
  return b.done();
}

Event agent_reply(std::string_view text) {
  return EventBuilder(Type::agent).text("text", text).done();
}

Event barge_in(std::uint32_t turn, std::int64_t heard_ms, std::string_view heard,
               std::string_view reply) {
  return EventBuilder(Type::barge_in)
      .number("turn", turn)
      .number("heard_ms", heard_ms)
      .text("heard", heard)
      .text("reply", reply)
      .done();
}

Event usage(std::uint64_t input_tokens, std::uint64_t output_tokens, std::uint64_t input_audio_ms,
            std::uint64_t output_audio_ms) {
  auto n = [](std::uint64_t v) {
    return static_cast<std::int64_t>(
        std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
  };
  return EventBuilder(Type::usage)
      .number("input_tokens", n(input_tokens))
      .number("output_tokens", n(output_tokens))
      .number("input_audio_ms", n(input_audio_ms))
      .number("output_audio_ms", n(output_audio_ms))
      .done();
}

Event pipeline_usage(const PipelineUsage& u) {
  auto n = [](std::uint64_t v) {
    return static_cast<std::int64_t>(
        std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
  };
  return EventBuilder(Type::usage)
      .text("asr", u.asr)
      .number("asr_streams", n(u.asr_streams))
      .number("asr_audio_ms", n(u.asr_audio_ms))
      .text("llm", u.llm)
      .number("llm_turns", n(u.llm_turns))
      .text("tts", u.tts)
      .number("tts_streams", n(u.tts_streams))
      .number("tts_characters", n(u.tts_characters))
      .number("tts_audio_ms", n(u.tts_audio_ms))
      .done();
}

Event barge_in(std::int64_t dropped_ms) {
  return EventBuilder(Type::barge_in).number("dropped_ms", dropped_ms).done();
}

Event action(const ActionFields& a, std::string_view error, std::string_view how) {
  using Kind = ActionFields::Kind;
  EventBuilder b(Type::action);
  b.text("action", kind_name(a.kind));
  switch (a.kind) {
    case Kind::hangup:
      b.text("reason", a.reason).text("final_words", a.final_words);
      break;
    case Kind::transfer:
      b.text("target", a.target).text("context", a.context);
      break;
    case Kind::send_dtmf:
      b.text("digits", a.digits).number("duration_ms", a.duration_ms);
      break;
    case Kind::set_variable:
      b.text("name", a.name).text("value", a.value);
      break;
    case Kind::originate:
      b.text("number", a.number).text("agent", a.agent).strings("variables", a.variables);
      break;
    case Kind::unknown:
      break;
  }
  b.boolean("ok", error.empty());
  if (!error.empty()) b.text("error", error);
  if (!how.empty()) b.text("how", how);
  return b.done();
}

Event dtmf(char digit) {
  return EventBuilder(Type::dtmf).text("digit", std::string_view(&digit, 1)).done();
}

Event tool(const ToolFields& f) {
  return EventBuilder(Type::tool)
      .text("name", f.name)
      .text("id", f.id)
      .boolean("ok", f.ok)
      .number("duration_ms", f.duration_ms)
      .number("bytes", f.bytes)
      .text("arguments", f.arguments)
      .text("output", f.output)
      .done();
}

Event end(std::string_view by, std::string_view reason, std::int64_t duration_ms) {
  return EventBuilder(Type::end)
      .text("by", by)
      .text("reason", reason)
      .number("duration_ms", duration_ms)
      .done();
}

std::string call_started_body(const CallFacts& facts) {
  EventBuilder b(Type::start);
  b.text("event", "call_started").number("schema", kSchemaVersion);
  put_facts(b, facts);
  return json::serialize(b.members());
}

std::string call_ended_body(const CallFacts& facts, const Event& end,
                            std::span<const std::string> lines) {
  EventBuilder b(Type::end);
  b.text("event", "call_ended").number("schema", kSchemaVersion);
  put_facts(b, facts);
  for (const auto& m : end.members()) b.members().emplace(m.key(), m.value());
  std::string out = open_object(b.members());
  out += ",\"transcript\":";
  append_array(out, lines);
  out += '}';
  return out;
}

std::string action_body(std::string_view uuid, std::string_view line) {
  const json::object head{
      {"event", "action"}, {"schema", kSchemaVersion}, {"uuid", json::string(valid_utf8(uuid))}};
  std::string out = open_object(head);
  out += ",\"item\":";
  out += line;
  out += '}';
  return out;
}

std::string events_response(std::string_view uuid, bool ended, std::size_t next,
                            std::span<const std::string> lines) {
  const json::object head{{"uuid", json::string(valid_utf8(uuid))},
                          {"ended", ended},
                          {"next", static_cast<std::uint64_t>(next)}};
  std::string out = open_object(head);
  out += ",\"events\":";
  append_array(out, lines);
  out += ",\"schema\":" + std::to_string(kSchemaVersion) + "}\n";
  return out;
}

}  // namespace voxbridge::events
