#include "voxbridge/realtime_openai/conversation.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>

#include <boost/json.hpp>
#include <cstring>
#include <stdexcept>

#include "voxbridge/base64/base64.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/logtext/log_text.hpp"

namespace voxbridge::realtime_openai {

namespace json = boost::json;

namespace {

/// Items (the model's audio replies) remembered for truncation; older ones were heard long ago.
constexpr std::size_t kMaxItems = 32;
/// Tool calls waiting for their result (the model asks for one or two at a time).
constexpr std::size_t kMaxToolCalls = 8;
/// The conversation replayed after a reconnect: the newest turns, at most this much text.
constexpr std::size_t kMaxHistoryBytes = 32 * 1024;
/// Longest item id and call id taken from the service (theirs are ~30 characters).
constexpr std::size_t kMaxIdBytes = 128;
/// The rate of audio/pcm.
constexpr int kPcmRate = 24000;

const char* kToolsJson = R"json([
{"type":"function","name":"transfer","description":"Transfer the caller to another extension or phone number. Say that you are transferring them first.","parameters":{"type":"object","properties":{"target":{"type":"string","description":"Extension or phone number, digits only"},"context":{"type":"string","description":"Dialplan context, if the business told you one"}},"required":["target"]}},
{"type":"function","name":"hang_up","description":"End the call, after saying goodbye.","parameters":{"type":"object","properties":{"final_words":{"type":"string","description":"What to say before hanging up"},"reason":{"type":"string"}}}},
{"type":"function","name":"send_dtmf","description":"Press keys on the phone line (for an IVR menu): 0-9, *, #.","parameters":{"type":"object","properties":{"digits":{"type":"string"}},"required":["digits"]}},
{"type":"function","name":"set_variable","description":"Record a fact about the call for the business's phone system.","parameters":{"type":"object","properties":{"name":{"type":"string"},"value":{"type":"string"}},"required":["name","value"]}}
])json";

const json::string* str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

std::string str_or(const json::object& o, std::string_view key, std::string_view fallback = {}) {
  const auto* s = str(o, key);
  return s != nullptr ? std::string(*s) : std::string(fallback);
}

std::uint64_t uint_or_0(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (const auto* u = v->if_uint64()) return *u;
  if (const auto* i = v->if_int64()) return *i > 0 ? static_cast<std::uint64_t>(*i) : 0;
  return 0;
}

json::object format_json(const std::string& type) {
  json::object f{{"type", type}};
  if (type == "audio/pcm") f["rate"] = kPcmRate;
  return f;
}

constexpr std::string_view kActionNames[] = {"transfer", "hang_up", "send_dtmf", "set_variable"};

std::string error_output(const std::string& why) {
  return json::serialize(json::object{{"ok", false}, {"error", why}});
}

}  // namespace

struct Conversation::Item {
  std::string id;
  std::uint64_t start_mark = 0;  // 0 until its first audio
  std::uint64_t end_mark = 0;    // 0 until its audio is done
  std::uint64_t wire_samples = 0;
  bool cut = false;  // truncated: later audio of it is dropped
};

Formats formats_for(const agent::v1::AgentConfig& config, std::string& why) {
  Formats f;
  auto one = [&](const common::v1::AudioFormat& a, std::string& type, int& rate, bool& linear,
                 const char* side) {
    switch (a.encoding()) {
      case common::v1::MULAW:
      case common::v1::ALAW:
        if (a.sample_rate_hz() != 8000) {
          why = std::string(side) + ": G.711 must be 8000 Hz";
          return false;
        }
        type = a.encoding() == common::v1::MULAW ? "audio/pcmu" : "audio/pcma";
        rate = 8000;
        return true;
      case common::v1::LINEAR16:
        if (a.sample_rate_hz() < 8000 || a.sample_rate_hz() > 48000) {
          why = std::string(side) + ": LINEAR16 must be 8000 to 48000 Hz";
          return false;
        }
        type = "audio/pcm";
        rate = static_cast<int>(a.sample_rate_hz());
        linear = true;
        return true;
      default:
        why = std::string(side) + ": only LINEAR16, MULAW and ALAW are served";
        return false;
    }
  };
  if (!one(config.input_format(), f.input_type, f.input_rate_hz, f.input_linear, "input") ||
      !one(config.output_format(), f.output_type, f.output_rate_hz, f.output_linear, "output")) {
    return {};
  }
  return f;
}

