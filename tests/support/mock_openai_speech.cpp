// The OpenAI speech mock (see mock_openai_speech.hpp for the references and the behaviour).
// Marks: "reference" = OpenAI's documentation, or what the service was seen to answer (the
// threads the header names); "mock" = neither says, the wording or the rule is the mock's own.
#include "support/mock_openai_speech.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "support/test_tls.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

constexpr auto kTranscriptionsPath = "/v1/audio/transcriptions";
constexpr auto kSpeechPath = "/v1/audio/speech";
constexpr std::size_t kMaxInputChars = 4096;  // reference: input and instructions

// ---- JSON out ----

/// Floats as Python's json module writes them: shortest round-trip digits, always a fraction
/// or an exponent ("1.0", "0.25"); keys in insertion order.
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
    case json::kind::double_: {
      char b[64];
      const auto r = std::to_chars(b, b + sizeof b, v.get_double());
      const std::string_view s(b, static_cast<std::size_t>(r.ptr - b));
      out += s;
      if (s.find_first_of(".eE") == std::string_view::npos) out += ".0";
      return;
    }
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

std::string to_text(json::value v) {
  std::string s;
  write_json(v, s);
  return s;
}

/// A JSON number or null for what the service echoes back in a message (mock).
std::string shown(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : to_text(v);
}

std::string json_type_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a decimal";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

// ---- what a request can be refused with ----

struct Refusal {
  int status = 400;
  std::string body;
};

Refusal invalid(std::string_view message, std::string_view param = {}, std::string_view code = {}) {
  return {400, MockOpenAiSpeech::error_json(message, "invalid_request_error", param, code)};
}

/// reference (mgallo/openai.ex; the community thread): param and code null.
Refusal no_model() {
  return invalid("you must provide a model parameter");
}

/// The wording the service uses for an unknown model on its other endpoints (mock: applied
/// here too).
Refusal unknown_model(const std::string& model) {
  return {404, MockOpenAiSpeech::error_json(
                   "The model `" + model + "` does not exist or you do not have access to it.",
                   "invalid_request_error", "", "model_not_found")};
}

/// The key of "Bearer KEY" (the scheme in any case), "" for none or another scheme.
std::string bearer_key(const std::string& authorization) {
  std::string key;
  if (authorization.size() > 7 && beast::iequals(authorization.substr(0, 7), "Bearer ")) {
    key = authorization.substr(7);
    while (!key.empty() && key.front() == ' ') key.erase(0, 1);
    while (!key.empty() && key.back() == ' ') key.pop_back();
  }
  return key;
}

/// The service's bodies for a missing or wrong key (reference).
Refusal unauthorized(const std::string& authorization) {
  const std::string key = bearer_key(authorization);
  if (key.empty()) {
    // mock: another scheme (the service also takes Basic with the key as password) counts as
    // no key.
    return {401, MockOpenAiSpeech::error_json(
                     "You didn't provide an API key. You need to provide your API key in an "
                     "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                     "YOUR_KEY), or as the password field (with blank username) if you're "
                     "accessing the API from your browser and are prompted for a username and "
                     "password. You can obtain an API key from "
                     "https://platform.openai.com/account/api-keys.",
                     "invalid_request_error", "", "")};
  }
  return {401, MockOpenAiSpeech::error_json(
                   "Incorrect API key provided: " + MockOpenAiSpeech::masked_key(key) +
                       ". You can find your API key at "
                       "https://platform.openai.com/account/api-keys.",
                   "invalid_request_error", "", "invalid_api_key")};
}

/// reference (the 413 threads): after the whole body was read.
Refusal too_large(std::uint64_t bytes) {
  return {413,
          MockOpenAiSpeech::error_json("Maximum content size limit (" +
                                           std::to_string(MockOpenAiSpeech::kMaxBodyBytes) +
                                           ") exceeded (" + std::to_string(bytes) + " bytes read)",
                                       "server_error", "", "")};
}

/// A scripted non-200 answer with no body of its own: the service's body for that status where
/// one was seen (401, 413, 429, 500), else the mock's.
std::string default_error(int status, const std::string& authorization, const std::string& model) {
  switch (status) {
    case 401:
      return unauthorized(authorization.empty() ? "Bearer sk-mock-revoked-key-0000" : authorization)
          .body;
    case 413:
      return too_large(MockOpenAiSpeech::kMaxBodyBytes + 1).body;
    case 429:
      return MockOpenAiSpeech::error_json(
          "Rate limit reached for " + (model.empty() ? std::string("model") : model) +
              " in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested "
              "1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits "
              "to learn more.",
          "requests", "", "rate_limit_exceeded");
    case 400:
      return MockOpenAiSpeech::error_json("The mock was scripted to refuse this request.",
                                          "invalid_request_error", "", "");  // mock
    default:
      break;
  }
  if (status >= 500) {
    return MockOpenAiSpeech::error_json(
        "The server had an error while processing your request. Sorry about that!", "server_error",
        "", "");
  }
  return MockOpenAiSpeech::error_json(
      "The mock was scripted to answer " + std::to_string(status) + ".", "invalid_request_error",
      "", "");  // mock
}

// ---- text helpers ----

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// UTF-8 code points (an invalid byte counts as one, its value as the code point).
std::vector<std::uint32_t> code_points(std::string_view s) {
  std::vector<std::uint32_t> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      n = 1;
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      n = 2;
      cp = b & 0x1Fu;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3;
      cp = b & 0x0Fu;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4;
      cp = b & 0x07u;
    }
    bool ok = n > 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if (!ok) {
      out.push_back(b);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

/// The transcript cut into words, each with the blanks before it (the last keeps the blanks
/// after it too), so the pieces concatenate to the text (mock: one delta per word).
std::vector<std::string> word_pieces(const std::string& text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t w = text.find_first_not_of(' ', i);
    if (w == std::string::npos) {
      if (out.empty())
        out.push_back(text.substr(i));
      else
        out.back() += text.substr(i);
      break;
    }
    const std::size_t e = std::min(text.find(' ', w), text.size());
    out.push_back(text.substr(i, e - i));
    i = e;
  }
  return out;
}

std::size_t count_words(const std::string& s) {
  std::size_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool blank = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!blank && !in) ++n;
    in = !blank;
  }
  return n;
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(v);
}

