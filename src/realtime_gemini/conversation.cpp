#include "voxbridge/realtime_gemini/conversation.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>
#include <stdexcept>

#include "voxbridge/base64/base64.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/realtime_openai/conversation.hpp"

namespace voxbridge::realtime_gemini {

namespace json = boost::json;

namespace {

/// Tool calls waiting for their result (the model asks for one or a few at a time).
constexpr std::size_t kMaxToolCalls = 8;
/// The conversation told to a new session after a break without a handle: the newest turns.
constexpr std::size_t kMaxHistoryBytes = 32 * 1024;
/// Client messages held while no session is set up (DTMF, tool responses).
constexpr std::size_t kMaxDeferred = 32;
/// Longest functionCall id and handle taken from the service.
constexpr std::size_t kMaxIdBytes = 256;
constexpr std::size_t kMaxHandleBytes = 4096;
/// Transcript text kept per turn and side (the service sends it in pieces).
constexpr std::size_t kMaxTurnText = 16 * 1024;
/// Caller audio kept while no session is set up: two seconds at 16 kHz.
constexpr std::size_t kMaxHeldInputBytes = 2 * kInputRateHz * 2;

/// The voxbridge actions as functionDeclarations, with the descriptions and parameters the
/// OpenAI Realtime backend offers (src/realtime_openai/conversation.cpp), in the Live API's
/// Schema (OpenAPI subset: type names are the Type enum's).
const char* kActionsJson = R"json([
{"name":"transfer","description":"Transfer the caller to another extension or phone number. Say that you are transferring them first.","parameters":{"type":"OBJECT","properties":{"target":{"type":"STRING","description":"Extension or phone number, digits only"},"context":{"type":"STRING","description":"Dialplan context, if the business told you one"}},"required":["target"]}},
{"name":"hang_up","description":"End the call, after saying goodbye.","parameters":{"type":"OBJECT","properties":{"final_words":{"type":"STRING","description":"What to say before hanging up"},"reason":{"type":"STRING"}}}},
{"name":"send_dtmf","description":"Press keys on the phone line (for an IVR menu): 0-9, *, #.","parameters":{"type":"OBJECT","properties":{"digits":{"type":"STRING"}},"required":["digits"]}},
{"name":"set_variable","description":"Record a fact about the call for the business's phone system.","parameters":{"type":"OBJECT","properties":{"name":{"type":"STRING"},"value":{"type":"STRING"}},"required":["name","value"]}}
])json";

const json::string* str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

std::string str_or(const json::object& o, std::string_view key, std::string_view fallback = {}) {
  const auto* s = str(o, key);
  return s != nullptr ? std::string(*s) : std::string(fallback);
}

const json::object* obj(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_object() : nullptr;
}

std::uint64_t uint_or_0(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (const auto* u = v->if_uint64()) return *u;
  if (const auto* i = v->if_int64()) return *i > 0 ? static_cast<std::uint64_t>(*i) : 0;
  return 0;
}

bool is_action(std::string_view name) {
  return name == "transfer" || name == "hang_up" || name == "send_dtmf" || name == "set_variable";
}

std::string error_response(const std::string& why) {
  return json::serialize(json::object{{"ok", false}, {"error", why}});
}

/// "audio/pcm;rate=24000" -> 24000; no rate: the API's output rate; not PCM: 0.
int pcm_rate(std::string_view mime) {
  if (mime.substr(0, 9) != "audio/pcm") return 0;
  const auto at = mime.find("rate=");
  if (at == std::string_view::npos) return kOutputRateHz;
  int rate = 0;
  for (std::size_t i = at + 5; i < mime.size() && mime[i] >= '0' && mime[i] <= '9'; ++i) {
    rate = rate * 10 + (mime[i] - '0');
    if (rate > 192000) return 0;
  }
  return rate >= 8000 ? rate : 0;
}

}  // namespace

