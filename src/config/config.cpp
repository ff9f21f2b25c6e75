// voxbridge.conf: the line reader, the section table, and what sections name of each other
// (agents, providers, rule sets, listeners), resolved once the whole file is read. Each
// section's options are parsed in a file of its own (see parse.hpp).
#include "voxbridge/config/config.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "parse.hpp"
#include "voxbridge/dialogue_rules/receptionist_conf.hpp"
#include "voxbridge/net/io_pool.hpp"

namespace voxbridge::config {
namespace {

using namespace detail;

enum class Sec {
  none,
  general,
  listener,
  agent,
  provider,
  rules,
  intent,
  openai,
  realtime,
  tool,
  gemini,
  deepgram,
  elevenlabs,
  transcription,
  speech,
  vosk,
  riva,
  control,
  ami,
  ari,
  route,
  recording,
  webhook
};

/// The sections a file may have: by exact name, or by a prefix followed by the NAME.
struct SectionKind {
  std::string_view name;  ///< "general", or a prefix such as "agent-"
  bool named;             ///< the prefix form
  Sec sec;
};
constexpr SectionKind kSections[] = {
    {"general", false, Sec::general},
    {"listener-", true, Sec::listener},
    {"agent-", true, Sec::agent},
    {"provider-", true, Sec::provider},
    {"rules-", true, Sec::rules},
    {"route-", true, Sec::route},
    {"recording", false, Sec::recording},
    {"webhook", false, Sec::webhook},
    {"control", false, Sec::control},
    {"ami", false, Sec::ami},
    {"ari", false, Sec::ari},
    {"openai-", true, Sec::openai},
    {"realtime-", true, Sec::realtime},
    {"tool-", true, Sec::tool},
    {"gemini-", true, Sec::gemini},
    {"deepgram-", true, Sec::deepgram},
    {"elevenlabs-", true, Sec::elevenlabs},
    {"transcription-", true, Sec::transcription},
    {"speech-", true, Sec::speech},
    {"vosk-", true, Sec::vosk},
    {"riva-", true, Sec::riva},
    {"intent-", true, Sec::intent},
};

/// Reads configuration texts into one Config: the built-in receptionist's, then the file's.
class Parser {
 public:
  explicit Parser(Config& c) : c_(c) {}

  /// Reads one text's sections. A text may not define a section twice; it may redefine what an
  /// earlier text defined. Its intents join their rule sets at its end.
  void read(const std::string& text, const std::string& source);
  /// Resolves the names sections give each other and validates the whole; throws ConfigError.
  void finish(const std::string& source);

 private:
  void open_section(const Where& w, int line);
  void set_option(const Where& w, const std::string& value);
  void join_intents(const std::string& source);
  void check_control(const std::string& source) const;
  void resolve_agents(const std::string& source);

  Config& c_;
  std::map<std::string, PipelineDraft> drafts_;  // by agent name
  std::vector<IntentDraft> intents_;             // of the text being read
  Sec sec_ = Sec::none;
  std::string sec_name_;
  std::map<std::string, int> seen_;  // sections of the text being read, and their lines
};

/// One line without its comment; `glued` if a ';' right after a value's text started it.
std::string strip_comment(const std::string& raw, bool& glued) {
  // Asterisk style: ';' starts a comment ('#' is a DTMF digit, so it is a value here) and
  // "\;" is a literal ';'. A ';' right after a value's text (no space before it) is refused:
  // "secret = ab;cd" would otherwise become "ab" without a word.
  std::string content;
  glued = false;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == ';') {
      content += ';';
      ++i;
    } else if (raw[i] == ';') {
      glued = !content.empty() && !std::isspace(static_cast<unsigned char>(content.back())) &&
              content.find('=') != std::string::npos &&
              content.find_first_not_of(" \t", content.find('=') + 1) != std::string::npos;
      break;
    } else {
      content += raw[i];
    }
  }
  return trim(content);
}

