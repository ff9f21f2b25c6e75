// [agent-NAME] (the echo and playback agents' options, and the pipeline and s2s agents') and
// [route-NAME]: their options, one table each.
#include <sstream>

#include "parse.hpp"
#include "voxbridge/audiosocket/protocol.hpp"
#include "voxbridge/guard/guard.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using agent::AgentSpec;
using pipeline::PipelineSpec;

const Key<AgentSpec> kAgent[] = {
    {"type",
     [](AgentSpec& a, W w, V v) {
       const std::string x = lower(v);
       if (x == "echo") {
         a.type = AgentSpec::Type::echo;
       } else if (x == "playback") {
         a.type = AgentSpec::Type::playback;
       } else if (x == "pipeline") {
         a.type = AgentSpec::Type::pipeline;
       } else if (x == "s2s") {
         a.type = AgentSpec::Type::speech;
       } else {
         w.fail("'" + v + "' is not echo, playback, pipeline or s2s");
       }
     }},
    {"delay_ms", [](AgentSpec& a, W w, V v) { a.echo_delay = parse_ms(w, v, 0, 10000); }},
    {"trim_after_ms", [](AgentSpec& a, W w, V v) { a.echo_trim_after = parse_ms(w, v, 0, 60000); }},
    {"drop_late", [](AgentSpec& a, W w, V v) { a.echo_drop_late = parse_bool(w, v); }},
    {"hangup_digit",
     [](AgentSpec& a, W w, V v) {
       const std::string x = lower(v);
       if (x == "none" || x.empty()) {
         a.hangup_digit = '\0';
       } else if (v.size() == 1 && audiosocket::is_dtmf_digit(v[0])) {
         a.hangup_digit = v[0];
       } else {
         w.fail("'" + v + "' is not one DTMF digit (0-9 * # A-D) or none");
       }
     }},
    {"file", [](AgentSpec& a, W, V v) { a.file = v; }},
    {"tone_hz", [](AgentSpec& a, W w, V v) { a.tone_hz = parse_small(w, v, 20, 20000); }},
    {"tone_ms", [](AgentSpec& a, W w, V v) { a.tone_duration = parse_ms(w, v, 1, 600000); }},
    {"pause_ms", [](AgentSpec& a, W w, V v) { a.pause = parse_ms(w, v, 0, 600000); }},
    {"then",
     [](AgentSpec& a, W w, V v) {
       const std::string x = lower(v);
       if (x == "echo") {
         a.then = AgentSpec::Then::echo;
       } else if (x == "hangup") {
         a.then = AgentSpec::Then::hangup;
       } else if (x == "silence") {
         a.then = AgentSpec::Then::silence;
       } else {
         w.fail("'" + v + "' is not echo, hangup or silence");
       }
     }},
};

/// The DTMF keys, shared by pipeline agents and routes.
const Key<PipelineSpec> kDtmf[] = {
    {"dtmf",
     [](PipelineSpec& s, W w, V v) {
       const std::string x = lower(v);
       if (x == "event") {
         s.dtmf = pipeline::DtmfMode::event;
       } else if (x == "collect") {
         s.dtmf = pipeline::DtmfMode::collect;
       } else {
         w.fail("'" + v + "' is not event or collect");
       }
     }},
    {"dtmf_terminator",
     [](PipelineSpec& s, W w, V v) {
       if (v.size() != 1 || !audiosocket::is_dtmf_digit(v[0])) {
         w.fail("'" + v + "' is not a digit");
       }
       s.dtmf_terminator = v[0];
     }},
    {"dtmf_timeout_ms",
     [](PipelineSpec& s, W w, V v) { s.dtmf_timeout = parse_ms(w, v, 100, 60000); }},
    {"dtmf_max_digits",
     [](PipelineSpec& s, W w, V v) { s.dtmf_max_digits = parse_size(w, v, 1, 64); }},
};

void set_asr_encoding(PipelineSpec& s, W w, V v) {
  const std::string x = lower(v);
  if (x == "linear16") {
    s.asr_encoding = pipeline::AsrEncoding::linear16;
  } else if (x == "mulaw" || x == "ulaw") {
    s.asr_encoding = pipeline::AsrEncoding::mulaw;
  } else if (x == "opus") {
    s.asr_encoding = pipeline::AsrEncoding::opus;
  } else {
    w.fail("'" + v + "' is not linear16, mulaw or opus");
  }
}

