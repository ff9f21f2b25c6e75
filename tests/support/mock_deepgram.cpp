// The Deepgram mock (see mock_deepgram.hpp for the references and the behaviour).
// Marks: "reference" = Deepgram's documentation, or what the service was seen to send (the
// threads the header names); "mock" = neither says, the wording or the rule is the mock's own.
#include "support/mock_deepgram.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "support/ws_server.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// ---- JSON out, as the service writes it ----

void write_json(const json::value& v, std::string& out);

/// The service's JSON is serde's: a float always shows a fraction or an exponent ("0.0", "1.5"),
/// shortest round-trip digits (Boost.JSON would write "1.5E0"). Keys keep their insertion order.
void write_double(double d, std::string& out) {
  char b[64];
  const auto r = std::to_chars(b, b + sizeof b, d);
  const std::string_view s(b, static_cast<std::size_t>(r.ptr - b));
  out += s;
  if (s.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void write_json(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      return;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      return;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return;
    case json::kind::double_:
      write_double(v.get_double(), out);
      return;
    case json::kind::string:
      out += json::serialize(v.get_string());
      return;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(e, out);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string(kv.key()));
        out += ':';
        write_json(kv.value(), out);
      }
      out += '}';
      return;
    }
  }
}

std::string to_text(json::object o) {
  std::string s;
  write_json(json::value(std::move(o)), s);
  return s;
}

/// The service's error body: {"err_code","err_msg","request_id"} (reference, /reference/errors).
std::string error_body(std::string_view code, std::string_view msg, const std::string& request) {
  return to_text(json::object{{"err_code", code}, {"err_msg", msg}, {"request_id", request}});
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

/// "Token KEY" or "Bearer KEY" (the scheme in any case: Deepgram's own samples send "token").
bool authorized(const std::string& header, const std::string& key) {
  const auto sp = header.find(' ');
  if (sp == std::string::npos) return false;
  std::string scheme = header.substr(0, sp);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto k = header.find_first_not_of(' ', sp);
  return (scheme == "token" || scheme == "bearer") && k != std::string::npos &&
         header.compare(k, std::string::npos, key) == 0;
}

enum class Encoding { linear16, mulaw, alaw };

/// What a socket's query asks for, once checked.
struct Params {
  Encoding encoding = Encoding::linear16;
  int rate = 0;
  bool interim_results = false, vad_events = false;
  int endpointing_ms = 10;   ///< -1: endpointing=false (reference: default 10 ms)
  int utterance_end_ms = 0;  ///< 0: not asked
  std::string model;
};

bool to_int(const std::string& s, int& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

/// The service's words for a bad value (reference, for utterance_end_ms; the mock says the same
/// of every value it refuses).
std::string invalid(const std::string& key, const std::string& value) {
  return "Invalid '" + key + "' value of '" + value + "'.";
}

/// Checks the query as the service would, as far as the mock serves it; the problem in words
/// (for a 400), "" when it can serve it. Parameters it does not know are ignored (reference:
/// the service ignores them), but kept in the record.
std::string check_params(const std::multimap<std::string, std::string>& q, Params& p) {
  auto get = [&q](const char* k) -> const std::string* {
    const auto it = q.find(k);
    return it == q.end() ? nullptr : &it->second;
  };
  for (const char* k : {"interim_results", "vad_events", "smart_format", "punctuate", "diarize",
                        "multichannel", "numerals", "profanity_filter", "dictation"}) {
    const std::string* v = get(k);
    if (v != nullptr && *v != "true" && *v != "false") return invalid(k, *v);  // an enum
  }
  const std::string* enc = get("encoding");
  if (enc == nullptr) {
    // The service would read a container's header; the mock decodes raw audio only (mock).
    return "The mock decodes raw audio only: set 'encoding' (linear16, mulaw or alaw) and "
           "'sample_rate'.";
  }
  if (*enc == "linear16") {
    p.encoding = Encoding::linear16;
  } else if (*enc == "mulaw") {
    p.encoding = Encoding::mulaw;
  } else if (*enc == "alaw") {
    p.encoding = Encoding::alaw;
  } else {
    return invalid("encoding", *enc);  // mock: the service decodes more (opus, flac...)
  }
  const std::string* rate = get("sample_rate");
  if (rate == nullptr) return "'sample_rate' is required with 'encoding'.";  // mock wording
  if (!to_int(*rate, p.rate) || p.rate < 8000 || p.rate > 48000) {
    return invalid("sample_rate", *rate);
  }
  if (const std::string* ch = get("channels"); ch != nullptr && *ch != "1") {
    return invalid("channels", *ch);  // mock: mono only
  }
  p.interim_results = get("interim_results") != nullptr && *get("interim_results") == "true";
  p.vad_events = get("vad_events") != nullptr && *get("vad_events") == "true";
  if (const std::string* e = get("endpointing")) {
    if (*e == "false") {
      p.endpointing_ms = -1;
    } else if (*e == "true") {
      p.endpointing_ms = 10;
    } else if (!to_int(*e, p.endpointing_ms) || p.endpointing_ms < 0) {
      return invalid("endpointing", *e);
    }
  }
  if (const std::string* u = get("utterance_end_ms")) {
    // reference: under 1000 is refused (python-sdk#279); it needs interim results (docs)
    if (!to_int(*u, p.utterance_end_ms) || p.utterance_end_ms < 1000) {
      return invalid("utterance_end_ms", *u);
    }
    if (!p.interim_results) return "'utterance_end_ms' requires 'interim_results=true'.";  // mock
  }
  if (const std::string* m = get("model")) p.model = *m;
  if (get("keywords") != nullptr && p.model.starts_with("nova-3")) {
    // reference: the service refuses keywords on Nova-3 (js-sdk#474); the wording is the mock's
    return "'keywords' is not supported by '" + p.model + "': use 'keyterm'.";
  }
  return {};
}

// ---- results ----

/// A word as the service's `word` field has it: lower case, no punctuation.
std::string plain_word(const std::string& token) {
  std::string out;
  for (char c : token) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '\'' || u >= 0x80) {
      out += static_cast<char>(std::tolower(u));
    }
  }
  return out;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = text.find_first_not_of(' ', i);
    if (b == std::string::npos) break;
    const auto e = text.find(' ', b);
    out.push_back(text.substr(b, e == std::string::npos ? std::string::npos : e - b));
    i = e == std::string::npos ? text.size() : e;
  }
  return out;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[48];
  const std::size_t n = std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(b + n, sizeof b - n, ".%03dZ", static_cast<int>(ms));
  return b;
}