std::string fill_call_facts(std::string text, const common::v1::CallInfo& call) {
  auto put = [&](const std::string& key, const std::string& value) {
    for (std::size_t p = 0; (p = text.find(key, p)) != std::string::npos; p += value.size()) {
      text.replace(p, key.size(), value);
    }
  };
  put("{caller_name}", call.caller_name());
  put("{caller_number}", call.caller_number());
  put("{called_number}", call.called_number());
  put("{call_id}", call.call_id());
  for (const auto& [k, v] : call.metadata()) put("{" + k + "}", v);
  return text;
}

Conversation::Conversation(std::shared_ptr<const RealtimeOptions> options,
                           agent::v1::AgentConfig config, int resampler_quality, Sink sink)
    : o_(std::move(options)), config_(std::move(config)), sink_(std::move(sink)) {
  std::string why;
  formats_ = formats_for(config_, why);
  if (formats_.input_type.empty()) throw std::invalid_argument(why);
  if (formats_.input_linear) in_rs_.emplace(formats_.input_rate_hz, kPcmRate, resampler_quality);
  if (formats_.output_linear) {
    out_rs_.emplace(kPcmRate, formats_.output_rate_hz, resampler_quality);
  }
  const int ms = std::clamp(o_->append_ms, 20, 200);
  in_.batch_bytes = formats_.input_linear ? static_cast<std::size_t>(kPcmRate / 1000 * 2 * ms)
                                          : static_cast<std::size_t>(8 * ms);
  in_.pending.reserve(in_.batch_bytes * 2);
  json::array tools;
  for (const auto& t : config_.tools()) {
    const bool clash = std::find(std::begin(kActionNames), std::end(kActionNames), t.name()) !=
                           std::end(kActionNames) ||
                       std::find(business_names_.begin(), business_names_.end(), t.name()) !=
                           business_names_.end();
    boost::system::error_code ec;
    json::value params = json::parse(t.parameters_json(), ec);
    if (clash || t.name().empty() || ec || !params.is_object()) {
      spdlog::warn("realtime: tool '{}' is not offered: {}", logtext::log_text(t.name()),
                   clash ? "its name is taken" : "its parameters are not a JSON object");
      continue;
    }
    business_names_.push_back(t.name());
    tools.push_back(json::object{{"type", "function"},
                                 {"name", t.name()},
                                 {"description", events::valid_utf8(t.description())},
                                 {"parameters", std::move(params)}});
  }
  if (!tools.empty()) business_tools_json_ = json::serialize(tools);
}

Conversation::~Conversation() = default;

std::string Conversation::event_id() {
  return "vb_" + std::to_string(next_event_++);
}

std::string Conversation::session_update() {
  json::object input{{"format", format_json(formats_.input_type)}};
  if (o_->turn_detection == "server_vad") {
    input["turn_detection"] = json::object{{"type", "server_vad"},
                                           {"threshold", o_->vad_threshold},
                                           {"prefix_padding_ms", o_->vad_prefix_padding_ms},
                                           {"silence_duration_ms", o_->vad_silence_ms},
                                           {"create_response", true},
                                           {"interrupt_response", true}};
  } else if (o_->turn_detection == "semantic_vad") {
    input["turn_detection"] = json::object{{"type", "semantic_vad"},
                                           {"eagerness", o_->vad_eagerness},
                                           {"create_response", true},
                                           {"interrupt_response", true}};
  } else {
    input["turn_detection"] = nullptr;
  }
  if (!o_->transcription_model.empty()) {
    json::object t{{"model", o_->transcription_model}};
    if (!o_->transcription_language.empty()) t["language"] = o_->transcription_language;
    input["transcription"] = std::move(t);
  }
  json::object session{
      {"type", "realtime"},
      // The call's facts are the caller's (a SIP display name): JSON text must be UTF-8.
      {"instructions", events::valid_utf8(fill_call_facts(o_->instructions, config_.call()))},
      {"output_modalities", json::array{"audio"}},
      {"audio", json::object{{"input", std::move(input)},
                             {"output", json::object{{"format", format_json(formats_.output_type)},
                                                     {"voice", o_->voice}}}}}};
  json::array tools;
  if (o_->tools) tools = json::parse(kToolsJson).as_array();
  if (!business_tools_json_.empty()) {
    json::value business = json::parse(business_tools_json_);
    for (auto& t : business.as_array()) tools.push_back(std::move(t));
  }
  if (!tools.empty()) {
    session["tools"] = std::move(tools);
    session["tool_choice"] = "auto";
  }
  if (o_->max_output_tokens > 0) session["max_output_tokens"] = o_->max_output_tokens;
  return json::serialize(json::object{
      {"type", "session.update"}, {"event_id", event_id()}, {"session", std::move(session)}});
}

