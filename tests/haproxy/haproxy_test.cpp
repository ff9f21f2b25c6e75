// Scale-out behind a real HAProxy (Debian's package): two voxbridge processes on loopback and
// HAProxy in front in TCP mode (leastconn, HTTP check on /readyz, retries + redispatch), the
// directives of deploy/haproxy/haproxy.cfg with test timings. Calls come from the simulator.
//
//   1. Eight calls spread over both instances (four each: leastconn).
//   2. Instance A gets SIGTERM while they run: /readyz says "draining", its listener closes.
//      New calls that HAProxy still sends to A (its check is paused, so A still looks UP) are
//      refused and redispatched to B at once: the caller never notices.
//   3. With the check back, HAProxy marks A DOWN while A still carries its four calls; new
//      calls go straight to B.
//   4. Every call, on A and on B, completes: every frame reaches voxbridge and comes back, the
//      caller hangs up, nothing is cut. A exits 0 having hung up no call.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <numbers>
#include <sstream>
#include <thread>

#include "voxbridge/sim/sim_call.hpp"

namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr const char* kReadyPath = "/readyz";

/// `n` distinct free loopback ports (all held open until every one is chosen).
std::vector<unsigned short> free_ports(std::size_t n) {
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> held;
  std::vector<unsigned short> out;
  while (out.size() < n) {
    held.push_back(
        std::make_unique<tcp::acceptor>(io, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}));
    out.push_back(held.back()->local_endpoint().port());
  }
  return out;
}

bool can_connect(unsigned short port) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}

template <class F>
bool eventually(F pred, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

/// Reads from `fd` until EOF, an error or `limit` (bounded: a stuck peer cannot hang the test).
std::string read_all(int fd, std::chrono::milliseconds limit) {
  std::string all;
  const auto end = Clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left <= 0ms) break;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    all.append(buf, static_cast<std::size_t>(n));
  }
  return all;
}

struct HttpReply {
  int status = 0;  ///< 0: no answer
  std::string body;
};

HttpReply http_get(unsigned short port, const std::string& path) {
  HttpReply out;
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return out;
  asio::write(s, asio::buffer("GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"), ec);
  if (ec) return out;
  const std::string all = read_all(s.native_handle(), 2000ms);
  if (all.rfind("HTTP/1.", 0) == 0 && all.size() > 12) out.status = std::atoi(all.c_str() + 9);
  if (const auto b = all.find("\r\n\r\n"); b != std::string::npos) out.body = all.substr(b + 4);
  return out;
}

/// Calls in progress on an instance, from GET /v1/health ("active_calls"); -1 if no answer.
long active_calls(unsigned short http_port) {
  const auto r = http_get(http_port, "/v1/health");
  const std::string key = "\"active_calls\":";
  const auto at = r.body.find(key);
  if (r.status != 200 || at == std::string::npos) return -1;
  return std::atol(r.body.c_str() + at + key.size());
}