/// The model's id in Results.metadata and Metadata.models (mock: "mock" in hex, then zeros).
constexpr const char* kModelUuid = "6d6f636b-0000-4000-8000-000000000000";
constexpr double kConfidence = 0.98;  // mock: every word, every transcript
constexpr std::size_t kBinaryHead = 64;

}  // namespace

namespace mock_deepgram_detail {
class Conn;
}  // namespace mock_deepgram_detail

using mock_deepgram_detail::Conn;

struct MockDeepgram::Impl {
  Options opt;
  // First: destroyed last, after the connections it still holds (they refer to this Impl).
  std::unique_ptr<WsServer> server;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::uint64_t version = 0;
  std::vector<Connection> records;  // by upgrade attempt
  std::vector<std::shared_ptr<Conn>> conns;
  std::deque<std::string> transcripts;

  void changed() {  // with mu held
    ++version;
    cv.notify_all();
  }
};

namespace mock_deepgram_detail {

class Conn : public WsServer::Connection {
 public:
  using Impl = MockDeepgram::Impl;
  using Record = MockDeepgram::Connection;
  using End = MockDeepgram::End;

  Conn(Impl& m, WsServer::Accepted a)
      : WsServer::Connection(std::move(a)),
        m_(m),
        idle_(executor()),
        out_timer_(executor()),
        sha_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
  }
  ~Conn() override { EVP_MD_CTX_free(sha_); }

  void post(std::function<void(Conn&)> f) {
    asio::post(executor(), [self = self<Conn>(), f = std::move(f)] { f(*self); });
  }