Conversation::Conversation(std::shared_ptr<const GeminiOptions> options,
                           agent::v1::AgentConfig config, int resampler_quality, Sink sink)
    : o_(std::move(options)), config_(std::move(config)), sink_(std::move(sink)) {
  auto rate_of = [](const common::v1::AudioFormat& a, const char* side) {
    if (a.encoding() != common::v1::LINEAR16 || a.sample_rate_hz() < 8000 ||
        a.sample_rate_hz() > 48000) {
      throw std::invalid_argument(std::string(side) + ": Gemini Live is served LINEAR16 at " +
                                  "8000 to 48000 Hz");
    }
    return static_cast<int>(a.sample_rate_hz());
  };
  quality_ = resampler_quality;
  in_rate_ = rate_of(config_.input_format(), "input");
  out_rate_ = rate_of(config_.output_format(), "output");
  in_rs_.emplace(in_rate_, kInputRateHz, resampler_quality);
  out_rs_.emplace(kOutputRateHz, out_rate_, resampler_quality);
  out_rs_from_ = kOutputRateHz;
  const int ms = std::clamp(o_->append_ms, 20, 200);
  in_.batch_bytes = static_cast<std::size_t>(kInputRateHz / 1000 * 2 * ms);
  in_.pending.reserve(std::max(in_.batch_bytes * 2, kMaxHeldInputBytes));
}

Conversation::~Conversation() = default;

std::string Conversation::setup_message(const std::string& handle) const {
  json::object speech;
  if (!o_->voice.empty()) {
    speech["voiceConfig"] =
        json::object{{"prebuiltVoiceConfig", json::object{{"voiceName", o_->voice}}}};
  }
  if (!o_->language.empty()) speech["languageCode"] = o_->language;
  json::object gen{{"responseModalities", json::array{"AUDIO"}}};
  if (!speech.empty()) gen["speechConfig"] = std::move(speech);
  const std::string model = o_->model.rfind("models/", 0) == 0 ? o_->model : "models/" + o_->model;
  json::object setup{
      {"model", model},
      {"generationConfig", std::move(gen)},
      // The call's facts are the caller's (a SIP display name): JSON text must be UTF-8.
      {"systemInstruction",
       json::object{{"parts", json::array{json::object{
                                  {"text", events::valid_utf8(realtime_openai::fill_call_facts(
                                               o_->instructions, config_.call()))}}}}}}};
  json::array decls;
  if (o_->tools) decls = json::parse(kActionsJson).as_array();
  for (const auto& t : config_.tools()) {
    if (is_action(t.name())) continue;  // never shadows an action (the contract forbids it)
    json::object d{{"name", t.name()}, {"description", events::valid_utf8(t.description())}};
    // The tool's parameters are JSON Schema as written in its [tool-NAME]: the Live API takes
    // those as parametersJsonSchema (`parameters` is its OpenAPI subset).
    boost::system::error_code ec;
    json::value schema = json::parse(t.parameters_json(), ec);
    d["parametersJsonSchema"] = !ec && schema.is_object()
                                    ? std::move(schema)
                                    : json::value(json::object{{"type", "object"}});
    decls.push_back(std::move(d));
  }
  if (!decls.empty()) {
    setup["tools"] = json::array{json::object{{"functionDeclarations", std::move(decls)}}};
  }
  json::object vad;
  if (o_->turn_detection == "none") {
    vad["disabled"] = true;
  } else {
    if (!o_->vad_start_sensitivity.empty()) {
      vad["startOfSpeechSensitivity"] = o_->vad_start_sensitivity;
    }
    if (!o_->vad_end_sensitivity.empty()) vad["endOfSpeechSensitivity"] = o_->vad_end_sensitivity;
    if (o_->vad_prefix_padding_ms > 0) vad["prefixPaddingMs"] = o_->vad_prefix_padding_ms;
    if (o_->vad_silence_ms > 0) vad["silenceDurationMs"] = o_->vad_silence_ms;
  }
  if (!vad.empty()) {
    setup["realtimeInputConfig"] = json::object{{"automaticActivityDetection", std::move(vad)}};
  }
  if (o_->transcription) {
    setup["inputAudioTranscription"] = json::object{};
    setup["outputAudioTranscription"] = json::object{};
  }
  json::object resumption;
  if (!handle.empty()) resumption["handle"] = handle;
  setup["sessionResumption"] = std::move(resumption);
  if (o_->context_compression) {
    json::object c{{"slidingWindow", json::object{}}};
    if (o_->compression_trigger_tokens > 0) c["triggerTokens"] = o_->compression_trigger_tokens;
    setup["contextWindowCompression"] = std::move(c);
  }
  return json::serialize(json::object{{"setup", std::move(setup)}});
}