/// "HH:MM:SS" then `sep` and milliseconds (SRT: ',', WebVTT: '.').
std::string timestamp(std::int64_t ms, char sep) {
  char b[32];
  std::snprintf(b, sizeof b, "%02lld:%02lld:%02lld%c%03lld", static_cast<long long>(ms / 3600000),
                static_cast<long long>(ms / 60000 % 60), static_cast<long long>(ms / 1000 % 60),
                sep, static_cast<long long>(ms % 1000));
  return b;
}

// ---- the multipart form (RFC 7578) ----

struct Part {
  std::string name, filename, content_type, data;
  bool has_filename = false;
};

std::string header_param(std::string_view h, std::string_view key) {
  // `key=value` or `key="value"` among the ;-separated parameters (case-insensitive key).
  std::size_t i = 0;
  while (i < h.size()) {
    std::size_t semi = h.find(';', i);
    // A ';' inside quotes does not end the parameter.
    const std::size_t q = h.find('"', i);
    if (q != std::string_view::npos && q < semi) {
      std::size_t close = q + 1;
      while (close < h.size() && h[close] != '"') close += h[close] == '\\' ? 2 : 1;
      semi = h.find(';', std::min(close, h.size()));
    }
    std::string_view p = h.substr(i, semi == std::string_view::npos ? h.size() - i : semi - i);
    while (!p.empty() && (p.front() == ' ' || p.front() == '\t')) p.remove_prefix(1);
    const auto eq = p.find('=');
    if (eq != std::string_view::npos) {
      std::string_view k = p.substr(0, eq);
      while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.remove_suffix(1);
      if (beast::iequals(k, key)) {
        std::string_view v = p.substr(eq + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
          std::string out;
          for (std::size_t j = 1; j + 1 < v.size(); ++j) {
            if (v[j] == '\\' && j + 2 < v.size()) ++j;
            out += v[j];
          }
          return out;
        }
        return std::string(v);
      }
    }
    if (semi == std::string_view::npos) break;
    i = semi + 1;
  }
  return {};
}

bool has_header_param(std::string_view h, std::string_view key) {
  std::string lowered = lower(std::string(h));
  const std::string k = lower(std::string(key)) + "=";
  for (std::size_t p = lowered.find(k); p != std::string::npos; p = lowered.find(k, p + 1)) {
    if (p == 0 || lowered[p - 1] == ';' || lowered[p - 1] == ' ' || lowered[p - 1] == '\t')
      return true;
  }
  return false;
}

/// The parts of a multipart/form-data body; false when the body is not one (then the service
/// finds no fields: mock, the community thread's malformed form was answered "you must provide
/// a model parameter").
bool parse_multipart(const std::string& content_type, const std::string& body,
                     std::vector<Part>& parts) {
  if (!beast::iequals(content_type.substr(0, std::min<std::size_t>(content_type.size(), 19)),
                      "multipart/form-data"))
    return false;
  const std::string boundary = header_param(content_type, "boundary");
  if (boundary.empty()) return false;
  const std::string delim = "--" + boundary;
  std::size_t pos;
  if (body.compare(0, delim.size(), delim) == 0) {
    pos = delim.size();
  } else {
    pos = body.find("\r\n" + delim);
    if (pos == std::string::npos) return false;
    pos += 2 + delim.size();
  }
  for (;;) {
    if (body.compare(pos, 2, "--") == 0) return true;  // the close delimiter
    // Transport padding, then CRLF.
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.compare(pos, 2, "\r\n") != 0) return false;
    pos += 2;
    const std::size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) return false;
    Part part;
    std::string_view head(body.data() + pos, head_end - pos);
    std::size_t h = 0;
    while (h <= head.size()) {
      std::size_t e = head.find("\r\n", h);
      if (e == std::string_view::npos) e = head.size();
      const std::string_view line = head.substr(h, e - h);
      const auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        const std::string_view name = line.substr(0, colon);
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
          value.remove_prefix(1);
        if (beast::iequals(name, "Content-Disposition")) {
          part.name = header_param(value, "name");
          part.has_filename = has_header_param(value, "filename");
          if (part.has_filename) part.filename = header_param(value, "filename");
        } else if (beast::iequals(name, "Content-Type")) {
          part.content_type = std::string(value);
        }
      }
      h = e + 2;
    }
    const std::size_t data_begin = head_end + 4;
    const std::size_t next = body.find("\r\n" + delim, data_begin);
    if (next == std::string::npos) return false;
    part.data = body.substr(data_begin, next - data_begin);
    parts.push_back(std::move(part));
    pos = next + 2 + delim.size();
  }
}

// ---- WAV ----

std::uint32_t le32(const std::string& s, std::size_t i) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[i + 1])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[i + 2])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[i + 3])) << 24;
}
std::uint16_t le16(const std::string& s, std::size_t i) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(s[i]) |
                                    static_cast<unsigned char>(s[i + 1]) << 8);
}

/// A RIFF/WAVE file of integer PCM (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM subtype),
/// 8/16/24/32 bits: its format and samples (scaled to s16). False for anything else (mock: the
/// service decodes far more than PCM WAV; the mock only this).
bool parse_wav(const std::string& f, MockOpenAiSpeech::Transcription& t) {
  if (f.size() < 12 || f.compare(0, 4, "RIFF") != 0 || f.compare(8, 4, "WAVE") != 0) return false;
  int rate = 0, channels = 0, bits = 0;
  bool fmt_ok = false, have_data = false;
  std::size_t data_at = 0, data_len = 0;
  std::size_t i = 12;
  while (i + 8 <= f.size()) {
    const std::string id = f.substr(i, 4);
    const std::size_t len = le32(f, i + 4);
    const std::size_t body = i + 8;
    if (id == "fmt ") {
      if (len < 16 || body + 16 > f.size()) return false;
      const std::uint16_t tag = le16(f, body);
      channels = le16(f, body + 2);
      rate = static_cast<int>(le32(f, body + 4));
      bits = le16(f, body + 14);
      bool pcm = tag == 1;
      if (tag == 0xFFFE && len >= 40 && body + 26 <= f.size()) pcm = le16(f, body + 24) == 1;
      fmt_ok =
          pcm && channels >= 1 && rate > 0 && (bits == 8 || bits == 16 || bits == 24 || bits == 32);
    } else if (id == "data") {
      have_data = true;
      data_at = body;
      // A streaming writer's unknown length (0xFFFFFFFF, or past the end): the rest (mock).
      data_len = std::min(len, f.size() - std::min(body, f.size()));
      break;
    }
    if (len > f.size()) break;
    i = body + len + (len & 1);
  }
  if (!fmt_ok || !have_data) return false;
  t.wav_rate = rate;
  t.wav_channels = channels;
  t.wav_bits = bits;
  const std::size_t width = static_cast<std::size_t>(bits / 8);
  const std::size_t n = data_len / width;
  t.samples.reserve(n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t p = data_at + k * width;
    std::int32_t v = 0;
    switch (bits) {
      case 8:
        v = (static_cast<unsigned char>(f[p]) - 128) * 256;
        break;
      case 16:
        v = static_cast<std::int16_t>(le16(f, p));
        break;
      case 24:
        v = static_cast<std::int16_t>(le16(f, p + 1));
        break;
      default:
        v = static_cast<std::int16_t>(le16(f, p + 2));
        break;
    }
    t.samples.push_back(static_cast<std::int16_t>(v));
  }
  return true;
}

