#include "voxbridge/config/config.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "voxbridge/audiosocket/protocol.hpp"
#include "voxbridge/guard/guard.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/url.hpp"

namespace voxbridge::config {
namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// Where a value came from, for error messages.
struct Where {
  std::string source;
  int line = 0;
  std::string section;
  std::string key;
  [[noreturn]] void fail(const std::string& problem) const {
    std::ostringstream o;
    o << source;
    if (line > 0) o << ':' << line;
    o << ": ";
    if (!section.empty()) o << '[' << section << "] ";
    if (!key.empty()) o << key << ": ";
    o << problem;
    throw ConfigError(o.str());
  }
};

long long parse_int(const Where& w, const std::string& v, long long lo, long long hi) {
  long long x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size()) w.fail("'" + v + "' is not a whole number");
  if (x < lo || x > hi) {
    w.fail("'" + v + "' is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return x;
}

std::chrono::milliseconds parse_ms(const Where& w, const std::string& v, long long lo,
                                   long long hi) {
  return std::chrono::milliseconds(parse_int(w, v, lo, hi));
}

bool parse_bool(const Where& w, const std::string& v) {
  const std::string l = lower(v);
  if (l == "yes" || l == "true" || l == "on" || l == "1") return true;
  if (l == "no" || l == "false" || l == "off" || l == "0") return false;
  w.fail("'" + v + "' is not yes or no");
}

session::CodecMode parse_codec(const Where& w, const std::string& v) {
  const std::string l = lower(v);
  if (l == "auto") return session::CodecMode::auto_detect;
  if (l == "slin") return session::CodecMode::slin;
  if (l == "ulaw") return session::CodecMode::ulaw;
  if (l == "alaw") return session::CodecMode::alaw;
  w.fail("'" + v + "' is not one of auto, slin, ulaw, alaw");
}

const int kRates[] = {8000, 12000, 16000, 24000, 32000, 44100, 48000};

std::string expand_env(const Where& w, const std::string& v);

void set_general(GeneralConfig& g, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "threads") {
    g.threads = static_cast<std::size_t>(parse_int(w, v, 0, 256));
  } else if (k == "realtime_priority") {
    g.realtime_priority = static_cast<int>(parse_int(w, v, 0, 99));
  } else if (k == "log_level") {
    static const char* levels[] = {"trace", "debug", "info", "warning", "error", "off"};
    if (std::find(std::begin(levels), std::end(levels), lower(v)) == std::end(levels)) {
      w.fail("'" + v + "' is not one of trace, debug, info, warning, error, off");
    }
    g.log_level = lower(v);
  } else if (k == "log_format") {
    if (lower(v) != "text" && lower(v) != "json") w.fail("'" + v + "' is not text or json");
    g.log_format = lower(v);
  } else if (k == "internal_rate") {
    const auto r = static_cast<int>(parse_int(w, v, 8000, 48000));
    if (std::find(std::begin(kRates), std::end(kRates), r) == std::end(kRates)) {
      w.fail("'" + v + "' is not one of 8000, 12000, 16000, 24000, 32000, 44100, 48000");
    }
    g.internal_rate_hz = r;
  } else if (k == "resampler_quality") {
    g.resampler_quality = static_cast<int>(parse_int(w, v, 0, 10));
  } else if (k == "max_calls") {
    g.max_calls = static_cast<std::size_t>(parse_int(w, v, 1, 1000000));
  } else if (k == "max_payload_bytes") {
    g.limits.max_payload_bytes = static_cast<std::size_t>(parse_int(w, v, 160, 65535));
  } else if (k == "handshake_timeout_ms") {
    g.limits.handshake_timeout = parse_ms(w, v, 100, 600000);
  } else if (k == "idle_timeout_ms") {
    g.limits.idle_timeout = parse_ms(w, v, 0, 86400000);
  } else if (k == "max_call_duration_s") {
    g.limits.max_call_duration = std::chrono::seconds(parse_int(w, v, 0, 7 * 86400));
  } else if (k == "send_buffer_bytes") {
    g.limits.send_buffer_bytes = static_cast<std::size_t>(parse_int(w, v, 0, 16 * 1024 * 1024));
  } else if (k == "hangup_grace_ms") {
    g.limits.close_grace = parse_ms(w, v, 0, 60000);
  } else if (k == "drain_timeout_s") {
    g.drain_timeout = std::chrono::seconds(parse_int(w, v, 0, 86400));
  } else if (k == "playout_buffer_ms") {
    g.playout_buffer = parse_ms(w, v, 100, 60000);
  } else if (k == "playout_low_watermark_ms") {
    g.playout_low_watermark = parse_ms(w, v, 0, 60000);
  } else if (k == "playout_high_watermark_ms") {
    g.playout_high_watermark = parse_ms(w, v, 20, 60000);
  } else if (k == "early_silence") {
    g.early_silence = parse_bool(w, v);
  } else if (k == "read_on_tick") {
    g.read_on_tick = parse_bool(w, v);
  } else if (k == "tick_alignment") {
    g.tick_alignment = parse_bool(w, v);
  } else if (k == "tick_alignment_margin_ms") {
    g.tick_alignment_margin = parse_ms(w, v, 0, 15);
  } else if (k == "http_listen") {
    std::string host;
    unsigned short port = 0;
    if (!net::split_host_port(v, host, port))
      w.fail("'" + v + "' is not HOST:PORT (an IP address)");
    g.http_listen = v;
  } else if (k == "http_token") {
    g.http_token = expand_env(w, v);
    if (g.http_token.size() < 16) w.fail("too short: use at least 16 characters");
  } else if (k == "http_max_connections") {
    g.http_max_connections = static_cast<std::size_t>(parse_int(w, v, 1, 10000));
  } else if (k == "provider_check_interval_s") {
    g.provider_check_interval = std::chrono::seconds(parse_int(w, v, 0, 3600));
  } else if (k == "builtin_asr_decoders") {
    g.builtin_asr_decoders = static_cast<std::size_t>(parse_int(w, v, 1, 256));
  } else if (k == "builtin_tts_cache_mb") {
    g.builtin_tts_cache_mb = static_cast<std::size_t>(parse_int(w, v, 0, 4096));
  } else {
    w.fail("unknown option");
  }
}

void set_listener(ListenerConfig& l, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "bind") {
    std::string host;
    unsigned short port = 0;
    if (!net::split_host_port(v, host, port))
      w.fail("'" + v + "' is not HOST:PORT (an IP address)");
    l.host = host;
    l.port = port;
  } else if (k == "codec") {
    l.codec = parse_codec(w, v);
  } else if (k == "g711") {
    const std::string x = lower(v);
    if (x == "ulaw") {
      l.g711 = audio::G711Law::ulaw;
    } else if (x == "alaw") {
      l.g711 = audio::G711Law::alaw;
    } else {
      w.fail("'" + v + "' is not ulaw or alaw");
    }
  } else if (k == "agent") {
    l.agent = v;
  } else if (k == "allow") {
    try {
      l.allow = access::CidrSet::parse(v);
    } catch (const std::invalid_argument& e) {
      w.fail(e.what());
    }
  } else if (k == "max_calls_per_peer") {
    l.peer_limits.max_calls = static_cast<std::size_t>(parse_int(w, v, 0, 1000000));
  } else if (k == "connect_rate") {
    l.peer_limits.rate_per_second = static_cast<double>(parse_int(w, v, 0, 100000));
  } else if (k == "connect_burst") {
    l.peer_limits.burst = static_cast<double>(parse_int(w, v, 1, 100000));
  } else if (k == "require_registration") {
    l.require_registration = parse_bool(w, v);
  } else {
    w.fail("unknown option");
  }
}

