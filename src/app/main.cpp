// voxbridge: wiring only. Reads the configuration, starts the server, handles signals.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "originate_main.hpp"
#include "status_main.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/server/server.hpp"
#include "voxbridge/sim/sim_call.hpp"

#ifndef VOXBRIDGE_VERSION
#define VOXBRIDGE_VERSION "0.0.0"
#endif

namespace {

/// One JSON object per line for log shippers (Loki, Elasticsearch, journald's JSON export):
/// {"ts":"2026-11-24T03:07:08.084Z","level":"info","msg":"call start uuid=..."}.
class JsonLines final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto t = msg.time;
    const std::time_t secs = system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
    char ts[96];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    const auto level = spdlog::level::to_string_view(msg.level);
    // A log line may quote text that is not UTF-8: mended, so every line is valid JSON.
    const boost::json::object o{
        {"ts", ts},
        {"level", std::string_view(level.data(), level.size())},
        {"msg", voxbridge::events::valid_utf8({msg.payload.data(), msg.payload.size()})}};
    std::string line = boost::json::serialize(o) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLines>();
  }
};

void set_log_format(const std::string& format) {
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<JsonLines>());
  } else {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
}

int serve(int argc, const char* const* argv) {
  using namespace voxbridge;
  config::Config cfg;
  config::CommandLine cl;
  try {
    cl = config::parse_command_line(argc, argv);
    if (cl.help) {
      std::cout << config::usage();
      return 0;
    }
    if (cl.version) {
      std::cout << "voxbridge " << VOXBRIDGE_VERSION << "\n";
      return 0;
    }
    cfg = cl.config_file ? config::load_config_file(*cl.config_file) : config::default_config();
    config::apply_command_line(cfg, cl);
  } catch (const config::ConfigError& e) {
    std::cerr << "voxbridge: configuration error: " << e.what() << "\n";
    return 2;
  }
  if (cl.check_config) {
    std::cout << "ok\n";
    return 0;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("voxbridge"));
  set_log_format(cfg.general.log_format);
  spdlog::set_level(spdlog::level::from_str(cfg.general.log_level));

  // A recording or log file that reaches a file size limit (ulimit -f, systemd's LimitFSIZE=)
  // must fail that write (the recorder then stops that call's recording), not kill the server;
  // a write to a closed pipe (stdout piped into a pager that quit) must not either.
  std::signal(SIGXFSZ, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<server::Server> srv;
  try {
    srv = std::make_unique<server::Server>(cfg);
  } catch (const std::exception& e) {
    spdlog::critical("{}", voxbridge::net::error_text(e));
    return 1;
  }
  spdlog::info("voxbridge {} starting: config={} threads={} internal_rate={} max_calls={}",
               VOXBRIDGE_VERSION, cfg.source, server::resolve_threads(cfg.general.threads),
               cfg.general.internal_rate_hz, cfg.general.max_calls);
  // Signals are handled on the main thread; the graceful drain runs on a helper thread so a
  // second signal can still be seen and end the process at once. The set exists before the
  // server starts, so a SIGTERM during start-up is held and then drains like any other.
  boost::asio::io_context main_io(1);
  boost::asio::signal_set signals(main_io, SIGINT, SIGTERM);
  boost::asio::signal_set hup(main_io, SIGHUP);
  srv->start();
  srv->check_providers(std::chrono::seconds(2));
  std::atomic<bool> stopping{false};
  std::thread drainer;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (stopping.exchange(true)) {
          spdlog::warn("second signal ({}): exiting now", strsignal(sig));
          spdlog::shutdown();
          std::_Exit(1);
        }
        spdlog::info("{}: stopping (no new calls; drain up to {} s, then hang up the rest)",
                     strsignal(sig),
                     std::chrono::duration<double>(cfg.general.drain_timeout).count());
        signals.async_wait(on_signal);
        drainer = std::thread([&] {
          const std::size_t forced = srv->shutdown(cfg.general.drain_timeout);
          spdlog::info("stopped: {} call(s) served, {} hung up at shutdown", srv->totals().started,
                       forced);
          main_io.stop();
        });
      };
  signals.async_wait(on_signal);
  // SIGHUP: read the file again; new calls get the new agents, routes and providers, calls in
  // progress keep theirs. A configuration that does not load is logged and ignored.
  std::function<void(const boost::system::error_code&, int)> on_hup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        hup.async_wait(on_hup);
        if (stopping.load()) return;
        if (!cl.config_file) {
          spdlog::warn("SIGHUP: no configuration file to reload (started without --config)");
          return;
        }
        try {
          config::Config next = config::load_config_file(*cl.config_file);
          config::apply_command_line(next, cl);
          std::string why;
          if (!srv->reload(next, why)) {
            spdlog::error("reload of {} refused: {}; the running configuration stays",
                          *cl.config_file, why);
            return;
          }
          set_log_format(next.general.log_format);
          spdlog::set_level(spdlog::level::from_str(next.general.log_level));
          cfg.general.drain_timeout = next.general.drain_timeout;
          spdlog::info(
              "reloaded {}: {} route(s); allowlists, caps and the API token apply to every call "
              "now, the rest to new calls",
              *cl.config_file, next.routes.size());
        } catch (const config::ConfigError& e) {
          spdlog::error("reload refused: {}; the running configuration stays", e.what());
        }
      };
  hup.async_wait(on_hup);
  main_io.run();
  if (drainer.joinable()) drainer.join();
  srv.reset();
  provider_host::exit_after_clean_stop(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "call") == 0) {
    return voxbridge::sim::call_main(argc - 1, argv + 1);
  }
  if (argc > 1 && std::strcmp(argv[1], "status") == 0) {
    return voxbridge::app::status_main(argc - 1, argv + 1);
  }
  if (argc > 1 && std::strcmp(argv[1], "originate") == 0) {
    return voxbridge::app::originate_main(argc - 1, argv + 1);
  }
  return serve(argc, argv);
}