/// A 44-byte canonical WAV header for `bytes` of s16 mono at 24 kHz (mock: exact sizes, since
/// the mock knows the length before it sends).
std::string wav_header(std::size_t bytes) {
  std::string h;
  auto u32 = [&h](std::uint32_t v) {
    for (int k = 0; k < 4; ++k) h += static_cast<char>((v >> (8 * k)) & 0xFF);
  };
  auto u16 = [&h](std::uint16_t v) {
    h += static_cast<char>(v & 0xFF);
    h += static_cast<char>(v >> 8);
  };
  h += "RIFF";
  u32(static_cast<std::uint32_t>(36 + bytes));
  h += "WAVEfmt ";
  u32(16);
  u16(1);
  u16(1);
  u32(MockOpenAiSpeech::kSpeechRate);
  u32(MockOpenAiSpeech::kSpeechRate * 2);
  u16(2);
  u16(16);
  h += "data";
  u32(static_cast<std::uint32_t>(bytes));
  return h;
}

// ---- models ----

enum class SttFamily { none, whisper, gpt };

SttFamily stt_family(const std::string& model) {
  if (model == "whisper-1") return SttFamily::whisper;
  // reference: gpt-4o-transcribe and gpt-4o-mini-transcribe (their dated snapshots too).
  if (model.starts_with("gpt-4o-transcribe") || model.starts_with("gpt-4o-mini-transcribe"))
    return SttFamily::gpt;
  return SttFamily::none;
}

bool tts_model(const std::string& model) {
  return model == "tts-1" || model == "tts-1-hd" || model.starts_with("gpt-4o-mini-tts");
}

/// verbose_json's `language`: the language's English name, as whisper reports it (mock: a few
/// codes; another is echoed; none given: "english").
std::string language_name(const std::string& code) {
  static const std::map<std::string, std::string> names = {
      {"en", "english"}, {"fr", "french"}, {"de", "german"},     {"es", "spanish"},
      {"it", "italian"}, {"nl", "dutch"},  {"pt", "portuguese"}, {"ja", "japanese"},
      {"zh", "chinese"}, {"ru", "russian"}};
  if (code.empty()) return "english";
  const auto it = names.find(lower(code));
  return it == names.end() ? code : it->second;
}

// ---- the request body: kept up to kMaxBodyBytes, counted whole ----

struct CappedBody {
  struct value_type {
    std::string data;
    std::uint64_t size = 0;  // every byte received
  };
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& b) : b_(b) {}
    void init(const boost::optional<std::uint64_t>& n, beast::error_code& ec) {
      b_.data.clear();
      b_.size = 0;
      if (n && *n <= MockOpenAiSpeech::kMaxBodyBytes) b_.data.reserve(static_cast<std::size_t>(*n));
      ec = {};
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      std::size_t n = 0;
      for (const auto b : beast::buffers_range_ref(buffers)) {
        const std::size_t room = MockOpenAiSpeech::kMaxBodyBytes -
                                 std::min(b_.data.size(), MockOpenAiSpeech::kMaxBodyBytes);
        b_.data.append(static_cast<const char*>(b.data()), std::min(room, b.size()));
        n += b.size();
      }
      b_.size += n;
      ec = {};
      return n;
    }
    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& b_;
  };
};

using Request = http::request<CappedBody>;

enum class After { keep, close, drop };

}  // namespace

// ---- the server ----

struct MockOpenAiSpeech::Impl {
  Options opt;
  std::unique_ptr<ssl::context> tls;  // outlives io (its streams die with io)
  std::string ca_file;
  std::uint16_t port = 0;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::deque<TranscriptionScript> tscripts;
  std::deque<SpeechScript> sscripts;
  std::vector<Transcription> trs;
  std::vector<Speech> sps;
  std::vector<bool> sp_ended;
  std::size_t conns = 0, reqs = 0;

