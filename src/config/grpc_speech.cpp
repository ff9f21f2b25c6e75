// [vosk-NAME] and [riva-NAME]: speech servers that speak their own gRPC service, reached by
// address (`asr = NAME`; a Riva also `tts = NAME`). One table of keys each.
#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using asr_vosk::VoskOptions;
using riva::RivaOptions;

std::string host_port(W w, V v) {
  const auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size() ||
      v.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    w.fail("'" + v + "' is not HOST:PORT");
  }
  return v;
}

const Key<VoskOptions> kVosk[] = {
    {"address", [](VoskOptions& o, W w, V v) { o.address = host_port(w, v); }},
    {"tls", [](VoskOptions& o, W w, V v) { o.tls = parse_bool(w, v); }},
    {"ca_file", [](VoskOptions& o, W, V v) { o.ca_file = v; }},
    {"language", [](VoskOptions& o, W, V v) { o.language = v; }},
    {"model", [](VoskOptions& o, W, V v) { o.model = v; }},
    {"partial_results", [](VoskOptions& o, W w, V v) { o.partial_results = parse_bool(w, v); }},
    {"end_on_final", [](VoskOptions& o, W w, V v) { o.end_on_final = parse_bool(w, v); }},
    {"max_sessions",
     [](VoskOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
};

const Key<RivaOptions> kRiva[] = {
    {"address", [](RivaOptions& o, W w, V v) { o.address = host_port(w, v); }},
    {"tls", [](RivaOptions& o, W w, V v) { o.tls = parse_bool(w, v); }},
    {"ca_file", [](RivaOptions& o, W, V v) { o.ca_file = v; }},
    {"api_key",
     [](RivaOptions& o, W w, V v) {
       // A key written into the file ends up in backups and tickets: only references.
       if (v.find("${") == std::string::npos) {
         w.fail("give the key as ${NAME} (environment) or ${file:PATH}, not in the file");
       }
       o.api_key = expand_env(w, v);
     }},
    {"asr_function_id", [](RivaOptions& o, W, V v) { o.asr_function_id = v; }},
    {"tts_function_id", [](RivaOptions& o, W, V v) { o.tts_function_id = v; }},
    {"language", [](RivaOptions& o, W, V v) { o.language = v; }},
    {"asr_model", [](RivaOptions& o, W, V v) { o.asr_model = v; }},
    {"punctuation", [](RivaOptions& o, W w, V v) { o.punctuation = parse_bool(w, v); }},
    {"end_on_final", [](RivaOptions& o, W w, V v) { o.end_on_final = parse_bool(w, v); }},
    {"phrase_boost",
     [](RivaOptions& o, W w, V v) {
       char* end = nullptr;
       const double b = std::strtod(v.c_str(), &end);
       if (end == v.c_str() || *end != '\0' || b < 0 || b > 100)
         w.fail("'" + v + "' is not 0 to 100");
       o.phrase_boost = static_cast<float>(b);
     }},
    {"voice", [](RivaOptions& o, W, V v) { o.voice = v; }},
    {"max_sessions",
     [](RivaOptions& o, W w, V v) { o.max_sessions = parse_size(w, v, 0, 100000); }},
};

}  // namespace

void set_vosk(VoskOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kVosk, o, w, v)) {
    w.fail(
        "unknown option (expected address, tls, ca_file, language, model, partial_results, "
        "end_on_final or max_sessions)");
  }
}

void set_riva(RivaOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kRiva, o, w, v)) {
    w.fail(
        "unknown option (expected address, tls, ca_file, api_key, asr_function_id, "
        "tts_function_id, language, asr_model, punctuation, end_on_final, phrase_boost, voice or "
        "max_sessions)");
  }
}

}  // namespace voxbridge::config::detail