void Parser::read(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string raw;
  int line = 0;
  sec_ = Sec::none;
  sec_name_.clear();
  seen_.clear();
  intents_.clear();
  while (std::getline(in, raw)) {
    ++line;
    bool glued_comment = false;
    const std::string s = strip_comment(raw, glued_comment);
    if (s.empty()) continue;
    Where w{source, line, sec_name_, ""};
    if (glued_comment) {
      w.fail(
          "a ';' inside a value starts a comment and would cut the value short: write \\; "
          "for a literal ';', or put a space before a comment");
    }
    if (s.front() == '[') {
      if (s.back() != ']') w.fail("section header without ']'");
      sec_name_ = trim(s.substr(1, s.size() - 2));
      w.section = sec_name_;
      open_section(w, line);
      continue;
    }
    const auto eq = s.find('=');
    if (eq == std::string::npos) w.fail("expected 'option = value', got '" + s + "'");
    // Asterisk also writes `option => value`.
    w.key = lower(trim(s.substr(0, eq)));
    std::string value = trim(s.substr(eq + 1));
    if (!value.empty() && value.front() == '>') value = trim(value.substr(1));
    if (value.empty() && w.key != "hangup_digit") w.fail("empty value");
    set_option(w, value);
  }
  join_intents(source);
}

void Parser::open_section(const Where& w, int line) {
  if (seen_.count(sec_name_) != 0) {
    w.fail("section defined twice (first at line " + std::to_string(seen_[sec_name_]) + ")");
  }
  seen_[sec_name_] = line;
  const auto kind = std::find_if(std::begin(kSections), std::end(kSections), [&](const auto& k) {
    return k.named ? sec_name_.size() > k.name.size() && sec_name_.starts_with(k.name)
                   : sec_name_ == k.name;
  });
  if (kind == std::end(kSections)) {
    w.fail(
        "unknown section (expected general, listener-NAME, agent-NAME, provider-NAME, "
        "rules-NAME, intent-NAME, openai-NAME, realtime-NAME, gemini-NAME, deepgram-NAME, "
        "elevenlabs-NAME, transcription-NAME, speech-NAME, vosk-NAME, riva-NAME, tool-NAME, "
        "route-NAME, recording, "
        "webhook, control, ami or ari)");
  }
  sec_ = kind->sec;
  const std::string name = kind->named ? sec_name_.substr(kind->name.size()) : std::string();
  switch (sec_) {
    case Sec::listener: {
      ListenerConfig l;
      l.name = name;
      c_.listeners.push_back(l);
      break;
    }
    case Sec::agent: {
      // A section may redefine a built-in name: it starts from that agent's type and the
      // built-in defaults, its pipeline settings from scratch.
      agent::AgentSpec a = builtin_agent(name);
      auto it = std::find_if(c_.agents.begin(), c_.agents.end(),
                             [&](const agent::AgentSpec& x) { return x.name == name; });
      if (it != c_.agents.end()) {
        a.type = it->type;
        c_.agents.erase(it);
      }
      c_.agents.push_back(a);
      drafts_.erase(name);
      break;
    }
    case Sec::provider: {
      providers::ProviderTarget p;
      p.name = name;
      // A section may redefine the built-in provider's name.
      std::erase_if(c_.providers,
                    [&](const providers::ProviderTarget& t) { return t.name == p.name; });
      c_.providers.push_back(p);
      break;
    }
    case Sec::rules: {
      dialogue_rules::RuleSet r;
      r.name = name;
      c_.rules[r.name] = r;  // replaces an earlier set of that name, intents and all
      break;
    }
    case Sec::route: {
      RouteConfig r;
      r.name = name;
      c_.routes.push_back(r);
      break;
    }
    case Sec::recording:
      c_.recording.enabled = true;
      break;
    case Sec::openai:
      c_.openai[name].name = name;
      break;
    case Sec::realtime:
      c_.realtime[name] = {};
      c_.realtime[name].name = name;
      break;
    case Sec::deepgram:
      c_.deepgram[name] = {};
      c_.deepgram[name].name = name;
      break;
    case Sec::elevenlabs:
      c_.elevenlabs[name] = {};
      c_.elevenlabs[name].name = name;
      break;
    case Sec::transcription:
      c_.transcription[name] = {};
      c_.transcription[name].name = name;
      break;
    case Sec::speech:
      c_.speech[name] = {};
      c_.speech[name].name = name;
      break;
    case Sec::vosk:
      c_.vosk[name] = {};
      c_.vosk[name].name = name;
      break;
    case Sec::riva:
      c_.riva[name] = {};
      c_.riva[name].name = name;
      break;
    case Sec::tool: {
      if (const auto why = check_tool_name(name); !why.empty()) w.fail(why);
      c_.tools[name] = {};
      c_.tools[name].name = name;
      break;
    }
    case Sec::gemini:
      c_.gemini[name] = {};
      c_.gemini[name].name = name;
      break;
    case Sec::intent: {
      IntentDraft d;
      d.intent.name = name;
      d.line = line;
      intents_.push_back(d);
      break;
    }
    default:
      break;
  }
}