  // Last: destroyed first (the coroutines it still holds refer to the members above).
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::vector<std::thread> threads;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket s) {
      if (!acceptor.is_open()) return;
      if (ec) {
        // Out of descriptors (a benchmark's many calls) or the like: retry a little later.
        accept_retry.expires_after(std::chrono::milliseconds(20));
        accept_retry.async_wait([this](beast::error_code) { accept(); });
        return;
      }
      if (opt.no_delay) {
        beast::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
      }
      std::size_t id = 0;
      {
        std::lock_guard lock(mu);
        id = conns++;
      }
      cv.notify_all();
      auto ex = s.get_executor();
      asio::co_spawn(ex, serve(std::move(s), id), asio::detached);
      accept();
    });
  }

  asio::awaitable<void> serve(tcp::socket s, std::size_t id) {
    if (!tls) {
      co_await session(s, id);
      co_return;
    }
    ssl::stream<tcp::socket> stream(std::move(s), *tls);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    co_await session(stream, id);
  }

  // -- transport helpers --

  static tcp::socket& lowest(tcp::socket& s) { return s; }
  static tcp::socket& lowest(ssl::stream<tcp::socket>& s) { return s.next_layer(); }

  static void drop(tcp::socket& s) {
    beast::error_code ignored;
    s.shutdown(tcp::socket::shutdown_both, ignored);
    s.close(ignored);
  }

  static asio::awaitable<void> close_gracefully(tcp::socket& s) {
    beast::error_code ignored;
    s.shutdown(tcp::socket::shutdown_send, ignored);
    s.close(ignored);
    co_return;
  }
  static asio::awaitable<void> close_gracefully(ssl::stream<tcp::socket>& s) {
    // close_notify, waiting at most 500 ms for the peer's (mock).
    // `done` keeps a timer completion already queued from touching a stream that is gone.
    auto done = std::make_shared<bool>(false);
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(500));
    t.async_wait([&s, done](beast::error_code ec) {
      if (!ec && !*done) drop(s.next_layer());
    });
    co_await s.async_shutdown(asio::as_tuple(asio::use_awaitable));
    *done = true;
    t.cancel();
    drop(s.next_layer());
  }

  template <class Stream>
  static asio::awaitable<bool> send(Stream& s, const std::string& bytes) {
    auto [ec, n] =
        co_await asio::async_write(s, asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  }

  static asio::awaitable<void> sleep_ms(int ms) {
    if (ms <= 0) co_return;
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  static std::string head(int status, std::string_view content_type, std::size_t length,
                          bool chunked, bool keep, std::string_view extra = {}) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " +
                    std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\r\n";
    if (!content_type.empty()) h += "Content-Type: " + std::string(content_type) + "\r\n";
    if (chunked)
      h += "Transfer-Encoding: chunked\r\n";
    else if (length != kCloseDelimited)
      h += "Content-Length: " + std::to_string(length) + "\r\n";
    h += extra;
    if (!keep) h += "Connection: close\r\n";
    return h + "\r\n";
  }

  template <class Stream>
  static asio::awaitable<bool> answer(Stream& s, int status, std::string_view content_type,
                                      const std::string& body, bool keep,
                                      std::string_view extra = {}) {
    co_return co_await send(s, head(status, content_type, body.size(), false, keep, extra) + body);
  }

  /// A body of unknown length ends with the connection (HTTP/1.0 knows no chunked coding).
  static constexpr std::size_t kCloseDelimited = std::string::npos;

  /// A streamed body's header: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
  static std::string streamed_head(std::string_view content_type, bool http11, bool keep) {
    return http11 ? head(200, content_type, 0, true, keep)
                  : head(200, content_type, kCloseDelimited, false, false);
  }

  /// One piece of a streamed body (an HTTP/1.1 chunk).
  static std::string piece(std::string_view payload, bool http11) {
    if (!http11) return std::string(payload);
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
    return std::string(size) + std::string(payload) + "\r\n";
  }

  /// What ends a streamed body (an HTTP/1.0 one ends with the connection).
  static std::string last_piece(bool http11) { return http11 ? "0\r\n\r\n" : ""; }

  // -- the connection --

  template <class Stream>
  asio::awaitable<void> session(Stream& s, std::size_t id) {
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<CappedBody> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(std::uint64_t{kHardBodyBytes});
      auto [ec, n] =
          co_await http::async_read_header(s, buf, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        if (!co_await send(s, "HTTP/1.1 100 Continue\r\n\r\n")) break;
      }
      std::tie(ec, n) =
          co_await http::async_read(s, buf, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) break;  // a broken request, or past kHardBodyBytes: closed without an answer
      Request req = parser.release();
      {
        std::lock_guard lock(mu);
        ++reqs;
      }
      const After after = co_await route(s, req, id);
      if (after == After::drop) {
        drop(lowest(s));
        co_return;
      }
      if (after == After::close || !req.keep_alive()) {
        co_await close_gracefully(s);
        co_return;
      }
    }
    drop(lowest(s));
  }

  template <class Stream>
  asio::awaitable<After> route(Stream& s, Request& req, std::size_t id) {
    const bool keep = req.keep_alive();
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const bool known = path == kTranscriptionsPath || path == kSpeechPath;
    if (!known) {
      // reference: the service's newer wording for an unknown URL.
      const std::string body =
          error_json("Unknown request URL: " + std::string(req.method_string()) + " " + path +
                         ". Please check the URL for typos, or see the docs at "
                         "https://platform.openai.com/docs/api-reference/.",
                     "invalid_request_error", "", "unknown_url");
      co_return co_await answer(s, 404, "application/json", body, keep) && keep ? After::keep
                                                                                : After::close;
    }
    if (req.method() != http::verb::post) {
      // mock: 405 with Allow (the service's answer to another method is not documented).
      const std::string body = error_json("Method " + std::string(req.method_string()) +
                                              " is not allowed on " + path + "; use POST.",
                                          "invalid_request_error", "", "method_not_allowed");
      co_return co_await answer(s, 405, "application/json", body, keep, "Allow: POST\r\n") && keep
          ? After::keep
          : After::close;
    }
    if (path == kTranscriptionsPath) co_return co_await transcription(s, req, id, keep);
    co_return co_await speech(s, req, id, keep);
  }

  // -- POST /v1/audio/transcriptions --

  /// The checks, in the mock's order (the service's order is not documented): size, key,
  /// model, file, its name, response_format, temperature, the audio.
  std::optional<Refusal> check_transcription(const Request& req, const std::vector<Part>& parts,
                                             const Transcription& t, bool wav_ok) const {
    if (req.body().size > kMaxBodyBytes) return too_large(req.body().size);  // mock: first
    if (bearer_key(t.authorization) != opt.api_key) return unauthorized(t.authorization);
    const auto field = [&t](const char* k) -> const std::string* {
      const auto it = t.fields.find(k);
      return it == t.fields.end() ? nullptr : &it->second;
    };
    const std::string* model = field("model");
    if (model == nullptr || model->empty()) return no_model();
    const SttFamily family = stt_family(*model);
    if (family == SttFamily::none) return unknown_model(*model);
    const Part* file = nullptr;
    for (const auto& p : parts)
      if (p.name == "file") file = &p;
    if (file == nullptr) {
      // reference (openai-api-rs#91): the service's pydantic text.
      return invalid(
          "1 validation error for Request\nbody -> file\n  field required "
          "(type=value_error.missing)");
    }
    if (!file->has_filename) {
      // reference (https://github.com/SevaSk/ecoute/issues/114): a text field named `file`.
      return invalid(
          "1 validation error for Request\nbody -> file\n  Expected UploadFile, "
          "received: <class 'str'> (type=value_error)");
    }
    const auto dot = file->filename.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : lower(file->filename.substr(dot + 1));
    static const std::vector<std::string> kFormats = {"flac", "m4a", "mp3", "mp4", "mpeg",
                                                      "mpga", "oga", "ogg", "wav", "webm"};
    if (std::find(kFormats.begin(), kFormats.end(), ext) == kFormats.end()) {
      return invalid(
          "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', "
          "'oga', 'ogg', 'wav', 'webm']");
    }
    const std::string* rf = field("response_format");
    const std::string format = rf == nullptr ? "json" : *rf;
    static const std::vector<std::string> kResponseFormats = {
        "json", "text", "srt", "verbose_json", "vtt", "diarized_json"};
    if (std::find(kResponseFormats.begin(), kResponseFormats.end(), format) ==
        kResponseFormats.end()) {
      // mock: the wording of the service's enum errors elsewhere.
      return invalid("Invalid value: '" + format +
                         "'. Supported values are: 'json', 'text', 'srt', 'verbose_json', 'vtt', "
                         "and 'diarized_json'.",
                     "response_format", "invalid_value");
    }
    if (format == "diarized_json") {
      return invalid("The mock does not produce 'diarized_json'.", "response_format",
                     "unsupported_value");  // mock: a limitation
    }
    if (family == SttFamily::gpt && format != "json" && format != "text") {
      // reference (openai-dotnet#401, freeflow#218)
      return invalid("response_format '" + format + "' is not compatible with model '" + *model +
                         "'. Use 'json' or 'text' instead.",
                     "response_format", "unsupported_value");
    }
    if (const std::string* temp = field("temperature")) {
      double v = 0;
      if (!parse_number(*temp, v)) {
        return invalid(
            "Invalid type for 'temperature': expected a decimal, but got a string "
            "instead.",
            "temperature", "invalid_type");  // mock wording
      }
      if (v < 0 || v > 1) {
        return invalid(std::string("Invalid 'temperature': decimal ") +
                           (v < 0 ? "below minimum value. Expected a value >= 0"
                                  : "above maximum value. Expected a value <= 1") +
                           ", but got " + *temp + " instead.",
                       "temperature",
                       v < 0 ? "decimal_below_min_value" : "decimal_above_max_value");  // mock
      }
    }
    if (!wav_ok) {
      // reference (ADeus#60); param and code: mock (null, as the service's format error has).
      return invalid("The audio file could not be decoded or its format is not supported.");
    }
    const std::size_t frames = t.samples.size() / static_cast<std::size_t>(t.wav_channels);
    if (frames * 10 < static_cast<std::size_t>(t.wav_rate)) {
      // reference (https://github.com/UpstreetAI/usdk/issues/637)
      return invalid("Audio file is too short. Minimum audio length is 0.1 seconds.", "file",
                     "audio_too_short");
    }
    return std::nullopt;
  }

  /// The 200 answer: content type and body, or the events when streamed.
  struct SttAnswer {
    std::string content_type;
    std::string body;                 // not streamed
    std::vector<std::string> events;  // streamed: each `data: ...\n\n`
  };

  SttAnswer transcription_answer(const Transcription& t, const std::vector<Part>& parts,
                                 const std::string& text) const {
    const std::string model = t.fields.at("model");
    const SttFamily family = stt_family(model);
    const auto get = [&t](const char* k) {
      const auto it = t.fields.find(k);
      return it == t.fields.end() ? std::string() : it->second;
    };
    std::string format = get("response_format");
    if (format.empty()) format = "json";
    const bool stream = family == SttFamily::gpt && lower(get("stream")) == "true";
    bool logprobs = false;
    for (const auto& p : parts)
      if ((p.name == "include[]" || p.name == "include") && p.data == "logprobs") logprobs = true;
    logprobs = logprobs && family == SttFamily::gpt;  // reference: gpt-4o models only

    const std::size_t frames = t.samples.size() / static_cast<std::size_t>(t.wav_channels);
    const auto rate = static_cast<std::size_t>(t.wav_rate);
    const std::int64_t duration_ms = static_cast<std::int64_t>(frames * 1000 / rate);
    const double duration = static_cast<double>(frames) / static_cast<double>(rate);

    json::object usage;
    if (family == SttFamily::whisper) {
      usage["type"] = "duration";
      usage["seconds"] = static_cast<std::int64_t>((frames + rate - 1) / rate);
    } else {
      const auto text_tokens = static_cast<std::int64_t>(count_words(get("prompt")));
      const auto audio_tokens = static_cast<std::int64_t>((frames * 10 + rate - 1) / rate);
      const auto output = static_cast<std::int64_t>(count_words(text));
      usage["type"] = "tokens";
      usage["input_tokens"] = text_tokens + audio_tokens;
      usage["input_token_details"] =
          json::object{{"text_tokens", text_tokens}, {"audio_tokens", audio_tokens}};
      usage["output_tokens"] = output;
      usage["total_tokens"] = text_tokens + audio_tokens + output;
    }
    const auto pieces = word_pieces(text);
    const auto logprob = [](const std::string& piece) {
      json::array bytes;
      for (char c : piece)
        bytes.emplace_back(static_cast<std::int64_t>(static_cast<unsigned char>(c)));
      return json::object{{"token", piece}, {"logprob", -0.125}, {"bytes", std::move(bytes)}};
    };

    SttAnswer a;
    if (stream) {
      a.content_type = "text/event-stream; charset=utf-8";
      json::array all;
      for (const auto& piece : pieces) {
        json::object e{{"type", "transcript.text.delta"}, {"delta", piece}};
        if (logprobs) {
          json::array one;
          one.push_back(logprob(piece));
          e["logprobs"] = std::move(one);
          all.push_back(logprob(piece));
        }
        a.events.push_back("data: " + to_text(e) + "\n\n");
      }
      json::object done{{"type", "transcript.text.done"}, {"text", text}};
      if (logprobs) done["logprobs"] = std::move(all);
      done["usage"] = std::move(usage);
      a.events.push_back("data: " + to_text(done) + "\n\n");
      if (opt.stream_done_sentinel) a.events.push_back("data: [DONE]\n\n");
      return a;
    }
    if (format == "text") {
      a.content_type = "text/plain; charset=utf-8";
      a.body = text;  // mock: the text alone, no line end
    } else if (format == "srt") {
      a.content_type = "text/plain; charset=utf-8";
      a.body =
          "1\n" + timestamp(0, ',') + " --> " + timestamp(duration_ms, ',') + "\n" + text + "\n\n";
    } else if (format == "vtt") {
      a.content_type = "text/plain; charset=utf-8";
      a.body = "WEBVTT\n\n" + timestamp(0, '.') + " --> " + timestamp(duration_ms, '.') + "\n" +
               text + "\n\n";
    } else if (format == "verbose_json") {
      a.content_type = "application/json";
      // reference: TranscriptionVerbose's fields; the values are the mock's (one segment
      // spanning the audio, its probabilities fixed).
      json::object seg{{"id", 0},
                       {"seek", 0},
                       {"start", 0.0},
                       {"end", duration},
                       {"text", text},
                       {"tokens", json::array()},
                       {"temperature", 0.0},
                       {"avg_logprob", -0.25},
                       {"compression_ratio", 1.0},
                       {"no_speech_prob", 0.0078125}};
      json::array segments;
      segments.push_back(std::move(seg));
      json::object o;
      o["task"] = "transcribe";
      o["language"] = language_name(get("language"));
      o["duration"] = duration;
      o["text"] = text;
      o["segments"] = std::move(segments);
      o["usage"] = std::move(usage);
      a.body = to_text(std::move(o));
    } else {
      a.content_type = "application/json";
      json::object o{{"text", text}};
      if (logprobs) {
        json::array all;
        for (const auto& piece : pieces) all.push_back(logprob(piece));
        o["logprobs"] = std::move(all);
      }
      o["usage"] = std::move(usage);
      a.body = to_text(o);
    }
    return a;
  }

  template <class Stream>
  asio::awaitable<After> transcription(Stream& s, Request& req, std::size_t id, bool keep) {
    Transcription t;
    t.authorization = std::string(req[http::field::authorization]);
    t.connection = id;
    std::vector<Part> parts;
    if (req.body().size <= kMaxBodyBytes &&
        parse_multipart(std::string(req[http::field::content_type]), req.body().data, parts)) {
      for (const auto& p : parts)
        if (p.name != "file") t.fields[p.name] = p.data;
      for (const auto& p : parts) {
        if (p.name == "file") {
          t.file_name = p.filename;
          t.file_content_type = p.content_type;
          t.file = p.data;
        }
      }
    }
    const bool wav_ok = parse_wav(t.file, t);
    if (!wav_ok) {
      t.wav_rate = t.wav_channels = t.wav_bits = 0;
      t.samples.clear();
    }
    if (auto refusal = check_transcription(req, parts, t, wav_ok)) {
      t.status = refusal->status;
      t.response = refusal->body;
      record(std::move(t));
      co_return co_await answer(s, refusal->status, "application/json", refusal->body, keep) && keep
          ? After::keep
          : After::close;
    }
    TranscriptionScript script;
    {
      std::lock_guard lock(mu);
      if (!tscripts.empty()) {
        script = std::move(tscripts.front());
        tscripts.pop_front();
      }
    }
    std::string error_body;
    SttAnswer a;
    if (script.close_without_answer) {
      t.status = 0;
    } else if (script.status != 200) {
      t.status = script.status;
      error_body = script.error_body.empty()
                       ? default_error(script.status, t.authorization, t.fields["model"])
                       : script.error_body;
      t.response = error_body;
    } else {
      t.status = 200;
      a = transcription_answer(t, parts, script.text);
      t.streamed = !a.events.empty();
      if (t.streamed) {
        for (const auto& e : a.events) t.response += e;
      } else {
        t.response = a.body;
      }
    }
    record(std::move(t));
    co_await sleep_ms(script.delay_ms);
    if (script.close_without_answer) co_return After::drop;
    if (script.status != 200) {
      co_return co_await answer(s, script.status, "application/json", error_body, keep) && keep
          ? After::keep
          : After::close;
    }
    if (a.events.empty()) {
      co_return co_await answer(s, 200, a.content_type, a.body, keep) && keep ? After::keep
                                                                              : After::close;
    }
    const bool http11 = req.version() >= 11;
    if (!co_await send(s, streamed_head(a.content_type, http11, keep))) co_return After::drop;
    for (const auto& e : a.events)
      if (!co_await send(s, piece(e, http11))) co_return After::drop;
    if (!co_await send(s, last_piece(http11))) co_return After::drop;
    co_return keep&& http11 ? After::keep : After::close;
  }

  void record(Transcription t) {
    if (!opt.keep_audio) {
      t.file = {};
      t.samples = {};
      t.response = {};
    }
    {
      std::lock_guard lock(mu);
      trs.push_back(std::move(t));
    }
    cv.notify_all();
  }

  // -- POST /v1/audio/speech --

  std::optional<Refusal> check_speech(const Request& req, Speech& sp, std::string& format) const {
    if (req.body().size > kMaxBodyBytes) return too_large(req.body().size);  // mock: first
    if (bearer_key(sp.authorization) != opt.api_key) return unauthorized(sp.authorization);
    boost::system::error_code ec;
    const json::value v = json::parse(sp.body, ec);
    if (ec || !v.is_object()) {
      // reference (NextChat#4064)
      return invalid(
          "We could not parse the JSON body of your request. (HINT: This likely means you "
          "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but "
          "what was sent was not valid JSON. If you have trouble figuring out how to fix this, "
          "please contact us through our help center at help.openai.com.)");
    }
    const json::object& o = v.as_object();
    // Record what came, whatever its checks say.
    if (const auto* m = o.if_contains("model"); m && m->is_string()) sp.model = m->get_string();
    if (const auto* i = o.if_contains("input"); i && i->is_string()) sp.input = i->get_string();
    if (const auto* x = o.if_contains("voice")) {
      if (x->is_string()) {
        sp.voice = x->get_string();
      } else if (x->is_object()) {
        if (const auto* id = x->as_object().if_contains("id"); id && id->is_string())
          sp.voice = id->get_string();
      }
    }
    if (const auto* f = o.if_contains("response_format"); f && f->is_string())
      sp.response_format = f->get_string();
    if (const auto* n = o.if_contains("instructions"); n && n->is_string())
      sp.instructions = n->get_string();
    if (const auto* sd = o.if_contains("speed"); sd && sd->is_number())
      sp.speed = sd->to_number<double>();

    // The checks (mock's order). reference: model as the service words it on the other
    // endpoints; the rest in the wording of its JSON validation (mock where marked).
    const auto* model = o.if_contains("model");
    if (model == nullptr || !model->is_string() || model->get_string().empty()) return no_model();
    if (!tts_model(sp.model)) return unknown_model(sp.model);
    for (const char* k : {"input", "voice"}) {
      if (o.if_contains(k) == nullptr || o.at(k).is_null()) {
        return invalid("Missing required parameter: '" + std::string(k) + "'.", k,
                       "missing_required_parameter");
      }
    }
    const auto type_error = [](const char* k, const json::value& x, const char* want) {
      return invalid("Invalid type for '" + std::string(k) + "': expected " + want + ", but got " +
                         json_type_name(x) + " instead.",
                     k, "invalid_type");
    };
    if (!o.at("input").is_string()) return type_error("input", o.at("input"), "a string");
    const auto& voice = o.at("voice");
    const bool voice_id = voice.is_object() && voice.as_object().if_contains("id") != nullptr &&
                          voice.as_object().at("id").is_string();
    if (!voice.is_string() && !voice_id) return type_error("voice", voice, "a string");
    const auto too_long = [](const char* k, std::size_t n) {
      return invalid("Invalid '" + std::string(k) +
                         "': string too long. Expected a string with maximum length " +
                         std::to_string(kMaxInputChars) + ", but got a string with length " +
                         std::to_string(n) + " instead.",
                     k, "string_above_max_length");
    };
    const std::size_t chars = code_points(sp.input).size();  // mock: characters = code points
    if (chars == 0) {
      return invalid(
          "Invalid 'input': empty string. Expected a string with minimum length 1, "
          "but got an empty string instead.",
          "input", "empty_string");  // mock wording
    }
    if (chars > kMaxInputChars) return too_long("input", chars);
    if (const auto* n = o.if_contains("instructions"); n && !n->is_null()) {
      if (!n->is_string()) return type_error("instructions", *n, "a string");
      const std::size_t len = code_points(sp.instructions).size();
      if (len > kMaxInputChars) return too_long("instructions", len);
      // mock: instructions sent to tts-1 / tts-1-hd (the reference: "Does not work") are
      // recorded and ignored.
    }
    format = "mp3";  // reference: the default
    if (const auto* f = o.if_contains("response_format"); f && !f->is_null()) {
      if (!f->is_string()) return type_error("response_format", *f, "a string");
      format = sp.response_format;
    }
    static const std::vector<std::string> kFormats = {"mp3", "opus", "aac", "flac", "wav", "pcm"};
    if (std::find(kFormats.begin(), kFormats.end(), format) == kFormats.end()) {
      return invalid("Invalid value: '" + format +
                         "'. Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav', and "
                         "'pcm'.",
                     "response_format", "invalid_value");
    }
    if (format != "pcm" && format != "wav") {
      return invalid("The mock produces only 'pcm' and 'wav' audio; '" + format +
                         "' was asked (the service's default is 'mp3').",
                     "response_format", "unsupported_value");  // mock: a limitation
    }
    if (const auto* sd = o.if_contains("speed"); sd && !sd->is_null()) {
      if (!sd->is_number()) return type_error("speed", *sd, "a decimal");
      const double x = sd->to_number<double>();
      if (x < 0.25 || x > 4.0) {
        return invalid(std::string("Invalid 'speed': decimal ") +
                           (x < 0.25 ? "below minimum value. Expected a value >= 0.25"
                                     : "above maximum value. Expected a value <= 4.0") +
                           ", but got " + shown(*sd) + " instead.",
                       "speed", x < 0.25 ? "decimal_below_min_value" : "decimal_above_max_value");
      }
    }
    if (const auto* sf = o.if_contains("stream_format"); sf && !sf->is_null()) {
      const std::string f = sf->is_string() ? std::string(sf->get_string()) : shown(*sf);
      if (f != "sse" && f != "audio") {
        return invalid("Invalid value: '" + f + "'. Supported values are: 'sse' and 'audio'.",
                       "stream_format", "invalid_value");
      }
      if (f == "sse") {
        return invalid("The mock streams raw audio only (stream_format 'audio').", "stream_format",
                       "unsupported_value");  // mock: a limitation
      }
    }
    return std::nullopt;
  }

  template <class Stream>
  asio::awaitable<After> speech(Stream& s, Request& req, std::size_t id, bool keep) {
    Speech sp;
    sp.authorization = std::string(req[http::field::authorization]);
    sp.connection = id;
    if (req.body().size <= kMaxBodyBytes) sp.body = req.body().data;
    std::string format;
    const auto refusal = check_speech(req, sp, format);
    SpeechScript script;
    if (refusal) {
      script.status = refusal->status;
      script.error_body = refusal->body;
    } else {
      std::lock_guard lock(mu);
      if (!sscripts.empty()) {
        script = std::move(sscripts.front());
        sscripts.pop_front();
      }
    }
    sp.status = script.status;
    if (script.status != 200 && script.error_body.empty())
      script.error_body = default_error(script.status, sp.authorization, sp.model);
    std::size_t index = 0;
    {
      std::lock_guard lock(mu);
      index = sps.size();
      sps.push_back(sp);
      sp_ended.push_back(false);
    }
    cv.notify_all();
    const After after =
        co_await speak(s, script, format, sp.input, index, req.version() >= 11, keep);
    {
      std::lock_guard lock(mu);
      sp_ended[index] = true;
    }
    cv.notify_all();
    co_return after;
  }

  template <class Stream>
  asio::awaitable<After> speak(Stream& s, const SpeechScript& script, const std::string& format,
                               const std::string& input, std::size_t index, bool http11,
                               bool keep) {
    co_await sleep_ms(script.first_byte_delay_ms);
    if (script.status != 200) {
      const bool ok =
          co_await answer(s, script.status, "application/json", script.error_body, keep);
      {
        std::lock_guard lock(mu);
        sps[index].completed = ok;
      }
      co_return ok&& keep ? After::keep : After::close;
    }
    std::string audio = speech_pcm(input);
    if (format == "wav") audio = wav_header(audio.size()) + audio;
    // mock: the media types of the formats it makes (the service's own for pcm is not
    // documented).
    const char* type = format == "wav" ? "audio/wav" : "audio/pcm";
    if (!co_await send(s, streamed_head(type, http11, keep))) co_return After::drop;
    const std::size_t limit =
        script.close_mid_body ? (audio.size() / 2) & ~std::size_t{1} : audio.size();
    const std::size_t step =
        script.chunk_bytes > 0 ? static_cast<std::size_t>(script.chunk_bytes) : audio.size();
    for (std::size_t off = 0; off < limit; off += step) {
      if (off > 0) co_await sleep_ms(script.chunk_delay_ms);
      const std::size_t n = std::min(step, limit - off);
      if (!co_await send(s, piece(std::string_view(audio).substr(off, n), http11)))
        co_return After::drop;
      std::lock_guard lock(mu);
      sps[index].audio_bytes_sent += n;
    }
    if (script.close_mid_body) co_return After::drop;
    if (!co_await send(s, last_piece(http11))) co_return After::drop;
    {
      std::lock_guard lock(mu);
      sps[index].completed = true;
    }
    co_return keep&& http11 ? After::keep : After::close;
  }
};

