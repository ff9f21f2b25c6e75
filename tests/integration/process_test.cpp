// The real voxbridge binary as an admin runs it: signals, exit codes, configuration errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "support/http_client.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
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

/// A voxbridge (or voxbridge-provider) child process, stderr captured to a file.
struct Child {
  /// `max_file_bytes` > 0: the child runs under RLIMIT_FSIZE (as `ulimit -f` sets it).
  /// `max_fds` > 0: under RLIMIT_NOFILE (as `ulimit -n` sets it).
  Child(const std::vector<std::string>& args, const char* bin = VOXBRIDGE_BIN,
        rlim_t max_file_bytes = 0, rlim_t max_fds = 0) {
    log =
        std::filesystem::temp_directory_path() / ("vb_process_test_" + std::to_string(::getpid()) +
                                                  "_" + std::to_string(++counter) + ".log");
    pid = ::fork();
    if (pid == 0) {
      FILE* f = std::fopen(log.c_str(), "w");
      ::dup2(fileno(f), 2);
      ::dup2(fileno(f), 1);
      if (max_file_bytes > 0) {
        const rlimit lim{max_file_bytes, max_file_bytes};
        if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(126);
      }
      if (max_fds > 0) {
        const rlimit lim{max_fds, max_fds};
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::_exit(126);
      }
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
    std::filesystem::remove(log);
  }
  /// Waits up to `limit` for the exit; returns the exit code, or -1 if still running.
  int wait_exit(std::chrono::milliseconds limit) {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(5ms);
    }
    return -1;
  }
  std::string output() const {
    std::ifstream f(log);
    return {std::istreambuf_iterator<char>(f), {}};
  }
  pid_t pid = -1;
  bool exited = false;
  std::filesystem::path log;
  static inline int counter = 0;
};

std::filesystem::path write_conf(const std::string& text) {
  auto p = std::filesystem::temp_directory_path() /
           ("vb_process_test_" + std::to_string(::getpid()) + ".conf");
  std::ofstream(p) << text;
  return p;
}

/// A configuration file: the echo agent on `port`, the HTTP API on `api`, then `extra`.
std::filesystem::path echo_with_api(unsigned short port, unsigned short api,
                                    const std::string& extra = "") {
  return write_conf("[general]\nhttp_listen = 127.0.0.1:" + std::to_string(api) +
                    "\n[listener-main]\nbind = 127.0.0.1:" + std::to_string(port) +
                    "\nagent = echo\n" + extra);
}

