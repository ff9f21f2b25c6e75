// The Gemini Live mock (see mock_gemini_live.hpp for the references and the behaviour).
// Wording of close reasons: "reference" = the reference or what the service was seen to send
// (threads named in the header); "mock wording" = neither says, the text is ours.
#include "support/mock_gemini_live.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>

#include "support/ws_server.hpp"
#include "voxbridge/base64/base64.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// ---- validation, as the service answers a bad message: the socket closes with 1007 ----

/// Why a message is refused (empty: it is fine).
using Why = std::string;

/// Google names fields in its errors the proto way: generationConfig -> generation_config.
std::string snake(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (c >= 'A' && c <= 'Z') {
      out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

Why unknown_name(const std::string& key, const std::string& at) {  // reference wording
  return "Invalid JSON payload received. Unknown name \"" + key + "\" at '" + snake(at) +
         "': Cannot find field.";
}
Why invalid_value(const std::string& at, const json::value& v) {  // reference wording
  return "Invalid value at '" + snake(at) + "', " + json::serialize(v);
}
constexpr const char* kInvalidArgument = "Request contains an invalid argument.";  // reference

Why only_keys(const json::object& o, std::initializer_list<std::string_view> known,
              const std::string& at) {
  for (const auto& kv : o) {
    if (std::find(known.begin(), known.end(), kv.key()) == known.end()) {
      return unknown_name(std::string(kv.key()), at);
    }
  }
  return {};
}

bool is_obj(const json::value& v) {
  return v.is_object();
}
bool is_str(const json::value& v) {
  return v.is_string();
}
bool is_bool(const json::value& v) {
  return v.is_bool();
}
bool is_arr(const json::value& v) {
  return v.is_array();
}
bool is_int(const json::value& v) {
  return v.is_int64() || v.is_uint64();
}

#define VB_CHECK(expr)                           \
  do {                                           \
    if (Why w_ = (expr); !w_.empty()) return w_; \
  } while (0)

Why typed(const json::object& o, std::string_view key, const std::string& at,
          bool (*ok)(const json::value&)) {
  const auto* v = o.if_contains(key);
  if (v != nullptr && !ok(*v)) return invalid_value(at + "." + std::string(key), *v);
  return {};
}

Why enum_of(const json::object& o, std::string_view key, const std::string& at,
            std::initializer_list<std::string_view> values) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return {};
  if (!v->is_string() ||
      std::find(values.begin(), values.end(), std::string_view(v->as_string())) == values.end()) {
    return invalid_value(at + "." + std::string(key), *v);
  }
  return {};
}

Why check_content(const json::value& v, const std::string& at) {
  if (!v.is_object()) return invalid_value(at, v);
  const auto& c = v.as_object();
  VB_CHECK(only_keys(c, {"role", "parts"}, at));
  VB_CHECK(enum_of(c, "role", at, {"user", "model"}));
  const auto* parts = c.if_contains("parts");
  if (parts == nullptr) return {};
  if (!parts->is_array()) return invalid_value(at + ".parts", *parts);
  for (const auto& p : parts->as_array()) {
    if (!p.is_object()) return invalid_value(at + ".parts", p);
    VB_CHECK(only_keys(p.as_object(), {"text", "inlineData"}, at + ".parts"));
    VB_CHECK(typed(p.as_object(), "text", at + ".parts", is_str));
  }
  return {};
}

Why check_schema(const json::value& v, const std::string& at, int depth) {
  if (depth > 16 || !v.is_object()) return invalid_value(at, v);
  const auto& s = v.as_object();
  VB_CHECK(only_keys(s,
                     {"type",
                      "format",
                      "title",
                      "description",
                      "nullable",
                      "enum",
                      "maxItems",
                      "minItems",
                      "properties",
                      "required",
                      "items",
                      "anyOf",
                      "propertyOrdering",
                      "minimum",
                      "maximum",
                      "minLength",
                      "maxLength",
                      "pattern",
                      "example",
                      "default",
                      "minProperties",
                      "maxProperties"},
                     at));
  // The Type enum's names (https://ai.google.dev/api/caching#Type).
  VB_CHECK(enum_of(
      s, "type", at,
      {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}));
  VB_CHECK(typed(s, "description", at, is_str));
  VB_CHECK(typed(s, "required", at, is_arr));
  if (const auto* p = s.if_contains("properties")) {
    if (!p->is_object()) return invalid_value(at + ".properties", *p);
    for (const auto& kv : p->as_object()) {
      VB_CHECK(check_schema(kv.value(), at + ".properties[" + std::string(kv.key()) + "].value",
                            depth + 1));
    }
  }
  if (const auto* i = s.if_contains("items")) VB_CHECK(check_schema(*i, at + ".items", depth + 1));
  return {};
}

bool valid_function_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':';
  });
}

