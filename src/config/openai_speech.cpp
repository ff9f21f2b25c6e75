// [transcription-NAME] and [speech-NAME]: an OpenAI-compatible transcription server (`asr =
// NAME`) and speech server (`tts = NAME`) for pipeline agents, one table of keys each.
#include <cstdlib>

#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using asr_openai::TranscriptionOptions;
using tts_openai::SpeechOptions;

double parse_number(W w, V v, double lo, double hi) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(d >= lo && d <= hi)) {
    w.fail("'" + v + "' is not a number from " + std::to_string(lo).substr(0, 4) + " to " +
           std::to_string(hi).substr(0, 4));
  }
  return d;
}

std::string base_url(W w, V v) {
  if (check_http_url(w, v).find('?') != std::string::npos) {
    w.fail("'" + v + "': a query string is not supported here");
  }
  return v;
}

/// A key written into the file ends up in backups and tickets: only references.
std::string api_key(W w, V v) {
  if (v.find("${") == std::string::npos) {
    w.fail("give the key as ${NAME} (environment) or ${file:PATH}, not in the file");
  }
  return expand_env(w, v);
}

const Key<TranscriptionOptions> kTranscription[] = {
    {"base_url", [](TranscriptionOptions& o, W w, V v) { o.base_url = base_url(w, v); }},
    {"api_key", [](TranscriptionOptions& o, W w, V v) { o.api_key = api_key(w, v); }},
    {"model", [](TranscriptionOptions& o, W, V v) { o.model = v; }},
    {"language", [](TranscriptionOptions& o, W, V v) { o.language = v; }},
    {"prompt", [](TranscriptionOptions& o, W, V v) { o.prompt = v; }},
    {"stream", [](TranscriptionOptions& o, W w, V v) { o.stream = parse_bool(w, v); }},
    {"response_format",
     [](TranscriptionOptions& o, W w, V v) {
       one_of(w, v, {"json", "verbose_json"});
       o.response_format = v;
     }},
    {"no_speech_threshold",
     [](TranscriptionOptions& o, W w, V v) { o.no_speech_threshold = parse_number(w, v, 0, 1); }},
    {"temperature",
     [](TranscriptionOptions& o, W w, V v) { o.temperature = parse_number(w, v, 0, 1); }},
    {"min_speech_ms",
     [](TranscriptionOptions& o, W w, V v) { o.min_speech = parse_ms(w, v, 0, 10000); }},
    {"hallucinations", [](TranscriptionOptions& o, W, V v) { o.hallucinations = parse_list(v); }},
    {"hallucination_guard_ms",
     [](TranscriptionOptions& o, W w, V v) { o.hallucination_guard = parse_ms(w, v, 0, 60000); }},
    {"max_utterance_ms",
     [](TranscriptionOptions& o, W w, V v) { o.max_utterance = parse_ms(w, v, 1000, 600000); }},
    {"connect_timeout_ms",
     [](TranscriptionOptions& o, W w, V v) { o.connect_timeout = parse_ms(w, v, 100, 60000); }},
    {"timeout_ms",
     [](TranscriptionOptions& o, W w, V v) { o.timeout = parse_ms(w, v, 100, 300000); }},
    {"ca_file", [](TranscriptionOptions& o, W, V v) { o.ca_file = v; }},
    {"threads", [](TranscriptionOptions& o, W w, V v) { o.threads = parse_small(w, v, 1, 64); }},
    {"max_sessions",
     [](TranscriptionOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
    {"max_idle",
     [](TranscriptionOptions& o, W w, V v) { o.max_idle = parse_size(w, v, 0, 10000); }},
};

const Key<SpeechOptions> kSpeech[] = {
    {"base_url", [](SpeechOptions& o, W w, V v) { o.base_url = base_url(w, v); }},
    {"api_key", [](SpeechOptions& o, W w, V v) { o.api_key = api_key(w, v); }},
    {"model", [](SpeechOptions& o, W, V v) { o.model = v; }},
    {"voice", [](SpeechOptions& o, W, V v) { o.voice = v; }},
    {"instructions", [](SpeechOptions& o, W, V v) { o.instructions = v; }},
    {"speed",
     [](SpeechOptions& o, W w, V v) {
       o.speed = parse_number(w, v, 0, 4);
       if (o.speed != 0 && o.speed < 0.25) w.fail("0.25 to 4.0 (0 = the agent's)");
     }},
    {"sample_rate",
     [](SpeechOptions& o, W w, V v) { o.sample_rate = parse_small(w, v, 8000, 48000); }},
    {"connect_timeout_ms",
     [](SpeechOptions& o, W w, V v) { o.connect_timeout = parse_ms(w, v, 100, 60000); }},
    {"timeout_ms", [](SpeechOptions& o, W w, V v) { o.timeout = parse_ms(w, v, 100, 300000); }},
    {"ca_file", [](SpeechOptions& o, W, V v) { o.ca_file = v; }},
    {"threads", [](SpeechOptions& o, W w, V v) { o.threads = parse_small(w, v, 1, 64); }},
    {"max_sessions",
     [](SpeechOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
    {"max_idle", [](SpeechOptions& o, W w, V v) { o.max_idle = parse_size(w, v, 0, 10000); }},
};

}  // namespace

void set_transcription(TranscriptionOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kTranscription, o, w, v)) w.fail("unknown option");
}

void set_speech(SpeechOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kSpeech, o, w, v)) w.fail("unknown option");
}

}  // namespace voxbridge::config::detail

namespace voxbridge::config {

asr_openai::TranscriptionOptions transcription_backend(const Config& c, const std::string& name) {
  const auto it = c.transcription.find(name);
  if (it == c.transcription.end()) {
    throw ConfigError(c.source + ": no [transcription-" + name + "] section");
  }
  return it->second;
}

tts_openai::SpeechOptions speech_backend(const Config& c, const std::string& name) {
  const auto it = c.speech.find(name);
  if (it == c.speech.end()) throw ConfigError(c.source + ": no [speech-" + name + "] section");
  return it->second;
}

}  // namespace voxbridge::config