void Conversation::opened() {
  ready_ = false;
  resumed_from_handle_ = !handle_.empty();
  sink_.send(setup_message(handle_));
}

void Conversation::disconnected() {
  ready_ = false;
  // The old socket's turn is gone: what it still had to say will not come. Its audio so far
  // plays out; the next turn gets marks of its own.
  if (turn_start_mark_ != 0 && !turn_cut_) on_turn_end(false);
  turn_start_mark_ = 0;
  turn_cut_ = false;
}

void Conversation::send(std::string json) {
  if (ready_) {
    sink_.send(std::move(json));
    return;
  }
  if (deferred_.size() == kMaxDeferred) deferred_.pop_front();
  deferred_.push_back(std::move(json));
}

void Conversation::caller_audio(std::string_view bytes) {
  const std::size_t n = bytes.size() / 2;
  in_.pcm.resize(n);
  if (n != 0) std::memcpy(in_.pcm.data(), bytes.data(), n * 2);  // (no data() when empty)
  in_.pcm16k.resize(in_rs_->max_output(n));
  const std::size_t m = in_rs_->process(in_.pcm, in_.pcm16k);
  in_.pending.append(reinterpret_cast<const char*>(in_.pcm16k.data()), m * 2);
  if (!ready_) {
    // No session yet (connecting, or resuming after a goAway): keep the newest two seconds.
    if (in_.pending.size() > kMaxHeldInputBytes) {
      in_.pending.erase(0, in_.pending.size() - kMaxHeldInputBytes);
    }
    return;
  }
  if (in_.pending.size() >= in_.batch_bytes) flush_input();
}

void Conversation::flush_input() {
  if (!ready_) return;
  // Whole batches of append_ms (the rest waits for the next frame): evenly spaced audio for
  // the service's activity detection.
  static constexpr std::string_view kHead =
      R"({"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":")";
  std::size_t at = 0;
  while (in_.pending.size() - at >= in_.batch_bytes) {
    const std::string_view batch(in_.pending.data() + at, in_.batch_bytes);
    in_.message.clear();
    in_.message.reserve(kHead.size() + base64::encoded_size(batch.size()) + 4);
    in_.message.append(kHead);
    base64::encode(batch, in_.message);
    in_.message.append("\"}}}");
    in_audio_bytes_ += batch.size();
    at += batch.size();
    sink_.send(std::move(in_.message));
  }
  in_.pending.erase(0, at);
}

void Conversation::send_text_turn(const std::string& text) {
  json::object turn{{"role", "user"}, {"parts", json::array{json::object{{"text", text}}}}};
  send(json::serialize(
      json::object{{"clientContent", json::object{{"turns", json::array{std::move(turn)}},
                                                  {"turnComplete", true}}}}));
}

void Conversation::send_function_response(const std::string& id, const std::string& name,
                                          const std::string& response_json) {
  json::object r{{"id", id}, {"name", name}, {"response", json::parse(response_json)}};
  send(json::serialize(
      json::object{{"toolResponse", json::object{{"functionResponses", json::array{r}}}}}));
}

void Conversation::call_event(const agent::v1::CallEvent& event) {
  switch (event.kind_case()) {
    case agent::v1::CallEvent::kDtmf:
      if (!ended_) {
        send_text_turn("The caller pressed " + events::valid_utf8(event.dtmf()) +
                       " on the phone keypad.");
      }
      break;
    case agent::v1::CallEvent::kActionResult:
      on_action_result(event.action_result());
      break;
    case agent::v1::CallEvent::kToolResult:
      on_tool_result(event.tool_result());
      break;
    default:
      // mark_played, playback_cleared: the service cuts its own turn on the caller's speech
      // (there is nothing like a truncate to send).
      break;
  }
}

void Conversation::end_call(const std::string& reason) {
  if (hangup_after_turn_ || ended_) return;
  hangup_after_turn_ = true;
  hangup_reason_ = reason;
  send_text_turn("Say exactly this to the caller, and nothing else: \"" + o_->goodbye + "\"");
}

void Conversation::hang_up_now() {
  hangup_after_turn_ = false;
  ended_ = true;
  agent::v1::AgentResponse r;
  r.mutable_action()->mutable_hangup()->set_reason(hangup_reason_);
  sink_.respond(std::move(r));
}