void set_recording(RecordingConfig& r, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "directory") {
    r.directory = v;
  } else if (k == "record") {
    r.record = parse_bool(w, v);
  } else if (k == "audio") {
    r.audio = parse_bool(w, v);
  } else if (k == "transcript") {
    r.transcript = parse_bool(w, v);
  } else if (k == "max_age_days") {
    r.max_age = std::chrono::hours(24 * parse_int(w, v, 0, 36500));
  } else if (k == "max_total_mb") {
    r.max_total_bytes = static_cast<std::uint64_t>(parse_int(w, v, 0, 100000000)) << 20;
  } else if (k == "queue_blocks") {
    r.queue_blocks = static_cast<std::size_t>(parse_int(w, v, 4, 1000000));
  } else {
    w.fail("unknown option");
  }
}

/// A URL that voxbridge connects to itself: refused here, at startup, rather than at first use.
net::HttpUrl check_http_url(const Where& w, const std::string& v) {
  try {
    return net::parse_http_url(v);
  } catch (const std::invalid_argument& e) {
    w.fail("'" + v + "': " + e.what());
  }
}

void set_webhook(webhooks::WebhookOptions& o, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "url") {
    o.url = expand_env(w, v);
    check_http_url(w, o.url);
  } else if (k == "secret") {
    o.secret = expand_env(w, v);
  } else if (k == "events") {
    o.events.clear();
    std::stringstream in(v);
    std::string e;
    while (std::getline(in, e, ',')) {
      e = trim(e);
      if (e != "call_started" && e != "call_ended" && e != "action") {
        w.fail("'" + e + "' is not one of call_started, call_ended, action");
      }
      o.events.insert(e);
    }
  } else if (k == "timeout_ms") {
    o.timeout = parse_ms(w, v, 100, 600000);
  } else if (k == "max_attempts") {
    o.max_attempts = static_cast<int>(parse_int(w, v, 1, 100));
  } else if (k == "backoff_ms") {
    o.backoff = parse_ms(w, v, 10, 600000);
  } else if (k == "queue") {
    o.queue_limit = static_cast<std::size_t>(parse_int(w, v, 1, 1000000));
  } else if (k == "ca_file") {
    o.ca_file = v;
  } else if (k == "verify_tls") {
    o.verify_tls = parse_bool(w, v);
  } else {
    w.fail("unknown option");
  }
}

/// The DTMF keys, shared by pipeline agents and routes; false if `w.key` is not one of them.
bool set_dtmf(pipeline::PipelineSpec& s, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "dtmf") {
    const std::string x = lower(v);
    if (x == "event") {
      s.dtmf = pipeline::DtmfMode::event;
    } else if (x == "collect") {
      s.dtmf = pipeline::DtmfMode::collect;
    } else {
      w.fail("'" + v + "' is not event or collect");
    }
  } else if (k == "dtmf_terminator") {
    if (v.size() != 1 || !audiosocket::is_dtmf_digit(v[0])) w.fail("'" + v + "' is not a digit");
    s.dtmf_terminator = v[0];
  } else if (k == "dtmf_timeout_ms") {
    s.dtmf_timeout = parse_ms(w, v, 100, 60000);
  } else if (k == "dtmf_max_digits") {
    s.dtmf_max_digits = static_cast<std::size_t>(parse_int(w, v, 1, 64));
  } else {
    return false;
  }
  return true;
}

void set_route(RouteConfig& r, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  auto pattern = [&](std::string& out) {
    if (auto bad = guard::check_dial_pattern(v); !bad.empty()) w.fail(bad);
    out = v;
  };
  if (k == "listener") {
    r.listeners.push_back(v);
  } else if (k == "caller") {
    pattern(r.caller);
  } else if (k == "called") {
    pattern(r.called);
  } else if (k == "variable") {
    const auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      w.fail("'" + v + "' is not NAME=PATTERN");
    }
    const std::string value = v.substr(eq + 1);
    if (auto bad = guard::check_dial_pattern(value); !bad.empty()) w.fail(bad);
    r.variables.emplace_back(v.substr(0, eq), value);
  } else if (k == "agent") {
    r.agent = v;
  } else if (k == "language") {
    r.language = v;
  } else if (k == "greeting") {
    r.greeting = v;
  } else if (k == "record") {
    r.record = parse_bool(w, v);
  } else {
    // DTMF handling for these calls: parsed as the agent's keys are, kept as overrides.
    pipeline::PipelineSpec d;
    if (!set_dtmf(d, w, v)) w.fail("unknown option");
    if (k == "dtmf") r.dtmf = d.dtmf;
    if (k == "dtmf_terminator") r.dtmf_terminator = d.dtmf_terminator;
    if (k == "dtmf_timeout_ms") r.dtmf_timeout = d.dtmf_timeout;
    if (k == "dtmf_max_digits") r.dtmf_max_digits = d.dtmf_max_digits;
  }
}