// ---- the public face ----

MockOpenAiSpeech::MockOpenAiSpeech(Options o) : impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  m.opt = std::move(o);
  m.acceptor.open(tcp::v4());
  m.acceptor.set_option(tcp::acceptor::reuse_address(true));
  m.acceptor.bind({asio::ip::make_address("127.0.0.1"), m.opt.port});
  m.acceptor.listen(asio::socket_base::max_listen_connections);
  m.port = m.acceptor.local_endpoint().port();
  if (m.opt.tls) {
    const auto [cert, key] = self_signed(m.opt.cert_host);
    m.tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    m.tls->use_certificate_chain(asio::buffer(cert));
    m.tls->use_private_key(asio::buffer(key), ssl::context::pem);
    m.ca_file = (std::filesystem::temp_directory_path() /
                 ("vb_mock_openai_speech_ca_" + std::to_string(m.port) + ".pem"))
                    .string();
    std::ofstream(m.ca_file) << cert;
  }
  m.work.emplace(m.io.get_executor());
  m.accept();
  for (int i = 0; i < std::max(1, m.opt.threads); ++i) m.threads.emplace_back([&m] { m.io.run(); });
}

MockOpenAiSpeech::~MockOpenAiSpeech() {
  auto& m = *impl_;
  asio::post(m.io, [&m] {
    beast::error_code ec;
    m.acceptor.close(ec);
    m.accept_retry.cancel();
  });
  m.work.reset();
  m.io.stop();
  for (auto& t : m.threads) t.join();
  if (!m.ca_file.empty()) {
    std::error_code ec;
    std::filesystem::remove(m.ca_file, ec);
  }
}

