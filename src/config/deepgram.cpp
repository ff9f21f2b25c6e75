// [deepgram-NAME]: a Deepgram streaming recognizer for pipeline agents (`asr = NAME`), one table
// of keys.
#include <cstdlib>

#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using asr_deepgram::DeepgramOptions;

const Key<DeepgramOptions> kDeepgram[] = {
    {"url",
     [](DeepgramOptions& o, W w, V v) {
       if (v.rfind("wss://", 0) != 0 && v.rfind("ws://", 0) != 0) {
         w.fail("'" + v + "' is not a wss:// (or ws://) URL");
       }
       if (v.find('?') != std::string::npos)
         w.fail("'" + v + "': the options have keys of their own");
       o.url = v;
     }},
    {"api_key",
     [](DeepgramOptions& o, W w, V v) {
       // A key written into the file ends up in backups and tickets: only references.
       if (v.find("${") == std::string::npos) {
         w.fail("give the key as ${NAME} (environment) or ${file:PATH}, not in the file");
       }
       o.api_key = expand_env(w, v);
     }},
    {"model", [](DeepgramOptions& o, W, V v) { o.model = v; }},
    {"language", [](DeepgramOptions& o, W, V v) { o.language = v; }},
    {"endpointing_ms",
     [](DeepgramOptions& o, W w, V v) { o.endpointing = parse_ms(w, v, 0, 10000); }},
    {"utterance_end_ms",
     [](DeepgramOptions& o, W w, V v) {
       o.utterance_end = parse_ms(w, v, 0, 5000);
       if (o.utterance_end.count() != 0 && o.utterance_end.count() < 1000) {
         w.fail("Deepgram takes 1000 ms or more (0 = off)");
       }
     }},
    {"smart_format", [](DeepgramOptions& o, W w, V v) { o.smart_format = parse_bool(w, v); }},
    {"vad_events", [](DeepgramOptions& o, W w, V v) { o.vad_events = parse_bool(w, v); }},
    {"keepalive_ms", [](DeepgramOptions& o, W w, V v) { o.keepalive = parse_ms(w, v, 500, 9000); }},
    {"linger_ms", [](DeepgramOptions& o, W w, V v) { o.linger = parse_ms(w, v, 0, 600000); }},
    {"finalize_timeout_ms",
     [](DeepgramOptions& o, W w, V v) { o.finalize_timeout = parse_ms(w, v, 100, 30000); }},
    {"connect_timeout_ms",
     [](DeepgramOptions& o, W w, V v) { o.connect_timeout = parse_ms(w, v, 100, 60000); }},
    {"ca_file", [](DeepgramOptions& o, W, V v) { o.ca_file = v; }},
    {"threads", [](DeepgramOptions& o, W w, V v) { o.threads = parse_small(w, v, 1, 64); }},
    {"max_sessions",
     [](DeepgramOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
};

}  // namespace

void set_deepgram(DeepgramOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kDeepgram, o, w, v)) w.fail("unknown option");
}

void finish_deepgram(DeepgramOptions& o, const Where& w) {
  if (!o.api_key.empty()) return;
  const char* key = std::getenv("DEEPGRAM_API_KEY");
  if (key == nullptr || *key == '\0') {
    w.fail("no API key: set DEEPGRAM_API_KEY or api_key = ${NAME} in [deepgram-" + o.name + "]");
  }
  o.api_key = key;
}

void finish_pipeline_keys(Config& c, const pipeline::PipelineSpec& p, const std::string& source) {
  if (p.asr.backend.rfind("deepgram:", 0) == 0) {
    auto& o = c.deepgram.at(p.asr.name);
    finish_deepgram(o, Where{source, 0, "deepgram-" + o.name, "api_key"});
  }
  if (p.tts.backend.rfind("elevenlabs:", 0) == 0) {
    auto& o = c.elevenlabs.at(p.tts.name);
    finish_elevenlabs(o, Where{source, 0, "elevenlabs-" + o.name, "api_key"});
  }
}

}  // namespace voxbridge::config::detail

namespace voxbridge::config {

asr_deepgram::DeepgramOptions deepgram_backend(const Config& c, const std::string& name) {
  asr_deepgram::DeepgramOptions o;
  o.name = name;
  const auto it = c.deepgram.find(name);
  if (it != c.deepgram.end()) {
    o = it->second;
  } else if (name != "deepgram") {
    throw ConfigError(c.source + ": no [deepgram-" + name + "] section");
  }
  detail::finish_deepgram(o, detail::Where{c.source, 0, "deepgram-" + name, "api_key"});
  return o;
}

}  // namespace voxbridge::config