Why check_tools(const json::value& v) {
  const std::string at = "setup.tools";
  if (!v.is_array()) return invalid_value(at, v);
  for (const auto& t : v.as_array()) {
    if (!t.is_object()) return invalid_value(at, t);
    VB_CHECK(only_keys(t.as_object(),
                       {"functionDeclarations", "googleSearch", "codeExecution", "urlContext"},
                       at));
    const auto* fds = t.as_object().if_contains("functionDeclarations");
    if (fds == nullptr) continue;
    if (!fds->is_array()) return invalid_value(at + ".functionDeclarations", *fds);
    for (const auto& fd : fds->as_array()) {
      const std::string fat = at + ".functionDeclarations";
      if (!fd.is_object()) return invalid_value(fat, fd);
      const auto& f = fd.as_object();
      VB_CHECK(only_keys(f,
                         {"name", "description", "parameters", "parametersJsonSchema", "response",
                          "responseJsonSchema", "behavior"},
                         fat));
      const auto* name = f.if_contains("name");
      if (name == nullptr || !name->is_string() || !valid_function_name(name->as_string())) {
        return kInvalidArgument;  // reference (adk-python#225: bad tools -> this reason)
      }
      VB_CHECK(typed(f, "description", fat, is_str));
      VB_CHECK(enum_of(f, "behavior", fat, {"BLOCKING", "NON_BLOCKING"}));
      if (f.contains("parameters") && f.contains("parametersJsonSchema")) return kInvalidArgument;
      if (const auto* p = f.if_contains("parameters")) {
        VB_CHECK(check_schema(*p, fat + ".parameters", 0));
      }
      VB_CHECK(typed(f, "parametersJsonSchema", fat, is_obj));
    }
  }
  return {};
}

Why check_setup(const json::value& v) {
  const std::string at = "setup";
  if (!v.is_object()) return invalid_value(at, v);
  const auto& s = v.as_object();
  VB_CHECK(only_keys(s,
                     {"model", "generationConfig", "systemInstruction", "tools",
                      "realtimeInputConfig", "sessionResumption", "contextWindowCompression",
                      "inputAudioTranscription", "outputAudioTranscription", "proactivity"},
                     at));
  const auto* model = s.if_contains("model");
  if (model == nullptr || !model->is_string() ||
      !std::string_view(model->as_string()).starts_with("models/")) {
    return kInvalidArgument;  // mock wording for a model not named models/...
  }
  if (const auto* g = s.if_contains("generationConfig")) {
    const std::string gat = at + ".generationConfig";
    if (!g->is_object()) return invalid_value(gat, *g);
    const auto& go = g->as_object();
    VB_CHECK(only_keys(go,
                       {"candidateCount", "maxOutputTokens", "temperature", "topP", "topK",
                        "presencePenalty", "frequencyPenalty", "responseModalities", "speechConfig",
                        "mediaResolution", "enableAffectiveDialog", "thinkingConfig"},
                       gat));
    if (const auto* m = go.if_contains("responseModalities")) {
      if (!m->is_array()) return invalid_value(gat + ".responseModalities", *m);
      for (const auto& x : m->as_array()) {
        if (!x.is_string() || (x.as_string() != "AUDIO" && x.as_string() != "TEXT")) {
          return invalid_value(gat + ".responseModalities", x);
        }
      }
    }
    if (const auto* sc = go.if_contains("speechConfig")) {
      const std::string sat = gat + ".speechConfig";
      if (!sc->is_object()) return invalid_value(sat, *sc);
      VB_CHECK(only_keys(sc->as_object(),
                         {"voiceConfig", "languageCode", "multiSpeakerVoiceConfig"}, sat));
      VB_CHECK(typed(sc->as_object(), "languageCode", sat, is_str));
      if (const auto* vc = sc->as_object().if_contains("voiceConfig")) {
        if (!vc->is_object()) return invalid_value(sat + ".voiceConfig", *vc);
        VB_CHECK(only_keys(vc->as_object(), {"prebuiltVoiceConfig"}, sat + ".voiceConfig"));
        if (const auto* p = vc->as_object().if_contains("prebuiltVoiceConfig")) {
          const std::string pat = sat + ".voiceConfig.prebuiltVoiceConfig";
          if (!p->is_object()) return invalid_value(pat, *p);
          VB_CHECK(only_keys(p->as_object(), {"voiceName"}, pat));
          VB_CHECK(typed(p->as_object(), "voiceName", pat, is_str));
        }
      }
    }
  }
  if (const auto* si = s.if_contains("systemInstruction")) {
    VB_CHECK(check_content(*si, at + ".systemInstruction"));
  }
  if (const auto* t = s.if_contains("tools")) VB_CHECK(check_tools(*t));
  if (const auto* r = s.if_contains("realtimeInputConfig")) {
    const std::string rat = at + ".realtimeInputConfig";
    if (!r->is_object()) return invalid_value(rat, *r);
    VB_CHECK(only_keys(r->as_object(),
                       {"automaticActivityDetection", "activityHandling", "turnCoverage"}, rat));
    VB_CHECK(enum_of(r->as_object(), "activityHandling", rat,
                     {"START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"}));
    VB_CHECK(enum_of(r->as_object(), "turnCoverage", rat,
                     {"TURN_INCLUDES_ONLY_ACTIVITY", "TURN_INCLUDES_ALL_INPUT"}));
    if (const auto* a = r->as_object().if_contains("automaticActivityDetection")) {
      const std::string aat = rat + ".automaticActivityDetection";
      if (!a->is_object()) return invalid_value(aat, *a);
      const auto& ao = a->as_object();
      VB_CHECK(only_keys(ao,
                         {"disabled", "startOfSpeechSensitivity", "endOfSpeechSensitivity",
                          "prefixPaddingMs", "silenceDurationMs"},
                         aat));
      VB_CHECK(typed(ao, "disabled", aat, is_bool));
      VB_CHECK(enum_of(
          ao, "startOfSpeechSensitivity", aat,
          {"START_SENSITIVITY_UNSPECIFIED", "START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"}));
      VB_CHECK(
          enum_of(ao, "endOfSpeechSensitivity", aat,
                  {"END_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"}));
      VB_CHECK(typed(ao, "prefixPaddingMs", aat, is_int));
      VB_CHECK(typed(ao, "silenceDurationMs", aat, is_int));
    }
  }
  if (const auto* r = s.if_contains("sessionResumption")) {
    if (!r->is_object()) return invalid_value(at + ".sessionResumption", *r);
    VB_CHECK(only_keys(r->as_object(), {"handle", "transparent"}, at + ".sessionResumption"));
    VB_CHECK(typed(r->as_object(), "handle", at + ".sessionResumption", is_str));
  }
  if (const auto* c = s.if_contains("contextWindowCompression")) {
    const std::string cat = at + ".contextWindowCompression";
    if (!c->is_object()) return invalid_value(cat, *c);
    VB_CHECK(only_keys(c->as_object(), {"slidingWindow", "triggerTokens"}, cat));
    VB_CHECK(typed(c->as_object(), "triggerTokens", cat, is_int));
    if (const auto* w = c->as_object().if_contains("slidingWindow")) {
      if (!w->is_object()) return invalid_value(cat + ".slidingWindow", *w);
      VB_CHECK(only_keys(w->as_object(), {"targetTokens"}, cat + ".slidingWindow"));
    }
  }
  for (const char* k : {"inputAudioTranscription", "outputAudioTranscription"}) {
    if (const auto* t = s.if_contains(k)) {
      if (!t->is_object()) return invalid_value(at + "." + k, *t);
      VB_CHECK(only_keys(t->as_object(), {}, at + "." + k));
    }
  }
  return {};
}