bool wait_listening(unsigned short port) {
  for (int i = 0; i < 400; ++i) {
    if (can_connect(port)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

voxbridge::sim::CallPlan long_call(unsigned short port) {
  voxbridge::sim::CallPlan p;
  p.port = port;
  p.audio.assign(8000 * 10, 1000);
  p.hangup_at_end = false;
  p.max_duration = 15s;
  return p;
}

TEST(Process, SigtermDrainsThenHangsUpAndExitsZero) {
  const unsigned short port = free_port();
  const auto conf = write_conf(
      "[general]\ndrain_timeout_s = 1\nhangup_grace_ms = 300\n"
      "[listener-main]\nbind = 127.0.0.1:" +
      std::to_string(port) + "\n");
  Child vb({"--config", conf.string()});
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  auto call =
      std::async(std::launch::async, [&] { return voxbridge::sim::place_call(long_call(port)); });
  std::this_thread::sleep_for(300ms);
  const auto t_signal = Clock::now();
  ::kill(vb.pid, SIGTERM);
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(can_connect(port));  // no new calls once stopping
  const auto r = call.get();
  const auto hung_up_after = Clock::now() - t_signal;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_GE(hung_up_after, 900ms);   // waited out the drain time ...
  EXPECT_LT(hung_up_after, 2500ms);  // ... and no longer
  EXPECT_EQ(vb.wait_exit(5000ms), 0) << vb.output();
  const std::string out = vb.output();
  EXPECT_NE(out.find("call end"), std::string::npos) << out;
  EXPECT_NE(out.find("by=shutdown"), std::string::npos) << out;
  std::filesystem::remove(conf);
}

/// Mean absolute sample value of what came back (after the first 100 ms).
double level_of(const std::vector<std::int16_t>& x) {
  if (x.size() < 1600) return 0;
  double sum = 0;
  for (std::size_t i = 800; i < x.size(); ++i) sum += std::abs(x[i]);
  return sum / static_cast<double>(x.size() - 800);
}

voxbridge::sim::CallPlan silent_call(unsigned short port, double seconds) {
  voxbridge::sim::CallPlan p;
  p.port = port;
  p.audio.assign(static_cast<std::size_t>(8000 * seconds), 0);
  p.tail = 0ms;
  return p;
}

TEST(Process, SighupReloadsForNewCallsKeepsCallsInProgressAndRefusesABadFile) {
  const unsigned short port = free_port();
  const std::string head =
      "[general]\nlog_format = json\n[listener-main]\nbind = 127.0.0.1:" + std::to_string(port) +
      "\n";
  const auto conf = write_conf(head + "agent = echo\n");
  Child vb({"--config", conf.string()});
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  // A call in progress (echo: silence in, silence out) ...
  auto during = std::async(std::launch::async,
                           [&] { return voxbridge::sim::place_call(silent_call(port, 2.0)); });
  std::this_thread::sleep_for(300ms);
  // ... while the file changes to a tone agent and voxbridge is told.
  write_conf(head +
             "agent = tone\n[agent-tone]\ntype = playback\ntone_hz = 440\n"
             "tone_ms = 5000\n");
  ::kill(vb.pid, SIGHUP);
  std::this_thread::sleep_for(300ms);
  const auto after = voxbridge::sim::place_call(silent_call(port, 1.0));
  EXPECT_GT(level_of(after.received), 1000);  // the new call has the new agent
  const auto kept = during.get();
  EXPECT_TRUE(kept.connected);
  EXPECT_FALSE(kept.server_closed);
  EXPECT_LT(level_of(kept.received), 1);  // the call in progress kept its agent
  // A broken file is refused; the running configuration stays.
  write_conf(head + "agent = tone\n[agent-tone]\ntype = trumpet\n");
  ::kill(vb.pid, SIGHUP);
  std::this_thread::sleep_for(300ms);
  EXPECT_GT(level_of(voxbridge::sim::place_call(silent_call(port, 1.0)).received), 1000);
  ::kill(vb.pid, SIGTERM);
  EXPECT_EQ(vb.wait_exit(5000ms), 0);
  const std::string out = vb.output();
  EXPECT_NE(out.find("\"level\":\"info\",\"msg\":\"reloaded "), std::string::npos) << out;
  EXPECT_NE(out.find("reload refused: " + conf.string() +
                     ":7: [agent-tone] type: 'trumpet' is not echo, playback, pipeline or s2s; "
                     "the running configuration stays"),
            std::string::npos)
      << out;
  // Every line is one JSON object.
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) {
    EXPECT_EQ(l.front(), '{') << l;
    EXPECT_EQ(l.back(), '}') << l;
  }
  std::filesystem::remove(conf);
}

TEST(Process, StatusListsTheLiveCalls) {
  const unsigned short port = free_port();
  const unsigned short api = free_port();
  const auto conf = echo_with_api(port, api);
  Child vb({"--config", conf.string()});
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  auto plan = silent_call(port, 2.0);
  plan.uuid = voxbridge::audiosocket::Uuid::parse("0badcafe-0000-4000-8000-00000000beef");
  auto call = std::async(std::launch::async, [&] { return voxbridge::sim::place_call(plan); });
  std::this_thread::sleep_for(500ms);
  Child st({"status", "--config", conf.string()});
  EXPECT_EQ(st.wait_exit(5000ms), 0) << st.output();
  const std::string out = st.output();
  EXPECT_NE(out.find("0badcafe-0000-4000-8000-00000000beef  127.0.0.1:"), std::string::npos) << out;
  EXPECT_NE(out.find("  main        slin      8000"), std::string::npos) << out;
  EXPECT_NE(out.find("echo"), std::string::npos) << out;
  EXPECT_NE(out.find("1 call(s)"), std::string::npos) << out;
  EXPECT_TRUE(call.get().connected);
  Child none({"status", "--api", "127.0.0.1:" + std::to_string(free_port())});
  EXPECT_EQ(none.wait_exit(5000ms), 1);
  EXPECT_NE(none.output().find("cannot reach the HTTP API"), std::string::npos) << none.output();
  ::kill(vb.pid, SIGTERM);
  EXPECT_EQ(vb.wait_exit(5000ms), 0);
  std::filesystem::remove(conf);
}

/// One GET with `Connection: close`, giving up after `limit` (a connection the server never
/// accepts would wait for ever); the response, or "" on timeout or error.
std::string get_within(unsigned short port, const std::string& target,
                       std::chrono::milliseconds limit) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return "";
  const timeval tv{0, static_cast<suseconds_t>(
                          std::chrono::duration_cast<std::chrono::microseconds>(limit).count())};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(s.native_handle(), req.data(), req.size(), MSG_NOSIGNAL) < 0) return "";
  std::string all;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n == 0) return all;
    if (n < 0) return "";
    all.append(buf, static_cast<std::size_t>(n));
  }
}