void Conversation::opened() {
  if (reopened_) {
    // A new socket knows nothing: the items of the old one cannot be truncated any more, and
    // what was said so far is told again as items.
    items_.clear();
    resp_.active = false;  // the old socket's response is gone; what was wanted still is
    clear_pending_ = false;
  }
  connected_ = true;
  sink_.send(session_update());
  if (reopened_) {
    for (const auto& [caller, text] : history_) {
      json::object part{{"type", caller ? "input_text" : "output_text"}, {"text", text}};
      json::object item{{"type", "message"},
                        {"role", caller ? "user" : "assistant"},
                        {"content", json::array{std::move(part)}}};
      sink_.send(json::serialize(json::object{
          {"type", "conversation.item.create"}, {"event_id", event_id()}, {"item", item}}));
    }
  } else if (o_->greeting) {
    request_response(o_->greeting_instructions);
  }
  reopened_ = true;
  // What happened while the socket was not open (DTMF, tool results), then the caller's audio
  // kept meanwhile, in the format the session now has.
  while (!deferred_.empty()) {
    std::string m = std::move(deferred_.front());
    deferred_.pop_front();
    sink_.send(std::move(m));
  }
  if (resp_.wanted) request_response(std::exchange(resp_.wanted_instructions, {}));
  flush_input();
}

void Conversation::disconnected() {
  connected_ = false;
}

void Conversation::send(std::string json) {
  if (connected_) {
    sink_.send(std::move(json));
    return;
  }
  if (deferred_.size() == kMaxDeferred) deferred_.pop_front();
  deferred_.push_back(std::move(json));
}

void Conversation::caller_audio(std::string_view bytes) {
  if (formats_.input_linear) {
    const std::size_t n = bytes.size() / 2;
    in_.pcm.resize(n);
    if (n != 0) std::memcpy(in_.pcm.data(), bytes.data(), n * 2);  // (no data() when empty)
    in_.pcm24.resize(in_rs_->max_output(n));
    const std::size_t m = in_rs_->process(in_.pcm, in_.pcm24);
    in_.pending.append(reinterpret_cast<const char*>(in_.pcm24.data()), m * 2);
  } else {
    in_.pending.append(bytes.data(), bytes.size());
  }
  if (!connected_) {
    // Not open yet (or reopening): keep the newest second, for the caller's first words.
    const std::size_t keep =
        in_.batch_bytes * static_cast<std::size_t>(1000 / std::clamp(o_->append_ms, 20, 200));
    if (in_.pending.size() > keep) in_.pending.erase(0, in_.pending.size() - keep);
    return;
  }
  if (in_.pending.size() >= in_.batch_bytes) flush_input();
}

void Conversation::flush_input() {
  if (!connected_) return;
  // Whole batches of append_ms each (the rest waits for the next frame), so every append is
  // the same size and the service's VAD sees evenly spaced audio.
  static constexpr std::string_view kHead = R"({"type":"input_audio_buffer.append","audio":")";
  std::size_t at = 0;
  while (in_.pending.size() - at >= in_.batch_bytes) {
    const std::string_view batch(in_.pending.data() + at, in_.batch_bytes);
    in_.message.clear();
    in_.message.reserve(kHead.size() + base64::encoded_size(batch.size()) + 2);
    in_.message.append(kHead);
    base64::encode(batch, in_.message);
    in_.message.append("\"}");
    in_audio_bytes_ += batch.size();
    at += batch.size();
    sink_.send(std::move(in_.message));
  }
  in_.pending.erase(0, at);
}

