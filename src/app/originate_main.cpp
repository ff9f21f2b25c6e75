// `voxbridge originate`: places one outbound call through the configured control path (AMI
// Originate, or ARI POST /channels) and waits for its outcome. The answered call reaches the
// running voxbridge through the dialplan (originate_context) like any other call.
#include "originate_main.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "voxbridge/config/config.hpp"
#include "voxbridge/control/controller.hpp"
#include "voxbridge/net/error_text.hpp"

namespace voxbridge::app {

namespace {

const char* kUsage =
    "usage: voxbridge originate --config FILE --to NUMBER [options]\n"
    "  --to NUMBER        number or extension to call (must match [control] allow_numbers\n"
    "                     or allow_extensions)\n"
    "  --agent NAME       set VB_AGENT=NAME on the call\n"
    "  --caller-id TEXT   caller ID to present, e.g. '\"Acme\" <5551234>'\n"
    "  --var NAME=VALUE   a channel variable for the call (repeatable)\n"
    "  --wait S           seconds to wait for the control path to connect (default 10)\n"
    "Prints the outcome (answered, busy, no answer, failed, denied, limit); exits 0 when\n"
    "answered, 1 otherwise, 2 on bad usage.\n";

}  // namespace

int originate_main(int argc, const char* const* argv) {
  std::optional<std::string> config_file;
  control::OriginateRequest req;
  int wait_s = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--help" || a == "-h") {
        std::cout << kUsage;
        return 0;
      } else if (a == "--config") {
        config_file = value();
      } else if (a == "--to") {
        req.to = value();
      } else if (a == "--agent") {
        req.agent = value();
      } else if (a == "--caller-id") {
        req.caller_id = value();
      } else if (a == "--var") {
        const std::string kv = value();
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--var NAME=VALUE");
        req.variables[kv.substr(0, eq)] = kv.substr(eq + 1);
      } else if (a == "--wait") {
        wait_s = std::stoi(value());
      } else {
        throw std::invalid_argument("unknown option " + a);
      }
    } catch (const std::exception& e) {
      std::cerr << "voxbridge originate: " << net::error_text(e) << "\n" << kUsage;
      return 2;
    }
  }
  if (!config_file || req.to.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  config::Config cfg;
  try {
    cfg = config::load_config_file(*config_file);
  } catch (const config::ConfigError& e) {
    std::cerr << "voxbridge: configuration error: " << e.what() << "\n";
    return 2;
  }
  if (cfg.control.mode == control::ControlConfig::Mode::none) {
    std::cerr << "voxbridge originate: " << *config_file
              << " configures no control path ([control] mode = ami or ari)\n";
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("voxbridge"));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_level(spdlog::level::from_str(cfg.general.log_level));

  control::Controller ctl(cfg.control);
  ctl.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  while (!ctl.connected() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!ctl.connected()) {
    std::cout << "failed: could not connect to Asterisk within " << wait_s << " s\n";
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::optional<control::OriginateResult> result;
  ctl.originate(req, [&](control::OriginateResult r) {
    std::lock_guard lock(mu);
    result = std::move(r);
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  std::cout << control::outcome_name(result->outcome);
  if (!result->channel.empty()) std::cout << " channel=" << result->channel;
  if (!result->detail.empty()) std::cout << " (" << result->detail << ")";
  std::cout << "\n";
  const bool ok = result->outcome == control::OriginateResult::Outcome::answered;
  lock.unlock();
  ctl.stop();
  return ok ? 0 : 1;
}

}  // namespace voxbridge::app