TEST(Process, RunningOutOfFileDescriptorsIsSurvivedByTheApiAndTheListener) {
  // `ulimit -n 40`, then 80 connections to each listener, held, then closed: both accept loops
  // hit EMFILE; once the descriptors are back /healthz answers and calls work again.
  const unsigned short port = free_port();
  const unsigned short api = free_port();
  const auto conf = write_conf(
      "[general]\nthreads = 1\nhttp_listen = 127.0.0.1:" + std::to_string(api) +
      "\n[listener-main]\nbind = 127.0.0.1:" + std::to_string(port) + "\nagent = echo\n");
  Child vb({"--config", conf.string()}, VOXBRIDGE_BIN, 0, 40);
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  ASSERT_NE(get_within(api, "/healthz", 2000ms).find("200 OK"), std::string::npos) << vb.output();
  {
    asio::io_context io;
    std::vector<asio::ip::tcp::socket> held;
    for (int i = 0; i < 80; ++i) {
      for (const unsigned short p : {api, port}) {
        held.emplace_back(io);
        boost::system::error_code ec;
        held.back().connect({asio::ip::make_address("127.0.0.1"), p}, ec);
      }
    }
    std::this_thread::sleep_for(300ms);  // the server takes what it can, then runs out
  }
  std::string health;
  const auto until = Clock::now() + 5s;
  while (Clock::now() < until && health.find("200 OK") == std::string::npos) {
    health = get_within(api, "/healthz", 500ms);
  }
  EXPECT_NE(health.find("200 OK\r\n"), std::string::npos) << health << vb.output();
  const auto r = voxbridge::sim::place_call(silent_call(port, 0.5));
  EXPECT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_closed);
  const std::string metrics = get_within(api, "/metrics", 2000ms);
  const auto count = [&](const std::string& series) {
    const auto at = metrics.find("\n" + series + " ");
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + series.size() + 2));
  };
  EXPECT_GT(count("voxbridge_accept_errors_total{listener=\"http\"}"), 0) << metrics;
  EXPECT_GT(count("voxbridge_accept_errors_total{listener=\"main\"}"), 0) << metrics;
  // Logged at most once a second per listener, not once per failure.
  const std::string out = vb.output();
  std::size_t warnings = 0;
  for (std::size_t at = 0; (at = out.find("accept failed", at)) != std::string::npos; ++at) {
    ++warnings;
  }
  EXPECT_GE(warnings, 1u);
  EXPECT_LE(warnings, 20u) << out;
  ::kill(vb.pid, SIGTERM);
  EXPECT_EQ(vb.wait_exit(5000ms), 0) << vb.output();
  std::filesystem::remove(conf);
}

TEST(Process, AFullDiskStopsTheRecordingsNotTheCallsNorTheServer) {
  // The disk fills up under a running server: a file size limit of 96 KiB (ulimit -f) makes the
  // recorder's writes fail mid-call as a full disk does (EFBIG rather than ENOSPC, and SIGXFSZ,
  // which kills a process that does not ignore it). Two calls of 4 s: each stereo WAV passes
  // 96 KiB after about 1.5 s (16 kHz, 2 x 16 bit). Both recordings stop with one warning each and
  // the metric; both calls get every frame echoed; the server keeps serving.
  const unsigned short port = free_port();
  const unsigned short api = free_port();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("vb_process_test_rec_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto conf = echo_with_api(port, api, "[recording]\ndirectory = " + dir.string() + "\n");
  Child vb({"--config", conf.string()}, VOXBRIDGE_BIN, 96 * 1024);
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  auto plan = [&] {
    voxbridge::sim::CallPlan p;
    p.port = port;
    p.format = *voxbridge::sim::LegFormat::parse("slin16");
    p.audio.assign(16000 * 4, 1000);
    p.tail = 200ms;
    return p;
  };
  auto a = std::async(std::launch::async, [&] { return voxbridge::sim::place_call(plan()); });
  auto b = std::async(std::launch::async, [&] { return voxbridge::sim::place_call(plan()); });
  for (auto* f : {&a, &b}) {
    const auto r = f->get();
    ASSERT_TRUE(r.connected) << r.error;
    EXPECT_FALSE(r.server_closed);
    // The echo of all 4 s (a constant 1000 comes back as 1000 once the filters settle).
    ASSERT_GE(r.received.size(), 16000u * 4);
    EXPECT_EQ(r.received[16000 * 3], 1000);
  }
  const auto [status, text] =
      voxbridge::testing::http_request(api, boost::beast::http::verb::get, "/metrics", "", "");
  EXPECT_EQ(status, 200);
  EXPECT_NE(text.find("\nvoxbridge_recordings_failed_total 2\n"), std::string::npos) << text;
  // Each WAV stopped at the limit, its header still valid for what it holds.
  int wavs = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".wav") continue;
    ++wavs;
    EXPECT_LE(e.file_size(), 96u * 1024) << e.path();
    EXPECT_GT(e.file_size(), 44u) << e.path();
  }
  EXPECT_EQ(wavs, 2);
  // And the server goes on: a third call, recorded as far as the limit allows, is served.
  const auto c = voxbridge::sim::place_call(plan());
  EXPECT_TRUE(c.connected);
  EXPECT_GE(c.received.size(), 16000u * 4);
  ::kill(vb.pid, SIGTERM);
  EXPECT_EQ(vb.wait_exit(5000ms), 0) << vb.output();
  const std::string log = vb.output();
  std::size_t warnings = 0;
  for (std::size_t at = 0; (at = log.find("recording stopped", at)) != std::string::npos; ++at) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 3u) << log;
  std::filesystem::remove_all(dir);
  std::filesystem::remove(conf);
}