void Conversation::call_event(const agent::v1::CallEvent& event) {
  switch (event.kind_case()) {
    case agent::v1::CallEvent::kDtmf:
      send_user_text("The caller pressed " + events::valid_utf8(event.dtmf()) +
                     " on the phone keypad.");
      request_response();
      break;
    case agent::v1::CallEvent::kMarkPlayed:
      last_played_mark_ = std::max(last_played_mark_, event.mark_played());
      break;
    case agent::v1::CallEvent::kPlaybackCleared:
      on_playback_cleared(event.playback_cleared().mark_id(), event.playback_cleared().played_ms());
      break;
    case agent::v1::CallEvent::kActionResult:
      on_action_result(event.action_result());
      break;
    case agent::v1::CallEvent::kToolResult:
      on_tool_result(event.tool_result());
      break;
    default:
      break;
  }
}

void Conversation::send_user_text(const std::string& text) {
  json::object part{{"type", "input_text"}, {"text", text}};
  json::object item{
      {"type", "message"}, {"role", "user"}, {"content", json::array{std::move(part)}}};
  send(json::serialize(json::object{
      {"type", "conversation.item.create"}, {"event_id", event_id()}, {"item", std::move(item)}}));
}

void Conversation::send_tool_output(const std::string& call_id, const std::string& output_json) {
  json::object item{
      {"type", "function_call_output"}, {"call_id", call_id}, {"output", output_json}};
  send(json::serialize(json::object{
      {"type", "conversation.item.create"}, {"event_id", event_id()}, {"item", std::move(item)}}));
}

void Conversation::request_response(std::string instructions) {
  if (resp_.ended) return;  // the goodbye has been said: the call is hanging up
  if (resp_.active || !connected_) {
    resp_.wanted = true;
    if (!instructions.empty()) resp_.wanted_instructions = std::move(instructions);
    return;
  }
  json::object r;
  if (!instructions.empty()) r["instructions"] = std::move(instructions);
  resp_.active = true;  // until response.done (the server's own responses set it too)
  resp_.wanted = false;
  resp_.wanted_instructions.clear();
  sink_.send(json::serialize(json::object{
      {"type", "response.create"}, {"event_id", event_id()}, {"response", std::move(r)}}));
}

void Conversation::end_call(const std::string& reason) {
  if (resp_.hangup_after || resp_.ended) return;
  if (resp_.active && connected_) {
    sink_.send(
        json::serialize(json::object{{"type", "response.cancel"}, {"event_id", event_id()}}));
  }
  resp_.hangup_after = true;
  resp_.hangup_reason = reason;
  const std::string say =
      "Say exactly this to the caller, and nothing else: \"" + o_->goodbye + "\"";
  resp_.wanted_instructions.clear();
  request_response(say);
}

Conversation::Item* Conversation::item(const std::string& id) {
  for (auto& i : items_) {
    if (i->id == id) return i.get();
  }
  if (id.empty() || id.size() > kMaxIdBytes) return nullptr;
  if (items_.size() == kMaxItems) {
    const std::string& old = items_.front()->id;
    std::erase_if(marks_, [&](const auto& kv) { return kv.second.first == old; });
    items_.pop_front();
  }
  items_.push_back(std::make_unique<Item>());
  items_.back()->id = id;
  return items_.back().get();
}

void Conversation::on_audio_delta(const std::string& item_id, std::string_view b64) {
  Item* it = item(item_id);
  if (it == nullptr || it->cut) return;  // cut by a barge-in: the caller must not hear it
  decoded_.clear();
  if (!base64::decode(b64, decoded_)) {
    ++errors_;
    last_error_ = "an audio delta that is not base64";
    return;
  }
  if (it->start_mark == 0) {
    it->start_mark = next_mark_++;
    marks_[it->start_mark] = {it->id, false};
    agent::v1::AgentResponse m;
    m.mutable_mark()->set_id(it->start_mark);
    sink_.respond(std::move(m));
  }
  agent::v1::AgentResponse r;
  if (formats_.output_linear) {
    const std::size_t n = decoded_.size() / 2;
    it->wire_samples += n;
    out_pcm_.resize(n);
    if (n != 0) std::memcpy(out_pcm_.data(), decoded_.data(), n * 2);  // "" or one byte: none
    out_resampled_.resize(out_rs_->max_output(n));
    const std::size_t m = out_rs_->process(out_pcm_, out_resampled_);
    r.set_audio(reinterpret_cast<const char*>(out_resampled_.data()), m * 2);
    out_audio_bytes_ += n * 2;
  } else {
    it->wire_samples += decoded_.size();
    r.set_audio(reinterpret_cast<const char*>(decoded_.data()), decoded_.size());
    out_audio_bytes_ += decoded_.size();
  }
  sink_.respond(std::move(r));
}

