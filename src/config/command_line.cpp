// The command line: flags that override voxbridge.conf, and --help.
#include "parse.hpp"
#include "voxbridge/net/io_pool.hpp"

namespace voxbridge::config {

using detail::parse_codec;
using detail::parse_int;
using detail::set_general;
using detail::validate;
using detail::Where;

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
    } else if (a == "--check-config") {
      cl.check_config = true;
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
    x.fail("no agent named '" + *cl.agent +
           "' (built-in: receptionist, echo, playback, realtime, gemini)");
  }
  if (cl.agent) {
    const auto it = cfg.speech_agents.find(*cl.agent);
    if (it != cfg.speech_agents.end()) detail::finish_backend_key(cfg, it->second, "command line");
    const auto p = cfg.pipelines.find(*cl.agent);
    if (p != cfg.pipelines.end()) detail::finish_pipeline_keys(cfg, p->second, "command line");
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
      --agent NAME      agent for every listener (built-in: receptionist, echo, playback,
                        realtime: OpenAI Realtime with OPENAI_API_KEY,
                        gemini: Gemini Live with GEMINI_API_KEY)
      --codec MODE      auto | slin | ulaw | alaw, for every listener
      --threads N       io threads (0 = one per core)
      --realtime-priority P
                        run the io threads under SCHED_RR at priority P (1..99; needs
                        CAP_SYS_NICE or an RLIMIT_RTPRIO), like Asterisk's `asterisk -p`
      --log-level L     trace | debug | info | warning | error | off
      --http H:P        serve the HTTP API there ([general] http_listen: /metrics, /status,
                        the live transcripts that `voxbridge call --events H:P` prints)
      --check-config    read and check the configuration (the file and the flags), print
                        "ok" and exit 0, or the first problem and exit 2; serves nothing
  -h, --help            this text
  -V, --version         print the version

With no options voxbridge listens on 127.0.0.1:5001 with the built-in receptionist (offline
speech recognition, a rules menu and speech synthesis). Point Asterisk at it:
  exten => 100,1,Answer()
   same => n,AudioSocket(${UUID()},127.0.0.1:5001)
)";
}

}  // namespace voxbridge::config