TEST(Process, TheCallCommandPrintsTheServersTranscriptLive) {
  const unsigned short port = free_port();
  const unsigned short api = free_port();
  const auto conf = echo_with_api(port, api);
  Child vb({"--config", conf.string()});
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  ASSERT_TRUE(wait_listening(api)) << vb.output();
  Child call({"call", "--to", "127.0.0.1:" + std::to_string(port), "--events",
              "127.0.0.1:" + std::to_string(api), "--dtmf", "5@300", "--seconds", "2", "--tail-ms",
              "200"});
  EXPECT_EQ(call.wait_exit(10000ms), 0) << call.output();
  const std::string out = call.output();
  // The digit as the server noted it, while the call ran (before the summary that follows it).
  const auto start = out.find("server      0.");
  const auto dtmf = out.find(R"(dtmf     {"digit":"5"})");
  ASSERT_NE(start, std::string::npos) << out;
  ASSERT_NE(dtmf, std::string::npos) << out;
  EXPECT_NE(out.find("start    {\"uuid\":"), std::string::npos) << out;
  EXPECT_NE(out.find("\"agent\":\"echo\""), std::string::npos) << out;
  EXPECT_LT(start, dtmf) << out;
  EXPECT_LT(dtmf, out.find("frames")) << out;
  // The end too, from the last poll after the call (the server keeps it for a minute).
  EXPECT_NE(out.find(R"(end      {"by":"caller")"), std::string::npos) << out;
  ::kill(vb.pid, SIGTERM);
  EXPECT_EQ(vb.wait_exit(5000ms), 0);
  std::filesystem::remove(conf);
}

TEST(Process, SecondSignalExitsAtOnce) {
  const unsigned short port = free_port();
  const auto conf = write_conf(
      "[general]\ndrain_timeout_s = 30\n[listener-main]\nbind = 127.0.0.1:" + std::to_string(port) +
      "\n");
  Child vb({"--config", conf.string()});
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  auto call =
      std::async(std::launch::async, [&] { return voxbridge::sim::place_call(long_call(port)); });
  std::this_thread::sleep_for(300ms);
  ::kill(vb.pid, SIGTERM);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(vb.wait_exit(0ms), -1);  // still draining (30 s)
  const auto t = Clock::now();
  ::kill(vb.pid, SIGINT);
  EXPECT_EQ(vb.wait_exit(2000ms), 1) << vb.output();
  EXPECT_LT(Clock::now() - t, 1000ms);
  call.get();
  std::filesystem::remove(conf);
}

TEST(Process, ConfigurationErrorExitsTwoNamingFileLineAndOption) {
  const auto conf = write_conf("[general]\nmax_calls = lots\n");
  Child vb({"--config", conf.string()});
  EXPECT_EQ(vb.wait_exit(5000ms), 2);
  EXPECT_NE(
      vb.output().find(conf.string() + ":2: [general] max_calls: 'lots' is not a whole number"),
      std::string::npos)
      << vb.output();
  std::filesystem::remove(conf);
}