/// "audio/pcm;rate=16000" -> 16000, "audio/pcm" -> 16000 (the reference's input default), other
/// types 0.
int input_rate(std::string_view mime) {
  if (!mime.starts_with("audio/pcm")) return 0;
  const auto at = mime.find("rate=");
  if (at == std::string_view::npos) return 16000;
  return std::atoi(std::string(mime.substr(at + 5)).c_str());
}

std::string duration(std::chrono::milliseconds ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%lld.%03llds", static_cast<long long>(ms.count() / 1000),
                static_cast<long long>(ms.count() % 1000));
  return b;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto j = text.find(' ', i + 1);
    out.push_back(text.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j;
  }
  return out;
}

}  // namespace

namespace mock_gemini_detail {

/// What a resumption handle restores.
struct SessionState {
  std::size_t text_bytes = 0;
  std::int64_t input_ms = 0;
};

struct Record {
  std::vector<MockGeminiLive::ClientMessage> received;
  std::vector<std::string> sent, handles;
  std::vector<std::uint8_t> audio;
  std::size_t audio_total = 0;
  json::object setup;
  std::string resumed;
  MockGeminiLive::Closed closed;
  bool open = true;
};

class Conn;

}  // namespace mock_gemini_detail

using mock_gemini_detail::Conn;
using mock_gemini_detail::Record;
using mock_gemini_detail::SessionState;

struct MockGeminiLive::Impl {
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
  std::map<std::string, SessionState> sessions;  // by the handles issued
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

namespace mock_gemini_detail {

class Conn : public WsServer::Connection {
 public:
  using Impl = MockGeminiLive::Impl;
  using Script = MockGeminiLive::Script;

  Conn(Impl& m, WsServer::Accepted a)
      : WsServer::Connection(std::move(a)), m_(m), timer_(executor()), away_timer_(executor()) {}

  void post(std::function<void(Conn&)> f) {
    asio::post(executor(), [self = self<Conn>(), f = std::move(f)] { f(*self); });
  }

  void send_raw(std::string text) { emit_text(std::move(text)); }
  using WsServer::Connection::drop;  // breaks the socket once what is queued is written
  void close(std::uint16_t code, std::string reason) {
    if (closing_ || closed_) return;
    if (reason.size() > 123) reason.resize(123);  // a close frame's reason is at most 123 bytes
    {
      std::lock_guard lock(m_.mu);
      if (rec_) rec_->closed = {code, reason};
      m_.changed();
    }
    closing_ = true;
    stop_turn();
    WsServer::Connection::close(code, std::move(reason));
  }
  void go_away(std::chrono::milliseconds left) {
    emit(json::object{{"goAway", json::object{{"timeLeft", duration(left)}}}});
    away_timer_.expires_after(left);
    away_timer_.async_wait([self = self<Conn>()](boost::system::error_code ec) {
      if (!ec) self->close(1000, "");
    });
  }