void Conversation::on_audio(std::string_view mime, std::string_view b64) {
  if (turn_cut_) return;  // interrupted: the caller must not hear the rest of this turn
  const int rate = pcm_rate(mime);
  if (rate == 0) {
    last_error_ = "model audio that is not audio/pcm";
    return;
  }
  decoded_.clear();
  if (!base64::decode(b64, decoded_)) {
    last_error_ = "model audio that is not base64";
    return;
  }
  if (rate != out_rs_from_) {  // the reference says 24 kHz; follow what the service declares
    out_rs_.emplace(rate, out_rate_, quality_);
    out_rs_from_ = rate;
  }
  if (turn_start_mark_ == 0) {
    turn_start_mark_ = next_mark_++;
    agent::v1::AgentResponse m;
    m.mutable_mark()->set_id(turn_start_mark_);
    sink_.respond(std::move(m));
  }
  const std::size_t n = decoded_.size() / 2;
  out_pcm_.resize(n);
  if (n != 0) std::memcpy(out_pcm_.data(), decoded_.data(), n * 2);
  out_resampled_.resize(out_rs_->max_output(n));
  const std::size_t m = out_rs_->process(out_pcm_, out_resampled_);
  out_audio_samples_ += n * static_cast<std::uint64_t>(kOutputRateHz) / static_cast<unsigned>(rate);
  agent::v1::AgentResponse r;
  r.set_audio(reinterpret_cast<const char*>(out_resampled_.data()), m * 2);
  sink_.respond(std::move(r));
}

void Conversation::flush_transcripts() {
  remember(true, std::exchange(caller_text_, {}));
  remember(false, std::exchange(agent_text_, {}));
}

void Conversation::on_turn_end(bool interrupted) {
  if (turn_start_mark_ != 0 && !interrupted) {
    agent::v1::AgentResponse m;
    m.mutable_mark()->set_id(next_mark_++);
    sink_.respond(std::move(m));
  }
  turn_start_mark_ = 0;
  flush_transcripts();
}

void Conversation::remember(bool caller, const std::string& text) {
  // The service's transcription pieces carry their own spaces; trim the ends.
  const auto b = text.find_first_not_of(" \n");
  if (b == std::string::npos) return;
  std::string t = events::valid_utf8(text.substr(b, text.find_last_not_of(" \n") - b + 1));
  agent::v1::AgentResponse r;
  auto* tr = r.mutable_transcript();
  tr->set_speaker(caller ? agent::v1::Transcript::CALLER : agent::v1::Transcript::AGENT);
  tr->set_text(t);
  tr->set_is_final(true);
  sink_.respond(std::move(r));
  history_bytes_ += t.size();
  history_.emplace_back(caller, std::move(t));
  while (history_bytes_ > kMaxHistoryBytes && !history_.empty()) {
    history_bytes_ -= history_.front().second.size();
    history_.pop_front();
  }
}

void Conversation::on_tool_call(const std::string& id, const std::string& name,
                                const std::string& args_json, bool args_ok) {
  if (id.empty() || id.size() > kMaxIdBytes || name.size() > kMaxIdBytes) return;
  auto refuse = [&](const std::string& why) {
    send_function_response(id, name, error_response(why));
  };
  const bool business =
      std::any_of(config_.tools().begin(), config_.tools().end(),
                  [&](const common::v1::ToolDefinition& t) { return t.name() == name; }) &&
      !is_action(name);
  if (!business && (!o_->tools || !is_action(name))) return refuse("unknown tool");
  if (!args_ok) return refuse("arguments are not a JSON object");
  if (tools_.size() == kMaxToolCalls) return refuse("too many tool calls at once");
  if (business) {
    tools_.push_back({id, name, true, common::v1::Action::KIND_NOT_SET});
    agent::v1::AgentResponse r;
    auto* c = r.mutable_tool_call();
    c->set_id(id);
    c->set_name(name);
    c->set_arguments_json(args_json);
    sink_.respond(std::move(r));
    return;
  }
  const json::object a = json::parse(args_json).as_object();
  common::v1::Action action;
  if (name == "transfer") {
    const auto* t = str(a, "target");
    if (t == nullptr) return refuse("transfer needs a target");
    action.mutable_transfer()->set_target(std::string(*t));
    action.mutable_transfer()->set_context(str_or(a, "context"));
  } else if (name == "hang_up") {
    const std::string words = str_or(a, "final_words");
    hangup_reason_ = str_or(a, "reason", "the agent hung up");
    send_function_response(id, name, R"({"ok":true})");
    if (!words.empty()) {
      // The model says the final words in its own voice; the call ends after that turn.
      hangup_after_turn_ = true;
      send_text_turn("Say exactly this to the caller, and nothing else: \"" + words + "\"");
      return;
    }
    hang_up_now();
    return;
  } else if (name == "send_dtmf") {
    const auto* d = str(a, "digits");
    if (d == nullptr) return refuse("send_dtmf needs digits");
    action.mutable_send_dtmf()->set_digits(std::string(*d));
  } else {
    const auto* n = str(a, "name");
    const auto* v = str(a, "value");
    if (n == nullptr || v == nullptr) return refuse("set_variable needs a name and a value");
    action.mutable_set_variable()->set_name(std::string(*n));
    action.mutable_set_variable()->set_value(std::string(*v));
  }
  action.set_tool_call_id(id);
  tools_.push_back({id, name, false, action.kind_case()});
  agent::v1::AgentResponse r;
  *r.mutable_action() = std::move(action);
  sink_.respond(std::move(r));
}

