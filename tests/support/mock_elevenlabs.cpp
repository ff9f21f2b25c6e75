// The ElevenLabs mock (see mock_elevenlabs.hpp for the references and the behaviour).
// Marks: "reference" = ElevenLabs' documentation, or what the service was seen to send (the
// threads the header names); "mock" = neither says, the wording or the rule is the mock's own.
#include "support/mock_elevenlabs.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "support/ws_server.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/base64/base64.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kPathPrefix = "/v1/text-to-speech/";
constexpr std::string_view kPathSuffix = "/stream-input";
constexpr std::size_t kBinaryHead = 64;
constexpr double kAmplitude = 8000;
constexpr double kTwoPi = 6.283185307179586;
/// reference: the schedule's default and the range of its items (AsyncAPI, GenerationConfig).
const std::vector<int> kDefaultSchedule = {120, 160, 250, 290};
constexpr int kScheduleMin = 50, kScheduleMax = 500;
/// reference: try_trigger_generation "will not run if the accumulated text is less than 50".
constexpr std::size_t kTryTriggerMin = 50;

// ---- the service's words (see the header for where each was seen) ----

constexpr const char* kParseError =
    "Could not parse input message, make sure it is a json and follows the schema outlined in "
    "protocol.";
constexpr const char* kVoiceSettingsChanged =
    "voice_settings field must be provided in the first message and then either be not provided "
    "or not change.";

std::string inactivity_message(int seconds) {
  return "Have not received a new text input within the timeout of " + std::to_string(seconds) +
         " seconds. Streaming input terminated. Please make sure to either feed the input in the "
         "timely manner, or to send the end of input text (empty string \"\") when done.";
}