/// A child process, its stdout and stderr in `log`; killed at the end if still running.
class Child {
 public:
  Child(const std::string& bin, const std::vector<std::string>& args, const fs::path& log)
      : log_(log) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fd, 1);  // dup2 clears FD_CLOEXEC on the copies
      ::dup2(fd, 2);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fd);
  }
  ~Child() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void signal(int sig) const { ::kill(pid_, sig); }
  bool running() {
    if (exited_ || pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return !exited_;
  }
  /// Waits up to `limit` for the exit; the exit code, or -1 if still running.
  int wait_exit(std::chrono::milliseconds limit) {
    eventually([&] { return !running(); }, limit);
    return running() ? -1 : code_;
  }
  std::string output() const {
    std::ifstream f(log_);
    return {std::istreambuf_iterator<char>(f), {}};
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

/// One command on HAProxy's stats socket; its answer.
std::string haproxy_command(const fs::path& socket, const std::string& command) {
  asio::io_context io;
  asio::local::stream_protocol::socket s(io);
  boost::system::error_code ec;
  s.connect(asio::local::stream_protocol::endpoint(socket.string()), ec);
  if (ec) return {};
  asio::write(s, asio::buffer(command + "\n"), ec);
  if (ec) return {};
  return read_all(s.native_handle(), 2000ms);
}

struct ServerStats {
  std::string status;        ///< UP, DOWN, ...
  std::string check_status;  ///< L7OK, L7STS (bad status), ...
  long scur = 0;             ///< connections now (calls in progress)
  long stot = 0;             ///< connections ever
  long econ = 0;             ///< failed connects
  long wredis = 0;           ///< redispatched to another server
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

/// The servers of backend "voxbridge", from "show stat" (CSV, columns named in its header).
std::map<std::string, ServerStats> backend_stats(const fs::path& socket) {
  std::map<std::string, ServerStats> out;
  std::istringstream in(haproxy_command(socket, "show stat"));
  std::string line;
  std::map<std::string, std::size_t> col;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      const auto names = split(line.substr(2), ',');
      for (std::size_t i = 0; i < names.size(); ++i) col[names[i]] = i;
      continue;
    }
    const auto f = split(line, ',');
    auto get = [&](const char* name) -> std::string {
      const auto it = col.find(name);
      return it != col.end() && it->second < f.size() ? f[it->second] : std::string();
    };
    if (get("pxname") != "voxbridge" || get("svname") == "BACKEND") continue;
    ServerStats s;
    s.status = get("status");
    s.check_status = get("check_status");
    s.scur = std::atol(get("scur").c_str());
    s.stot = std::atol(get("stot").c_str());
    s.econ = std::atol(get("econ").c_str());
    s.wredis = std::atol(get("wredis").c_str());
    out[get("svname")] = s;
  }
  return out;
}

std::string describe(const std::map<std::string, ServerStats>& stats) {
  std::string s;
  for (const auto& [name, st] : stats) {
    s += name + ": " + st.status + " check=" + st.check_status +
         " scur=" + std::to_string(st.scur) + " stot=" + std::to_string(st.stot) +
         " econ=" + std::to_string(st.econ) + " wredis=" + std::to_string(st.wredis) + "; ";
  }
  return s;
}

/// Three tones at different levels, at 8 kHz.
std::vector<std::int16_t> test_signal(double seconds) {
  std::vector<std::int16_t> v(static_cast<std::size_t>(8000 * seconds));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double t = static_cast<double>(i) / 8000;
    v[i] = static_cast<std::int16_t>(std::lround(4000 * std::sin(2 * std::numbers::pi * 330 * t) +
                                                 2500 * std::sin(2 * std::numbers::pi * 1170 * t) +
                                                 1500 * std::sin(2 * std::numbers::pi * 2630 * t)));
  }
  return v;
}

/// SNR (dB) of the echo of each 200 ms block of `sent` (after the first) at that block's best
/// lag (0..100 ms): a lost or cut stretch fails its blocks wherever it is.
std::vector<double> block_snrs(const std::vector<std::int16_t>& sent,
                               const std::vector<std::int16_t>& got) {
  constexpr std::size_t kBlock = 1600, kMaxLag = 800;
  std::vector<double> out;
  for (std::size_t from = kBlock; from + kBlock <= sent.size(); from += kBlock) {
    double best = -100;
    for (std::size_t lag = 0; lag <= kMaxLag && from + kBlock + lag <= got.size(); ++lag) {
      double sig = 0, err = 0;
      for (std::size_t i = from; i < from + kBlock; ++i) {
        const double d = static_cast<double>(got[i + lag]) - sent[i];
        sig += static_cast<double>(sent[i]) * sent[i];
        err += d * d;
      }
      best = std::max(best, 10 * std::log10(sig / std::max(err, 1.0)));
    }
    out.push_back(best);
  }
  return out;
}

struct Call {
  std::string uuid;
  voxbridge::sim::CallPlan plan;
  std::future<voxbridge::sim::CallResult> result;
};

/// Starts a call through HAProxy after `delay`, with `seconds` of audio; the caller hangs up.
Call start_call(unsigned short port, int n, double seconds, std::chrono::milliseconds delay) {
  Call c;
  char uuid[40];
  std::snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012d", n);
  c.uuid = uuid;
  c.plan.port = port;
  c.plan.uuid = voxbridge::audiosocket::Uuid::parse(c.uuid);
  c.plan.audio = test_signal(seconds);
  c.plan.tail = 300ms;
  c.plan.hangup_at_end = true;
  c.plan.max_duration = 20s;
  c.result = std::async(std::launch::async, [plan = c.plan, delay] {
    std::this_thread::sleep_for(delay);
    return voxbridge::sim::place_call(plan);
  });
  return c;
}

/// The "call end uuid=..." line of `uuid` in a voxbridge log, or empty.
std::string call_end_line(const std::string& log, const std::string& uuid) {
  const auto at = log.find("call end uuid=" + uuid);
  if (at == std::string::npos) return {};
  return log.substr(at, log.find('\n', at) - at);
}

std::string field(const std::string& line, const std::string& name) {
  const auto at = line.find(" " + name + "=");
  if (at == std::string::npos) return {};
  const auto from = at + name.size() + 2;
  return line.substr(from, line.find(' ', from) - from);
}