void Conversation::on_action_result(const common::v1::ActionResult& r) {
  const auto kind = r.action().kind_case();
  const std::string& id = r.action().tool_call_id();
  // By the id the action carried; an older peer that drops it: the oldest call of that kind.
  const auto it = std::find_if(tools_.begin(), tools_.end(), [&](const PendingTool& t) {
    return !t.business && (id.empty() ? t.kind == kind : t.id == id);
  });
  if (it == tools_.end()) return;  // not asked for as a tool, or cancelled
  const PendingTool t = *it;
  tools_.erase(it);
  // The error's words may be a peer's (AMI's Message, ARI's reason): JSON text must be UTF-8.
  send_function_response(
      t.id, t.name,
      r.ok() ? std::string(R"({"ok":true})") : error_response(events::valid_utf8(r.error())));
}

void Conversation::on_tool_result(const common::v1::ToolResult& r) {
  const auto it = std::find_if(tools_.begin(), tools_.end(),
                               [&](const PendingTool& t) { return t.business && t.id == r.id(); });
  if (it == tools_.end()) return;
  const PendingTool t = *it;
  tools_.erase(it);
  json::object response;
  if (r.ok()) {
    // A JSON body goes back as JSON, anything else as text.
    boost::system::error_code ec;
    json::value body = json::parse(r.output(), ec);
    response["output"] = ec ? json::value(events::valid_utf8(r.output())) : std::move(body);
  } else {
    response["error"] = events::valid_utf8(r.output());
  }
  send_function_response(t.id, t.name, json::serialize(response));
}