/// At most `n` bytes of `s`, not cutting a UTF-8 sequence.
std::string utf8_prefix(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// ---- the upgrade ----

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// application/x-www-form-urlencoded: %XX and '+' for a space (a bad escape stays as sent).
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 &&
               hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::multimap<std::string, std::string> parse_query(std::string_view q) {
  std::multimap<std::string, std::string> out;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view kv = q.substr(0, amp);
    if (!kv.empty()) {
      const auto eq = kv.find('=');
      out.emplace(percent_decode(kv.substr(0, eq)),
                  eq == std::string_view::npos ? std::string() : percent_decode(kv.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

/// The output formats of the reference's enum (TextToSpeechOutputFormatEnum).
constexpr const char* kFormats[] = {
    "mp3_22050_32",  "mp3_44100_32",   "mp3_44100_64",   "mp3_44100_96",  "mp3_44100_128",
    "mp3_44100_192", "pcm_8000",       "pcm_16000",      "pcm_22050",     "pcm_24000",
    "pcm_44100",     "ulaw_8000",      "alaw_8000",      "opus_48000_32", "opus_48000_64",
    "opus_48000_96", "opus_48000_128", "opus_48000_192",
};
/// reference: the default when the query names none (the AsyncAPI's "mp3_44100", which the
/// older page calls mp3 at 44.1 kHz).
constexpr const char* kDefaultFormat = "mp3_44100_128";

enum class Coding { pcm, ulaw, alaw };

/// What the mock can produce: pcm_N, ulaw_8000, alaw_8000 (mp3 and opus: nullopt).
struct Format {
  Coding coding = Coding::pcm;
  int rate = 0;
  std::size_t bytes_per_sample() const { return coding == Coding::pcm ? 2 : 1; }
};

bool to_int64(const std::string& s, std::int64_t& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::optional<Format> producible(std::string_view f) {
  if (f == "ulaw_8000") return Format{Coding::ulaw, 8000};
  if (f == "alaw_8000") return Format{Coding::alaw, 8000};
  if (f.starts_with("pcm_")) {
    std::int64_t rate = 0;
    if (to_int64(std::string(f.substr(4)), rate))
      return Format{Coding::pcm, static_cast<int>(rate)};
  }
  return std::nullopt;
}

/// A boolean as FastAPI reads one (the service's "detail" errors are FastAPI's; mock: that its
/// query parsing is too).
bool is_bool(std::string v) {
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* b : {"true", "false", "1", "0", "yes", "no", "on", "off"}) {
    if (v == b) return true;
  }
  return false;
}
bool is_true(std::string v) {
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true" || v == "1" || v == "yes" || v == "on";
}

/// What a socket's query asks for, once checked.
struct Params {
  std::string format_name = kDefaultFormat;
  Format format;
  int inactivity_s = 20;  // reference: default 20, "can be up to 180"
  bool sync_alignment = false, auto_mode = false;
};

/// Checks the query; the problem in words (the 403's body: mock wording, the service's refusal
/// has no documented body), "" when the mock can serve it. A repeated parameter: the last one
/// counts (mock: as Starlette reads a query). Unknown parameters are accepted (reference).
std::string check_params(const std::multimap<std::string, std::string>& q, Params& p) {
  auto get = [&q](const char* k) -> const std::string* {
    const auto [b, e] = q.equal_range(k);
    return b == e ? nullptr : &std::prev(e)->second;
  };
  if (const std::string* m = get("model_id")) {
    if (m->empty()) return "model_id is empty.";  // mock
    // reference: eleven_v3 is not served on this socket, refused with 403 (livekit#3235)
    if (*m == "eleven_v3") return "The model eleven_v3 is not available on this WebSocket.";
  }
  for (const char* k : {"enable_logging", "enable_ssml_parsing", "sync_alignment", "auto_mode"}) {
    if (const std::string* v = get(k); v != nullptr && !is_bool(*v)) {
      return std::string(k) + " must be a boolean, not '" + *v + "'.";
    }
  }
  if (const std::string* v = get("apply_text_normalization")) {
    if (*v != "auto" && *v != "on" && *v != "off") {
      return "apply_text_normalization must be auto, on or off, not '" + *v + "'.";
    }
  }
  if (const std::string* v = get("seed")) {
    std::int64_t seed = 0;
    if (!to_int64(*v, seed) || seed < 0 || seed > 4294967295LL) {
      return "seed must be an integer in 0..4294967295, not '" + *v + "'.";
    }
  }
  if (const std::string* v = get("inactivity_timeout")) {
    std::int64_t t = 0;
    if (!to_int64(*v, t) || t < 1 || t > 180) {
      return "inactivity_timeout must be an integer in 1..180, not '" + *v + "'.";
    }
    p.inactivity_s = static_cast<int>(t);
  }
  if (const std::string* v = get("output_format")) p.format_name = *v;
  if (std::find_if(std::begin(kFormats), std::end(kFormats),
                   [&](const char* f) { return p.format_name == f; }) == std::end(kFormats)) {
    return "output_format '" + p.format_name + "' is not one of the service's formats.";
  }
  const auto f = producible(p.format_name);
  if (!f) {
    // mock: the service would serve it; the mock cannot encode mp3 or opus
    return "The mock produces pcm_*, ulaw_8000 and alaw_8000 only, not '" + p.format_name +
           "': set output_format.";
  }
  p.format = *f;
  p.sync_alignment = get("sync_alignment") != nullptr && is_true(*get("sync_alignment"));
  p.auto_mode = get("auto_mode") != nullptr && is_true(*get("auto_mode"));
  return {};
}

// ---- text and audio ----

/// The code points of `s`, each as its UTF-8 bytes (the parser has checked the UTF-8).
std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

bool is_space(const std::string& cp) {
  return cp.size() == 1 && std::isspace(static_cast<unsigned char>(cp[0])) != 0;
}

/// A letter or digit (or any non-ASCII character) is voiced; spaces and ASCII punctuation are not.
bool voiced(const std::string& cp) {
  const auto c = static_cast<unsigned char>(cp[0]);
  return c >= 0x80 || std::isalnum(c) != 0;
}

/// Sample index where character `i` starts (character i covers [start(i), start(i + 1))).
std::int64_t char_start(std::size_t i, const MockElevenLabs::Options& o, int rate) {
  return static_cast<std::int64_t>(i) * o.ms_per_char.count() * rate / 1000;
}

std::string render(const std::vector<std::string>& chars, const Format& f,
                   const MockElevenLabs::Options& o) {
  const std::int64_t total = char_start(chars.size(), o, f.rate);
  std::string out;
  out.reserve(static_cast<std::size_t>(total) * f.bytes_per_sample());
  std::size_t c = 0;
  for (std::int64_t n = 0; n < total; ++n) {
    while (c + 1 < chars.size() && n >= char_start(c + 1, o, f.rate)) ++c;
    std::int16_t s = 0;
    if (voiced(chars[c])) {
      s = static_cast<std::int16_t>(
          std::lround(kAmplitude * std::sin(kTwoPi * o.tone_hz * static_cast<double>(n) / f.rate)));
    }
    switch (f.coding) {
      case Coding::pcm: {
        const auto u = static_cast<std::uint16_t>(s);
        out += static_cast<char>(u & 0xff);
        out += static_cast<char>(u >> 8);
        break;
      }
      case Coding::ulaw:
        out += static_cast<char>(audio::linear_to_ulaw(s));
        break;
      case Coding::alaw:
        out += static_cast<char>(audio::linear_to_alaw(s));
        break;
    }
  }
  return out;
}

/// An alignment object: "chars" first, as the service sends it (see the header).
json::object alignment(const std::vector<std::string>& chars, std::size_t from, std::size_t to,
                       std::int64_t origin_ms, std::int64_t ms_per_char) {
  json::array cs, starts, durations;
  for (std::size_t i = from; i < to; ++i) {
    cs.emplace_back(chars[i]);
    starts.emplace_back(static_cast<std::int64_t>(i) * ms_per_char - origin_ms);
    durations.emplace_back(ms_per_char);
  }
  return json::object{{"chars", std::move(cs)},
                      {"charStartTimesMs", std::move(starts)},
                      {"charDurationsMs", std::move(durations)}};
}

// ---- messages in ----

/// `v` as compact JSON with numbers as a client writes them ("0.5", where Boost.JSON writes
/// "5E-1"): shortest round-trip digits; keys in their order.
void write_json(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::double_: {
      char b[64];
      const auto r = std::to_chars(b, b + sizeof b, v.get_double());
      out.append(b, r.ptr);
      return;
    }
    case json::kind::array: {
      out += '[';
      for (const auto& e : v.get_array()) {
        if (out.back() != '[') out += ',';
        write_json(e, out);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      for (const auto& kv : v.get_object()) {
        if (out.back() != '{') out += ',';
        out += json::serialize(json::string(kv.key()));
        out += ':';
        write_json(kv.value(), out);
      }
      out += '}';
      return;
    }
    default:
      out += json::serialize(v);
  }
}

/// A client message as the schema allows it (the AsyncAPI's initializeConnection, sendText,
/// closeConnection): an object with a string `text`; the other known fields of their type when
/// present and not null; unknown fields ignored (mock: as pydantic does by default).
struct Inbound {
  std::string text;
  bool flush = false, try_trigger = false;
  const json::value* voice_settings = nullptr;
  const json::value* generation_config = nullptr;
  std::optional<std::string> key;            // xi_api_key / "xi-api-key"
  std::optional<std::string> authorization;  // "Bearer ..."
};

bool read_inbound(const json::value& v, Inbound& in) {
  const json::object* o = v.if_object();
  if (o == nullptr) return false;
  const json::value* t = o->if_contains("text");
  if (t == nullptr || !t->is_string()) return false;
  in.text = std::string(t->get_string());
  auto present = [o](const char* k) -> const json::value* {
    const json::value* x = o->if_contains(k);
    return x == nullptr || x->is_null() ? nullptr : x;
  };
  const std::pair<const char*, bool*> flags[] = {{"flush", &in.flush},
                                                 {"try_trigger_generation", &in.try_trigger}};
  for (const auto& [k, dst] : flags) {
    if (const json::value* b = present(k)) {
      if (!b->is_bool()) return false;
      *dst = b->get_bool();
    }
  }
  if (const json::value* vs = present("voice_settings")) {
    if (!vs->is_object()) return false;
    in.voice_settings = vs;
  }
  // reference: "generation_config" in the initialize, "generator_config" in the AsyncAPI's
  // sendText; either is read.
  for (const char* k : {"generation_config", "generator_config"}) {
    if (const json::value* g = present(k)) {
      if (!g->is_object()) return false;
      if (const json::value* s = g->get_object().if_contains("chunk_length_schedule")) {
        if (!s->is_array()) return false;
        for (const auto& x : s->get_array()) {
          if (!x.is_number()) return false;
        }
      }
      in.generation_config = g;
    }
  }
  for (const char* k : {"xi_api_key", "xi-api-key"}) {
    if (const json::value* s = present(k)) {
      if (!s->is_string()) return false;
      in.key = std::string(s->get_string());
    }
  }
  if (const json::value* s = present("authorization")) {
    if (!s->is_string()) return false;
    in.authorization = std::string(s->get_string());
  }
  if (const json::value* d = present("pronunciation_dictionary_locators"); d && !d->is_array()) {
    return false;
  }
  return true;
}

}  // namespace

namespace mock_elevenlabs_detail {
class Conn;
}  // namespace mock_elevenlabs_detail

using mock_elevenlabs_detail::Conn;

struct MockElevenLabs::Impl {
  Options opt;
  // First: destroyed last, after the connections it still holds (they refer to this Impl).
  std::unique_ptr<WsServer> server;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::uint64_t version = 0;
  std::vector<Connection> records;  // by upgrade attempt
  std::vector<std::shared_ptr<Conn>> conns;

  void changed() {  // with mu held
    ++version;
    cv.notify_all();
  }
};

namespace mock_elevenlabs_detail {

class Conn : public WsServer::Connection {
 public:
  using Impl = MockElevenLabs::Impl;
  using Record = MockElevenLabs::Connection;
  using End = MockElevenLabs::End;
  using Trigger = MockElevenLabs::Trigger;

  Conn(Impl& m, WsServer::Accepted a)
      : WsServer::Connection(std::move(a)), m_(m), idle_(executor()), out_timer_(executor()) {}

  void post(std::function<void(Conn&)> f) {
    asio::post(executor(), [self = self<Conn>(), f = std::move(f)] { f(*self); });
  }

  /// A close frame now, after what was handed to the socket (what first_audio_delay holds is
  /// not sent).
  void close_now(std::uint16_t code, std::string reason) {
    if (ended_ || close_sent_) return;
    close_sent_ = closing_ = true;
    stop_timers();
    if (reason.size() > 123) reason = utf8_prefix(reason, 123);  // a close frame's limit
    record([&](Record& r) {
      r.end = End::closed_by_mock;
      r.close_code = code;
      r.close_reason = reason;
    });
    WsServer::Connection::close(code, std::move(reason));
  }

  void drop_now() {
    if (ended_) return;
    closing_ = true;
    stop_timers();
    record([](Record& r) {
      if (r.end == End::open) r.end = End::dropped_by_mock;
    });
    drop();
  }

 private:
  template <class F>
  void record(F&& f) {
    std::lock_guard lock(m_.mu);
    f(m_.records[idx_]);
    m_.changed();
  }

  void stop_timers() {
    idle_.cancel();
    out_timer_.cancel();
    outbox_.clear();
  }

  // ---- upgrade ----

  std::optional<Refusal> on_upgrade(const Upgrade& req) override {
    Record r;
    r.target = req.target;
    const auto q = req.target.find('?');
    r.path = req.target.substr(0, q);
    if (q != std::string::npos) r.query = parse_query(std::string_view(req.target).substr(q + 1));
    r.xi_api_key = req.header("xi-api-key");
    header_key_ = !r.xi_api_key.empty();
    const std::string_view path = r.path;
    if (path.starts_with(kPathPrefix) && path.ends_with(kPathSuffix) &&
        path.size() > kPathPrefix.size() + kPathSuffix.size()) {
      const std::string_view id =
          path.substr(kPathPrefix.size(), path.size() - kPathPrefix.size() - kPathSuffix.size());
      if (id.find('/') == std::string_view::npos) r.voice_id = percent_decode(id);
    }
    std::string body;
    if (r.voice_id.empty()) {
      r.status = 404;
      body = R"({"detail":"Not Found"})";  // mock: the status and FastAPI's words
    } else if (!req.websocket) {
      r.status = 400;
      body = "Expected a WebSocket upgrade.";  // mock wording
    } else if (std::string why = check_params(r.query, p_); !why.empty()) {
      r.status = 403;  // reference: a query the socket does not serve (livekit#3235)
      body = std::move(why);
    } else {
      r.status = 101;
    }
    if (const auto a = r.query.equal_range("authorization"); a.first != a.second) {
      query_auth_ = std::prev(a.second)->second;
    }
    r.end = r.status == 101 ? End::open : End::refused;
    r.refusal_body = body;
    std::lock_guard lock(m_.mu);
    idx_ = m_.records.size();
    m_.records.push_back(std::move(r));
    m_.changed();
    if (m_.records.back().status != 101) {
      const char* type = body.starts_with('{') ? "application/json" : "text/plain";
      return Refusal{m_.records.back().status, std::move(body), type};
    }
    m_.conns.push_back(self<Conn>());
    voice_id_ = m_.records.back().voice_id;
    return std::nullopt;
  }

  void on_open() override {
    touch();
    // With the key in the header (or the query) the mock checks it at once; else the first
    // message must carry it (reference: "not needed if present in the header").
    if (header_key_ || !query_auth_.empty()) authenticate({}, {});
  }

  void on_closed() override {
    ended_ = closing_ = true;
    stop_timers();
    record([](Record& r) {
      if (r.end == End::open) r.end = End::ended_by_client;
    });
  }

  /// The key: the header, else the query's authorization, else the first message's fields.
  /// Then the voice. False (and the socket failing) when either is refused.
  bool authenticate(const std::optional<std::string>& msg_key,
                    const std::optional<std::string>& msg_auth) {
    authed_ = true;
    const std::string bearer = "Bearer " + m_.opt.api_key;
    bool ok = false;
    if (header_key_) {
      std::lock_guard lock(m_.mu);
      ok = m_.records[idx_].xi_api_key == m_.opt.api_key;
    } else if (!query_auth_.empty()) {
      ok = query_auth_ == bearer;  // mock: a bearer token is the key itself
    } else if (msg_key) {
      ok = *msg_key == m_.opt.api_key;
    } else if (msg_auth) {
      ok = *msg_auth == bearer;
    }
    // reference: the socket opens, then a wrong key closes it 1008 (the words are REST's)
    if (!ok) {
      fail("invalid_api_key", "Invalid API key");
      return false;
    }
    const auto& ids = m_.opt.voice_ids;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), voice_id_) == ids.end()) {
      fail("voice_not_found", "A voice with voice_id '" + voice_id_ + "' was not found.");
      return false;
    }
    return true;
  }

  // ---- messages in ----

  void on_message(std::string raw) override {
    const bool binary = last_message_binary();
    record([&](Record& r) {
      r.received.push_back({binary, binary ? raw.substr(0, kBinaryHead) : raw, raw.size()});
    });
    if (closing_) return;  // after the end, an error or a close by the mock: not read (mock)
    touch();
    boost::system::error_code ec;
    const json::value v = binary ? json::value() : json::parse(raw, ec);
    Inbound in;
    // reference: invalid_input_message for what does not parse (mock: a binary frame too)
    if (binary || ec || !read_inbound(v, in)) return fail("invalid_input_message", kParseError);
    if (!initialized_) return on_first(in);
    if (in.text.empty()) return end();
    if (in.voice_settings != nullptr &&
        (voice_settings_.is_null() || *in.voice_settings != voice_settings_)) {
      return fail("invalid_input_message", kVoiceSettingsChanged);  // reference (pipecat#4520)
    }
    if (in.generation_config != nullptr && *in.generation_config != generation_config_) {
      // reference: "must either be not provided or not changed"; the words are the mock's,
      // after the service's for voice_settings
      return fail("invalid_input_message",
                  "generation_config field must be provided in the first message and then either "
                  "be not provided or not change.");
    }
    record([&](Record& r) { r.texts.push_back(in.text); });
    append(in.text);
    if (closing_) return;
    if (p_.auto_mode) return generate(buffer_.size(), Trigger::auto_mode);
    if (in.flush) return generate(buffer_.size(), Trigger::flush);
    const std::size_t words = words_end();
    if (in.try_trigger && words >= kTryTriggerMin) {
      return generate(words, Trigger::try_trigger_generation);
    }
    if (words >= static_cast<std::size_t>(threshold())) generate(words, Trigger::schedule);
  }

  /// The initialize: the key (unless the header brought it), its text " ", its settings.
  void on_first(const Inbound& in) {
    initialized_ = true;
    if (in.key) record([&](Record& r) { r.message_api_key = *in.key; });
    if (!authed_ && !authenticate(in.key, in.authorization)) return;
    if (in.text.empty()) return end();  // mock: an end is an end, even first
    if (in.text != " ") {
      // reference: "The initial text that must be sent is a blank space"; the words are the
      // mock's
      return fail("invalid_input_message",
                  "The first message must initialize the connection: its text must be a single "
                  "space.");
    }
    if (in.voice_settings != nullptr) voice_settings_ = *in.voice_settings;
    if (in.generation_config != nullptr) {
      generation_config_ = *in.generation_config;
      if (const json::value* s =
              generation_config_.get_object().if_contains("chunk_length_schedule")) {
        std::vector<int> sched;
        for (const auto& x : s->get_array()) {
          const double d = x.to_number<double>();
          if (d < kScheduleMin || d > kScheduleMax) {
            return fail("invalid_input_message",
                        "chunk_length_schedule values must be between 50 and 500.");  // mock
          }
          sched.push_back(static_cast<int>(d));
        }
        if (!sched.empty()) schedule_ = std::move(sched);
      }
    }
    record([&](Record& r) {
      if (!voice_settings_.is_null()) write_json(voice_settings_, r.voice_settings);
      r.chunk_length_schedule = schedule_;
    });
  }

  void touch() {
    if (closing_) return;
    idle_.expires_after(m_.opt.inactivity_second * p_.inactivity_s);
    idle_.async_wait([self = self<Conn>()](boost::system::error_code ec) {
      if (!ec) self->on_idle();
    });
  }

  /// reference: input_timeout_exceeded, then close 1008 (livekit#218, elevenlabs-docs#426).
  void on_idle() {
    if (closing_) return;
    fail("input_timeout_exceeded", inactivity_message(p_.inactivity_s));
  }

  /// The service's error: the JSON message, then close 1008 with the message as the reason (cut
  /// as observed).
  void fail(const char* error, const std::string& message) {
    if (closing_) return;
    closing_ = true;
    idle_.cancel();
    record([&](Record& r) { r.error = error; });
    emit(json::serialize(json::object{{"message", message}, {"error", error}, {"code", 1008}}),
         std::chrono::milliseconds(0), 0);
    queue_close(1008, utf8_prefix(message, MockElevenLabs::kCloseReasonBytes));
  }

  // ---- the buffer and the generations ----

  void append(const std::string& text) {
    auto cps = code_points(text);
    auto it = cps.begin();
    if (buffer_.empty()) {  // a generation starts at its first non-space character
      while (it != cps.end() && is_space(*it)) ++it;
    }
    buffer_.insert(buffer_.end(), std::make_move_iterator(it), std::make_move_iterator(cps.end()));
    if (buffer_.size() > m_.opt.max_buffered_chars) {
      fail("max_character_limit_exceeded",  // reference: the code; mock: the words
           "The buffered text is over " + std::to_string(m_.opt.max_buffered_chars) +
               " characters.");
    }
  }

  /// The characters up to and including the buffer's last space (mock: a word still being
  /// typed waits for the schedule).
  std::size_t words_end() const {
    for (std::size_t i = buffer_.size(); i > 0; --i) {
      if (is_space(buffer_[i - 1])) return i;
    }
    return 0;
  }

  /// reference: the n-th generation waits for schedule[n] characters, the last value repeating.
  int threshold() const { return schedule_[std::min(generations_, schedule_.size() - 1)]; }

  /// Generates the buffer's first `n` characters: its messages of at most audio_chunk_ms.
  void generate(std::size_t n, Trigger trigger) {
    if (n == 0) return;
    std::vector<std::string> chars(
        std::make_move_iterator(buffer_.begin()),
        std::make_move_iterator(buffer_.begin() + static_cast<std::ptrdiff_t>(n)));
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
    while (!buffer_.empty() && is_space(buffer_.front())) buffer_.erase(buffer_.begin());
    ++generations_;  // mock: every generation moves the schedule on, a flush's too
    const auto& o = m_.opt;
    const std::string audio = render(chars, p_.format, o);
    const std::int64_t ms = o.ms_per_char.count(),
                       chunk_ms = std::max<std::int64_t>(1, o.audio_chunk_ms.count());
    const std::size_t chunk_bytes =
        std::max<std::size_t>(1, static_cast<std::size_t>(chunk_ms * p_.format.rate / 1000)) *
        p_.format.bytes_per_sample();
    std::size_t messages = 0, next_char = 0;
    for (std::size_t at = 0; at < audio.size(); at += chunk_bytes, ++messages) {
      const std::string_view piece = std::string_view(audio).substr(at, chunk_bytes);
      json::value align;  // null
      const std::int64_t origin = static_cast<std::int64_t>(messages) * chunk_ms;
      if (p_.sync_alignment) {
        // the characters that start in this message, times from its first sample
        std::size_t to = next_char;
        while (to < chars.size() && static_cast<std::int64_t>(to) * ms < origin + chunk_ms) ++to;
        if (at + chunk_bytes >= audio.size()) to = chars.size();  // the last: the rest
        align = alignment(chars, next_char, to, origin, ms);
        next_char = to;
      } else if (messages == 0) {
        // reference: "all timing data ... with the first chunk only", from the generation's start
        align = alignment(chars, 0, chars.size(), 0, ms);
      }
      json::object m{{"audio", base64::encode(piece)},
                     {"isFinal", nullptr},
                     {"normalizedAlignment", align},  // mock: the same as alignment
                     {"alignment", align}};
      emit(json::serialize(m), messages == 0 ? o.first_audio_delay : std::chrono::milliseconds(0),
           piece.size());
    }
    std::string text;
    for (const auto& c : chars) text += c;
    record([&](Record& r) {
      r.generations.push_back({std::move(text), trigger, audio.size(), messages});
    });
  }

  /// The end: the rest of the buffer, the final message, close 1000 (reference: "" closes the
  /// stream after its audio; mock: the close code).
  void end() {
    generate(buffer_.size(), Trigger::end);
    closing_ = true;
    idle_.cancel();
    emit(R"({"audio":null,"isFinal":true,"normalizedAlignment":null,"alignment":null})",
         std::chrono::milliseconds(0), 0);
    queue_close(1000, "");
  }

  // ---- the outbox: first_audio_delay holds a generation, and what follows waits its turn ----

  struct Out {
    Clock::time_point due;
    std::string text;
    std::size_t audio_bytes = 0;
    bool close = false;
    std::uint16_t code = 0;
  };

  void emit(std::string text, std::chrono::milliseconds delay, std::size_t audio_bytes) {
    Out o;
    o.text = std::move(text);
    o.audio_bytes = audio_bytes;
    queue(std::move(o), delay);
  }
  void queue_close(std::uint16_t code, std::string reason) {
    Out o;
    o.close = true;
    o.code = code;
    o.text = std::move(reason);
    queue(std::move(o), std::chrono::milliseconds(0));
  }
  void queue(Out o, std::chrono::milliseconds delay) {
    if (ended_ || close_sent_) return;
    o.due = Clock::now() + delay;
    if (!outbox_.empty()) o.due = std::max(o.due, outbox_.back().due);
    outbox_.push_back(std::move(o));
    pump();
  }
  void pump() {
    const auto now = Clock::now();
    while (!outbox_.empty() && outbox_.front().due <= now) {
      Out o = std::move(outbox_.front());
      outbox_.pop_front();
      if (o.close) return close_now(o.code, std::move(o.text));
      record([&](Record& r) {
        ++r.sent_messages;
        r.audio_bytes += o.audio_bytes;
        if (sent_kept_ + o.text.size() <= m_.opt.max_kept_sent_bytes) {
          sent_kept_ += o.text.size();
          r.sent.push_back(o.text);
        }
      });
      send(std::move(o.text));
    }
    if (outbox_.empty()) return;
    out_timer_.expires_at(outbox_.front().due);
    out_timer_.async_wait([self = self<Conn>()](boost::system::error_code ec) {
      if (!ec) self->pump();
    });
  }

  Impl& m_;
  asio::steady_timer idle_, out_timer_;
  std::size_t idx_ = 0;
  Params p_;
  std::string voice_id_, query_auth_;
  bool header_key_ = false, authed_ = false, initialized_ = false;
  bool closing_ = false, close_sent_ = false, ended_ = false;
  json::value voice_settings_, generation_config_;
  std::vector<int> schedule_ = kDefaultSchedule;
  std::vector<std::string> buffer_;  // code points not yet generated
  std::size_t generations_ = 0;
  std::deque<Out> outbox_;
  std::size_t sent_kept_ = 0;
};

}  // namespace mock_elevenlabs_detail

MockElevenLabs::MockElevenLabs(Options options) : impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  m.opt = std::move(options);
  WsServer::Options so;
  so.port = m.opt.port;
  so.tls = m.opt.tls;
  so.cert_host = m.opt.cert_host;
  so.ca_file_prefix = "vb_mock_elevenlabs_ca_";
  so.io_threads = m.opt.io_threads;
  so.no_delay = m.opt.no_delay;
  so.max_message_bytes = m.opt.max_message_bytes;
  so.binary = false;  // the service's JSON comes in text frames
  m.server = std::make_unique<WsServer>(std::move(so), [&m](WsServer::Accepted a) {
    return std::make_shared<Conn>(m, std::move(a));
  });
}