  /// A close frame now, after what was handed to the socket (what result_delay holds is not
  /// sent).
  void close_now(std::uint16_t code, std::string reason) {
    if (ended_ || close_sent_) return;
    close_sent_ = closing_ = true;
    stop_timers();
    if (reason.size() > 123) reason.resize(123);  // a close frame's reason is at most 123 bytes
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
    r.authorization = req.header("Authorization");
    std::lock_guard lock(m_.mu);
    idx_ = m_.records.size();
    r.request_id = rid_ = MockDeepgram::request_id(idx_);
    std::string body;
    if (r.path != MockDeepgram::kPath) {
      r.status = 404;
      body = error_body("NOT_FOUND", "Not Found.", rid_);  // mock wording
    } else if (!req.websocket) {
      r.status = 400;
      body = error_body("Bad Request", "Expected a WebSocket upgrade.", rid_);  // mock wording
    } else if (!authorized(r.authorization, m_.opt.api_key)) {
      r.status = 401;
      body = error_body("INVALID_AUTH", "Invalid credentials.", rid_);  // reference
    } else if (std::string why = check_params(r.query, p_); !why.empty()) {
      r.status = 400;
      body = error_body("Bad Request", why, rid_);  // the shape: reference
    } else {
      r.status = 101;
    }
    r.end = r.status == 101 ? End::open : End::refused;
    r.refusal_body = body;
    m_.records.push_back(std::move(r));
    m_.changed();
    if (!body.empty()) return Refusal{m_.records.back().status, std::move(body)};
    m_.conns.push_back(self<Conn>());
    block_samples_ = std::max(1, p_.rate / 50);
    interim_samples_ = std::max<std::int64_t>(1, m_.opt.interim_every.count() * p_.rate / 1000);
    endpoint_samples_ =
        std::int64_t{p_.endpointing_ms >= 0 ? p_.endpointing_ms : 10} * p_.rate / 1000;
    ue_samples_ = std::int64_t{p_.utterance_end_ms} * p_.rate / 1000;
    model_ = p_.model.empty() ? "general" : p_.model;  // mock: the service's default differs
    block_.reserve(static_cast<std::size_t>(block_samples_));
    return std::nullopt;
  }

  void on_open() override {
    created_ = m_.opt.created.empty() ? utc_now() : m_.opt.created;
    touch();
  }

  void on_closed() override {
    ended_ = closing_ = true;
    idle_.cancel();
    out_timer_.cancel();
    outbox_.clear();
    record([](Record& r) {
      if (r.end == End::open) r.end = End::ended_by_client;
    });
  }

  // ---- messages in ----