void Conversation::on_audio_done(const std::string& item_id) {
  Item* it = item(item_id);
  if (it == nullptr || it->cut || it->start_mark == 0 || it->end_mark != 0) return;
  it->end_mark = next_mark_++;
  marks_[it->end_mark] = {it->id, true};
  agent::v1::AgentResponse m;
  m.mutable_mark()->set_id(it->end_mark);
  sink_.respond(std::move(m));
}

void Conversation::on_speech_started() {
  // Has the caller heard all of every item? Marks are played in order, so an item is heard once
  // its end mark has been reported.
  const bool unheard = std::any_of(items_.begin(), items_.end(), [&](const auto& i) {
    return i->start_mark != 0 && !i->cut && (i->end_mark == 0 || i->end_mark > last_played_mark_);
  });
  if (!unheard || clear_pending_) return;
  clear_pending_ = true;
  agent::v1::AgentResponse r;
  r.mutable_clear();
  sink_.respond(std::move(r));
}

void Conversation::on_playback_cleared(std::uint64_t mark_id, std::uint32_t played_ms) {
  clear_pending_ = false;
  const int wire_rate = formats_.output_linear ? kPcmRate : 8000;
  for (auto& i : items_) {
    if (i->start_mark == 0 || i->cut) continue;
    if (i->end_mark != 0 && i->end_mark <= mark_id) continue;  // heard to its end
    std::uint64_t end_ms = 0;
    if (i->start_mark == mark_id) end_ms = played_ms;  // heard this much of it
    // (start_mark > mark_id: not reached, nothing of it was heard)
    end_ms = std::min<std::uint64_t>(end_ms, i->wire_samples * 1000 / wire_rate);
    i->cut = true;
    if (!connected_) continue;  // the items were the old socket's: nothing to cut there
    sink_.send(json::serialize(json::object{{"type", "conversation.item.truncate"},
                                            {"event_id", event_id()},
                                            {"item_id", i->id},
                                            {"content_index", 0},
                                            {"audio_end_ms", end_ms}}));
  }
  last_played_mark_ = std::max(last_played_mark_, next_mark_ - 1);
}

bool Conversation::business_tool(const std::string& name) const {
  return std::find(business_names_.begin(), business_names_.end(), name) != business_names_.end();
}

void Conversation::answered(bool respond) {
  respond_after_tools_ = respond_after_tools_ || respond;
  // Several calls in one response: the model speaks again once it has every answer.
  if (!tool_calls_.empty() || !std::exchange(respond_after_tools_, false)) return;
  request_response();
}