 private:
  // ---- upgrade ----

  std::optional<Refusal> on_upgrade(const Upgrade& req) override {
    const std::string& target = req.target;
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    std::string query_key;
    if (q != std::string::npos) {
      const std::string query = target.substr(q + 1);
      for (std::size_t i = 0; i < query.size();) {
        auto amp = query.find('&', i);
        if (amp == std::string::npos) amp = query.size();
        const std::string kv = query.substr(i, amp - i);
        if (kv.rfind("key=", 0) == 0) query_key = kv.substr(4);
        i = amp + 1;
      }
    }
    const std::string header_key = req.header("x-goog-api-key");
    auth_ = !header_key.empty() ? "header" : (!query_key.empty() ? "query" : "");
    key_ok_ = (header_key.empty() ? query_key : header_key) == m_.opt.api_key;
    int status = 101;
    std::string body, retry_after;
    {
      std::lock_guard lock(m_.mu);
      if (m_.refusal) {
        status = m_.refusal->status;
        body = m_.refusal->body;
        retry_after = m_.refusal->retry_after;
        m_.refusal.reset();
      }
    }
    if (status == 101 && !req.websocket) {
      status = 400;  // mock wording
      body =
          R"({"error":{"code":400,"message":"Expected a WebSocket upgrade.","status":"INVALID_ARGUMENT"}})";
    }
    if (status == 101 && path != MockGeminiLive::kPath) {
      status = 404;  // Google's 404 page is HTML; the mock's body is short (mock wording)
      body = "Not Found";
    }
    {
      std::lock_guard lock(m_.mu);
      m_.upgrades.push_back({path, auth_, status});
      m_.changed();
    }
    if (status != 101)
      return Refusal{status, std::move(body), "application/json; charset=UTF-8", retry_after};
    std::lock_guard lock(m_.mu);
    idx_ = m_.conns.size();
    m_.conns.push_back(self<Conn>());
    m_.records.push_back(std::make_unique<Record>());
    rec_ = m_.records.back().get();
    m_.changed();
    return std::nullopt;
  }

  void on_open() override {
    open_ = true;
    // The service opens the socket and then closes it with the key's problem (voiceclaw#155).
    if (!key_ok_) {
      close(1007, auth_.empty() ? "Method doesn't allow unregistered callers (callers without "
                                  "established identity). Please use API Key or other form of "
                                  "API consumer identity to call this API."
                                : "API key not valid. Please pass a valid API key.");
    }
  }

  // ---- transport ----

  void on_closed() override {
    if (closed_) return;
    closed_ = true;
    stop_turn();
    away_timer_.cancel();
    std::lock_guard lock(m_.mu);
    if (rec_) rec_->open = false;
    m_.changed();
  }

  /// `chunk`: a model turn's audio chunk index, for Options::observer (kNoChunk: none).
  void write(std::string text, std::size_t chunk = kNoChunk) {
    if (closing_ || closed_ || !open_) return;
    send(std::move(text), chunk);
  }
  // An audio chunk is timed as it is handed to the socket: what waited in the queue before it
  // (the mock's own) is not in the time.
  void on_handed(std::size_t chunk) override {
    if (m_.opt.observer.audio_chunk) m_.opt.observer.audio_chunk(idx_, chunk);
  }

  void emit_text(std::string text, std::size_t chunk = kNoChunk) {
    {
      std::lock_guard lock(m_.mu);
      if (m_.opt.record_sent) rec_->sent.push_back(text);
      m_.changed();
    }
    write(std::move(text), chunk);
  }
  void emit(const json::object& m, std::size_t chunk = kNoChunk) {
    emit_text(json::serialize(m), chunk);
  }

  // ---- messages in ----

  void on_message(std::string raw) override {
    if (!closing_) handle(std::move(raw));
  }
  void handle(std::string raw) {
    MockGeminiLive::ClientMessage cm;
    cm.conn = idx_;
    cm.at = std::chrono::steady_clock::now();
    boost::system::error_code ec;
    json::value v = json::parse(raw, ec);
    if (ec) v = nullptr;
    if (v.is_object() && v.as_object().size() == 1) cm.kind = v.as_object().begin()->key();
    {
      std::lock_guard lock(m_.mu);
      if (m_.opt.record_audio_messages || cm.kind != "realtimeInput") {
        cm.raw = raw;
        cm.json = v;
        rec_->received.push_back(std::move(cm));
      }
      m_.changed();
    }
    if (!v.is_object()) return close(1007, "Invalid JSON payload received. Unexpected token.");
    const auto& o = v.as_object();
    if (Why w = only_keys(o, {"setup", "clientContent", "realtimeInput", "toolResponse"}, "");
        !w.empty()) {
      return close(1007, w);
    }
    if (o.size() != 1) return close(1007, kInvalidArgument);  // a oneof: exactly one (mock)
    const auto& [key, body] = *o.begin();
    if (key == "setup") return on_setup(body);
    if (!set_up_) return close(1007, kInvalidArgument);  // setup comes first (mock wording)
    if (key == "realtimeInput") return on_realtime_input(body);
    if (key == "clientContent") return on_client_content(body);
    return on_tool_response(body);
  }