Conversation::Verdict Conversation::server_event(std::string_view text, std::string& why) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    why = "a server message that is not a JSON object";
    return Verdict::fatal;
  }
  const json::object& e = v.as_object();
  if (e.contains("setupComplete")) {
    ready_ = true;
    // What waited for the session: on a fresh one the greeting, or after a break without a
    // handle the conversation so far; then DTMF and tool responses, then the caller's audio.
    if (!resumed_from_handle_) {
      if (!greeted_) {
        greeted_ = true;
        if (o_->greeting) send_text_turn(o_->greeting_text);
      } else if (!history_.empty()) {
        json::array turns;
        for (const auto& [caller, t] : history_) {
          turns.push_back(json::object{{"role", caller ? "user" : "model"},
                                       {"parts", json::array{json::object{{"text", t}}}}});
        }
        sink_.send(json::serialize(
            json::object{{"clientContent",
                          json::object{{"turns", std::move(turns)}, {"turnComplete", false}}}}));
      }
    }
    while (!deferred_.empty()) {
      std::string m = std::move(deferred_.front());
      deferred_.pop_front();
      sink_.send(std::move(m));
    }
    flush_input();
  }
  if (const auto* um = obj(e, "usageMetadata")) {
    // Per response: the newest counts of the turn in progress are added at its end.
    turn_in_tokens_ = uint_or_0(*um, "promptTokenCount");
    turn_out_tokens_ = uint_or_0(*um, "responseTokenCount");
  }
  if (const auto* sc = obj(e, "serverContent")) {
    if (const auto* t = obj(*sc, "inputTranscription")) {
      if (caller_text_.size() < kMaxTurnText) caller_text_ += str_or(*t, "text");
    }
    if (const auto* mt = obj(*sc, "modelTurn")) {
      const auto* parts = mt->if_contains("parts");
      if (parts != nullptr && parts->is_array()) {
        for (const auto& p : parts->as_array()) {
          if (!p.is_object()) continue;
          if (const auto* d = obj(p.as_object(), "inlineData")) {
            const auto* data = str(*d, "data");
            if (data != nullptr) on_audio(str_or(*d, "mimeType"), *data);
          }
        }
      }
    }
    if (const auto* t = obj(*sc, "outputTranscription")) {
      if (!turn_cut_ && agent_text_.size() < kMaxTurnText) agent_text_ += str_or(*t, "text");
    }
    if (const auto* i = sc->if_contains("interrupted");
        i != nullptr && i->is_bool() && i->as_bool()) {
      // The service heard the caller over the model: what is queued must not play on.
      if (turn_start_mark_ != 0 && !turn_cut_) {
        agent::v1::AgentResponse r;
        r.mutable_clear();
        sink_.respond(std::move(r));
      }
      turn_cut_ = true;
      on_turn_end(true);
    }
    if (const auto* tc = sc->if_contains("turnComplete");
        tc != nullptr && tc->is_bool() && tc->as_bool()) {
      if (!turn_cut_) on_turn_end(false);
      turn_cut_ = false;
      usage_.set_input_tokens(usage_.input_tokens() + std::exchange(turn_in_tokens_, 0));
      usage_.set_output_tokens(usage_.output_tokens() + std::exchange(turn_out_tokens_, 0));
      usage_.set_input_audio_ms(in_audio_bytes_ / (kInputRateHz / 1000 * 2));
      usage_.set_output_audio_ms(out_audio_samples_ / (kOutputRateHz / 1000));
      agent::v1::AgentResponse r;
      *r.mutable_usage() = usage_;
      sink_.respond(std::move(r));
      if (hangup_after_turn_) {
        hang_up_now();
      } else if (!ended_ && o_->max_call_tokens > 0 &&
                 usage_.input_tokens() + usage_.output_tokens() >= o_->max_call_tokens) {
        end_call("token cap reached");
      }
    }
  }
  if (const auto* tc = obj(e, "toolCall")) {
    flush_transcripts();  // the caller's words that led to it come first
    const auto* calls = tc->if_contains("functionCalls");
    if (calls != nullptr && calls->is_array()) {
      for (const auto& c : calls->as_array()) {
        if (!c.is_object()) continue;
        const auto& fc = c.as_object();
        const auto* args = fc.if_contains("args");
        const bool ok = args == nullptr || args->is_object();
        on_tool_call(str_or(fc, "id"), str_or(fc, "name"),
                     args == nullptr ? std::string("{}") : json::serialize(*args), ok);
      }
    }
  }
  if (const auto* cancel = obj(e, "toolCallCancellation")) {
    const auto* ids = cancel->if_contains("ids");
    if (ids != nullptr && ids->is_array()) {
      for (const auto& id : ids->as_array()) {
        if (!id.is_string()) continue;
        std::erase_if(tools_, [&](const PendingTool& t) { return t.id == id.as_string(); });
      }
    }
  }
  if (const auto* ru = obj(e, "sessionResumptionUpdate")) {
    const auto* r = ru->if_contains("resumable");
    const std::string h = str_or(*ru, "newHandle");
    if (r != nullptr && r->is_bool() && r->as_bool() && !h.empty() && h.size() <= kMaxHandleBytes) {
      handle_ = h;
    }
  }
  if (const auto* er = obj(e, "error")) {
    // Google's error object (code, message, status), should the service send one in a frame.
    last_error_ = str_or(*er, "status", "error") + ": " + str_or(*er, "message");
    why = "the service said " + last_error_;
    return Verdict::fatal;
  }
  if (e.contains("goAway")) {
    if (!ended_ && o_->resume) return Verdict::resume;
  }
  return Verdict::go_on;
}

}  // namespace voxbridge::realtime_gemini