  void on_message(std::string raw) override {
    const bool binary = last_message_binary();
    if (m_.opt.record_messages) {
      record([&](Record& r) {
        r.received.push_back({binary, binary ? raw.substr(0, kBinaryHead) : raw, raw.size()});
      });
    }
    if (closing_) return;  // after CloseStream, or a close by the mock: not read (mock)
    if (binary) {
      // An empty binary frame was the way to close a stream before CloseStream (deprecated;
      // the troubleshooting guide: it "will cause unexpected closures").
      if (raw.empty()) return close_stream();
      audio_seen_ = true;
      touch();
      return on_audio(raw);
    }
    boost::system::error_code ec;
    const json::value v = json::parse(raw, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::value* t = o != nullptr ? o->if_contains("type") : nullptr;
    const std::string_view type =
        t != nullptr && t->is_string() ? std::string_view(t->get_string()) : std::string_view();
    if (type == "KeepAlive") {
      if (audio_seen_ || !m_.opt.keepalive_needs_audio) touch();
      return;
    }
    touch();
    if (type == "Finalize") return finalize();
    if (type == "CloseStream") return close_stream();
    // Not a control message: the reference names no answer; the mock reads it as data it
    // cannot decode, the documented 1008 DATA-0000 (mock).
    closing_ = true;
    idle_.cancel();
    queue_close(1008, "DATA-0000");
  }

  void touch() {
    if (closing_) return;
    idle_.expires_after(m_.opt.idle_timeout);
    idle_.async_wait([self = self<Conn>()](boost::system::error_code ec) {
      if (!ec) self->on_idle();
    });
  }

  /// NET-0001: Metadata, then the close (reference: js-sdk#336, python-sdk#319).
  void on_idle() {
    if (closing_) return;
    closing_ = true;
    emit(metadata(), false);
    queue_close(1011, MockDeepgram::kNet0001);
  }

  // ---- audio ----

  void on_audio(const std::string& raw) {
    EVP_DigestUpdate(sha_, raw.data(), raw.size());
    total_bytes_ += raw.size();
    record([&](Record& r) {
      r.audio_bytes += raw.size();
      const std::size_t room =
          m_.opt.max_kept_audio_bytes - std::min(m_.opt.max_kept_audio_bytes, r.audio.size());
      r.audio.insert(r.audio.end(), raw.begin(),
                     raw.begin() + static_cast<std::ptrdiff_t>(std::min(room, raw.size())));
    });
    const auto* b = reinterpret_cast<const std::uint8_t*>(raw.data());
    std::size_t i = 0;
    if (p_.encoding == Encoding::linear16) {
      if (carry_ && !raw.empty()) {  // a sample split across two messages
        sample(static_cast<std::int16_t>(*carry_ | (b[0] << 8)));
        carry_.reset();
        i = 1;
      }
      for (; i + 1 < raw.size(); i += 2) sample(static_cast<std::int16_t>(b[i] | (b[i + 1] << 8)));
      if (i < raw.size()) carry_ = b[i];
      return;
    }
    for (; i < raw.size(); ++i) {
      sample(p_.encoding == Encoding::mulaw ? MockDeepgram::mulaw_to_s16(b[i])
                                            : MockDeepgram::alaw_to_s16(b[i]));
    }
  }

  void sample(std::int16_t s) {
    ++total_samples_;
    block_.push_back(s);
    if (static_cast<std::int64_t>(block_.size()) == block_samples_) {
      on_block();
      block_.clear();
    }
  }

  /// One 20 ms block: speech detection, then the results it makes due.
  void on_block() {
    double e = 0;
    for (auto s : block_) e += static_cast<double>(s) * s;
    const bool voiced = std::sqrt(e / static_cast<double>(block_.size())) >= m_.opt.voiced_rms;
    const std::int64_t start = now_;
    now_ += block_samples_;
    if (voiced) {
      silence_ = 0;
      if (!speaking_) {
        speaking_ = true;
        if (p_.vad_events) {
          emit(json::object{{"type", "SpeechStarted"},
                            {"channel", json::array{0, 1}},
                            {"timestamp", seconds(start)}},
               false);
        }
      }
      if (!utt_) start_utterance(start);
      utt_->speech_end = now_;
    } else if (speaking_) {
      silence_ += block_samples_;
    }
    if (speaking_ && !voiced && silence_ >= endpoint_samples_) {
      speaking_ = false;
      silence_ = 0;
      // With endpointing=false the speech still ends (the mock's chunking): a final without
      // speech_final.
      if (utt_) final_result(p_.endpointing_ms >= 0, false);
    } else if (utt_ && p_.interim_results && now_ - utt_->start >= utt_->next_interim) {
      ++utt_->interims;
      const std::size_t k = std::min(utt_->interims, utt_->words.size());
      results(k, false, false, false);
      while (utt_->next_interim <= now_ - utt_->start) utt_->next_interim += interim_samples_;
    }
    if (p_.utterance_end_ms > 0 && ue_pending_ && now_ - last_word_end_ >= ue_samples_) {
      ue_pending_ = false;
      emit(json::object{{"type", "UtteranceEnd"},
                        {"channel", json::array{0, 1}},
                        {"last_word_end", seconds(last_word_end_)}},
           false);
    }
  }

  void start_utterance(std::int64_t start) {
    Utterance u;
    {
      std::lock_guard lock(m_.mu);
      if (!m_.transcripts.empty()) {
        u.text = std::move(m_.transcripts.front());
        m_.transcripts.pop_front();
      } else {
        u.text = "hello";
      }
    }
    u.words = split_words(u.text);
    u.start = u.speech_end = start;
    u.next_interim = interim_samples_;
    utt_ = std::move(u);
  }

  // ---- results out ----

  double seconds(std::int64_t samples) const {
    return static_cast<double>(samples) / static_cast<double>(p_.rate);
  }

  json::object result_metadata() const {
    return json::object{
        {"request_id", rid_}, {"model_info", model_info()}, {"model_uuid", kModelUuid}};
  }
  json::object model_info() const {
    return json::object{{"name", model_}, {"version", "mock"}, {"arch", model_}};  // mock
  }

  /// A Results over [seg_start_, now_] with the utterance's first `k` words (none without one),
  /// spread evenly over [its start, the end of its last voiced block].
  void results(std::size_t k, bool is_final, bool speech_final, bool from_finalize) {
    json::array words;
    std::string transcript;
    if (utt_ && k > 0) {
      const std::int64_t s = utt_->start, span = utt_->speech_end - utt_->start;
      const auto n = static_cast<std::int64_t>(k);
      for (std::int64_t i = 0; i < n; ++i) {
        const std::string& w = utt_->words[static_cast<std::size_t>(i)];
        words.push_back(json::object{{"word", plain_word(w)},
                                     {"start", seconds(s + span * i / n)},
                                     {"end", seconds(s + span * (i + 1) / n)},
                                     {"confidence", kConfidence},
                                     {"punctuated_word", w}});
        if (i > 0) transcript += ' ';
        transcript += w;
      }
      if (k == utt_->words.size()) transcript = utt_->text;  // the whole text, as pushed
      last_word_end_ = utt_->speech_end;
      ue_pending_ = true;
    }
    const double confidence = words.empty() ? 0.0 : kConfidence;
    json::object alt{{"transcript", transcript}, {"confidence", confidence}, {"words", words}};
    emit(json::object{{"type", "Results"},
                      {"channel_index", json::array{0, 1}},
                      {"duration", seconds(now_ - seg_start_)},
                      {"start", seconds(seg_start_)},
                      {"is_final", is_final},
                      {"speech_final", speech_final},
                      {"channel", json::object{{"alternatives", json::array{std::move(alt)}}}},
                      {"metadata", result_metadata()},
                      {"from_finalize", from_finalize}},
         true);
  }

  /// The utterance's final result; the next result starts where this one ends.
  void final_result(bool speech_final, bool from_finalize) {
    results(utt_ ? utt_->words.size() : 0, true, speech_final, from_finalize);
    utt_.reset();
    seg_start_ = now_;
  }

  /// Finalize: the utterance so far; only silence since the last final: an empty final; no
  /// audio since: nothing (reference: "not guaranteed if there is no significant amount of
  /// audio data"; where the line falls is the mock's).
  void finalize() {
    if (utt_ || now_ > seg_start_) final_result(false, true);
  }

  /// CloseStream: the utterance so far as a final (mock: speech_final false), Metadata, close
  /// 1000 (reference: /docs/close-stream).
  void close_stream() {
    closing_ = true;
    idle_.cancel();
    now_ = total_samples_;  // the stream ends: a partial block is heard too
    if (utt_) final_result(false, false);
    emit(metadata(), false);
    queue_close(1000, "");
  }

  json::object metadata() {
    EVP_MD_CTX* c = EVP_MD_CTX_new();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX_copy_ex(c, sha_);
    EVP_DigestFinal_ex(c, digest, &len);
    EVP_MD_CTX_free(c);
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      char b[3];
      std::snprintf(b, sizeof b, "%02x", digest[i]);
      hex += b;
    }
    json::object md{{"type", "Metadata"},
                    {"transaction_key", "deprecated"},
                    {"request_id", rid_},
                    {"sha256", hex},
                    {"created", created_},
                    {"duration", seconds(total_samples_)},
                    {"channels", total_bytes_ > 0 ? 1 : 0}};
    if (total_bytes_ > 0) {  // reference: python-sdk#427
      md["models"] = json::array{kModelUuid};
      md["model_info"] = json::object{{kModelUuid, model_info()}};
    }
    return md;
  }