/// The options of a pipeline agent that go straight into its spec.
const Key<PipelineSpec> kPipeline[] = {
    {"phrase_hints",
     [](PipelineSpec& s, W, V v) {
       for (auto& h : parse_list(v)) s.phrase_hints.push_back(std::move(h));
     }},
    {"transfer_fallback",
     [](PipelineSpec& s, W w, V v) {
       const std::string x = lower(v);
       if (x != "hangup" && x != "ignore") w.fail("'" + v + "' is not hangup or ignore");
       s.transfer_hangs_up = x == "hangup";
     }},
    {"asr_rate", [](PipelineSpec& s, W w, V v) { s.asr_rate_hz = parse_small(w, v, 8000, 48000); }},
    {"asr_chunk_ms",
     [](PipelineSpec& s, W w, V v) {
       s.asr_chunk = parse_ms(w, v, 20, 500);
       if (s.asr_chunk.count() % 20 != 0) w.fail("'" + v + "' is not a multiple of 20");
     }},
    {"asr_encoding", set_asr_encoding},
    {"asr_opus_bitrate",
     [](PipelineSpec& s, W w, V v) { s.asr_opus_bitrate = parse_small(w, v, 6000, 128000); }},
    {"tts_rate", [](PipelineSpec& s, W w, V v) { s.tts_rate_hz = parse_small(w, v, 8000, 48000); }},
    {"language", [](PipelineSpec& s, W, V v) { s.language = v; }},
    {"voice", [](PipelineSpec& s, W, V v) { s.voice = v; }},
    {"rpc_timeout_ms",
     [](PipelineSpec& s, W w, V v) { s.rpc_timeout = parse_ms(w, v, 100, 600000); }},
    {"max_utterance_ms",
     [](PipelineSpec& s, W w, V v) { s.max_utterance = parse_ms(w, v, 1000, 3600000); }},
    {"retry_backoff_ms",
     [](PipelineSpec& s, W w, V v) { s.retry_backoff = parse_ms(w, v, 0, 10000); }},
    {"asr_replay_ms", [](PipelineSpec& s, W w, V v) { s.asr_replay = parse_ms(w, v, 0, 60000); }},
    {"greeting_file", [](PipelineSpec& s, W, V v) { s.greeting_file = v; }},
    {"fallback_file", [](PipelineSpec& s, W, V v) { s.fallback_file = v; }},
    {"greeting",
     [](PipelineSpec& s, W, V v) { s.greeting = lower(v) == "none" ? std::string() : v; }},
    {"vad_aggressiveness",
     [](PipelineSpec& s, W w, V v) { s.vad.aggressiveness = parse_small(w, v, 0, 3); }},
    {"noise_suppression",
     [](PipelineSpec& s, W w, V v) { s.vad.noise_suppression = parse_bool(w, v); }},
    {"vad_narrowband", [](PipelineSpec& s, W w, V v) { s.vad.narrowband = parse_bool(w, v); }},
    {"speech_start_ms",
     [](PipelineSpec& s, W w, V v) { s.detector.start_ms = parse_ms(w, v, 10, 540); }},
    {"endpoint_silence_ms",
     [](PipelineSpec& s, W w, V v) { s.detector.end_silence_ms = parse_ms(w, v, 100, 10000); }},
    {"pre_roll_ms", [](PipelineSpec& s, W w, V v) { s.pre_roll = parse_ms(w, v, 0, 2000); }},
    {"barge_in", [](PipelineSpec& s, W w, V v) { s.barge_in = parse_bool(w, v); }},
    {"barge_in_ms", [](PipelineSpec& s, W w, V v) { s.barge_in_after = parse_ms(w, v, 20, 5000); }},
    {"barge_in_words",
     [](PipelineSpec& s, W w, V v) { s.barge_in_words = parse_size(w, v, 0, 20); }},
    {"no_input_timeout_ms",
     [](PipelineSpec& s, W w, V v) { s.no_input_timeout = parse_ms(w, v, 1000, 600000); }},
    {"max_no_input", [](PipelineSpec& s, W w, V v) { s.max_no_input = parse_small(w, v, 0, 20); }},
    {"goodbye", [](PipelineSpec& s, W, V v) { s.goodbye = v; }},
};

/// The options only an s2s agent has.
const Key<PipelineDraft> kSpeech[] = {
    {"provider", [](PipelineDraft& d, W, V v) { d.provider = v; }},
    {"realtime", [](PipelineDraft& d, W, V v) { d.realtime = v; }},
    {"gemini", [](PipelineDraft& d, W, V v) { d.gemini = v; }},
    {"input_rate",
     [](PipelineDraft& d, W w, V v) { d.s2s.input_rate_hz = parse_small(w, v, 8000, 48000); }},
    {"output_rate",
     [](PipelineDraft& d, W w, V v) { d.s2s.output_rate_hz = parse_small(w, v, 8000, 48000); }},
    {"option",
     [](PipelineDraft& d, W w, V v) {
       const auto colon = v.find(':');
       if (colon == std::string::npos || colon == 0) w.fail("expected 'name: value'");
       d.s2s.options[trim(v.substr(0, colon))] = expand_env(w, trim(v.substr(colon + 1)));
     }},
    {"leg_codec", [](PipelineDraft& d, W w, V v) { d.s2s.leg_codec = parse_bool(w, v); }},
    {"echo_gate", [](PipelineDraft& d, W w, V v) { d.s2s.echo_gate = parse_bool(w, v); }},
    {"failure_transfer",
     [](PipelineDraft& d, W w, V v) {
       const auto at = v.find('@');
       d.s2s.failure_transfer = v.substr(0, at);
       d.s2s.failure_context = at == std::string::npos ? "" : v.substr(at + 1);
       if (const auto bad = guard::check_dial_string(d.s2s.failure_transfer); !bad.empty()) {
         w.fail(bad);
       }
     }},
};