void Parser::set_option(const Where& w, const std::string& value) {
  switch (sec_) {
    case Sec::none:
      w.fail("option outside of any section");
    case Sec::general:
      return set_general(c_.general, w, value);
    case Sec::listener:
      return set_listener(c_.listeners.back(), w, value);
    case Sec::agent:
      return set_agent(c_.agents.back(), drafts_[c_.agents.back().name], w, value);
    case Sec::provider:
      return set_provider(c_.providers.back(), w, value);
    case Sec::rules:
      return set_rules(c_.rules[sec_name_.substr(6)], w, value);
    case Sec::intent:
      return set_intent(intents_.back(), w, value);
    case Sec::openai:
      return set_openai(c_.openai[sec_name_.substr(7)], w, value);
    case Sec::realtime:
      return set_realtime(c_.realtime[sec_name_.substr(9)], w, value);
    case Sec::tool:
      return set_tool(c_.tools[sec_name_.substr(5)], w, value);
    case Sec::gemini:
      return set_gemini(c_.gemini[sec_name_.substr(7)], w, value);
    case Sec::deepgram:
      return set_deepgram(c_.deepgram[sec_name_.substr(9)], w, value);
    case Sec::elevenlabs:
      return set_elevenlabs(c_.elevenlabs[sec_name_.substr(11)], w, value);
    case Sec::transcription:
      return set_transcription(c_.transcription[sec_name_.substr(14)], w, value);
    case Sec::speech:
      return set_speech(c_.speech[sec_name_.substr(7)], w, value);
    case Sec::vosk:
      return set_vosk(c_.vosk[sec_name_.substr(5)], w, value);
    case Sec::riva:
      return set_riva(c_.riva[sec_name_.substr(5)], w, value);
    case Sec::control:
      return set_control(c_.control, w, value);
    case Sec::ami:
      return set_ami(c_.control.ami, w, value);
    case Sec::ari:
      return set_ari(c_.control.ari, w, value);
    case Sec::route:
      return set_route(c_.routes.back(), w, value);
    case Sec::recording:
      return set_recording(c_.recording, w, value);
    case Sec::webhook:
      return set_webhook(c_.webhook, w, value);
  }
}

void Parser::join_intents(const std::string& source) {
  for (auto& d : intents_) {
    const Where x{source, d.line, "intent-" + d.intent.name, "rules"};
    if (d.rules.empty()) x.fail("missing: name a [rules-NAME] section");
    auto it = c_.rules.find(d.rules);
    if (it == c_.rules.end()) x.fail("no [rules-" + d.rules + "] section");
    if (d.intent.keywords.empty() && d.intent.dtmf.empty()) {
      Where{source, d.line, "intent-" + d.intent.name, ""}.fail(
          "needs keywords or dtmf to be chosen");
    }
    it->second.intents.push_back(std::move(d.intent));
  }
  intents_.clear();
}

void Parser::check_control(const std::string& source) const {
  const auto& ctl = c_.control;
  if (ctl.mode == control::ControlConfig::Mode::ami &&
      (ctl.ami.username.empty() || ctl.ami.secret.empty())) {
    Where{source, 0, "ami", ""}.fail("mode = ami needs username and secret");
  }
  if (ctl.mode == control::ControlConfig::Mode::ari &&
      (ctl.ari.username.empty() || ctl.ari.password.empty())) {
    Where{source, 0, "ari", ""}.fail("mode = ari needs username and password");
  }
  if (ctl.ari.url.rfind("https://", 0) != 0 && (!ctl.ari.ca_file.empty() || !ctl.ari.verify_tls)) {
    Where{source, 0, "ari", "url"}.fail("ca_file and verify_tls need an https:// url");
  }
  if (ctl.mode == control::ControlConfig::Mode::none &&
      (seen_.count("ami") != 0 || seen_.count("ari") != 0)) {
    Where{source, 0, "control", "mode"}.fail(
        "[ami] or [ari] is configured but [control] mode is none (set mode = ami or ari)");
  }
}