  void on_setup(const json::value& body) {
    if (set_up_) return close(1007, kInvalidArgument);  // exactly once (mock wording)
    if (Why w = check_setup(body); !w.empty()) return close(1007, w);
    const auto& s = body.as_object();
    std::string resumed;
    if (const auto* r = s.if_contains("sessionResumption")) {
      resumption_ = true;
      if (const auto* h = r->as_object().if_contains("handle"))
        resumed = std::string(h->as_string());
    }
    {
      std::lock_guard lock(m_.mu);
      if (!resumed.empty()) {
        const auto it = m_.sessions.find(resumed);
        if (it == m_.sessions.end()) {
          resumed = "?";
        } else {
          state_ = it->second;
        }
      }
      rec_->setup = s;
      rec_->resumed = resumed;
      m_.changed();
    }
    if (resumed == "?") return close(1007, kInvalidArgument);  // unknown handle (mock wording)
    set_up_ = true;
    if (const auto* si = s.if_contains("systemInstruction")) {
      for (const auto& p : si->as_object().at("parts").as_array()) {
        if (const auto* t = p.as_object().if_contains("text")) {
          state_.text_bytes += t->as_string().size();
        }
      }
    }
    vad_on_ = true;
    silence_ms_ = 500;
    if (const auto* r = s.if_contains("realtimeInputConfig")) {
      if (const auto* a = r->as_object().if_contains("automaticActivityDetection")) {
        if (const auto* d = a->as_object().if_contains("disabled")) vad_on_ = !d->as_bool();
        if (const auto* sd = a->as_object().if_contains("silenceDurationMs")) {
          silence_ms_ = static_cast<int>(sd->to_number<std::int64_t>());
        }
      }
    }
    out_transcription_ = s.contains("outputAudioTranscription");
    in_transcription_ = s.contains("inputAudioTranscription");
    if (m_.opt.observer.setup) m_.opt.observer.setup(idx_, s);
    emit(json::object{{"setupComplete", json::object{}}});
    issue_handle();
  }

  void issue_handle() {
    if (!resumption_) return;
    const std::string h = "handle_" + std::to_string(idx_) + "_" + std::to_string(++n_handle_);
    {
      std::lock_guard lock(m_.mu);
      m_.sessions[h] = state_;
      rec_->handles.push_back(h);
      m_.changed();
    }
    emit(json::object{
        {"sessionResumptionUpdate", json::object{{"newHandle", h}, {"resumable", true}}}});
  }

  void on_realtime_input(const json::value& body) {
    const std::string at = "realtime_input";
    if (!body.is_object()) return close(1007, invalid_value(at, body));
    const auto& r = body.as_object();
    if (Why w = only_keys(r,
                          {"mediaChunks", "audio", "video", "text", "activityStart", "activityEnd",
                           "audioStreamEnd"},
                          at);
        !w.empty()) {
      return close(1007, w);
    }
    const auto* a = r.if_contains("audio");
    if (a == nullptr) return;
    if (!a->is_object()) return close(1007, invalid_value(at + ".audio", *a));
    if (Why w = only_keys(a->as_object(), {"mimeType", "data"}, at + ".audio"); !w.empty()) {
      return close(1007, w);
    }
    const auto* mime = a->as_object().if_contains("mimeType");
    const auto* data = a->as_object().if_contains("data");
    if (mime == nullptr || !mime->is_string() || data == nullptr || !data->is_string()) {
      return close(1007, kInvalidArgument);
    }
    const int rate = input_rate(mime->as_string());
    if (rate < 8000 || rate > 48000) return close(1007, kInvalidArgument);  // not PCM (mock)
    std::vector<std::uint8_t> pcm;
    if (!base64::decode(std::string_view(data->as_string()), pcm) || pcm.size() % 2 != 0) {
      // Google's wording for bytes fields that are not base64.
      return close(1007,
                   "Invalid value at 'realtime_input.audio.data' (TYPE_BYTES), Base64 "
                   "decoding failed");
    }
    {
      std::lock_guard lock(m_.mu);
      rec_->audio_total += pcm.size();
      const std::size_t room =
          m_.opt.max_kept_audio_bytes - std::min(m_.opt.max_kept_audio_bytes, rec_->audio.size());
      rec_->audio.insert(rec_->audio.end(), pcm.begin(),
                         pcm.begin() + static_cast<std::ptrdiff_t>(std::min(room, pcm.size())));
      m_.changed();
    }
    if (m_.opt.observer.input_audio) m_.opt.observer.input_audio(idx_, pcm, rate);
    const std::size_t block = static_cast<std::size_t>(rate / 50);
    for (std::size_t i = 0; i + 1 < pcm.size(); i += 2) {
      block_.push_back(static_cast<std::int16_t>(pcm[i] | (pcm[i + 1] << 8)));
      if (block_.size() == block) {
        on_block();
        block_.clear();
      }
    }
  }