void Conversation::on_tool_call(const std::string& call_id, const std::string& name,
                                const std::string& arguments) {
  if (call_id.empty() || call_id.size() > kMaxIdBytes) return;
  auto refuse = [&](const std::string& why) {
    send_tool_output(call_id, error_output(why));
    answered(true);
  };
  if (business_tool(name)) {
    if (tool_calls_.size() == kMaxToolCalls) return refuse("too many tool calls at once");
    tool_calls_.push_back({call_id, common::v1::Action::KIND_NOT_SET});
    // The arguments go on as the model wrote them: the tool runner checks them.
    agent::v1::AgentResponse r;
    auto* c = r.mutable_tool_call();
    c->set_id(call_id);
    c->set_name(name);
    c->set_arguments_json(arguments.empty() ? std::string("{}") : arguments);
    sink_.respond(std::move(r));
    return;
  }
  if (!o_->tools) return refuse("no tools are available");
  boost::system::error_code ec;
  const json::value v = json::parse(arguments.empty() ? std::string("{}") : arguments, ec);
  if (ec || !v.is_object()) return refuse("arguments are not a JSON object");
  const json::object& a = v.as_object();
  common::v1::Action action;
  action.set_tool_call_id(call_id);
  if (name == "transfer") {
    const auto* t = str(a, "target");
    if (t == nullptr) return refuse("transfer needs a target");
    action.mutable_transfer()->set_target(std::string(*t));
    action.mutable_transfer()->set_context(str_or(a, "context"));
  } else if (name == "hang_up") {
    const std::string words = str_or(a, "final_words");
    const std::string reason = str_or(a, "reason", "the agent hung up");
    send_tool_output(call_id, json::serialize(json::object{{"ok", true}}));
    if (!words.empty()) {
      // The model says the final words in its own voice, then the call ends.
      resp_.hangup_after = true;
      resp_.hangup_reason = reason;
      request_response("Say exactly this to the caller, and nothing else: \"" + words + "\"");
      return;
    }
    action.mutable_hangup()->set_reason(reason);
    agent::v1::AgentResponse r;
    *r.mutable_action() = std::move(action);
    sink_.respond(std::move(r));
    return;
  } else if (name == "send_dtmf") {
    const auto* d = str(a, "digits");
    if (d == nullptr) return refuse("send_dtmf needs digits");
    action.mutable_send_dtmf()->set_digits(std::string(*d));
  } else if (name == "set_variable") {
    const auto* n = str(a, "name");
    const auto* val = str(a, "value");
    if (n == nullptr || val == nullptr) return refuse("set_variable needs a name and a value");
    action.mutable_set_variable()->set_name(std::string(*n));
    action.mutable_set_variable()->set_value(std::string(*val));
  } else {
    return refuse("unknown tool");
  }
  if (tool_calls_.size() == kMaxToolCalls) return refuse("too many tool calls at once");
  tool_calls_.push_back({call_id, action.kind_case()});
  agent::v1::AgentResponse r;
  *r.mutable_action() = std::move(action);
  sink_.respond(std::move(r));
}

void Conversation::on_action_result(const common::v1::ActionResult& r) {
  const auto kind = r.action().kind_case();
  const std::string& id = r.action().tool_call_id();
  // By its call id; a result without one (a v1.1 runner) takes the oldest call of its kind.
  const auto it = std::find_if(tool_calls_.begin(), tool_calls_.end(), [&](const ToolCall& t) {
    return t.kind != common::v1::Action::KIND_NOT_SET && t.kind == kind &&
           (id.empty() || t.call_id == id);
  });
  if (it == tool_calls_.end()) return;  // not asked for as a tool (or already answered)
  const std::string call_id = it->call_id;
  tool_calls_.erase(it);
  // The error's words may be a peer's (AMI's Message, ARI's reason): JSON text must be UTF-8.
  send_tool_output(call_id, r.ok() ? json::serialize(json::object{{"ok", true}})
                                   : error_output(events::valid_utf8(r.error())));
  // A transfer that went through moves the caller away: nothing more to say.
  answered(!(r.ok() && kind == common::v1::Action::kTransfer));
}

void Conversation::on_tool_result(const common::v1::ToolResult& r) {
  const auto it = std::find_if(tool_calls_.begin(), tool_calls_.end(), [&](const ToolCall& t) {
    return t.kind == common::v1::Action::KIND_NOT_SET && t.call_id == r.id();
  });
  if (it == tool_calls_.end()) return;  // not a call of this socket's model (or answered)
  tool_calls_.erase(it);
  // The tool's body is a web service's words: JSON text must be UTF-8.
  send_tool_output(r.id(), r.ok() ? events::valid_utf8(r.output())
                                  : error_output(events::valid_utf8(r.output())));
  answered(true);
}

void Conversation::on_response_done(std::string_view status, std::uint64_t in_tokens,
                                    std::uint64_t out_tokens) {
  (void)status;
  resp_.active = false;
  usage_.set_input_tokens(usage_.input_tokens() + in_tokens);
  usage_.set_output_tokens(usage_.output_tokens() + out_tokens);
  respond_usage();
  if (resp_.hangup_after && !resp_.wanted) {
    // The goodbye (or the final words) has been said: hang up after it has played.
    resp_.hangup_after = false;
    resp_.ended = true;
    agent::v1::AgentResponse r;
    r.mutable_action()->mutable_hangup()->set_reason(resp_.hangup_reason);
    sink_.respond(std::move(r));
    return;
  }
  if (resp_.ended) return;
  if (o_->max_call_tokens > 0 && !resp_.hangup_after &&
      usage_.input_tokens() + usage_.output_tokens() >= o_->max_call_tokens) {
    end_call("token cap reached");
    return;
  }
  if (resp_.wanted) request_response(std::exchange(resp_.wanted_instructions, {}));
}