void Parser::resolve_agents(const std::string& source) {
  auto provider = [&](const Where& x, const std::string& name) {
    if (name.empty()) x.fail("missing: name a [provider-NAME] section");
    auto p = std::find_if(c_.providers.begin(), c_.providers.end(),
                          [&](const providers::ProviderTarget& t) { return t.name == name; });
    if (p == c_.providers.end()) x.fail("no [provider-" + name + "] section");
    return *p;
  };
  // A recognizer or a voice: a [provider-NAME] (gRPC), or an in-process backend by its
  // section's NAME ([deepgram-NAME], [transcription-NAME], [vosk-NAME] or [riva-NAME];
  // [elevenlabs-NAME], [speech-NAME] or [riva-NAME]; `deepgram` and `elevenlabs` alone: their
  // defaults). A NAME two sections
  // share is refused.
  auto in_process = [&](const Where& x, const std::string& name,
                        std::initializer_list<std::pair<const char*, bool>> kinds) {
    const bool grpc =
        std::any_of(c_.providers.begin(), c_.providers.end(),
                    [&](const providers::ProviderTarget& t) { return t.name == name; });
    std::vector<std::string> found;
    if (grpc) found.push_back("provider");
    for (const auto& [kind, has] : kinds) {
      if (has) found.push_back(kind);
    }
    if (found.size() > 1) {
      x.fail("both [" + found[0] + "-" + name + "] and [" + found[1] + "-" + name +
             "]: rename one");
    }
    if (found.empty())
      x.fail(name.empty() ? "missing: name a [provider-NAME] section"
                          : "no [provider-" + name + "] section");
    if (grpc) return provider(x, name);
    providers::ProviderTarget t;
    t.name = name;
    t.backend = found[0] + ":" + name;
    return t;
  };
  auto recognizer = [&](const Where& x, const std::string& name) {
    const bool grpc =
        std::any_of(c_.providers.begin(), c_.providers.end(),
                    [&](const providers::ProviderTarget& t) { return t.name == name; });
    const bool deepgram_default = name == "deepgram" && !grpc && c_.transcription.count(name) == 0;
    if (deepgram_default && c_.deepgram.count(name) == 0) c_.deepgram[name].name = name;
    return in_process(x, name,
                      {{"deepgram", c_.deepgram.count(name) != 0},
                       {"transcription", c_.transcription.count(name) != 0},
                       {"vosk", c_.vosk.count(name) != 0},
                       {"riva", c_.riva.count(name) != 0}});
  };
  auto voice = [&](const Where& x, const std::string& name) {
    const bool grpc =
        std::any_of(c_.providers.begin(), c_.providers.end(),
                    [&](const providers::ProviderTarget& t) { return t.name == name; });
    const bool eleven_default = name == "elevenlabs" && !grpc && c_.speech.count(name) == 0;
    if (eleven_default && c_.elevenlabs.count(name) == 0) c_.elevenlabs[name].name = name;
    return in_process(x, name,
                      {{"elevenlabs", c_.elevenlabs.count(name) != 0},
                       {"speech", c_.speech.count(name) != 0},
                       {"riva", c_.riva.count(name) != 0}});
  };
  for (const auto& a : c_.agents) {
    auto it = drafts_.find(a.name);
    PipelineDraft d = it == drafts_.end() ? PipelineDraft{} : it->second;
    const std::string section = "agent-" + a.name;
    if (a.type == agent::AgentSpec::Type::speech) {
      if (d.first_line > 0 && d.first_key != "language") {
        Where{source, d.first_line, section, d.first_key}.fail("only applies to type = pipeline");
      }
      if (a.name == "realtime" && d.provider.empty() && d.realtime.empty()) d.realtime = "openai";
      if (a.name == "gemini" && d.provider.empty() && d.gemini.empty()) d.gemini = "google";
      if (!d.gemini.empty()) {
        const Where x{source, 0, section, "gemini"};
        if (!d.provider.empty() || !d.realtime.empty()) {
          x.fail("name one of a provider, a realtime backend or a gemini backend");
        }
        if (d.gemini == "google" && c_.gemini.count("google") == 0) {
          c_.gemini["google"].name = "google";  // the built-in defaults
        }
        if (c_.gemini.count(d.gemini) == 0) x.fail("no [gemini-" + d.gemini + "] section");
        // In process: the contract's messages without gRPC. The Live API takes 16 kHz PCM and
        // speaks 24 kHz PCM: voxbridge gives it LINEAR16 at those rates unless told otherwise.
        d.s2s.agent = {};
        d.s2s.agent.name = d.gemini;
        d.s2s.agent.backend = "gemini:" + d.gemini;
        if (d.s2s.leg_codec.value_or(false)) x.fail("leg_codec: Gemini Live takes PCM only");
        d.s2s.leg_codec = false;
        if (d.s2s.output_rate_hz == 16000) d.s2s.output_rate_hz = 24000;
      } else if (!d.realtime.empty()) {
        const Where x{source, 0, section, "realtime"};
        if (!d.provider.empty()) x.fail("name either a provider or a realtime backend, not both");
        if (d.realtime == "openai" && c_.realtime.count("openai") == 0) {
          c_.realtime["openai"].name = "openai";  // the built-in defaults
        }
        if (c_.realtime.count(d.realtime) == 0) x.fail("no [realtime-" + d.realtime + "] section");
        // In process: the contract's messages without gRPC, at the rate the service speaks.
        d.s2s.agent = {};
        d.s2s.agent.name = d.realtime;
        d.s2s.agent.backend = "realtime:" + d.realtime;
        // The service speaks G.711 itself: on a G.711 leg, no transcoding either way.
        if (!d.s2s.leg_codec) d.s2s.leg_codec = true;
        if (d.s2s.input_rate_hz == 16000) d.s2s.input_rate_hz = 24000;
        if (d.s2s.output_rate_hz == 16000) d.s2s.output_rate_hz = 24000;
      } else {
        d.s2s.agent = provider(Where{source, 0, section, "provider"}, d.provider);
      }
      c_.speech_agents[a.name] = d.s2s;
      continue;
    }
    if (d.s2s_line > 0) {
      Where{source, d.s2s_line, section, d.s2s_key}.fail("only applies to type = s2s");
    }
    if (a.type != agent::AgentSpec::Type::pipeline) {
      if (d.first_line > 0) {
        Where{source, d.first_line, section, d.first_key}.fail("only applies to type = pipeline");
      }
      continue;
    }
    const auto chunk = d.spec.asr_chunk.count();
    if (d.spec.asr_encoding == pipeline::AsrEncoding::opus && chunk != 20 && chunk != 40 &&
        chunk != 60) {
      Where{source, 0, section, "asr_chunk_ms"}.fail("Opus packets are 20, 40 or 60 ms");
    }
    d.spec.asr = recognizer(Where{source, 0, section, "asr"}, d.asr);
    d.spec.llm = provider(Where{source, 0, section, "llm"}, d.llm);
    d.spec.tts = voice(Where{source, 0, section, "tts"}, d.tts);
    if (!d.openai.empty()) {
      if (c_.openai.count(d.openai) == 0) {
        Where{source, d.openai_line, section, "openai"}.fail("no [openai-" + d.openai +
                                                             "] section");
      }
      d.spec.llm.metadata.emplace_back("vb-openai", d.openai);
    } else if (!d.rules.empty()) {
      if (c_.rules.count(d.rules) == 0) {
        Where{source, d.rules_line, section, "rules"}.fail("no [rules-" + d.rules + "] section");
      }
      d.spec.llm.metadata.emplace_back("vb-rules", d.rules);
      if (d.spec.phrase_hints.empty()) {
        for (const auto& i : c_.rules.at(d.rules).intents) {
          for (const auto& k : i.keywords) d.spec.phrase_hints.push_back(k);
        }
      }
    }
    c_.pipelines[a.name] = d.spec;
  }
}