  void on_block() {
    state_.input_ms += 20;
    if (!vad_on_) return;
    double e = 0;
    for (auto s : block_) e += double(s) * s;
    const bool voiced = std::sqrt(e / double(block_.size())) >= m_.opt.voiced_rms;
    if (voiced) {
      silent_ms_ = 0;
      if (!speaking_ && ++voiced_run_ >= 3) {
        speaking_ = true;
        if (turn_) interrupt();
      }
    } else {
      voiced_run_ = 0;
      if (speaking_ && (silent_ms_ += 20) >= silence_ms_) {
        speaking_ = false;
        silent_ms_ = 0;
        std::string text = "hello";
        {
          std::lock_guard lock(m_.mu);
          if (!m_.transcripts.empty()) {
            text = std::move(m_.transcripts.front());
            m_.transcripts.pop_front();
          }
        }
        if (in_transcription_) {
          emit(json::object{{"serverContent",
                             json::object{{"inputTranscription", json::object{{"text", text}}}}}});
        }
        start_turn();
      }
    }
  }

  void on_client_content(const json::value& body) {
    const std::string at = "client_content";
    if (!body.is_object()) return close(1007, invalid_value(at, body));
    const auto& c = body.as_object();
    if (Why w = only_keys(c, {"turns", "turnComplete"}, at); !w.empty()) return close(1007, w);
    if (Why w = typed(c, "turnComplete", at, is_bool); !w.empty()) return close(1007, w);
    if (const auto* turns = c.if_contains("turns")) {
      if (!turns->is_array()) return close(1007, invalid_value(at + ".turns", *turns));
      for (const auto& t : turns->as_array()) {
        if (Why w = check_content(t, at + ".turns"); !w.empty()) return close(1007, w);
        if (const auto* parts = t.as_object().if_contains("parts")) {
          for (const auto& p : parts->as_array()) {
            if (const auto* x = p.as_object().if_contains("text")) {
              state_.text_bytes += x->as_string().size();
            }
          }
        }
      }
    }
    const auto* tc = c.if_contains("turnComplete");
    if (tc != nullptr && tc->as_bool()) {
      if (turn_) interrupt();  // a client message interrupts the generation in progress
      start_turn();
    }
  }

  void on_tool_response(const json::value& body) {
    const std::string at = "tool_response";
    if (!body.is_object()) return close(1007, invalid_value(at, body));
    if (Why w = only_keys(body.as_object(), {"functionResponses"}, at); !w.empty()) {
      return close(1007, w);
    }
    const auto* rs = body.as_object().if_contains("functionResponses");
    if (rs == nullptr || !rs->is_array()) return close(1007, kInvalidArgument);
    for (const auto& r : rs->as_array()) {
      const std::string rat = at + ".function_responses";
      if (!r.is_object()) return close(1007, invalid_value(rat, r));
      const auto& o = r.as_object();
      if (Why w = only_keys(o, {"id", "name", "response", "willContinue", "scheduling"}, rat);
          !w.empty()) {
        return close(1007, w);
      }
      const auto* id = o.if_contains("id");
      const auto* resp = o.if_contains("response");
      if (id == nullptr || !id->is_string() || resp == nullptr || !resp->is_object()) {
        return close(1007, kInvalidArgument);
      }
      const auto it = pending_calls_.find(std::string(id->as_string()));
      if (it == pending_calls_.end()) return close(1007, kInvalidArgument);  // mock wording
      const auto* name = o.if_contains("name");
      if (name != nullptr && (!name->is_string() || name->as_string() != it->second)) {
        return close(1007, kInvalidArgument);
      }
      state_.text_bytes += json::serialize(*resp).size();
      pending_calls_.erase(it);
    }
    if (pending_calls_.empty()) start_turn();  // the model goes on with the results
  }

  // ---- model turns ----

  Script next_script() {
    std::lock_guard lock(m_.mu);
    if (m_.scripts.empty()) return m_.default_script;
    Script s = std::move(m_.scripts.front());
    m_.scripts.pop_front();
    return s;
  }

  void start_turn() {
    Script s = next_script();
    if (s.kind == Script::Kind::tool_call) {
      const std::string id =
          s.id.empty() ? "fc_" + std::to_string(idx_) + "_" + std::to_string(++n_call_) : s.id;
      pending_calls_[id] = s.name;
      boost::system::error_code ec;
      json::value args = json::parse(s.args_json, ec);
      emit(json::object{
          {"toolCall", json::object{{"functionCalls", json::array{json::object{
                                                          {"id", id},
                                                          {"name", s.name},
                                                          {"args", ec ? json::value(json::object{})
                                                                      : std::move(args)}}}}}}});
      return;
    }
    Turn t;
    t.words = split_words(s.text);
    const int chunk = std::max(1, m_.opt.chunk_ms);
    t.chunks = static_cast<std::size_t>((std::max(0, s.reply_ms) + chunk - 1) / chunk);
    t.script = std::move(s);
    t.started = std::chrono::steady_clock::now();
    turn_ = std::move(t);
    tick();
  }

