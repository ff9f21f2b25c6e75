#include "voxbridge/asr_openai/transcription.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace voxbridge::asr_openai {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxPromptBytes = 800;
constexpr std::size_t kMaxErrorBytes = 200;

void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>(v >> 8));
}

void field(std::string& out, std::string_view name, std::string_view value) {
  if (value.find(kBoundary) != std::string_view::npos) {
    throw std::invalid_argument("the form field " + std::string(name) + " holds the boundary");
  }
  if (value.find_first_of("\r") != std::string_view::npos) {
    throw std::invalid_argument("the form field " + std::string(name) + " holds a CR");
  }
  out += "--";
  out += kBoundary;
  out += "\r\nContent-Disposition: form-data; name=\"";
  out += name;
  out += "\"\r\n\r\n";
  out += value;
  out += "\r\n";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

const json::object* as_object(const json::value* v) {
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}
std::string string_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}
double number_of(const json::object& o, std::string_view key, double fallback) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return fallback;
}

void read_usage(const json::object& o, Transcript& t) {
  const auto* u = as_object(o.if_contains("usage"));
  if (u == nullptr) return;
  const std::string type = string_of(*u, "type");
  if (type == "duration") t.usage_seconds = number_of(*u, "seconds", 0);
  const double in = number_of(*u, "input_tokens", 0);
  const double out = number_of(*u, "output_tokens", 0);
  if (in > 0) t.usage_input_tokens = static_cast<std::uint64_t>(in);
  if (out > 0) t.usage_output_tokens = static_cast<std::uint64_t>(out);
}

}  // namespace

std::string wav_file(std::span<const std::int16_t> samples, int rate_hz) {
  const auto data_bytes = static_cast<std::uint32_t>(samples.size() * 2);
  std::string s;
  s.reserve(44 + data_bytes);
  s += "RIFF";
  put_u32(s, 36 + data_bytes);
  s += "WAVEfmt ";
  put_u32(s, 16);
  put_u16(s, 1);  // PCM
  put_u16(s, 1);  // mono
  put_u32(s, static_cast<std::uint32_t>(rate_hz));
  put_u32(s, static_cast<std::uint32_t>(rate_hz) * 2);
  put_u16(s, 2);
  put_u16(s, 16);
  s += "data";
  put_u32(s, data_bytes);
  for (const std::int16_t v : samples) put_u16(s, static_cast<std::uint16_t>(v));
  return s;
}