void set_agent(agent::AgentSpec& a, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "type") {
    const std::string x = lower(v);
    if (x == "echo") {
      a.type = agent::AgentSpec::Type::echo;
    } else if (x == "playback") {
      a.type = agent::AgentSpec::Type::playback;
    } else if (x == "pipeline") {
      a.type = agent::AgentSpec::Type::pipeline;
    } else if (x == "s2s") {
      a.type = agent::AgentSpec::Type::speech;
    } else {
      w.fail("'" + v + "' is not echo, playback, pipeline or s2s");
    }
  } else if (k == "delay_ms") {
    a.echo_delay = parse_ms(w, v, 0, 10000);
  } else if (k == "trim_after_ms") {
    a.echo_trim_after = parse_ms(w, v, 0, 60000);
  } else if (k == "drop_late") {
    a.echo_drop_late = parse_bool(w, v);
  } else if (k == "hangup_digit") {
    const std::string x = lower(v);
    if (x == "none" || x.empty()) {
      a.hangup_digit = '\0';
    } else if (v.size() == 1 && audiosocket::is_dtmf_digit(v[0])) {
      a.hangup_digit = v[0];
    } else {
      w.fail("'" + v + "' is not one DTMF digit (0-9 * # A-D) or none");
    }
  } else if (k == "file") {
    a.file = v;
  } else if (k == "tone_hz") {
    a.tone_hz = static_cast<int>(parse_int(w, v, 20, 20000));
  } else if (k == "tone_ms") {
    a.tone_duration = parse_ms(w, v, 1, 600000);
  } else if (k == "pause_ms") {
    a.pause = parse_ms(w, v, 0, 600000);
  } else if (k == "then") {
    const std::string x = lower(v);
    if (x == "echo") {
      a.then = agent::AgentSpec::Then::echo;
    } else if (x == "hangup") {
      a.then = agent::AgentSpec::Then::hangup;
    } else if (x == "silence") {
      a.then = agent::AgentSpec::Then::silence;
    } else {
      w.fail("'" + v + "' is not echo, hangup or silence");
    }
  } else {
    w.fail("unknown option");
  }
}

/// ${NAME} in a value comes from the environment (secrets stay out of the file).
std::string expand_env(const Where& w, const std::string& v) {
  std::string out;
  std::size_t at = 0;
  while (true) {
    const auto b = v.find("${", at);
    if (b == std::string::npos) break;
    const auto e = v.find('}', b);
    if (e == std::string::npos) w.fail("'${' without '}'");
    const std::string name = v.substr(b + 2, e - b - 2);
    out += v.substr(at, b - at);
    if (name.rfind("file:", 0) == 0) {
      // A secret file (Docker/Kubernetes secrets, systemd credentials): its first line.
      std::ifstream f(name.substr(5));
      std::string first;
      if (!f || !std::getline(f, first)) w.fail("cannot read secret file " + name.substr(5));
      out += trim(first);
    } else {
      const char* val = std::getenv(name.c_str());
      if (val == nullptr) w.fail("environment variable " + name + " is not set");
      out += val;
    }
    at = e + 1;
  }
  return out + v.substr(at);
}

std::vector<std::string> parse_list(const std::string& v) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(v);
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> parse_patterns(const Where& w, const std::string& v) {
  auto out = parse_list(v);
  for (const auto& p : out) {
    if (const auto why = guard::check_dial_pattern(p); !why.empty()) w.fail(why);
  }
  return out;
}

void set_control(control::ControlConfig& c, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "mode") {
    const std::string x = lower(v);
    if (x == "none") {
      c.mode = control::ControlConfig::Mode::none;
    } else if (x == "ami") {
      c.mode = control::ControlConfig::Mode::ami;
    } else if (x == "ari") {
      c.mode = control::ControlConfig::Mode::ari;
    } else {
      w.fail("'" + v + "' is not none, ami or ari");
    }
  } else if (k == "allow_contexts") {
    c.allow.contexts = parse_list(v);
  } else if (k == "allow_extensions") {
    c.allow.extensions = parse_patterns(w, v);
  } else if (k == "allow_numbers") {
    c.allow.numbers = parse_patterns(w, v);
  } else if (k == "allow_variables") {
    c.allow.variables = parse_list(v);
  } else if (k == "max_actions_per_call") {
    c.allow.max_actions_per_call = static_cast<std::size_t>(parse_int(w, v, 0, 10000));
  } else if (k == "max_originates_per_call") {
    c.allow.max_originates_per_call = static_cast<std::size_t>(parse_int(w, v, 0, 1000));
  } else if (k == "transfer_context") {
    if (const auto bad = guard::check_context(v); !bad.empty()) w.fail(bad);
    c.transfer_context = v;
  } else if (k == "uuid_variable") {
    if (const auto bad = guard::check_variable_name(v); !bad.empty()) w.fail(bad);
    c.uuid_variable = v;
  } else if (k == "originate_channel") {
    if (v.find("${NUMBER}") == std::string::npos) w.fail("must contain ${NUMBER}");
    c.originate_channel = v;
  } else if (k == "originate_context") {
    c.originate_context = v;
  } else if (k == "originate_exten") {
    c.originate_exten = v;
  } else if (k == "originate_caller_id") {
    c.originate_caller_id = v;
  } else if (k == "originate_timeout_s") {
    c.originate_timeout = std::chrono::seconds(parse_int(w, v, 5, 600));
  } else if (k == "max_outbound") {
    c.max_outbound = static_cast<std::size_t>(parse_int(w, v, 0, 100000));
  } else if (k == "media_address") {
    std::string host;
    unsigned short port = 0;
    if (!net::split_host_port(v, host, port) || port == 0) {
      w.fail("'" + v + "' is not HOST:PORT (an IP address)");
    }
    c.media_address = v;
  } else if (k == "media_format") {
    const std::string x = lower(v);
    if (x != "slin" && x != "slin16" && x != "ulaw" && x != "alaw") {
      w.fail("'" + v + "' is not slin, slin16, ulaw or alaw");
    }
    c.media_format = x;
  } else {
    w.fail("unknown option");
  }
}

std::chrono::milliseconds parse_ms_key(const Where& w, const std::string& v) {
  return parse_ms(w, v, 1, 3600000);
}