MockElevenLabs::~MockElevenLabs() {
  auto& m = *impl_;
  m.server->stop();
  std::lock_guard lock(m.mu);
  m.conns.clear();
}

unsigned short MockElevenLabs::port() const {
  return impl_->server->port();
}
std::string MockElevenLabs::url(std::string_view voice_id) const {
  const auto& o = impl_->opt;
  return (o.tls ? "wss://" + o.cert_host : std::string("ws://127.0.0.1")) + ":" +
         std::to_string(impl_->server->port()) + std::string(kPathPrefix) + std::string(voice_id) +
         std::string(kPathSuffix);
}
const std::string& MockElevenLabs::api_key() const {
  return impl_->opt.api_key;
}
std::string MockElevenLabs::ca_file() const {
  return impl_->server->ca_file();
}

void MockElevenLabs::drop_all() {
  std::lock_guard lock(impl_->mu);
  for (const auto& c : impl_->conns) c->post([](Conn& x) { x.drop_now(); });
}

void MockElevenLabs::close_all(std::uint16_t code, std::string reason) {
  std::lock_guard lock(impl_->mu);
  for (const auto& c : impl_->conns)
    c->post([code, reason](Conn& x) { x.close_now(code, reason); });
}

std::vector<MockElevenLabs::Connection> MockElevenLabs::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->records;
}

MockElevenLabs::Connection MockElevenLabs::connection(std::size_t i) const {
  std::lock_guard lock(impl_->mu);
  return i < impl_->records.size() ? impl_->records[i] : Connection{};
}

std::size_t MockElevenLabs::open_connections() const {
  std::lock_guard lock(impl_->mu);
  return static_cast<std::size_t>(
      std::count_if(impl_->records.begin(), impl_->records.end(),
                    [](const Connection& r) { return r.end == End::open; }));
}

bool MockElevenLabs::wait_for(const std::function<bool()>& pred,
                              std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
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

std::string MockElevenLabs::synthesize(std::string_view text, std::string_view output_format,
                                       const Options& options) {
  const auto f = producible(output_format);
  if (!f) return {};
  return render(code_points(text), *f, options);
}

}  // namespace voxbridge::testing
