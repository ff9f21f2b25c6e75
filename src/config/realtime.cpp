// [realtime-NAME]: an OpenAI Realtime (or Azure OpenAI Realtime) backend for s2s agents
// (`realtime = NAME`), one table of keys.
#include <cstdlib>

#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using realtime_openai::RealtimeOptions;

double parse_fraction(W w, V v) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || d < 0 || d > 1) w.fail("'" + v + "' is not 0 to 1");
  return d;
}

const Key<RealtimeOptions> kRealtime[] = {
    {"url",
     [](RealtimeOptions& o, W w, V v) {
       if (v.rfind("wss://", 0) != 0 && v.rfind("ws://", 0) != 0) {
         w.fail("'" + v + "' is not a wss:// (or ws://) URL");
       }
       if (v.find('?') != std::string::npos) w.fail("'" + v + "': give the model with model =");
       o.url = v;
     }},
    {"model", [](RealtimeOptions& o, W, V v) { o.model = v; }},
    {"azure", [](RealtimeOptions& o, W w, V v) { o.azure = parse_bool(w, v); }},
    {"api_version", [](RealtimeOptions& o, W, V v) { o.api_version = v; }},
    {"api_key",
     [](RealtimeOptions& o, W w, V v) {
       // A key written into the file ends up in backups and tickets: only references.
       if (v.find("${") == std::string::npos) {
         w.fail("give the key as ${NAME} (environment) or ${file:PATH}, not in the file");
       }
       o.api_key = expand_env(w, v);
     }},
    {"ca_file", [](RealtimeOptions& o, W, V v) { o.ca_file = v; }},
    {"instructions", [](RealtimeOptions& o, W, V v) { o.instructions = v; }},
    {"voice", [](RealtimeOptions& o, W, V v) { o.voice = v; }},
    {"turn_detection",
     [](RealtimeOptions& o, W w, V v) {
       one_of(w, v, {"server_vad", "semantic_vad", "none"});
       o.turn_detection = v;
     }},
    {"vad_threshold", [](RealtimeOptions& o, W w, V v) { o.vad_threshold = parse_fraction(w, v); }},
    {"vad_prefix_padding_ms",
     [](RealtimeOptions& o, W w, V v) { o.vad_prefix_padding_ms = parse_small(w, v, 0, 5000); }},
    {"vad_silence_ms",
     [](RealtimeOptions& o, W w, V v) { o.vad_silence_ms = parse_small(w, v, 100, 10000); }},
    {"vad_eagerness",
     [](RealtimeOptions& o, W w, V v) {
       one_of(w, v, {"low", "medium", "high", "auto"});
       o.vad_eagerness = v;
     }},
    {"transcription_model", [](RealtimeOptions& o, W, V v) { o.transcription_model = v; }},
    {"transcription_language", [](RealtimeOptions& o, W, V v) { o.transcription_language = v; }},
    {"greeting", [](RealtimeOptions& o, W w, V v) { o.greeting = parse_bool(w, v); }},
    {"greeting_instructions", [](RealtimeOptions& o, W, V v) { o.greeting_instructions = v; }},
    {"tools", [](RealtimeOptions& o, W w, V v) { o.tools = parse_bool(w, v); }},
    {"append_ms", [](RealtimeOptions& o, W w, V v) { o.append_ms = parse_small(w, v, 20, 200); }},
    {"max_output_tokens",
     [](RealtimeOptions& o, W w, V v) { o.max_output_tokens = parse_small(w, v, 0, 4096); }},
    {"max_sessions",
     [](RealtimeOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
    {"max_call_s",
     [](RealtimeOptions& o, W w, V v) { o.max_call_duration = parse_s(w, v, 0, 24 * 3600); }},
    {"max_call_tokens",
     [](RealtimeOptions& o, W w, V v) {
       o.max_call_tokens = static_cast<std::uint64_t>(parse_int(w, v, 0, 1000000000));
     }},
    {"goodbye", [](RealtimeOptions& o, W, V v) { o.goodbye = v; }},
    {"connect_timeout_ms",
     [](RealtimeOptions& o, W w, V v) { o.connect_timeout = parse_ms(w, v, 100, 60000); }},
    {"idle_timeout_ms",
     [](RealtimeOptions& o, W w, V v) { o.idle_timeout = parse_ms(w, v, 0, 3600000); }},
    {"reconnect", [](RealtimeOptions& o, W w, V v) { o.reconnect = parse_bool(w, v); }},
    {"threads", [](RealtimeOptions& o, W w, V v) { o.threads = parse_small(w, v, 1, 64); }},
};

}  // namespace

void set_realtime(RealtimeOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kRealtime, o, w, v)) w.fail("unknown option");
}

void finish_realtime(RealtimeOptions& o, const Where& w) {
  if (!o.api_key.empty()) return;
  // The usual environment variable, read only for a backend that is used.
  const char* env = o.azure ? "AZURE_OPENAI_API_KEY" : "OPENAI_API_KEY";
  const char* key = std::getenv(env);
  if (key == nullptr || *key == '\0') {
    w.fail(std::string("no API key: set ") + env + " or api_key = ${NAME} in [realtime-" + o.name +
           "]");
  }
  o.api_key = key;
}

}  // namespace voxbridge::config::detail

namespace voxbridge::config {

realtime_openai::RealtimeOptions realtime_backend(const Config& c, const std::string& name) {
  realtime_openai::RealtimeOptions o;
  o.name = name;
  const auto it = c.realtime.find(name);
  if (it != c.realtime.end()) {
    o = it->second;
  } else if (name != "openai") {
    throw ConfigError(c.source + ": no [realtime-" + name + "] section");
  }
  detail::finish_realtime(o, detail::Where{c.source, 0, "realtime-" + name, "api_key"});
  return o;
}

}  // namespace voxbridge::config