void set_ami(control::AmiOptions& a, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "host") {
    a.host = v;
  } else if (k == "port") {
    a.port = std::to_string(parse_int(w, v, 1, 65535));
  } else if (k == "username") {
    a.username = v;
  } else if (k == "secret") {
    a.secret = expand_env(w, v);
  } else if (k == "auth") {
    const std::string x = lower(v);
    if (x != "md5" && x != "plain") w.fail("'" + v + "' is not md5 or plain");
    a.md5 = x == "md5";
  } else if (k == "tls") {
    a.tls = parse_bool(w, v);
  } else if (k == "ca_file") {
    a.ca_file = v;
  } else if (k == "events") {
    a.events = v;
  } else if (k == "connect_timeout_ms") {
    a.connect_timeout = parse_ms_key(w, v);
  } else if (k == "action_timeout_ms") {
    a.action_timeout = parse_ms_key(w, v);
  } else if (k == "ping_interval_s") {
    a.ping_interval = std::chrono::seconds(parse_int(w, v, 1, 3600));
  } else if (k == "reconnect_max_s") {
    a.reconnect_max = std::chrono::seconds(parse_int(w, v, 1, 3600));
  } else {
    w.fail("unknown option");
  }
}

void set_ari(control::AriOptions& a, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "url") {
    check_http_url(w, v);
    a.url = v;
  } else if (k == "username") {
    a.username = v;
  } else if (k == "password") {
    a.password = expand_env(w, v);
  } else if (k == "app") {
    a.app = v;
  } else if (k == "ca_file") {
    a.ca_file = v;
  } else if (k == "verify_tls") {
    a.verify_tls = parse_bool(w, v);
  } else if (k == "connect_timeout_ms") {
    a.connect_timeout = parse_ms_key(w, v);
  } else if (k == "request_timeout_ms") {
    a.request_timeout = parse_ms_key(w, v);
  } else if (k == "reconnect_max_s") {
    a.reconnect_max = std::chrono::seconds(parse_int(w, v, 1, 3600));
  } else {
    w.fail("unknown option");
  }
}

void set_openai(llm_openai::OpenAiOptions& o, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "base_url") {
    if (check_http_url(w, v).target.find('?') != std::string::npos) {
      w.fail("'" + v + "': a query string is not supported here");
    }
    o.base_url = v;
  } else if (k == "model") {
    o.model = v;
  } else if (k == "api_key") {
    o.api_key = expand_env(w, v);
  } else if (k == "system_prompt") {
    o.system_prompt = v;
  } else if (k == "temperature") {
    char* end = nullptr;
    const double t = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || t < 0 || t > 2) w.fail("'" + v + "' is not 0 to 2");
    o.temperature = t;
  } else if (k == "ca_file") {
    o.ca_file = v;
  } else if (k == "connect_timeout_ms") {
    o.connect_timeout = parse_ms(w, v, 100, 60000);
  } else if (k == "stall_timeout_ms") {
    o.stall_timeout = parse_ms(w, v, 100, 600000);
  } else {
    w.fail(
        "unknown option (expected base_url, model, api_key, system_prompt, temperature, ca_file, "
        "connect_timeout_ms or stall_timeout_ms)");
  }
}

void set_provider(providers::ProviderTarget& p, const Where& w, const std::string& v) {
  const std::string& k = w.key;
  if (k == "address") {
    if (v.find(':') == std::string::npos) w.fail("'" + v + "' is not HOST:PORT");
    p.address = v;
  } else if (k == "tls") {
    p.tls = parse_bool(w, v);
  } else if (k == "ca_file") {
    p.ca_file = v;
  } else if (k == "cert_file") {
    p.cert_file = v;
  } else if (k == "key_file") {
    p.key_file = v;
  } else if (k == "deadline_ms") {
    p.deadline = parse_ms(w, v, 0, 24 * 3600 * 1000LL);
  } else if (k == "header") {
    const auto colon = v.find(':');
    if (colon == std::string::npos || colon == 0) w.fail("expected 'name: value'");
    p.metadata.emplace_back(lower(trim(v.substr(0, colon))),
                            expand_env(w, trim(v.substr(colon + 1))));
  } else {
    w.fail("unknown option");
  }
}

/// Pipeline options of an [agent-NAME] section; provider names are resolved in validate().
struct PipelineDraft {
  pipeline::PipelineSpec spec;
  pipeline::SpeechAgentSpec s2s;
  std::string asr, llm, tts, provider;
  std::string rules;  // rule set for the built-in rules dialogue (sent as vb-rules metadata)
  int rules_line = 0;
  std::string openai;  // [openai-NAME] for the built-in dialogue (sent as vb-openai metadata)
  int openai_line = 0;
  int s2s_line = 0;  // of an s2s-only option
  std::string s2s_key;
  int first_line = 0;  // of a pipeline option, for the error if the type is not pipeline
  std::string first_key;
};