/// The options of a pipeline agent that name other sections, resolved after the file is read.
const Key<PipelineDraft> kPipelineNames[] = {
    {"rules",
     [](PipelineDraft& d, W w, V v) {
       d.rules = v;
       d.rules_line = w.line;
     }},
    {"openai",
     [](PipelineDraft& d, W w, V v) {
       d.openai = v;
       d.openai_line = w.line;
     }},
    {"asr", [](PipelineDraft& d, W, V v) { d.asr = v; }},
    {"llm", [](PipelineDraft& d, W, V v) { d.llm = v; }},
    {"tts", [](PipelineDraft& d, W, V v) { d.tts = v; }},
};

/// A pipeline or s2s option of an [agent-NAME] section; false if `w.key` is neither.
bool set_pipeline(PipelineDraft& d, const Where& w, const std::string& v) {
  if (set_key(kSpeech, d, w, v)) {
    if (d.s2s_line == 0) {
      d.s2s_line = w.line;
      d.s2s_key = w.key;
    }
    return true;
  }
  if (w.key == "language") d.s2s.language = v;  // both kinds have a language
  if (!set_key(kPipelineNames, d, w, v) && !set_key(kPipeline, d.spec, w, v) &&
      !set_key(kDtmf, d.spec, w, v)) {
    return false;
  }
  if (d.first_line == 0) {
    d.first_line = w.line;
    d.first_key = w.key;
  }
  return true;
}

void set_pattern(std::string& out, W w, V v) {
  if (auto bad = guard::check_dial_pattern(v); !bad.empty()) w.fail(bad);
  out = v;
}

const Key<RouteConfig> kRoute[] = {
    {"listener", [](RouteConfig& r, W, V v) { r.listeners.push_back(v); }},
    {"caller", [](RouteConfig& r, W w, V v) { set_pattern(r.caller, w, v); }},
    {"called", [](RouteConfig& r, W w, V v) { set_pattern(r.called, w, v); }},
    {"variable",
     [](RouteConfig& r, W w, V v) {
       const auto eq = v.find('=');
       if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
         w.fail("'" + v + "' is not NAME=PATTERN");
       }
       const std::string value = v.substr(eq + 1);
       if (auto bad = guard::check_dial_pattern(value); !bad.empty()) w.fail(bad);
       r.variables.emplace_back(v.substr(0, eq), value);
     }},
    {"agent", [](RouteConfig& r, W, V v) { r.agent = v; }},
    {"language", [](RouteConfig& r, W, V v) { r.language = v; }},
    {"greeting", [](RouteConfig& r, W, V v) { r.greeting = v; }},
    {"record", [](RouteConfig& r, W w, V v) { r.record = parse_bool(w, v); }},
};

}  // namespace

void set_agent(agent::AgentSpec& a, PipelineDraft& d, const Where& w, const std::string& v) {
  if (!set_pipeline(d, w, v) && !set_key(kAgent, a, w, v)) w.fail("unknown option");
}

void set_route(RouteConfig& r, const Where& w, const std::string& v) {
  if (set_key(kRoute, r, w, v)) return;
  // DTMF handling for these calls: parsed as the agent's keys are, kept as overrides.
  PipelineSpec d;
  if (!set_key(kDtmf, d, w, v)) w.fail("unknown option");
  const std::string& k = w.key;
  if (k == "dtmf") r.dtmf = d.dtmf;
  if (k == "dtmf_terminator") r.dtmf_terminator = d.dtmf_terminator;
  if (k == "dtmf_timeout_ms") r.dtmf_timeout = d.dtmf_timeout;
  if (k == "dtmf_max_digits") r.dtmf_max_digits = d.dtmf_max_digits;
}

agent::AgentSpec builtin_agent(const std::string& name) {
  agent::AgentSpec a;
  a.name = name;
  if (name == "playback") {
    a.type = agent::AgentSpec::Type::playback;
    a.then = agent::AgentSpec::Then::echo;
  }
  if (name == "realtime") a.type = agent::AgentSpec::Type::speech;  // OpenAI Realtime
  if (name == "gemini") a.type = agent::AgentSpec::Type::speech;    // Gemini Live
  return a;
}

}  // namespace voxbridge::config::detail
