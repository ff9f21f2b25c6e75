// [control] (the control path to Asterisk and what an agent may do through it), [ami] and
// [ari]: their options, one table each.
#include "parse.hpp"
#include "voxbridge/guard/guard.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using control::AmiOptions;
using control::AriOptions;
using control::ControlConfig;

void set_mode(ControlConfig& c, W w, V v) {
  const std::string x = lower(v);
  if (x == "none") {
    c.mode = ControlConfig::Mode::none;
  } else if (x == "ami") {
    c.mode = ControlConfig::Mode::ami;
  } else if (x == "ari") {
    c.mode = ControlConfig::Mode::ari;
  } else {
    w.fail("'" + v + "' is not none, ami or ari");
  }
}

const Key<ControlConfig> kControl[] = {
    {"mode", set_mode},
    {"allow_contexts", [](ControlConfig& c, W, V v) { c.allow.contexts = parse_list(v); }},
    {"allow_extensions",
     [](ControlConfig& c, W w, V v) { c.allow.extensions = parse_patterns(w, v); }},
    {"allow_numbers", [](ControlConfig& c, W w, V v) { c.allow.numbers = parse_patterns(w, v); }},
    {"allow_variables", [](ControlConfig& c, W, V v) { c.allow.variables = parse_list(v); }},
    {"max_actions_per_call",
     [](ControlConfig& c, W w, V v) { c.allow.max_actions_per_call = parse_size(w, v, 0, 10000); }},
    {"max_originates_per_call",
     [](ControlConfig& c, W w, V v) {
       c.allow.max_originates_per_call = parse_size(w, v, 0, 1000);
     }},
    {"transfer_context",
     [](ControlConfig& c, W w, V v) {
       if (const auto bad = guard::check_context(v); !bad.empty()) w.fail(bad);
       c.transfer_context = v;
     }},
    {"uuid_variable",
     [](ControlConfig& c, W w, V v) {
       if (const auto bad = guard::check_variable_name(v); !bad.empty()) w.fail(bad);
       c.uuid_variable = v;
     }},
    {"originate_channel",
     [](ControlConfig& c, W w, V v) {
       if (v.find("${NUMBER}") == std::string::npos) w.fail("must contain ${NUMBER}");
       c.originate_channel = v;
     }},
    {"originate_context", [](ControlConfig& c, W, V v) { c.originate_context = v; }},
    {"originate_exten", [](ControlConfig& c, W, V v) { c.originate_exten = v; }},
    {"originate_caller_id", [](ControlConfig& c, W, V v) { c.originate_caller_id = v; }},
    {"originate_timeout_s",
     [](ControlConfig& c, W w, V v) { c.originate_timeout = parse_s(w, v, 5, 600); }},
    {"max_outbound",
     [](ControlConfig& c, W w, V v) { c.max_outbound = parse_size(w, v, 0, 100000); }},
    {"media_address",
     [](ControlConfig& c, W w, V v) {
       std::string host;
       unsigned short port = 0;
       parse_host_port(w, v, host, port);
       if (port == 0) w.fail("'" + v + "' is not HOST:PORT (an IP address)");
       c.media_address = v;
     }},
    {"media_format",
     [](ControlConfig& c, W w, V v) {
       const std::string x = lower(v);
       if (x != "slin" && x != "slin16" && x != "ulaw" && x != "alaw") {
         w.fail("'" + v + "' is not slin, slin16, ulaw or alaw");
       }
       c.media_format = x;
     }},
};

const Key<AmiOptions> kAmi[] = {
    {"host", [](AmiOptions& a, W, V v) { a.host = v; }},
    {"port", [](AmiOptions& a, W w, V v) { a.port = std::to_string(parse_int(w, v, 1, 65535)); }},
    {"username", [](AmiOptions& a, W, V v) { a.username = v; }},
    {"secret", [](AmiOptions& a, W w, V v) { a.secret = expand_env(w, v); }},
    {"auth",
     [](AmiOptions& a, W w, V v) {
       const std::string x = lower(v);
       if (x != "md5" && x != "plain") w.fail("'" + v + "' is not md5 or plain");
       a.md5 = x == "md5";
     }},
    {"tls", [](AmiOptions& a, W w, V v) { a.tls = parse_bool(w, v); }},
    {"ca_file", [](AmiOptions& a, W, V v) { a.ca_file = v; }},
    {"events", [](AmiOptions& a, W, V v) { a.events = v; }},
    {"connect_timeout_ms",
     [](AmiOptions& a, W w, V v) { a.connect_timeout = parse_ms(w, v, 1, 3600000); }},
    {"action_timeout_ms",
     [](AmiOptions& a, W w, V v) { a.action_timeout = parse_ms(w, v, 1, 3600000); }},
    {"ping_interval_s", [](AmiOptions& a, W w, V v) { a.ping_interval = parse_s(w, v, 1, 3600); }},
    {"reconnect_max_s", [](AmiOptions& a, W w, V v) { a.reconnect_max = parse_s(w, v, 1, 3600); }},
};

const Key<AriOptions> kAri[] = {
    {"url",
     [](AriOptions& a, W w, V v) {
       check_http_url(w, v);
       a.url = v;
     }},
    {"username", [](AriOptions& a, W, V v) { a.username = v; }},
    {"password", [](AriOptions& a, W w, V v) { a.password = expand_env(w, v); }},
    {"app", [](AriOptions& a, W, V v) { a.app = v; }},
    {"ca_file", [](AriOptions& a, W, V v) { a.ca_file = v; }},
    {"verify_tls", [](AriOptions& a, W w, V v) { a.verify_tls = parse_bool(w, v); }},
    {"connect_timeout_ms",
     [](AriOptions& a, W w, V v) { a.connect_timeout = parse_ms(w, v, 1, 3600000); }},
    {"request_timeout_ms",
     [](AriOptions& a, W w, V v) { a.request_timeout = parse_ms(w, v, 1, 3600000); }},
    {"reconnect_max_s", [](AriOptions& a, W w, V v) { a.reconnect_max = parse_s(w, v, 1, 3600); }},
};

}  // namespace

void set_control(control::ControlConfig& c, const Where& w, const std::string& v) {
  if (!set_key(kControl, c, w, v)) w.fail("unknown option");
}

void set_ami(control::AmiOptions& a, const Where& w, const std::string& v) {
  if (!set_key(kAmi, a, w, v)) w.fail("unknown option");
}

void set_ari(control::AriOptions& a, const Where& w, const std::string& v) {
  if (!set_key(kAri, a, w, v)) w.fail("unknown option");
}

}  // namespace voxbridge::config::detail