bool set_pipeline(PipelineDraft& d, const Where& w, const std::string& v) {
  auto& s = d.spec;
  const std::string& k = w.key;
  if (k == "provider" || k == "input_rate" || k == "output_rate" || k == "option") {
    if (k == "provider") {
      d.provider = v;
    } else if (k == "input_rate") {
      d.s2s.input_rate_hz = static_cast<int>(parse_int(w, v, 8000, 48000));
    } else if (k == "output_rate") {
      d.s2s.output_rate_hz = static_cast<int>(parse_int(w, v, 8000, 48000));
    } else {
      const auto colon = v.find(':');
      if (colon == std::string::npos || colon == 0) w.fail("expected 'name: value'");
      d.s2s.options[trim(v.substr(0, colon))] = expand_env(w, trim(v.substr(colon + 1)));
    }
    if (d.s2s_line == 0) {
      d.s2s_line = w.line;
      d.s2s_key = k;
    }
    return true;
  }
  if (k == "language") d.s2s.language = v;
  if (k == "rules") {
    d.rules = v;
    d.rules_line = w.line;
  } else if (k == "openai") {
    d.openai = v;
    d.openai_line = w.line;
  } else if (k == "phrase_hints") {
    std::string item;
    std::istringstream in(v);
    while (std::getline(in, item, ',')) {
      item = trim(item);
      if (!item.empty()) s.phrase_hints.push_back(item);
    }
  } else if (k == "transfer_fallback") {
    const std::string x = lower(v);
    if (x != "hangup" && x != "ignore") w.fail("'" + v + "' is not hangup or ignore");
    s.transfer_hangs_up = x == "hangup";
  } else if (k == "asr") {
    d.asr = v;
  } else if (k == "llm") {
    d.llm = v;
  } else if (k == "tts") {
    d.tts = v;
  } else if (k == "asr_rate") {
    s.asr_rate_hz = static_cast<int>(parse_int(w, v, 8000, 48000));
  } else if (k == "asr_chunk_ms") {
    s.asr_chunk = parse_ms(w, v, 20, 500);
    if (s.asr_chunk.count() % 20 != 0) w.fail("'" + v + "' is not a multiple of 20");
  } else if (k == "asr_encoding") {
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
  } else if (k == "asr_opus_bitrate") {
    s.asr_opus_bitrate = static_cast<int>(parse_int(w, v, 6000, 128000));
  } else if (k == "tts_rate") {
    s.tts_rate_hz = static_cast<int>(parse_int(w, v, 8000, 48000));
  } else if (k == "language") {
    s.language = v;
  } else if (k == "voice") {
    s.voice = v;
  } else if (k == "rpc_timeout_ms") {
    s.rpc_timeout = parse_ms(w, v, 100, 600000);
  } else if (k == "max_utterance_ms") {
    s.max_utterance = parse_ms(w, v, 1000, 3600000);
  } else if (k == "retry_backoff_ms") {
    s.retry_backoff = parse_ms(w, v, 0, 10000);
  } else if (k == "asr_replay_ms") {
    s.asr_replay = parse_ms(w, v, 0, 60000);
  } else if (k == "greeting_file") {
    s.greeting_file = v;
  } else if (k == "fallback_file") {
    s.fallback_file = v;
  } else if (k == "greeting") {
    s.greeting = lower(v) == "none" ? std::string() : v;
  } else if (k == "vad_aggressiveness") {
    s.vad.aggressiveness = static_cast<int>(parse_int(w, v, 0, 3));
  } else if (k == "noise_suppression") {
    s.vad.noise_suppression = parse_bool(w, v);
  } else if (k == "vad_narrowband") {
    s.vad.narrowband = parse_bool(w, v);
  } else if (k == "speech_start_ms") {
    s.detector.start_ms = parse_ms(w, v, 10, 540);
  } else if (k == "endpoint_silence_ms") {
    s.detector.end_silence_ms = parse_ms(w, v, 100, 10000);
  } else if (k == "pre_roll_ms") {
    s.pre_roll = parse_ms(w, v, 0, 2000);
  } else if (k == "barge_in") {
    s.barge_in = parse_bool(w, v);
  } else if (k == "barge_in_ms") {
    s.barge_in_after = parse_ms(w, v, 20, 5000);
  } else if (k == "barge_in_words") {
    s.barge_in_words = static_cast<std::size_t>(parse_int(w, v, 0, 20));
  } else if (k == "no_input_timeout_ms") {
    s.no_input_timeout = parse_ms(w, v, 1000, 600000);
  } else if (k == "max_no_input") {
    s.max_no_input = static_cast<int>(parse_int(w, v, 0, 20));
  } else if (k == "goodbye") {
    s.goodbye = v;
  } else if (!set_dtmf(s, w, v)) {
    return false;
  }
  if (d.first_line == 0) {
    d.first_line = w.line;
    d.first_key = k;
  }
  return true;
}

void set_rules(dialogue_rules::RuleSet& r, const Where& w, const std::string& v) {
  if (w.key == "fallback") {
    r.fallback = v;
  } else if (w.key == "no_input") {
    r.no_input = v;
  } else {
    w.fail("unknown option (expected fallback or no_input)");
  }
}

/// An [intent-NAME] section; it joins its rule set after parsing (sections may come in any order).
struct IntentDraft {
  dialogue_rules::Intent intent;
  std::string rules;
  int line = 0;
};

void set_intent(IntentDraft& d, const Where& w, const std::string& v) {
  auto& i = d.intent;
  const std::string& k = w.key;
  if (k == "rules") {
    d.rules = v;
  } else if (k == "keywords") {
    std::string item;
    std::istringstream in(v);
    while (std::getline(in, item, ',')) {
      item = lower(trim(item));
      if (!item.empty()) i.keywords.push_back(item);
    }
  } else if (k == "dtmf") {
    for (const char c : v) {
      if (!audiosocket::is_dtmf_digit(c)) w.fail("'" + v + "' is not DTMF digits (0-9 * # A-D)");
    }
    i.dtmf = v;
  } else if (k == "reply") {
    i.reply = v;
  } else if (k == "action") {
    std::istringstream in(v);
    std::string verb, target;
    in >> verb >> target;
    verb = lower(verb);
    if (verb == "none") {
      i.action = dialogue_rules::Intent::Action::none;
    } else if (verb == "hangup") {
      i.action = dialogue_rules::Intent::Action::hangup;
    } else if (verb == "transfer" && !target.empty()) {
      i.action = dialogue_rules::Intent::Action::transfer;
      const auto at = target.find('@');
      i.target = target.substr(0, at);
      i.context = at == std::string::npos ? std::string() : target.substr(at + 1);
    } else if (verb == "dtmf" && !target.empty() &&
               target.find_first_not_of("0123456789*#ABCDw") == std::string::npos) {
      i.action = dialogue_rules::Intent::Action::send_dtmf;
      i.target = target;
    } else if (verb == "set" && target.find('=') != std::string::npos && target.front() != '=') {
      i.action = dialogue_rules::Intent::Action::set_variable;
      const auto eq = target.find('=');
      i.target = target.substr(0, eq);
      i.context = target.substr(eq + 1);
    } else {
      w.fail("'" + v +
             "' is not none, hangup, transfer EXTEN[@CONTEXT], dtmf DIGITS or set NAME=VALUE");
    }
  } else {
    w.fail("unknown option (expected rules, keywords, dtmf, reply or action)");
  }
}

