// voxbridge: wiring only. Reads the configuration, starts the server, handles signals.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "originate_main.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/server/server.hpp"
#include "voxbridge/sim/sim_call.hpp"

#ifndef VOXBRIDGE_VERSION
#define VOXBRIDGE_VERSION "0.0.0"
#endif

namespace {

int serve(int argc, const char* const* argv) {
  using namespace voxbridge;
  config::Config cfg;
  try {
    const auto cl = config::parse_command_line(argc, argv);
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
  spdlog::set_default_logger(spdlog::stderr_color_mt("voxbridge"));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_level(spdlog::level::from_str(cfg.general.log_level));

  std::unique_ptr<server::Server> srv;
  try {
    srv = std::make_unique<server::Server>(cfg);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  spdlog::info("voxbridge {} starting: config={} threads={} internal_rate={} max_calls={}",
               VOXBRIDGE_VERSION, cfg.source, server::resolve_threads(cfg.general.threads),
               cfg.general.internal_rate_hz, cfg.general.max_calls);
  srv->start();
  srv->check_providers(std::chrono::seconds(2));

  // Signals are handled on the main thread; the graceful drain runs on a helper thread so a
  // second signal can still be seen and end the process at once.
  boost::asio::io_context main_io(1);
  boost::asio::signal_set signals(main_io, SIGINT, SIGTERM);
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
  main_io.run();
  if (drainer.joinable()) drainer.join();
  srv.reset();
  spdlog::shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "call") == 0) {
    return voxbridge::sim::call_main(argc - 1, argv + 1);
  }
  if (argc > 1 && std::strcmp(argv[1], "originate") == 0) {
    return voxbridge::app::originate_main(argc - 1, argv + 1);
  }
  return serve(argc, argv);
}