  void tick() {
    if (!turn_ || turn_->generated) return;
    auto& t = *turn_;
    if (t.chunks_sent >= t.chunks) return finish();
    const int chunk = std::min(std::max(1, m_.opt.chunk_ms), t.script.reply_ms - t.sent_ms);
    ++t.chunks_sent;
    const auto pcm = MockGeminiLive::test_signal(static_cast<std::size_t>(t.sent_ms) * 24,
                                                 static_cast<std::size_t>(chunk) * 24);
    std::string b64;
    base64::encode(std::span<const std::uint8_t>(pcm), b64);
    emit(
        json::object{
            {"serverContent",
             json::object{
                 {"modelTurn",
                  json::object{{"parts", json::array{json::object{
                                             {"inlineData",
                                              json::object{{"mimeType", "audio/pcm;rate=24000"},
                                                           {"data", b64}}}}}}}}}}},
        t.chunks_sent - 1);
    const std::size_t due = (t.chunks_sent * t.words.size() + t.chunks - 1) / t.chunks;
    for (; out_transcription_ && t.words_sent < due; ++t.words_sent) {
      emit(json::object{
          {"serverContent",
           json::object{{"outputTranscription", json::object{{"text", t.words[t.words_sent]}}}}}});
    }
    t.sent_ms += chunk;
    if (t.chunks_sent >= t.chunks) return finish();
    if (t.script.stall_after_ms >= 0 && t.sent_ms >= t.script.stall_after_ms) return;  // stalls
    const auto gen = ++tick_gen_;
    timer_.expires_after(std::chrono::milliseconds(m_.opt.chunk_interval_ms));
    timer_.async_wait([self = self<Conn>(), gen](boost::system::error_code ec) {
      if (!ec && gen == self->tick_gen_) self->tick();
    });
  }

  json::object usage(std::int64_t reply_ms) const {
    const std::int64_t prompt =
        static_cast<std::int64_t>(state_.text_bytes / 4) + state_.input_ms * 32 / 1000;
    const std::int64_t response = reply_ms * 32 / 1000;
    return json::object{{"promptTokenCount", prompt},
                        {"responseTokenCount", response},
                        {"totalTokenCount", prompt + response}};
  }

  /// All audio is generated: generationComplete now; the turn completes once its audio has had
  /// time to play (the reference: "there will be delay between generation_complete and
  /// turn_complete that is caused by model waiting for playback to finish"), and until then
  /// the caller's speech interrupts it.
  void finish() {
    auto& t = *turn_;
    t.generated = true;
    emit(json::object{{"serverContent", json::object{{"generationComplete", true}}}});
    const auto gen = ++tick_gen_;
    timer_.expires_at(t.started + std::chrono::milliseconds(t.sent_ms));
    timer_.async_wait([self = self<Conn>(), gen](boost::system::error_code ec) {
      if (ec || gen != self->tick_gen_ || !self->turn_) return;
      const std::int64_t ms = self->turn_->sent_ms;
      self->stop_turn();
      self->emit(json::object{{"serverContent", json::object{{"turnComplete", true}}},
                              {"usageMetadata", self->usage(ms)}});
      self->issue_handle();
    });
  }

  void interrupt() {
    const std::int64_t ms = turn_->sent_ms;
    stop_turn();
    // The reference: an interrupted turn has no generationComplete; interrupted, then
    // turnComplete.
    emit(json::object{{"serverContent", json::object{{"interrupted", true}}}});
    emit(json::object{{"serverContent", json::object{{"turnComplete", true}}},
                      {"usageMetadata", usage(ms)}});
  }

  void stop_turn() {
    ++tick_gen_;
    timer_.cancel();
    turn_.reset();
  }

  struct Turn {
    Script script;
    std::vector<std::string> words;
    std::size_t chunks = 0, chunks_sent = 0, words_sent = 0;
    int sent_ms = 0;
    bool generated = false;
    std::chrono::steady_clock::time_point started;
  };

  Impl& m_;
  static constexpr std::size_t kNoChunk = WsServer::Connection::kNoTag;
  bool open_ = false, closing_ = false, closed_ = false;
  asio::steady_timer timer_, away_timer_;
  std::uint64_t tick_gen_ = 0;
  std::size_t idx_ = 0;
  Record* rec_ = nullptr;
  std::string auth_;
  bool key_ok_ = false;

  bool set_up_ = false, resumption_ = false;
  bool in_transcription_ = false, out_transcription_ = false;
  SessionState state_;
  std::size_t n_handle_ = 0, n_call_ = 0;
  std::map<std::string, std::string> pending_calls_;  // id -> name
  std::optional<Turn> turn_;
  // Activity detection
  bool vad_on_ = true;
  int silence_ms_ = 500;
  std::vector<std::int16_t> block_;
  int voiced_run_ = 0, silent_ms_ = 0;
  bool speaking_ = false;
};

}  // namespace mock_gemini_detail

MockGeminiLive::MockGeminiLive(Options options) : impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  m.opt = std::move(options);
  WsServer::Options so;
  so.port = m.opt.port;
  so.tls = m.opt.tls;
  so.cert_host = m.opt.cert_host;
  so.ca_file_prefix = "vb_mock_gemini_ca_";
  so.io_threads = m.opt.io_threads;
  so.no_delay = m.opt.no_delay;  // see Options::no_delay
  so.max_message_bytes = m.opt.max_message_bytes;
  so.binary = true;  // the service's JSON comes in binary frames
  m.server = std::make_unique<WsServer>(std::move(so), [&m](WsServer::Accepted a) {
    return std::make_shared<Conn>(m, std::move(a));
  });
}