/// The receptionist of the first run: every feature of the rules dialogue, offline.
dialogue_rules::RuleSet builtin_receptionist() {
  using dialogue_rules::Intent;
  dialogue_rules::RuleSet r;
  r.name = "receptionist";
  r.fallback =
      "Sorry, I did not catch that. Say sales or press 1, support or press 2, or say goodbye.";
  r.no_input = "Are you still there? Say sales or press 1, support or press 2.";
  r.intents.push_back({"sales",
                       {"sales", "sale", "buy", "pricing"},
                       "1",
                       "Connecting you to sales.",
                       Intent::Action::transfer,
                       "100",
                       ""});
  r.intents.push_back({"support",
                       {"support", "technical", "problem", "broken"},
                       "2",
                       "Connecting you to support.",
                       Intent::Action::transfer,
                       "200",
                       ""});
  r.intents.push_back({"time",
                       {"time", "clock"},
                       "",
                       "It is {time}. Anything else?",
                       Intent::Action::none,
                       "",
                       ""});
  r.intents.push_back({"goodbye",
                       {"goodbye", "bye", "no thanks"},
                       "#",
                       "Thank you for calling. Goodbye.",
                       Intent::Action::hangup,
                       "",
                       ""});
  return r;
}

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
             "] or use receptionist / echo / playback)");
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

agent::AgentSpec builtin_agent(const std::string& name) {
  agent::AgentSpec a;
  a.name = name;
  if (name == "playback") {
    a.type = agent::AgentSpec::Type::playback;
    a.then = agent::AgentSpec::Then::echo;
  }
  if (name == "receptionist") a.type = agent::AgentSpec::Type::pipeline;
  return a;
}

}  // namespace