TEST(Process, CheckConfigSaysOkWithoutServingOrNamesTheProblem) {
  // The listener's port is taken: were the file served rather than checked, it would exit 1.
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = std::to_string(taken.local_endpoint().port());
  const auto good = write_conf("[listener-main]\nbind = 127.0.0.1:" + port + "\nagent = echo\n");
  Child ok({"--config", good.string(), "--check-config"});
  EXPECT_EQ(ok.wait_exit(5000ms), 0);
  EXPECT_EQ(ok.output(), "ok\n");
  const auto bad = write_conf("[general]\nmax_calls = lots\n");
  Child refused({"--config", bad.string(), "--check-config"});
  EXPECT_EQ(refused.wait_exit(5000ms), 2);
  EXPECT_NE(
      refused.output().find(bad.string() + ":2: [general] max_calls: 'lots' is not a whole number"),
      std::string::npos)
      << refused.output();
  std::filesystem::remove(bad);
}

TEST(Process, HelpAndVersion) {
  Child help({"--help"});
  EXPECT_EQ(help.wait_exit(5000ms), 0);
  EXPECT_NE(help.output().find("--listen"), std::string::npos);
  Child version({"--version"});
  EXPECT_EQ(version.wait_exit(5000ms), 0);
  EXPECT_NE(version.output().find("voxbridge 0."), std::string::npos);
}

TEST(Process, AddressInUseIsAClearStartupError) {
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = std::to_string(taken.local_endpoint().port());
  Child vb({"--listen", "127.0.0.1:" + port});
  EXPECT_EQ(vb.wait_exit(5000ms), 1);
  EXPECT_NE(vb.output().find("cannot listen on 127.0.0.1:" + port), std::string::npos)
      << vb.output();
}

TEST(Process, TheStandaloneProviderServerAnswersACallOverTheNetwork) {
  // voxbridge-provider serves the built-in ASR, rules and TTS on its own port; voxbridge reaches
  // it as [provider-remote]. Pressing 2 gets "Connecting you to support." and the hangup.
  const unsigned short provider_port = free_port();
  Child provider({"--listen", "127.0.0.1:" + std::to_string(provider_port)},
                 VOXBRIDGE_PROVIDER_BIN);
  ASSERT_TRUE(wait_listening(provider_port)) << provider.output();
  const unsigned short port = free_port();
  const auto conf =
      write_conf("[provider-remote]\naddress = 127.0.0.1:" + std::to_string(provider_port) +
                 "\n[agent-desk]\ntype = pipeline\nasr = remote\nllm = remote\n"
                 "tts = remote\nrules = receptionist\ngreeting = Hello.\n"
                 "[listener-main]\nbind = 127.0.0.1:" +
                 std::to_string(port) + "\nagent = desk\n");
  Child vb({"--config", conf.string()});
  ASSERT_TRUE(wait_listening(port)) << vb.output();
  voxbridge::sim::CallPlan p;
  p.port = port;
  p.format = *voxbridge::sim::LegFormat::parse("slin16");
  p.audio.assign(16000 * 6, 0);
  p.dtmf = {{1500ms, '2'}};
  p.hangup_at_end = false;
  p.max_duration = 15s;
  const auto r = voxbridge::sim::place_call(p);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup) << vb.output();
  double loud = 0;  // seconds of reply louder than -40 dBFS after the digit
  for (std::size_t at = 16000 * 3 / 2; at + 320 <= r.received.size(); at += 320) {
    double e = 0;
    for (std::size_t i = at; i < at + 320; ++i)
      e += static_cast<double>(r.received[i]) * r.received[i];
    if (e / 320 > 330.0 * 330.0) loud += 0.02;
  }
  EXPECT_GT(loud, 0.5) << "the reply was not heard";
  EXPECT_NE(vb.output().find("transfer to 200"), std::string::npos) << vb.output();
  ::kill(vb.pid, SIGTERM);
  EXPECT_EQ(vb.wait_exit(5000ms), 0);
  ::kill(provider.pid, SIGTERM);
  EXPECT_EQ(provider.wait_exit(5000ms), 0) << provider.output();
  std::filesystem::remove(conf);
}

TEST(Process, TheProviderServerRefusesABadCountNamingTheOptionAndTheRange) {
  Child words({"--tts-cache-mb", "lots"}, VOXBRIDGE_PROVIDER_BIN);
  EXPECT_EQ(words.wait_exit(5000ms), 2);
  EXPECT_NE(words.output().find("--tts-cache-mb: 'lots' is not a number from 0 to 4096"),
            std::string::npos)
      << words.output();
  Child none({"--asr-decoders", "0"}, VOXBRIDGE_PROVIDER_BIN);
  EXPECT_EQ(none.wait_exit(5000ms), 2);
  EXPECT_NE(none.output().find("--asr-decoders: '0' is not a number from 1 to 256"),
            std::string::npos)
      << none.output();
}

}  // namespace