/// The call came back whole: every frame reached voxbridge (its own count) and was echoed,
/// the caller hung up, nothing was dropped or cut.
void expect_complete(const Call& c, const voxbridge::sim::CallResult& r, const std::string& log) {
  SCOPED_TRACE("call " + c.uuid);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);
  EXPECT_FALSE(r.server_closed);
  EXPECT_EQ(r.non_audio_messages, 0u);
  EXPECT_GE(r.received.size(), c.plan.audio.size());
  const auto snrs = block_snrs(c.plan.audio, r.received);
  ASSERT_FALSE(snrs.empty());
  auto sorted = snrs;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_GE(sorted[sorted.size() / 2], 30.0) << "median echo SNR";
  // One block may suffer from a frame our loaded test caller sent after its tick (voxbridge
  // plays silence in its place and drops it: the tick follows the caller's frames 4 ms after
  // they arrive, and never waits); anything more is voxbridge's fault.
  const auto poor = std::count_if(snrs.begin(), snrs.end(), [](double s) { return s < 20.0; });
  EXPECT_LE(poor, std::max(1L, static_cast<long>(snrs.size() / 10)))
      << "200 ms blocks echoed badly";
  const std::string end = call_end_line(log, c.uuid);
  ASSERT_FALSE(end.empty()) << "no call end line for " << c.uuid;
  EXPECT_EQ(field(end, "frames_in"), std::to_string(r.frames_sent)) << end;
  EXPECT_EQ(field(end, "by"), "caller") << end;
  EXPECT_EQ(field(end, "send_drops"), "0") << end;
}

bool served_by(const std::string& log, const std::string& uuid) {
  return log.find("call start uuid=" + uuid) != std::string::npos;
}

fs::path write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p;
}