const agent::AgentSpec* Config::find_agent(const std::string& name) const {
  for (const auto& a : agents) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

Config default_config() {
  return parse_config("", "(built-in defaults)");
}

bool Config::uses_builtin_providers() const {
  for (const auto& l : listeners) {
    const auto it = pipelines.find(l.agent);
    if (it == pipelines.end()) continue;
    for (const auto* t : {&it->second.asr, &it->second.llm, &it->second.tts}) {
      if (t->address == kBuiltinAddress) return true;
    }
  }
  return false;
}

Config parse_config(const std::string& text, const std::string& source) {
  Config c;
  c.source = source;
  c.agents = {builtin_agent("echo"), builtin_agent("playback")};
  std::istringstream in(text);
  std::string raw;
  int line = 0;
  enum class Sec {
    none,
    general,
    listener,
    agent,
    provider,
    rules,
    intent,
    openai,
    control,
    ami,
    ari,
    route,
    recording,
    webhook
  } sec = Sec::none;
  std::map<std::string, PipelineDraft> drafts;
  std::vector<IntentDraft> intents;
  // Built in: the in-process providers, the receptionist rule set and the agent using both.
  c.providers.push_back(
      {"builtin", kBuiltinAddress, false, "", std::chrono::milliseconds(0), {}, "", ""});
  c.rules["receptionist"] = builtin_receptionist();
  c.agents.push_back(builtin_agent("receptionist"));
  {
    PipelineDraft& d = drafts["receptionist"];
    d.asr = d.llm = d.tts = "builtin";
    d.rules = "receptionist";
    d.spec.greeting =
        "Thank you for calling. Say sales or press 1, support or press 2, or say goodbye.";
  }
  std::string sec_name;
  std::map<std::string, int> seen_sections;
  while (std::getline(in, raw)) {
    ++line;
    // Asterisk style: ';' starts a comment ('#' is a DTMF digit, so it is a value here) and
    // "\;" is a literal ';'. A ';' right after a value's text (no space before it) is refused:
    // "secret = ab;cd" would otherwise become "ab" without a word.
    std::string content;
    bool glued_comment = false;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == ';') {
        content += ';';
        ++i;
      } else if (raw[i] == ';') {
        glued_comment =
            !content.empty() && !std::isspace(static_cast<unsigned char>(content.back())) &&
            content.find('=') != std::string::npos &&
            content.find_first_not_of(" \t", content.find('=') + 1) != std::string::npos;
        break;
      } else {
        content += raw[i];
      }
    }
    const std::string s = trim(content);
    if (s.empty()) continue;
    Where w{source, line, sec_name, ""};
    if (glued_comment) {
      w.fail(
          "a ';' inside a value starts a comment and would cut the value short: write \\; "
          "for a literal ';', or put a space before a comment");
    }
    if (s.front() == '[') {
      if (s.back() != ']') w.fail("section header without ']'");
      sec_name = trim(s.substr(1, s.size() - 2));
      w.section = sec_name;
      if (seen_sections.count(sec_name) != 0) {
        w.fail("section defined twice (first at line " + std::to_string(seen_sections[sec_name]) +
               ")");
      }
      seen_sections[sec_name] = line;
      if (sec_name == "general") {
        sec = Sec::general;
      } else if (sec_name.rfind("listener-", 0) == 0 && sec_name.size() > 9) {
        sec = Sec::listener;
        ListenerConfig l;
        l.name = sec_name.substr(9);
        c.listeners.push_back(l);
      } else if (sec_name.rfind("agent-", 0) == 0 && sec_name.size() > 6) {
        sec = Sec::agent;
        const std::string name = sec_name.substr(6);
        // A section may redefine a built-in name; it starts from that built-in's defaults.
        auto it = std::find_if(c.agents.begin(), c.agents.end(),
                               [&](const agent::AgentSpec& a) { return a.name == name; });
        if (it != c.agents.end()) c.agents.erase(it);
        c.agents.push_back(builtin_agent(name));
        drafts.erase(name);
      } else if (sec_name.rfind("provider-", 0) == 0 && sec_name.size() > 9) {
        sec = Sec::provider;
        providers::ProviderTarget p;
        p.name = sec_name.substr(9);
        // A section may redefine the built-in provider's name.
        std::erase_if(c.providers,
                      [&](const providers::ProviderTarget& t) { return t.name == p.name; });
        c.providers.push_back(p);
      } else if (sec_name.rfind("rules-", 0) == 0 && sec_name.size() > 6) {
        sec = Sec::rules;
        dialogue_rules::RuleSet r;
        r.name = sec_name.substr(6);
        c.rules[r.name] = r;  // replaces a built-in set of that name, intents and all
      } else if (sec_name.rfind("route-", 0) == 0 && sec_name.size() > 6) {
        sec = Sec::route;
        RouteConfig r;
        r.name = sec_name.substr(6);
        c.routes.push_back(r);
      } else if (sec_name == "recording") {
        sec = Sec::recording;
        c.recording.enabled = true;
      } else if (sec_name == "webhook") {
        sec = Sec::webhook;
      } else if (sec_name == "control") {
        sec = Sec::control;
      } else if (sec_name == "ami") {
        sec = Sec::ami;
      } else if (sec_name == "ari") {
        sec = Sec::ari;
      } else if (sec_name.rfind("openai-", 0) == 0 && sec_name.size() > 7) {
        sec = Sec::openai;
        c.openai[sec_name.substr(7)].name = sec_name.substr(7);
      } else if (sec_name.rfind("intent-", 0) == 0 && sec_name.size() > 7) {
        sec = Sec::intent;
        IntentDraft d;
        d.intent.name = sec_name.substr(7);
        d.line = line;
        intents.push_back(d);
      } else {
        w.fail(
            "unknown section (expected general, listener-NAME, agent-NAME, provider-NAME, "
            "rules-NAME, intent-NAME, openai-NAME, route-NAME, recording, webhook, control, ami "
            "or ari)");
      }
      continue;
    }
    const auto eq = s.find('=');
    if (eq == std::string::npos) w.fail("expected 'option = value', got '" + s + "'");
    // Asterisk also writes `option => value`.
    std::string key = lower(trim(s.substr(0, eq)));
    std::string value = trim(s.substr(eq + 1));
    if (!value.empty() && value.front() == '>') value = trim(value.substr(1));
    w.key = key;
    if (value.empty() && key != "hangup_digit") w.fail("empty value");
    switch (sec) {
      case Sec::none:
        w.fail("option outside of any section");
        break;
      case Sec::general:
        set_general(c.general, w, value);
        break;
      case Sec::listener:
        set_listener(c.listeners.back(), w, value);
        break;
      case Sec::agent: {
        auto& d = drafts[c.agents.back().name];
        if (!set_pipeline(d, w, value)) set_agent(c.agents.back(), w, value);
        break;
      }
      case Sec::provider:
        set_provider(c.providers.back(), w, value);
        break;
      case Sec::rules:
        set_rules(c.rules[sec_name.substr(6)], w, value);
        break;
      case Sec::intent:
        set_intent(intents.back(), w, value);
        break;
      case Sec::openai:
        set_openai(c.openai[sec_name.substr(7)], w, value);
        break;
      case Sec::control:
        set_control(c.control, w, value);
        break;
      case Sec::ami:
        set_ami(c.control.ami, w, value);
        break;
      case Sec::ari:
        set_ari(c.control.ari, w, value);
        break;
      case Sec::route:
        set_route(c.routes.back(), w, value);
        break;
      case Sec::recording:
        set_recording(c.recording, w, value);
        break;
      case Sec::webhook:
        set_webhook(c.webhook, w, value);
        break;
    }
  }
  {
    const Where cw{source, 0, "control", "mode"};
    if (c.control.mode == control::ControlConfig::Mode::ami &&
        (c.control.ami.username.empty() || c.control.ami.secret.empty())) {
      Where{source, 0, "ami", ""}.fail("mode = ami needs username and secret");
    }
    if (c.control.mode == control::ControlConfig::Mode::ari &&
        (c.control.ari.username.empty() || c.control.ari.password.empty())) {
      Where{source, 0, "ari", ""}.fail("mode = ari needs username and password");
    }
    if (c.control.ari.url.rfind("https://", 0) != 0 &&
        (!c.control.ari.ca_file.empty() || !c.control.ari.verify_tls)) {
      Where{source, 0, "ari", "url"}.fail("ca_file and verify_tls need an https:// url");
    }
    if (c.control.mode == control::ControlConfig::Mode::none &&
        (seen_sections.count("ami") != 0 || seen_sections.count("ari") != 0)) {
      cw.fail("[ami] or [ari] is configured but [control] mode is none (set mode = ami or ari)");
    }
    c.control.allow.uuid_variable = c.control.uuid_variable;
    if (const auto bad = c.control.allow.validate(); !bad.empty()) {
      Where{source, 0, "control", ""}.fail(bad);
    }
  }
  if (c.listeners.empty()) {
    ListenerConfig l;
    l.name = "main";
    c.listeners.push_back(l);
  }
  for (const auto& p : c.providers) {
    if (p.address.empty()) Where{source, 0, "provider-" + p.name, "address"}.fail("missing");
    if (p.cert_file.empty() != p.key_file.empty()) {
      Where{source, 0, "provider-" + p.name, p.cert_file.empty() ? "cert_file" : "key_file"}.fail(
          "missing: a client certificate needs both cert_file and key_file");
    }
    if (!p.cert_file.empty() && !p.tls) {
      Where{source, 0, "provider-" + p.name, "tls"}.fail("cert_file and key_file need tls = yes");
    }
  }
  for (auto& d : intents) {
    const Where x{source, d.line, "intent-" + d.intent.name, "rules"};
    if (d.rules.empty()) x.fail("missing: name a [rules-NAME] section");
    auto it = c.rules.find(d.rules);
    if (it == c.rules.end()) x.fail("no [rules-" + d.rules + "] section");
    if (d.intent.keywords.empty() && d.intent.dtmf.empty()) {
      Where{source, d.line, "intent-" + d.intent.name, ""}.fail(
          "needs keywords or dtmf to be chosen");
    }
    it->second.intents.push_back(std::move(d.intent));
  }
  for (const auto& a : c.agents) {
    auto it = drafts.find(a.name);
    const Where aw{source, 0, "agent-" + a.name, ""};
    if (a.type == agent::AgentSpec::Type::speech) {
      PipelineDraft d = it == drafts.end() ? PipelineDraft{} : it->second;
      if (d.first_line > 0 && d.first_key != "language") {
        Where{source, d.first_line, "agent-" + a.name, d.first_key}.fail(
            "only applies to type = pipeline");
      }
      Where x = aw;
      x.key = "provider";
      if (d.provider.empty()) x.fail("missing: name a [provider-NAME] section");
      auto p =
          std::find_if(c.providers.begin(), c.providers.end(),
                       [&](const providers::ProviderTarget& t) { return t.name == d.provider; });
      if (p == c.providers.end()) x.fail("no [provider-" + d.provider + "] section");
      d.s2s.agent = *p;
      c.speech_agents[a.name] = d.s2s;
      continue;
    }
    if (it != drafts.end() && it->second.s2s_line > 0) {
      Where{source, it->second.s2s_line, "agent-" + a.name, it->second.s2s_key}.fail(
          "only applies to type = s2s");
    }
    if (a.type != agent::AgentSpec::Type::pipeline) {
      if (it != drafts.end() && it->second.first_line > 0) {
        Where{source, it->second.first_line, "agent-" + a.name, it->second.first_key}.fail(
            "only applies to type = pipeline");
      }
      continue;
    }
    PipelineDraft d = it == drafts.end() ? PipelineDraft{} : it->second;
    auto resolve = [&](const std::string& name, const char* key, providers::ProviderTarget& out) {
      Where x = aw;
      x.key = key;
      if (name.empty()) x.fail("missing: name a [provider-NAME] section");
      auto p = std::find_if(c.providers.begin(), c.providers.end(),
                            [&](const providers::ProviderTarget& t) { return t.name == name; });
      if (p == c.providers.end()) x.fail("no [provider-" + name + "] section");
      out = *p;
    };
    if (d.spec.asr_encoding == pipeline::AsrEncoding::opus && d.spec.asr_chunk.count() != 20 &&
        d.spec.asr_chunk.count() != 40 && d.spec.asr_chunk.count() != 60) {
      Where x = aw;
      x.key = "asr_chunk_ms";
      x.fail("Opus packets are 20, 40 or 60 ms");
    }
    resolve(d.asr, "asr", d.spec.asr);
    resolve(d.llm, "llm", d.spec.llm);
    resolve(d.tts, "tts", d.spec.tts);
    if (!d.openai.empty()) {
      if (c.openai.count(d.openai) == 0) {
        Where{source, d.openai_line, "agent-" + a.name, "openai"}.fail("no [openai-" + d.openai +
                                                                       "] section");
      }
      d.spec.llm.metadata.emplace_back("vb-openai", d.openai);
    } else if (!d.rules.empty()) {
      if (c.rules.count(d.rules) == 0) {
        Where{source, d.rules_line, "agent-" + a.name, "rules"}.fail("no [rules-" + d.rules +
                                                                     "] section");
      }
      d.spec.llm.metadata.emplace_back("vb-rules", d.rules);
      if (d.spec.phrase_hints.empty()) {
        for (const auto& i : c.rules.at(d.rules).intents) {
          for (const auto& k : i.keywords) d.spec.phrase_hints.push_back(k);
        }
      }
    }
    c.pipelines[a.name] = d.spec;
  }
  validate(c);
  return c;
}

