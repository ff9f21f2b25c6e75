// [elevenlabs-NAME]: an ElevenLabs voice for pipeline agents (`tts = NAME`), one table of keys.
#include <cstdlib>

#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using tts_elevenlabs::ElevenLabsOptions;

double parse_setting(W w, V v, double hi) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || d < 0 || d > hi) {
    w.fail("'" + v + "' is not a number from 0 to " + std::to_string(hi).substr(0, 3));
  }
  return d;
}

const Key<ElevenLabsOptions> kElevenLabs[] = {
    {"url",
     [](ElevenLabsOptions& o, W w, V v) {
       if (v.rfind("wss://", 0) != 0 && v.rfind("ws://", 0) != 0) {
         w.fail("'" + v + "' is not a wss:// (or ws://) URL");
       }
       if (v.find('?') != std::string::npos)
         w.fail("'" + v + "': the options have keys of their own");
       o.url = v;
       while (!o.url.empty() && o.url.back() == '/') o.url.pop_back();
     }},
    {"api_key",
     [](ElevenLabsOptions& o, W w, V v) {
       if (v.find("${") == std::string::npos) {
         w.fail("give the key as ${NAME} (environment) or ${file:PATH}, not in the file");
       }
       o.api_key = expand_env(w, v);
     }},
    {"voice_id", [](ElevenLabsOptions& o, W, V v) { o.voice_id = v; }},
    {"model_id", [](ElevenLabsOptions& o, W, V v) { o.model_id = v; }},
    {"ulaw_8000", [](ElevenLabsOptions& o, W w, V v) { o.ulaw_8000 = parse_bool(w, v); }},
    {"stability", [](ElevenLabsOptions& o, W w, V v) { o.stability = parse_setting(w, v, 1); }},
    {"similarity_boost",
     [](ElevenLabsOptions& o, W w, V v) { o.similarity_boost = parse_setting(w, v, 1); }},
    {"speed", [](ElevenLabsOptions& o, W w, V v) { o.speed = parse_setting(w, v, 1.2); }},
    {"first_chunk_chars",
     [](ElevenLabsOptions& o, W w, V v) { o.first_chunk_chars = parse_small(w, v, 5, 500); }},
    {"connect_timeout_ms",
     [](ElevenLabsOptions& o, W w, V v) { o.connect_timeout = parse_ms(w, v, 100, 60000); }},
    {"ca_file", [](ElevenLabsOptions& o, W, V v) { o.ca_file = v; }},
    {"threads", [](ElevenLabsOptions& o, W w, V v) { o.threads = parse_small(w, v, 1, 64); }},
    {"max_sessions",
     [](ElevenLabsOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
};

}  // namespace

void set_elevenlabs(ElevenLabsOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kElevenLabs, o, w, v)) w.fail("unknown option");
}

void finish_elevenlabs(ElevenLabsOptions& o, const Where& w) {
  if (!o.api_key.empty()) return;
  const char* key = std::getenv("ELEVENLABS_API_KEY");
  if (key == nullptr || *key == '\0') {
    w.fail("no API key: set ELEVENLABS_API_KEY or api_key = ${NAME} in [elevenlabs-" + o.name +
           "]");
  }
  o.api_key = key;
}

}  // namespace voxbridge::config::detail

namespace voxbridge::config {

tts_elevenlabs::ElevenLabsOptions elevenlabs_backend(const Config& c, const std::string& name) {
  tts_elevenlabs::ElevenLabsOptions o;
  o.name = name;
  const auto it = c.elevenlabs.find(name);
  if (it != c.elevenlabs.end()) {
    o = it->second;
  } else if (name != "elevenlabs") {
    throw ConfigError(c.source + ": no [elevenlabs-" + name + "] section");
  }
  detail::finish_elevenlabs(o, detail::Where{c.source, 0, "elevenlabs-" + name, "api_key"});
  return o;
}

}  // namespace voxbridge::config