TranscriptionRequest make_request(const TranscriptionOptions& o, std::string_view language,
                                  std::span<const std::string> hints) {
  TranscriptionRequest r;
  r.model = o.model;
  r.language = o.language;
  if (r.language.empty()) {
    r.language = std::string(language.substr(0, language.find_first_of("-_")));
    for (auto& c : r.language) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  r.prompt = o.prompt;
  if (r.prompt.empty()) {
    for (const auto& h : hints) {
      if (h.empty() || h.find_first_of("\r\n") != std::string::npos) continue;
      const std::size_t add = h.size() + (r.prompt.empty() ? 0 : 2);
      if (r.prompt.size() + add > kMaxPromptBytes) break;
      if (!r.prompt.empty()) r.prompt += ", ";
      r.prompt += h;
    }
  }
  r.response_format = o.response_format;
  r.stream = o.stream;
  r.temperature = o.temperature;
  return r;
}

std::string multipart_body(const TranscriptionRequest& r, std::string_view wav) {
  std::string out;
  out.reserve(wav.size() + 1024);
  field(out, "model", r.model);
  if (!r.language.empty()) field(out, "language", r.language);
  if (!r.prompt.empty()) field(out, "prompt", r.prompt);
  field(out, "response_format", r.response_format);
  if (r.stream) field(out, "stream", "true");
  if (r.temperature >= 0) field(out, "temperature", number(r.temperature));
  out += "--";
  out += kBoundary;
  out +=
      "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"utterance.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\n";
  out += wav;
  out += "\r\n--";
  out += kBoundary;
  out += "--\r\n";
  return out;
}

std::string multipart_content_type() {
  return "multipart/form-data; boundary=" + std::string(kBoundary);
}

Transcript parse_transcript(std::string_view body, std::string_view content_type,
                            double no_speech_threshold) {
  Transcript t;
  if (content_type.starts_with("text/plain")) {
    t.text = std::string(body);
    while (!t.text.empty() && (t.text.back() == '\n' || t.text.back() == '\r')) t.text.pop_back();
    t.ok = true;
    return t;
  }
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  const auto* o = ec ? nullptr : as_object(&v);
  if (o == nullptr) {
    t.error = "the answer is not a JSON object";
    return t;
  }
  const auto* text = o->if_contains("text");
  if (text == nullptr || !text->is_string()) {
    t.error = "the answer has no \"text\"";
    return t;
  }
  read_usage(*o, t);
  if (const auto* d = o->if_contains("duration"); d != nullptr && t.usage_seconds == 0) {
    t.usage_seconds = number_of(*o, "duration", 0);
  }
  const auto* segs = o->if_contains("segments");
  if (segs == nullptr || !segs->is_array()) {
    t.text = std::string(text->as_string());
    t.ok = true;
    return t;
  }
  // verbose_json: the segments Whisper's own decoder would call silence are left out.
  for (const auto& s : segs->as_array()) {
    const auto* so = as_object(&s);
    if (so == nullptr) continue;
    const double no_speech = number_of(*so, "no_speech_prob", 0);
    const double logprob = number_of(*so, "avg_logprob", 0);
    if (no_speech > no_speech_threshold && logprob < -1.0) {
      ++t.silent_segments;
      continue;
    }
    std::string st = string_of(*so, "text");
    const auto first = st.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    if (!t.text.empty()) t.text += ' ';
    t.text += st.substr(first);
  }
  t.ok = true;
  return t;
}

StreamEvent parse_stream_event(std::string_view data) {
  StreamEvent e;
  boost::system::error_code ec;
  const json::value v = json::parse(data, ec);
  const auto* o = ec ? nullptr : as_object(&v);
  if (o == nullptr) return e;
  const std::string type = string_of(*o, "type");
  if (type == "transcript.text.delta") {
    const auto* d = o->if_contains("delta");
    if (d == nullptr || !d->is_string()) return e;
    e.kind = StreamEvent::Kind::delta;
    e.text = std::string(d->as_string());
  } else if (type == "transcript.text.done") {
    const auto* d = o->if_contains("text");
    if (d == nullptr || !d->is_string()) return e;
    e.kind = StreamEvent::Kind::done;
    e.text = std::string(d->as_string());
    read_usage(*o, e.usage);
  } else {
    e.kind = StreamEvent::Kind::other;
  }
  return e;
}

std::string error_message(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (const auto* o = ec ? nullptr : as_object(&v)) {
    if (const auto* err = as_object(o->if_contains("error"))) {
      std::string m = string_of(*err, "message");
      if (!m.empty()) return m.substr(0, kMaxErrorBytes);
    }
    if (const auto* d = o->if_contains("detail"); d != nullptr && d->is_string()) {
      return std::string(d->as_string()).substr(0, kMaxErrorBytes);  // FastAPI servers
    }
  }
  return std::string(body.substr(0, kMaxErrorBytes));
}

void cap_transcript(std::string& text) {
  if (text.size() <= kMaxTranscriptBytes) return;
  std::size_t n = kMaxTranscriptBytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // not mid-char
  text.resize(n);
}

bool is_empty_transcript(std::string_view text) {
  int depth = 0;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '[' || c == '(') ++depth;
    if (c == ']' || c == ')') depth = depth > 0 ? depth - 1 : 0;
    if (depth == 0 && (std::isalnum(c) || c >= 0x80)) return false;
  }
  return true;
}

std::string normalized(std::string_view text) {
  std::string out;
  bool gap = false;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) {
      if (gap && !out.empty()) out += ' ';
      gap = false;
      out += static_cast<char>(std::tolower(c));
    } else {
      gap = true;
    }
  }
  return out;
}

bool is_known_phrase(std::string_view text, std::span<const std::string> phrases) {
  const std::string n = normalized(text);
  if (n.empty()) return false;
  for (const auto& p : phrases) {
    if (normalized(p) == n) return true;
  }
  return false;
}

}  // namespace voxbridge::asr_openai