  // ---- the outbox: result_delay holds Results, and what follows them waits its turn ----

  struct Out {
    Clock::time_point due;
    std::string text;
    bool close = false;
    std::uint16_t code = 0;
  };

  void emit(json::object m, bool is_results) {
    Out o;
    o.text = to_text(std::move(m));
    queue(std::move(o), is_results ? m_.opt.result_delay : std::chrono::milliseconds(0));
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
      if (m_.opt.record_messages) record([&](Record& r) { r.sent.push_back(o.text); });
      send(std::move(o.text));
    }
    if (outbox_.empty()) return;
    out_timer_.expires_at(outbox_.front().due);
    out_timer_.async_wait([self = self<Conn>()](boost::system::error_code ec) {
      if (!ec) self->pump();
    });
  }

  struct Utterance {
    std::string text;
    std::vector<std::string> words;
    std::int64_t start = 0, speech_end = 0;  // samples
    std::int64_t next_interim = 0;           // samples after start
    std::size_t interims = 0;
  };

  Impl& m_;
  asio::steady_timer idle_, out_timer_;
  EVP_MD_CTX* sha_;
  std::size_t idx_ = 0;
  std::string rid_, created_, model_;
  Params p_;
  bool closing_ = false, close_sent_ = false, ended_ = false, audio_seen_ = false;
  std::deque<Out> outbox_;
  // Audio, counted in samples at p_.rate.
  std::size_t total_bytes_ = 0;
  std::int64_t total_samples_ = 0;
  std::optional<std::uint8_t> carry_;  // linear16: a message's odd last byte
  std::vector<std::int16_t> block_;
  std::int64_t block_samples_ = 160, interim_samples_ = 1600, endpoint_samples_ = 80;
  std::int64_t ue_samples_ = 0;
  // Recognition state, in samples of audio time.
  std::int64_t now_ = 0;        // the end of the last whole block
  std::int64_t seg_start_ = 0;  // where the next result starts (the last final's end)
  std::int64_t silence_ = 0;    // unvoiced audio since the last voiced block, while speaking
  bool speaking_ = false;
  std::optional<Utterance> utt_;
  std::int64_t last_word_end_ = 0;
  bool ue_pending_ = false;  // a word came since the last UtteranceEnd
};

}  // namespace mock_deepgram_detail