void Parser::finish(const std::string& source) {
  check_control(source);
  c_.control.allow.uuid_variable = c_.control.uuid_variable;
  if (const auto bad = c_.control.allow.validate(); !bad.empty()) {
    Where{source, 0, "control", ""}.fail(bad);
  }
  if (c_.listeners.empty()) {
    ListenerConfig l;
    l.name = "main";
    c_.listeners.push_back(l);
  }
  for (const auto& p : c_.providers) {
    const std::string section = "provider-" + p.name;
    if (p.address.empty()) Where{source, 0, section, "address"}.fail("missing");
    if (p.cert_file.empty() != p.key_file.empty()) {
      Where{source, 0, section, p.cert_file.empty() ? "cert_file" : "key_file"}.fail(
          "missing: a client certificate needs both cert_file and key_file");
    }
    if (!p.cert_file.empty() && !p.tls) {
      Where{source, 0, section, "tls"}.fail("cert_file and key_file need tls = yes");
    }
  }
  resolve_agents(source);
  for (auto& [name, t] : c_.tools) finish_tool(t, c_, source);
  // The in-process backends that agents in use talk to need their key now.
  std::vector<std::string> used;
  for (const auto& l : c_.listeners) used.push_back(l.agent);
  for (const auto& r : c_.routes) used.push_back(r.agent);
  for (const auto& a : used) {
    if (const auto p = c_.pipelines.find(a); p != c_.pipelines.end()) {
      finish_pipeline_keys(c_, p->second, source);
    }
    const auto it = c_.speech_agents.find(a);
    if (it == c_.speech_agents.end()) continue;
    finish_backend_key(c_, it->second, source);
  }
  validate(c_);
}

}  // namespace