TEST(HAProxy, CallsSpreadAndDrainingOneInstanceLosesNoCall) {
  const fs::path dir =
      fs::temp_directory_path() / ("vb_haproxy_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto ports = free_ports(5);
  const unsigned short front = ports[0], port_a = ports[1], port_b = ports[2], http_a = ports[3],
                       http_b = ports[4];

  // Two instances: echo agent, one I/O thread each, 20 s to drain.
  auto conf = [&](const char* name, unsigned short http) {
    return write_file(dir / (std::string(name) + ".conf"),
                      "[general]\nthreads = 1\nlog_level = info\ndrain_timeout_s = 20\n"
                      "handshake_timeout_ms = 2000\nhangup_grace_ms = 500\n"
                      "http_listen = 127.0.0.1:" +
                          std::to_string(http) + "\n");
  };
  auto start_vb = [&](const char* name, unsigned short port, unsigned short http) {
    return std::make_unique<Child>(
        VOXBRIDGE_BIN,
        std::vector<std::string>{"--config", conf(name, http).string(), "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--agent", "echo"},
        dir / (std::string(name) + ".log"));
  };
  auto a = start_vb("a", port_a, http_a);
  auto b = start_vb("b", port_b, http_b);
  ASSERT_TRUE(eventually(
      [&] {
        return http_get(http_a, kReadyPath).status == 200 &&
               http_get(http_b, kReadyPath).status == 200;
      },
      10s))
      << a->output() << b->output();

  // HAProxy: deploy/haproxy/haproxy.cfg's directives, checks every 200 ms, one result decides.
  const fs::path sock = dir / "haproxy.sock";
  std::string cfg_text = R"(global
    stats socket @SOCK@ mode 600 level admin
    log stderr format raw local0 info
    nbthread 2
defaults
    log global
    mode tcp
    option tcplog
    timeout connect 1s
    timeout client 1m
    timeout server 1m
    timeout check 1s
    retries 3
    option redispatch 1
frontend audiosocket
    bind 127.0.0.1:@FRONT@
    default_backend voxbridge
backend voxbridge
    balance leastconn
    option httpchk GET @READY@
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1
    server a 127.0.0.1:@PORT_A@ check port @HTTP_A@
    server b 127.0.0.1:@PORT_B@ check port @HTTP_B@
)";
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"@SOCK@", sock.string()},
                                                        {"@FRONT@", std::to_string(front)},
                                                        {"@READY@", kReadyPath},
                                                        {"@PORT_A@", std::to_string(port_a)},
                                                        {"@HTTP_A@", std::to_string(http_a)},
                                                        {"@PORT_B@", std::to_string(port_b)},
                                                        {"@HTTP_B@", std::to_string(http_b)}}) {
    cfg_text.replace(cfg_text.find(key), key.size(), value);
  }
  const fs::path cfg = write_file(dir / "haproxy.cfg", cfg_text);
  Child haproxy(HAPROXY_BIN, {"-db", "-f", cfg.string()}, dir / "haproxy.log");
  ASSERT_TRUE(eventually(
      [&] {
        const auto st = backend_stats(sock);
        return st.size() == 2 && st.at("a").status == "UP" && st.at("a").check_status == "L7OK" &&
               st.at("b").status == "UP" && st.at("b").check_status == "L7OK";
      },
      10s))
      << describe(backend_stats(sock)) << haproxy.output();

  // 1. Eight 6 s calls, 60 ms apart: leastconn gives each instance four.
  std::vector<Call> first;
  for (int i = 0; i < 8; ++i) first.push_back(start_call(front, i, 6.0, 60ms * i));
  ASSERT_TRUE(eventually([&] { return active_calls(http_a) + active_calls(http_b) == 8; }, 5s))
      << describe(backend_stats(sock));
  EXPECT_EQ(active_calls(http_a), 4);
  EXPECT_EQ(active_calls(http_b), 4);
  auto st = backend_stats(sock);
  EXPECT_EQ(st["a"].scur, 4) << describe(st);
  EXPECT_EQ(st["b"].scur, 4) << describe(st);

  // 2. Drain A. Its check is paused first, so HAProxy keeps A UP and keeps choosing it: the
  // refused connects must be redispatched (the window between SIGTERM and the next check).
  EXPECT_EQ(haproxy_command(sock, "disable health voxbridge/a"), "\n");
  a->signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return http_get(http_a, kReadyPath).status == 503; }, 3s))
      << a->output();
  EXPECT_NE(http_get(http_a, kReadyPath).body.find("draining"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return !can_connect(port_a); }, 3s)) << a->output();
  EXPECT_EQ(active_calls(http_a), 4);  // A's calls go on
  std::vector<Call> redispatched;
  for (int i = 0; i < 2; ++i) redispatched.push_back(start_call(front, 100 + i, 2.0, 100ms * i));
  ASSERT_TRUE(eventually([&] { return active_calls(http_b) == 6; }, 5s))
      << describe(backend_stats(sock)) << haproxy.output();
  st = backend_stats(sock);
  EXPECT_GE(st["a"].wredis, 1) << describe(st);           // at least the second call tried A first
  EXPECT_EQ(st["a"].status, "no check") << describe(st);  // paused: HAProxy takes it as UP

  // 3. The check again: A's 503 marks it DOWN while it still carries its four calls.
  EXPECT_EQ(haproxy_command(sock, "enable health voxbridge/a"), "\n");
  ASSERT_TRUE(eventually([&] { return backend_stats(sock)["a"].status == "DOWN"; }, 3s))
      << describe(backend_stats(sock)) << haproxy.output();
  EXPECT_TRUE(a->running());
  EXPECT_EQ(backend_stats(sock)["a"].scur, 4);  // DOWN keeps the sessions it has
  const long a_total = backend_stats(sock)["a"].stot;
  std::vector<Call> after_down;
  for (int i = 0; i < 2; ++i) after_down.push_back(start_call(front, 200 + i, 2.0, 100ms * i));

  // 4. Every call completes; A finishes its calls and exits 0 without hanging any up.
  std::vector<std::pair<Call*, voxbridge::sim::CallResult>> done;
  for (auto* group : {&first, &redispatched, &after_down}) {
    for (auto& c : *group) done.emplace_back(&c, c.result.get());
  }
  EXPECT_EQ(a->wait_exit(15s), 0) << a->output();
  // A call's end is logged when voxbridge has seen the caller's hangup, a tick after ours.
  std::string log_a, log_b;
  eventually(
      [&] {
        log_a = a->output();
        log_b = b->output();
        return std::all_of(done.begin(), done.end(), [&](const auto& d) {
          return !call_end_line(log_a, d.first->uuid).empty() ||
                 !call_end_line(log_b, d.first->uuid).empty();
        });
      },
      5s);
  int on_a = 0, on_b = 0;
  for (auto& [c, r] : done) {
    const bool in_a = served_by(log_a, c->uuid), in_b = served_by(log_b, c->uuid);
    EXPECT_NE(in_a, in_b) << c->uuid << " served by exactly one instance";
    on_a += in_a;
    on_b += in_b;
    expect_complete(*c, r, in_a ? log_a : log_b);
  }
  for (const auto* group : {&redispatched, &after_down}) {
    for (const auto& c : *group) {
      EXPECT_TRUE(served_by(log_b, c.uuid)) << c.uuid << " (after A's SIGTERM) not on B";
    }
  }
  EXPECT_EQ(on_a, 4);
  EXPECT_EQ(on_b, 8);
  EXPECT_EQ(backend_stats(sock)["a"].stot, a_total);  // nothing more was sent to A once DOWN
  EXPECT_NE(log_a.find("0 hung up at shutdown"), std::string::npos) << log_a;

  b->signal(SIGTERM);
  EXPECT_EQ(b->wait_exit(5s), 0) << b->output();
  haproxy.signal(SIGTERM);
  haproxy.wait_exit(5s);
  if (!HasFailure()) {
    fs::remove_all(dir);
  } else {
    std::cerr << "logs kept in " << dir << "\nhaproxy:\n" << haproxy.output();
  }
}

}  // namespace