std::vector<std::string> MockDeepgram::Connection::texts() const {
  std::vector<std::string> out;
  for (const auto& m : received) {
    if (!m.binary) out.push_back(m.data);
  }
  return out;
}

MockDeepgram::MockDeepgram(Options options) : impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  m.opt = std::move(options);
  WsServer::Options so;
  so.port = m.opt.port;
  so.tls = m.opt.tls;
  so.cert_host = m.opt.cert_host;
  so.ca_file_prefix = "vb_mock_deepgram_ca_";
  so.io_threads = m.opt.io_threads;
  so.no_delay = m.opt.no_delay;
  so.max_message_bytes = m.opt.max_message_bytes;
  so.binary = false;  // the service's JSON comes in text frames
  m.server = std::make_unique<WsServer>(std::move(so), [&m](WsServer::Accepted a) {
    return std::make_shared<Conn>(m, std::move(a));
  });
}

MockDeepgram::~MockDeepgram() {
  auto& m = *impl_;
  m.server->stop();
  std::lock_guard lock(m.mu);
  m.conns.clear();
}

unsigned short MockDeepgram::port() const {
  return impl_->server->port();
}
std::string MockDeepgram::url() const {
  const auto& o = impl_->opt;
  return (o.tls ? "wss://" + o.cert_host : std::string("ws://127.0.0.1")) + ":" +
         std::to_string(impl_->server->port()) + kPath;
}
const std::string& MockDeepgram::api_key() const {
  return impl_->opt.api_key;
}
std::string MockDeepgram::ca_file() const {
  return impl_->server->ca_file();
}

void MockDeepgram::push_transcript(std::string text) {
  std::lock_guard lock(impl_->mu);
  impl_->transcripts.push_back(std::move(text));
}

void MockDeepgram::drop_all() {
  std::lock_guard lock(impl_->mu);
  for (const auto& c : impl_->conns) c->post([](Conn& x) { x.drop_now(); });
}

void MockDeepgram::close_all(std::uint16_t code, std::string reason) {
  std::lock_guard lock(impl_->mu);
  for (const auto& c : impl_->conns)
    c->post([code, reason](Conn& x) { x.close_now(code, reason); });
}

std::vector<MockDeepgram::Connection> MockDeepgram::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->records;
}

MockDeepgram::Connection MockDeepgram::connection(std::size_t i) const {
  std::lock_guard lock(impl_->mu);
  return i < impl_->records.size() ? impl_->records[i] : Connection{};
}

std::size_t MockDeepgram::open_connections() const {
  std::lock_guard lock(impl_->mu);
  return static_cast<std::size_t>(
      std::count_if(impl_->records.begin(), impl_->records.end(),
                    [](const Connection& r) { return r.end == End::open; }));
}

bool MockDeepgram::wait_for(const std::function<bool()>& pred,
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

std::string MockDeepgram::request_id(std::size_t n) {
  char b[16];
  std::snprintf(b, sizeof b, "%012zu", n % 1000000000000u);
  return std::string("6d6f636b-0000-4000-8000-") + b;
}

std::int16_t MockDeepgram::mulaw_to_s16(std::uint8_t u) {
  const int v = static_cast<std::uint8_t>(~u);
  int t = ((v & 0x0F) << 3) + 0x84;
  t <<= (v & 0x70) >> 4;
  return static_cast<std::int16_t>((v & 0x80) != 0 ? 0x84 - t : t - 0x84);
}

std::int16_t MockDeepgram::alaw_to_s16(std::uint8_t a) {
  const int v = a ^ 0x55;
  int t = (v & 0x0F) << 4;
  const int seg = (v & 0x70) >> 4;
  if (seg == 0) {
    t += 8;
  } else {
    t += 0x108;
    if (seg > 1) t <<= seg - 1;
  }
  return static_cast<std::int16_t>((v & 0x80) != 0 ? t : -t);
}

}  // namespace voxbridge::testing