MockGeminiLive::~MockGeminiLive() {
  auto& m = *impl_;
  m.server->stop();
  std::lock_guard lock(m.mu);
  m.conns.clear();
}

unsigned short MockGeminiLive::port() const {
  return impl_->server->port();
}
std::string MockGeminiLive::url() const {
  const auto& o = impl_->opt;
  return (o.tls ? "wss://" + o.cert_host : std::string("ws://127.0.0.1")) + ":" +
         std::to_string(impl_->server->port()) + kPath;
}
const std::string& MockGeminiLive::api_key() const {
  return impl_->opt.api_key;
}
std::string MockGeminiLive::ca_file() const {
  return impl_->server->ca_file();
}

void MockGeminiLive::push_script(Script s) {
  std::lock_guard lock(impl_->mu);
  impl_->scripts.push_back(std::move(s));
}
void MockGeminiLive::set_default_script(Script s) {
  std::lock_guard lock(impl_->mu);
  impl_->default_script = std::move(s);
}
void MockGeminiLive::push_transcript(std::string text) {
  std::lock_guard lock(impl_->mu);
  impl_->transcripts.push_back(std::move(text));
}
void MockGeminiLive::refuse_next(int status, std::string body, std::string retry_after) {
  std::lock_guard lock(impl_->mu);
  impl_->refusal = Impl::Refusal{status, std::move(body), std::move(retry_after)};
}

void MockGeminiLive::send(std::size_t conn, std::string json_text) {
  if (auto c = impl_->conn(conn))
    c->post([t = std::move(json_text)](Conn& x) mutable { x.send_raw(std::move(t)); });
}
void MockGeminiLive::go_away(std::size_t conn, std::chrono::milliseconds time_left) {
  if (auto c = impl_->conn(conn)) c->post([time_left](Conn& x) { x.go_away(time_left); });
}
void MockGeminiLive::drop(std::size_t conn) {
  if (auto c = impl_->conn(conn)) c->post([](Conn& x) { x.drop(); });
}
void MockGeminiLive::close(std::size_t conn, std::uint16_t code, std::string reason) {
  if (auto c = impl_->conn(conn))
    c->post([code, r = std::move(reason)](Conn& x) mutable { x.close(code, std::move(r)); });
}

std::size_t MockGeminiLive::connection_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->records.size();
}
std::size_t MockGeminiLive::open_count() const {
  std::lock_guard lock(impl_->mu);
  return static_cast<std::size_t>(std::count_if(impl_->records.begin(), impl_->records.end(),
                                                [](const auto& r) { return r->open; }));
}
std::vector<MockGeminiLive::Upgrade> MockGeminiLive::upgrades() const {
  std::lock_guard lock(impl_->mu);
  return impl_->upgrades;
}

namespace {
template <class F>
auto with_record(const MockGeminiLive::Impl& m, std::size_t conn, F&& f)
    -> decltype(f(std::declval<const Record&>())) {
  std::lock_guard lock(m.mu);
  if (conn >= m.records.size()) return {};
  return f(*m.records[conn]);
}
}  // namespace

std::vector<MockGeminiLive::ClientMessage> MockGeminiLive::received(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.received; });
}
std::vector<std::string> MockGeminiLive::kinds(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) {
    std::vector<std::string> out;
    for (const auto& e : r.received) out.push_back(e.kind);
    return out;
  });
}
json::object MockGeminiLive::setup(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.setup; });
}
std::string MockGeminiLive::resumed_handle(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.resumed; });
}
std::vector<std::string> MockGeminiLive::handles(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.handles; });
}
std::vector<std::string> MockGeminiLive::sent(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.sent; });
}
std::vector<std::uint8_t> MockGeminiLive::audio(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.audio; });
}
std::size_t MockGeminiLive::audio_bytes(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.audio_total; });
}
MockGeminiLive::Closed MockGeminiLive::closed(std::size_t conn) const {
  return with_record(*impl_, conn, [](const Record& r) { return r.closed; });
}

bool MockGeminiLive::wait_until(const std::function<bool()>& pred,
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

std::vector<std::uint8_t> MockGeminiLive::test_signal(std::size_t first, std::size_t count) {
  constexpr double kTwoPi = 6.283185307179586;
  std::vector<std::uint8_t> out;
  out.reserve(count * 2);
  for (std::size_t i = 0; i < count; ++i) {
    const double t = static_cast<double>(first + i) / 24000.0;
    const auto s = static_cast<std::int16_t>(std::lround(8000.0 * std::sin(kTwoPi * 440.0 * t)));
    const auto u = static_cast<std::uint16_t>(s);
    out.push_back(static_cast<std::uint8_t>(u & 0xff));
    out.push_back(static_cast<std::uint8_t>(u >> 8));
  }
  return out;
}

}  // namespace voxbridge::testing
