// [gemini-NAME]: a Gemini Live backend for s2s agents (`gemini = NAME`), one table of keys.
// A section family of its own rather than a `type =` in [realtime-NAME]: the two services share
// few keys (no turn_detection types, transcription models or Azure here; voices, VAD
// sensitivities and resumption there), and each family's table stays checkable on its own.
#include <cstdlib>

#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using realtime_gemini::GeminiOptions;

const Key<GeminiOptions> kGemini[] = {
    {"url",
     [](GeminiOptions& o, W w, V v) {
       if (v.rfind("wss://", 0) != 0 && v.rfind("ws://", 0) != 0) {
         w.fail("'" + v + "' is not a wss:// (or ws://) URL");
       }
       if (v.find('?') != std::string::npos) w.fail("'" + v + "': no query (the key is api_key)");
       o.url = v;
     }},
    {"model", [](GeminiOptions& o, W, V v) { o.model = v; }},
    {"api_key",
     [](GeminiOptions& o, W w, V v) {
       // A key written into the file ends up in backups and tickets: only references.
       if (v.find("${") == std::string::npos) {
         w.fail("give the key as ${NAME} (environment) or ${file:PATH}, not in the file");
       }
       o.api_key = expand_env(w, v);
     }},
    {"api_key_in",
     [](GeminiOptions& o, W w, V v) {
       one_of(w, v, {"header", "query"});
       o.key_in_query = v == "query";
     }},
    {"ca_file", [](GeminiOptions& o, W, V v) { o.ca_file = v; }},
    {"instructions", [](GeminiOptions& o, W, V v) { o.instructions = v; }},
    {"voice", [](GeminiOptions& o, W, V v) { o.voice = v; }},
    {"language", [](GeminiOptions& o, W, V v) { o.language = v; }},
    {"turn_detection",
     [](GeminiOptions& o, W w, V v) {
       one_of(w, v, {"auto", "none"});
       o.turn_detection = v;
     }},
    {"vad_start_sensitivity",
     [](GeminiOptions& o, W w, V v) {
       one_of(w, v, {"high", "low"});
       o.vad_start_sensitivity = v == "high" ? "START_SENSITIVITY_HIGH" : "START_SENSITIVITY_LOW";
     }},
    {"vad_end_sensitivity",
     [](GeminiOptions& o, W w, V v) {
       one_of(w, v, {"high", "low"});
       o.vad_end_sensitivity = v == "high" ? "END_SENSITIVITY_HIGH" : "END_SENSITIVITY_LOW";
     }},
    {"vad_prefix_padding_ms",
     [](GeminiOptions& o, W w, V v) { o.vad_prefix_padding_ms = parse_small(w, v, 0, 5000); }},
    {"vad_silence_ms",
     [](GeminiOptions& o, W w, V v) { o.vad_silence_ms = parse_small(w, v, 0, 10000); }},
    {"transcription", [](GeminiOptions& o, W w, V v) { o.transcription = parse_bool(w, v); }},
    {"greeting", [](GeminiOptions& o, W w, V v) { o.greeting = parse_bool(w, v); }},
    {"greeting_text", [](GeminiOptions& o, W, V v) { o.greeting_text = v; }},
    {"tools", [](GeminiOptions& o, W w, V v) { o.tools = parse_bool(w, v); }},
    {"append_ms", [](GeminiOptions& o, W w, V v) { o.append_ms = parse_small(w, v, 20, 200); }},
    {"context_compression",
     [](GeminiOptions& o, W w, V v) { o.context_compression = parse_bool(w, v); }},
    {"compression_trigger_tokens",
     [](GeminiOptions& o, W w, V v) {
       o.compression_trigger_tokens = static_cast<std::uint64_t>(parse_int(w, v, 0, 100000000));
     }},
    {"max_sessions",
     [](GeminiOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
    {"max_call_s",
     [](GeminiOptions& o, W w, V v) { o.max_call_duration = parse_s(w, v, 0, 24 * 3600); }},
    {"max_call_tokens",
     [](GeminiOptions& o, W w, V v) {
       o.max_call_tokens = static_cast<std::uint64_t>(parse_int(w, v, 0, 1000000000));
     }},
    {"goodbye", [](GeminiOptions& o, W, V v) { o.goodbye = v; }},
    {"connect_timeout_ms",
     [](GeminiOptions& o, W w, V v) { o.connect_timeout = parse_ms(w, v, 100, 60000); }},
    {"idle_timeout_ms",
     [](GeminiOptions& o, W w, V v) { o.idle_timeout = parse_ms(w, v, 0, 3600000); }},
    {"resume", [](GeminiOptions& o, W w, V v) { o.resume = parse_bool(w, v); }},
    {"max_resumes", [](GeminiOptions& o, W w, V v) { o.max_resumes = parse_small(w, v, 0, 1000); }},
    {"threads", [](GeminiOptions& o, W w, V v) { o.threads = parse_small(w, v, 1, 64); }},
};

}  // namespace

void set_gemini(GeminiOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kGemini, o, w, v)) w.fail("unknown option");
}

void finish_gemini(GeminiOptions& o, const Where& w) {
  if (!o.api_key.empty()) return;
  // The usual environment variable, read only for a backend that is used.
  const char* key = std::getenv("GEMINI_API_KEY");
  if (key == nullptr || *key == '\0') {
    w.fail("no API key: set GEMINI_API_KEY or api_key = ${NAME} in [gemini-" + o.name + "]");
  }
  o.api_key = key;
}

void finish_backend_key(Config& c, const pipeline::SpeechAgentSpec& s, const std::string& source) {
  const std::string& b = s.agent.backend;
  if (b.rfind("gemini:", 0) == 0) {
    auto& o = c.gemini.at(s.agent.name);
    finish_gemini(o, Where{source, 0, "gemini-" + o.name, "api_key"});
  } else if (!b.empty()) {
    auto& o = c.realtime.at(s.agent.name);
    finish_realtime(o, Where{source, 0, "realtime-" + o.name, "api_key"});
  }
}

}  // namespace voxbridge::config::detail

namespace voxbridge::config {

realtime_gemini::GeminiOptions gemini_backend(const Config& c, const std::string& name) {
  realtime_gemini::GeminiOptions o;
  o.name = name;
  const auto it = c.gemini.find(name);
  if (it != c.gemini.end()) {
    o = it->second;
  } else if (name != "google") {
    throw ConfigError(c.source + ": no [gemini-" + name + "] section");
  }
  detail::finish_gemini(o, detail::Where{c.source, 0, "gemini-" + name, "api_key"});
  return o;
}

}  // namespace voxbridge::config