namespace detail {

void validate(const Config& c) {
  const Where w{c.source, 0, "general", ""};
  if (c.general.playout_low_watermark > c.general.playout_high_watermark ||
      c.general.playout_high_watermark > c.general.playout_buffer) {
    Where x = w;
    x.key = "playout_*_ms";
    x.fail("need playout_low_watermark_ms <= playout_high_watermark_ms <= playout_buffer_ms");
  }
  if (c.listeners.empty()) {
    Where x = w;
    x.section.clear();
    x.fail("no [listener-NAME] section: nothing to listen on");
  }
  for (const auto& l : c.listeners) {
    if (c.find_agent(l.agent) == nullptr) {
      Where x{c.source, 0, "listener-" + l.name, "agent"};
      x.fail("no agent named '" + l.agent + "' (define [agent-" + l.agent +
             "] or use receptionist / echo / playback / realtime / gemini)");
    }
  }
  for (const auto& r : c.routes) {
    const Where x{c.source, 0, "route-" + r.name, "agent"};
    if (r.agent.empty()) x.fail("missing: the agent this route chooses");
    const auto* a = c.find_agent(r.agent);
    if (a == nullptr) x.fail("no agent named '" + r.agent + "'");
    if ((r.language || r.greeting) && a->type != agent::AgentSpec::Type::pipeline) {
      Where{c.source, 0, "route-" + r.name, r.language ? "language" : "greeting"}.fail(
          "only a pipeline agent has a language and a greeting ('" + r.agent + "' has not)");
    }
    if (r.overrides_dtmf() && a->type != agent::AgentSpec::Type::pipeline) {
      Where{c.source, 0, "route-" + r.name, "dtmf"}.fail(
          "only a pipeline agent handles DTMF by these settings ('" + r.agent +
          "' is not one: an s2s agent gets every digit as an event)");
    }
    for (const auto& ln : r.listeners) {
      if (std::none_of(c.listeners.begin(), c.listeners.end(),
                       [&](const ListenerConfig& l) { return l.name == ln; })) {
        Where{c.source, 0, "route-" + r.name, "listener"}.fail("no [listener-" + ln + "]");
      }
    }
  }
  if (!c.general.http_listen.empty() && c.general.http_token.empty()) {
    std::string host;
    unsigned short port = 0;
    net::split_host_port(c.general.http_listen, host, port);
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(host, ec);
    if (ec || !addr.is_loopback()) {
      Where{c.source, 0, "general", "http_listen"}.fail(
          "'" + c.general.http_listen +
          "' is reachable from other hosts: set http_token (e.g. http_token = "
          "${VOXBRIDGE_HTTP_TOKEN}) or bind to 127.0.0.1");
    }
  }
}

}  // namespace detail

const agent::AgentSpec* Config::find_agent(const std::string& name) const {
  for (const auto& a : agents) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

Config default_config() {
  return parse_config("", "(built-in defaults)");
}

Config parse_config(const std::string& text, const std::string& source) {
  Config c;
  c.source = source;
  // Built in: the echo and playback agents, the in-process providers, and the receptionist
  // (an agent on those providers and its rule set), which lives as data beside the rules
  // dialogue (src/dialogue_rules/receptionist.conf).
  c.agents = {builtin_agent("echo"), builtin_agent("playback"), builtin_agent("realtime"),
              builtin_agent("gemini")};
  c.providers.push_back(
      {"builtin", kBuiltinAddress, false, "", std::chrono::milliseconds(0), {}, "", ""});
  Parser p(c);
  p.read(std::string(dialogue_rules::kReceptionistConf), "(built-in receptionist)");
  p.read(text, source);
  p.finish(source);
  return c;
}

Config load_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError(path + ": cannot read the configuration file");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace voxbridge::config