std::string MockOpenAiSpeech::base_url() const {
  return (impl_->tls ? "https://" + impl_->opt.cert_host : std::string("http://127.0.0.1")) + ":" +
         std::to_string(impl_->port) + "/v1";
}

std::uint16_t MockOpenAiSpeech::port() const {
  return impl_->port;
}

std::string MockOpenAiSpeech::ca_file() const {
  return impl_->ca_file;
}

const std::string& MockOpenAiSpeech::api_key() const {
  return impl_->opt.api_key;
}

void MockOpenAiSpeech::script_transcription(TranscriptionScript s) {
  std::lock_guard lock(impl_->mu);
  impl_->tscripts.push_back(std::move(s));
}

void MockOpenAiSpeech::script_speech(SpeechScript s) {
  std::lock_guard lock(impl_->mu);
  impl_->sscripts.push_back(std::move(s));
}

std::vector<MockOpenAiSpeech::Transcription> MockOpenAiSpeech::transcriptions() const {
  std::lock_guard lock(impl_->mu);
  return impl_->trs;
}

std::vector<MockOpenAiSpeech::Speech> MockOpenAiSpeech::speeches() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sps;
}

std::size_t MockOpenAiSpeech::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->conns;
}

std::size_t MockOpenAiSpeech::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->reqs;
}

