// Call churn with the real binaries: voxbridge (one io thread, the echo agent) and
// voxbridge-load (one io thread) placing calls that hang up after about a second and are
// replaced at once, so calls end and start every few milliseconds beside running calls on the
// same threads (and the same pacing clocks) at both ends. Bounded: about 8 s.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.hpp"

namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

unsigned short free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

bool can_connect(unsigned short port) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}

fs::path temp_file(const std::string& what) {
  return fs::temp_directory_path() / ("vb_churn_test_" + std::to_string(::getpid()) + "_" + what);
}

/// A child process, stdout and stderr to a file.
struct Child {
  Child(const char* bin, const std::vector<std::string>& args, const fs::path& log_path)
      : log(log_path) {
    pid = ::fork();
    if (pid == 0) {
      FILE* f = std::fopen(log.c_str(), "w");
      ::dup2(fileno(f), 1);
      ::dup2(fileno(f), 2);
      std::vector<char*> argv{const_cast<char*>(bin)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin, argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid > 0 && !exited) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    fs::remove(log);
  }
  /// The exit code (128 + signal if killed), or -1 if still running after `limit`.
  int wait_exit(std::chrono::milliseconds limit) {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }
  std::string output() const {
    std::ifstream f(log);
    return {std::istreambuf_iterator<char>(f), {}};
  }
  pid_t pid = -1;
  bool exited = false;
  fs::path log;
};

std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

/// The sum of every sample of `metric` (all label sets) in a Prometheus text exposition.
double metric_sum(const std::string& text, const std::string& metric) {
  const std::regex line("^" + metric + "(\\{[^}]*\\})? ([0-9.e+]+)$", std::regex::multiline);
  double sum = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) {
    sum += std::stod((*it)[2].str());
  }
  return sum;
}

/// A number in the load generator's JSON report.
long json_number(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"" + key + "\": ([0-9]+)"))) return -1;
  return std::stol(m[1].str());
}

TEST(Churn, CallsEndingAndStartingEverySecondOnOneThreadAtBothEndsLeaveNothingBehind) {
  const unsigned short port = free_port();
  const unsigned short api = free_port();
  const fs::path conf = temp_file("voxbridge.conf");
  std::ofstream(conf) << "[general]\nthreads = 1\nlog_level = warning\nhttp_listen = 127.0.0.1:"
                      << api << "\n[listener-main]\nbind = 127.0.0.1:" << port
                      << "\nagent = echo\n";
  Child server(VOXBRIDGE_BIN, {"--config", conf.string()}, temp_file("server.log"));
  bool up = false;
  for (int i = 0; i < 400 && !(up = can_connect(port) && can_connect(api)); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(up) << server.output();
  std::this_thread::sleep_for(100ms);  // the probe connections are gone
  const std::size_t baseline = open_fds(server.pid);

  // 20 calls of 1 s (+-20 %) each for 6 s: about 120 calls, one ending every 50 ms.
  const fs::path report = temp_file("load.json");
  Child load(VOXBRIDGE_LOAD_BIN,
             {"--to", "127.0.0.1:" + std::to_string(port), "--calls", "20", "--ramp", "200",
              "--warmup", "0.5", "--duration", "6", "--threads", "1", "--call-seconds", "1",
              "--no-progress", "--json", report.string()},
             temp_file("load.log"));
  const int load_exit = load.wait_exit(20s);
  // 0: every call connected and ran (a crash of the generator shows as 128 + its signal).
  ASSERT_EQ(load_exit, 0) << load.output();
  std::string json;
  {
    std::ifstream f(report);
    json.assign(std::istreambuf_iterator<char>(f), {});
  }
  fs::remove(report);
  const long connected = json_number(json, "calls_connected");
  const long completed = json_number(json, "calls_completed");
  EXPECT_GE(completed, 80) << json;                  // they did churn
  EXPECT_EQ(json_number(json, "total"), 0) << json;  // failures

  // The server is still up, every call is gone, and so are their descriptors.
  ASSERT_EQ(::kill(server.pid, 0), 0);
  std::string metrics;
  const auto end = Clock::now() + 5s;
  for (;;) {
    metrics =
        voxbridge::testing::http_request(api, boost::beast::http::verb::get, "/metrics").second;
    if ((metric_sum(metrics, "voxbridge_sockets") == 0 && open_fds(server.pid) == baseline) ||
        Clock::now() > end) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metric_sum(metrics, "voxbridge_calls_active"), 0) << metrics;
  EXPECT_EQ(metric_sum(metrics, "voxbridge_sockets"), 0) << metrics;  // none closing either
  EXPECT_EQ(open_fds(server.pid), baseline);
  // Every call the generator connected was started, and ended, exactly once.
  const double started = metric_sum(metrics, "voxbridge_calls_started_total");
  EXPECT_EQ(started, static_cast<double>(connected)) << metrics;
  EXPECT_EQ(metric_sum(metrics, "voxbridge_calls_ended_total"), started) << metrics;
  ::kill(server.pid, SIGTERM);
  EXPECT_EQ(server.wait_exit(5s), 0) << server.output();
  fs::remove(conf);
}

}  // namespace