void Conversation::respond_usage() {
  const std::uint64_t in_rate_bytes_ms = formats_.input_linear ? kPcmRate / 1000 * 2 : 8;
  const std::uint64_t out_rate_bytes_ms = formats_.output_linear ? kPcmRate / 1000 * 2 : 8;
  usage_.set_input_audio_ms(in_audio_bytes_ / in_rate_bytes_ms);
  usage_.set_output_audio_ms(out_audio_bytes_ / out_rate_bytes_ms);
  agent::v1::AgentResponse r;
  *r.mutable_usage() = usage_;
  sink_.respond(std::move(r));
}

void Conversation::remember(bool caller, const std::string& text) {
  if (text.empty()) return;
  agent::v1::AgentResponse r;
  auto* t = r.mutable_transcript();
  t->set_speaker(caller ? agent::v1::Transcript::CALLER : agent::v1::Transcript::AGENT);
  t->set_text(text);
  t->set_is_final(true);
  sink_.respond(std::move(r));
  history_.emplace_back(caller, text);
  history_bytes_ += text.size();
  while (history_bytes_ > kMaxHistoryBytes && !history_.empty()) {
    history_bytes_ -= history_.front().second.size();
    history_.pop_front();
  }
}

Conversation::Verdict Conversation::server_event(std::string_view text, std::string& why) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    why = "a server event that is not a JSON object";
    return Verdict::fatal;
  }
  const json::object& e = v.as_object();
  const auto* type_p = str(e, "type");
  if (type_p == nullptr) {
    why = "a server event without a type";
    return Verdict::fatal;
  }
  const std::string_view type = *type_p;
  if (type == "response.output_audio.delta") {
    const auto* d = str(e, "delta");
    if (d != nullptr) on_audio_delta(str_or(e, "item_id"), *d);
  } else if (type == "response.output_audio.done") {
    on_audio_done(str_or(e, "item_id"));
  } else if (type == "input_audio_buffer.speech_started") {
    on_speech_started();
  } else if (type == "response.created") {
    resp_.active = true;
  } else if (type == "response.done") {
    std::uint64_t in = 0, out = 0;
    std::string status;
    if (const auto* r = e.if_contains("response"); r != nullptr && r->is_object()) {
      status = str_or(r->as_object(), "status");
      if (const auto* u = r->as_object().if_contains("usage"); u != nullptr && u->is_object()) {
        in = uint_or_0(u->as_object(), "input_tokens");
        out = uint_or_0(u->as_object(), "output_tokens");
      }
    }
    on_response_done(status, in, out);
  } else if (type == "response.output_audio_transcript.done") {
    remember(false, str_or(e, "transcript"));
  } else if (type == "conversation.item.input_audio_transcription.completed") {
    remember(true, str_or(e, "transcript"));
  } else if (type == "response.function_call_arguments.done") {
    on_tool_call(str_or(e, "call_id"), str_or(e, "name"), str_or(e, "arguments"));
  } else if (type == "session.updated") {
    session_ready_ = true;
  } else if (type == "error") {
    std::string code, etype, message;
    if (const auto* er = e.if_contains("error"); er != nullptr && er->is_object()) {
      code = str_or(er->as_object(), "code");
      etype = str_or(er->as_object(), "type");
      message = str_or(er->as_object(), "message");
    }
    last_error_ = (code.empty() ? etype : code) + ": " + message;
    if (code == "conversation_already_has_active_response") {
      // The server started a response of its own (its VAD heard a turn) just before ours.
      resp_.active = true;
      resp_.wanted = true;
      return Verdict::go_on;
    }
    if (code == "response_cancel_not_active") return Verdict::go_on;
    ++errors_;
    // Fatal: our session set-up refused, the service's own failure, quota and rate limits.
    if (!session_ready_ || etype == "server_error" || code == "rate_limit_exceeded" ||
        code == "insufficient_quota" || code == "session_expired" || code == "invalid_api_key") {
      why = "the service said " + last_error_;
      return Verdict::fatal;
    }
  }
  // Other events (session.created, speech_stopped, committed, item and part bookkeeping,
  // transcript deltas, rate_limits.updated) need nothing from voxbridge.
  return Verdict::go_on;
}

}  // namespace voxbridge::realtime_openai