Config load_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError(path + ": cannot read the configuration file");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path);
}

CommandLine parse_command_line(int argc, const char* const* argv) {
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (a.rfind("--", 0) == 0) {
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
    }
    auto need = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) throw ConfigError(a + ": missing value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      cl.help = true;
    } else if (a == "--version" || a == "-V") {
      cl.version = true;
    } else if (a == "--config" || a == "-c") {
      cl.config_file = need();
    } else if (a == "--listen") {
      cl.listen = need();
    } else if (a == "--agent") {
      cl.agent = need();
    } else if (a == "--codec") {
      cl.codec = need();
    } else if (a == "--threads") {
      const std::string v = need();
      cl.threads =
          static_cast<std::size_t>(parse_int(Where{"command line", 0, "", "--threads"}, v, 0, 256));
    } else if (a == "--realtime-priority") {
      const std::string v = need();
      cl.realtime_priority = static_cast<int>(
          parse_int(Where{"command line", 0, "", "--realtime-priority"}, v, 0, 99));
    } else if (a == "--log-level") {
      cl.log_level = need();
    } else if (a == "--http") {
      cl.http = need();
    } else {
      throw ConfigError(a + ": unknown option (see --help)");
    }
  }
  return cl;
}

void apply_command_line(Config& cfg, const CommandLine& cl) {
  const Where w{"command line", 0, "", ""};
  if (cl.threads) cfg.general.threads = *cl.threads;
  if (cl.realtime_priority) cfg.general.realtime_priority = *cl.realtime_priority;
  if (cl.http) set_general(cfg.general, Where{"command line", 0, "", "http_listen"}, *cl.http);
  if (cl.log_level) {
    Where x = w;
    x.key = "--log-level";
    set_general(cfg.general, Where{"command line", 0, "", "log_level"}, *cl.log_level);
  }
  if (cl.listen) {
    ListenerConfig l = cfg.listeners.empty() ? ListenerConfig{} : cfg.listeners.front();
    if (l.name.empty()) l.name = "main";
    Where x = w;
    x.key = "--listen";
    std::string host;
    unsigned short port = 0;
    if (!net::split_host_port(*cl.listen, host, port)) {
      x.fail("'" + *cl.listen + "' is not HOST:PORT (an IP address)");
    }
    l.host = host;
    l.port = port;
    cfg.listeners = {l};
  }
  for (auto& l : cfg.listeners) {
    if (cl.agent) l.agent = *cl.agent;
    if (cl.codec) l.codec = parse_codec(Where{"command line", 0, "", "--codec"}, *cl.codec);
  }
  if (cl.agent && cfg.find_agent(*cl.agent) == nullptr) {
    Where x = w;
    x.key = "--agent";
    x.fail("no agent named '" + *cl.agent + "' (built-in: echo, playback)");
  }
  validate(cfg);
}

std::string usage() {
  return R"(usage: voxbridge [options]            run the AudioSocket server
       voxbridge call [options]       place a simulated call (see voxbridge call --help)
       voxbridge originate [options]  place an outbound call into the agent through
                                      Asterisk (see voxbridge originate --help)

options:
  -c, --config FILE     voxbridge.conf to read (default: built-in defaults, no file needed)
      --listen H:P      listen on H:P only, replacing the configured listeners
      --agent NAME      agent for every listener (built-in: echo, playback)
      --codec MODE      auto | slin | ulaw | alaw, for every listener
      --threads N       io threads (0 = one per core)
      --realtime-priority P
                        run the io threads under SCHED_RR at priority P (1..99; needs
                        CAP_SYS_NICE or an RLIMIT_RTPRIO), like Asterisk's `asterisk -p`
      --log-level L     trace | debug | info | warning | error | off
      --http H:P        serve the HTTP API there ([general] http_listen: /metrics, /status,
                        the live transcripts that `voxbridge call --events H:P` prints)
  -h, --help            this text
  -V, --version         print the version

With no options voxbridge listens on 127.0.0.1:5001 with the echo agent. Point Asterisk at it:
  exten => 100,1,Answer()
   same => n,AudioSocket(${UUID()},127.0.0.1:5001)
)";
}

}  // namespace voxbridge::config