bool MockOpenAiSpeech::wait_transcriptions(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->trs.size() >= n; });
}

bool MockOpenAiSpeech::wait_speeches(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->sps.size() >= n; });
}

bool MockOpenAiSpeech::wait_speech_done(std::size_t i, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout,
                            [&] { return i < impl_->sp_ended.size() && impl_->sp_ended[i]; });
}

std::vector<std::int16_t> MockOpenAiSpeech::speech_audio(std::string_view input) {
  constexpr std::size_t per = kSpeechRate / 1000 * kMsPerCharacter;
  std::vector<std::int16_t> out;
  const auto cps = code_points(input);
  out.reserve(cps.size() * per);
  for (const std::uint32_t cp : cps) {
    const double f = 300.0 + 20.0 * static_cast<double>(cp % 64);
    for (std::size_t n = 0; n < per; ++n) {
      out.push_back(static_cast<std::int16_t>(std::lround(
          8000.0 * std::sin(6.283185307179586 * f * static_cast<double>(n) / kSpeechRate))));
    }
  }
  return out;
}

std::string MockOpenAiSpeech::speech_pcm(std::string_view input) {
  const auto samples = speech_audio(input);
  std::string out;
  out.reserve(samples.size() * 2);
  for (const auto v : samples) {
    const auto u = static_cast<std::uint16_t>(v);
    out += static_cast<char>(u & 0xFF);
    out += static_cast<char>(u >> 8);
  }
  return out;
}

std::string MockOpenAiSpeech::masked_key(std::string_view key) {
  // reference: the first 8 and the last 4 characters, a '*' for each one between
  // (sk-4sJHr***...w8ZP, 51 characters, 39 stars); a 7-character key shown whole. mock: 12
  // characters or fewer are shown whole.
  if (key.size() <= 12) return std::string(key);
  return std::string(key.substr(0, 8)) + std::string(key.size() - 12, '*') +
         std::string(key.substr(key.size() - 4));
}

std::string MockOpenAiSpeech::error_json(std::string_view message, std::string_view type,
                                         std::string_view param, std::string_view code) {
  // reference: the service's error bodies are printed with 4-space indentation and a final line
  // end (as seen raw, e.g. https://github.com/chatboxai/chatbox/issues/98).
  const auto str = [](std::string_view v) {
    return v.empty() ? std::string("null") : json::serialize(json::string(v));
  };
  return "{\n    \"error\": {\n        \"message\": " + json::serialize(json::string(message)) +
         ",\n        \"type\": " + str(type) + ",\n        \"param\": " + str(param) +
         ",\n        \"code\": " + str(code) + "\n    }\n}\n";
}

}  // namespace voxbridge::testing
