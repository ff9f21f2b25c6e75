// End-to-end test: real calls from a private Asterisk into voxbridge's echo agent.
//
// One Asterisk and one voxbridge are started once for the whole program (a gtest Environment),
// both in a fresh temp dir; every TEST places one or two calls and checks what both sides saw:
//
//   channel originate Local/ID@caller-SCENARIO/n extension ID@agent-MODE
//
// The Local channel's ;2 half (caller-*, see conf/extensions.conf) is the phone: it plays a probe
// WAV generated here (four tones, 0.6 s each), sends DTMF or hangs up, and MixMonitor records what
// it sent (t) and what it heard (r). The ;1 half (agent-*) connects to voxbridge with the
// AudioSocket() app (slin 8 kHz), or with Dial(AudioSocket/...) on a ulaw or slin16 leg.
// The checks: the caller hears its own probe back at the same level and frequencies, without
// dropouts, after a short delay; voxbridge sent 50 frames per second; DTMF digits and hangups in
// both directions are seen and logged as they should be.
//
// Needs Asterisk built by ../shared/asterisk/build.sh in $VOXBRIDGE_ASTERISK_PREFIX (default
// $HOME/.cache/voxbridge/asterisk); without it every test fails and says how to build it.
// VOXBRIDGE_E2E_KEEP=1 keeps the temp dir (it is always kept when a test failed).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <numbers>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "voxbridge/audio/wav.hpp"

extern char** environ;

#ifndef VB_VOXBRIDGE_BIN
#error "VB_VOXBRIDGE_BIN (path of the voxbridge binary) must be defined"
#endif
#ifndef VB_ASTERISK_CONF_DIR
#error "VB_ASTERISK_CONF_DIR (the config templates) must be defined"
#endif
#ifndef VB_ASTERISK_BUILD_SCRIPT
#define VB_ASTERISK_BUILD_SCRIPT "../shared/asterisk/build.sh"
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// The probe the caller plays: four tones, so the echo's delay is unambiguous and a wrong sample
// rate anywhere shows as a wrong frequency.

constexpr int kProbeRate = 8000;
constexpr double kProbeSegmentSeconds = 0.6;
constexpr std::array<double, 4> kProbeTonesHz = {600.0, 1000.0, 1400.0, 800.0};
constexpr double kProbeAmplitude = 8000.0;  // -12.3 dBFS peak, -15.3 dBFS RMS
constexpr std::size_t kSegmentSamples =
    static_cast<std::size_t>(kProbeRate * kProbeSegmentSeconds);  // 4800

std::vector<std::int16_t> make_probe() {
  std::vector<std::int16_t> out;
  const std::size_t ramp = kProbeRate / 100;  // 10 ms fades: no clicks between tones
  for (const double f : kProbeTonesHz) {
    for (std::size_t i = 0; i < kSegmentSamples; ++i) {
      const double gain =
          std::min({1.0, static_cast<double>(i) / static_cast<double>(ramp),
                    static_cast<double>(kSegmentSamples - i) / static_cast<double>(ramp)});
      out.push_back(static_cast<std::int16_t>(
          std::lround(kProbeAmplitude * gain *
                      std::sin(2.0 * std::numbers::pi * f * static_cast<double>(i) /
                               static_cast<double>(kProbeRate)))));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small helpers: files, processes.

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail_lines(const std::string& text, std::size_t n) {
  std::size_t pos = text.size();
  for (std::size_t k = 0; k <= n && pos > 0; ++k) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

std::string tail_file(const fs::path& p, std::size_t n = 30) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return "(" + p.string() + " does not exist)\n";
  return "---- last lines of " + p.string() + " ----\n" + tail_lines(read_file(p), n);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

std::vector<char*> c_argv(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}

/// A child process with stdin from /dev/null and stdout+stderr appended to a log file.
class Process {
 public:
  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { kill_now(); }

  /// The child is killed if this process dies first (a ctest timeout must not leave a stray
  /// Asterisk or voxbridge behind).
  bool start(std::vector<std::string> args, const fs::path& log, std::string& error) {
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
      error = "cannot open " + log.string() + ": " + std::strerror(errno);
      if (log_fd >= 0) close(log_fd);
      if (null_fd >= 0) close(null_fd);
      return false;
    }
    auto argv = c_argv(args);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Child: only async-signal-safe calls from here on.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const int fork_errno = errno;
    close(log_fd);
    close(null_fd);
    if (pid_ < 0) {
      error = "cannot start " + args[0] + ": " + std::strerror(fork_errno);
      return false;
    }
    status_.reset();
    return true;
  }

  /// True while the child has not exited (reaps it when it has).
  bool running() {
    if (pid_ <= 0 || status_) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = st;
      return false;
    }
    return true;
  }

  /// Waits up to `timeout` for the child to exit.
  bool wait_for(std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (running()) {
      if (SteadyClock::now() >= deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  void signal(int sig) {
    if (running()) ::kill(pid_, sig);
  }

  void kill_now() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      wait_for(5s);
    }
  }

  std::string describe_exit() const {
    if (!status_) return "still running";
    if (WIFEXITED(*status_)) return "exited with status " + std::to_string(WEXITSTATUS(*status_));
    if (WIFSIGNALED(*status_)) return "killed by signal " + std::to_string(WTERMSIG(*status_));
    return "ended";
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct CommandResult {
  int exit_code = -1;  ///< -1: could not run, or timed out
  std::string output;  ///< stdout and stderr
};

/// Runs a command to completion (killing it after `timeout`) and captures its output.
CommandResult run_command(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  CommandResult r;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  auto argv = c_argv(args);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    r.output = "cannot start " + args[0] + ": " + std::strerror(rc);
    return r;
  }
  const auto deadline = SteadyClock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int pr = poll(&p, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      timed_out = pr == 0;
      break;
    }
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!timed_out && WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
  if (timed_out) r.output += "\n(timed out after " + std::to_string(timeout.count()) + " ms)";
  return r;
}

bool port_is_free(unsigned short port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// voxbridge's log: one `call end` line per call, `[uuid] dtmf D` lines at debug level.

struct CallEnd {
  std::string line;
  std::string codec;
  int rate = 0;
  double duration_s = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t dtmf = 0;
  std::uint64_t late = 0;
  std::uint64_t underruns = 0;
  std::string by;
  std::string reason;
};

/// key=value fields of a log line; values may be "quoted".
std::map<std::string, std::string> parse_fields(const std::string& line) {
  std::map<std::string, std::string> f;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const std::size_t eq = line.find('=', i);
    const std::size_t sp = line.find(' ', i);
    if (eq == std::string::npos) break;
    if (sp != std::string::npos && sp < eq) {
      i = sp + 1;
      continue;
    }
    const std::string key = line.substr(i, eq - i);
    std::size_t end;
    std::string value;
    if (eq + 1 < line.size() && line[eq + 1] == '"') {
      end = line.find('"', eq + 2);
      if (end == std::string::npos) end = line.size();
      value = line.substr(eq + 2, end - eq - 2);
      ++end;
    } else {
      end = line.find(' ', eq + 1);
      if (end == std::string::npos) end = line.size();
      value = line.substr(eq + 1, end - eq - 1);
    }
    f[key] = value;
    i = end;
  }
  return f;
}

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

std::optional<CallEnd> find_call_end(const std::string& log, const std::string& uuid) {
  const auto lines = lines_with(log, "call end uuid=" + uuid + " ");
  if (lines.empty()) return std::nullopt;
  CallEnd e;
  e.line = lines.back();
  auto f = parse_fields(e.line.substr(e.line.find("call end ") + 9));
  e.codec = f["codec"];
  e.rate = std::atoi(f["rate"].c_str());
  e.duration_s = std::atof(f["duration"].c_str());  // "3.03s": atof stops at the 's'
  e.frames_in = std::strtoull(f["frames_in"].c_str(), nullptr, 10);
  e.frames_out = std::strtoull(f["frames_out"].c_str(), nullptr, 10);
  e.dtmf = std::strtoull(f["dtmf"].c_str(), nullptr, 10);
  e.late = std::strtoull(f["late"].c_str(), nullptr, 10);
  e.underruns = std::strtoull(f["underruns"].c_str(), nullptr, 10);
  e.by = f["by"];
  e.reason = f["reason"];
  return e;
}

/// The level word of an spdlog line "YYYY-MM-DD HH:MM:SS.mmm LEVEL message".
std::string log_level_of(const std::string& line) {
  std::istringstream in(line);
  std::string date, time, level;
  in >> date >> time >> level;
  return level;
}

// ---------------------------------------------------------------------------------------------
// Signal analysis of the recordings (8 kHz mono, from MixMonitor).

/// |DFT of x at frequency f|^2, optionally Hann-windowed (a rotating phasor, no trig per sample).
double tone_power(std::span<const std::int16_t> x, double f, int rate, bool hann) {
  const double w = 2.0 * std::numbers::pi * f / rate;
  const double step_re = std::cos(w), step_im = -std::sin(w);
  const double hw = 2.0 * std::numbers::pi / (static_cast<double>(x.size()) - 1);
  const double hstep_re = std::cos(hw), hstep_im = std::sin(hw);
  double p_re = 1, p_im = 0;  // exp(-j w i)
  double h_re = 1, h_im = 0;  // exp(j hw i), for the Hann window 0.5 - 0.5 cos(hw i)
  double re = 0, im = 0;
  for (const auto sample : x) {
    double v = sample;
    if (hann) v *= 0.5 - 0.5 * h_re;
    re += v * p_re;
    im += v * p_im;
    const double np_re = p_re * step_re - p_im * step_im;
    p_im = p_re * step_im + p_im * step_re;
    p_re = np_re;
    const double nh_re = h_re * hstep_re - h_im * hstep_im;
    h_im = h_re * hstep_im + h_im * hstep_re;
    h_re = nh_re;
  }
  return re * re + im * im;
}

double rms(std::span<const std::int16_t> x) {
  if (x.empty()) return 0;
  double e = 0;
  for (const auto v : x) e += static_cast<double>(v) * v;
  return std::sqrt(e / static_cast<double>(x.size()));
}

double dbfs(double rms_value) {
  return 20.0 * std::log10(std::max(rms_value, 1e-3) / 32768.0);
}

struct Tone {
  double freq_hz = 0;
  double rms_dbfs = -200;
  double purity = 0;  ///< share of the energy in that one sinusoid (1 = pure tone, ~0 = noise)
};

/// The dominant sinusoid of x: a 2 Hz Hann-windowed scan, refined in 0.05 Hz steps.
Tone analyse_tone(std::span<const std::int16_t> x, int rate) {
  Tone t;
  t.rms_dbfs = dbfs(rms(x));
  double best = -1;
  for (double f = 100; f < rate / 2.0 - 100; f += 2.0) {
    const double p = tone_power(x, f, rate, true);
    if (p > best) {
      best = p;
      t.freq_hz = f;
    }
  }
  const double coarse = t.freq_hz;
  best = -1;
  for (double f = coarse - 2.0; f <= coarse + 2.0; f += 0.05) {
    const double p = tone_power(x, f, rate, true);
    if (p > best) {
      best = p;
      t.freq_hz = f;
    }
  }
  double energy = 0;
  for (const auto v : x) energy += static_cast<double>(v) * v;
  if (energy > 0) {
    t.purity =
        2.0 * tone_power(x, t.freq_hz, rate, false) / (static_cast<double>(x.size()) * energy);
  }
  return t;
}

struct EchoAnalysis {
  bool ok = false;
  std::string error;
  double lag_ms = 0;       ///< heard = sent delayed by this much (as the recordings align)
  double correlation = 0;  ///< normalised cross-correlation at that lag
  double sent_dbfs = 0;    ///< RMS over the whole probe
  double heard_dbfs = 0;
  std::array<Tone, 4> sent{};
  std::array<Tone, 4> heard{};
  std::size_t loud_blocks = 0;     ///< 10 ms blocks where the sent probe is loud
  std::size_t missing_blocks = 0;  ///< ... of which the echo is >10 dB quieter (a dropout)
  double sent_active_s = 0;        ///< how long the probe is audible in each recording
  double heard_active_s = 0;
};

std::pair<std::size_t, std::size_t> active_extent(const std::vector<std::int16_t>& x,
                                                  std::size_t from, std::size_t to, int threshold) {
  std::size_t first = to, last = from;
  for (std::size_t i = from; i < to && i < x.size(); ++i) {
    if (std::abs(static_cast<int>(x[i])) > threshold) {
      first = std::min(first, i);
      last = i;
    }
  }
  return {first, last};
}

EchoAnalysis analyse_echo(const fs::path& sent_path, const fs::path& heard_path) {
  EchoAnalysis a;
  std::string err;
  const auto sent_wav = voxbridge::audio::read_wav(sent_path, err);
  if (!err.empty()) {
    a.error = "sent recording: " + err;
    return a;
  }
  const auto heard_wav = voxbridge::audio::read_wav(heard_path, err);
  if (!err.empty()) {
    a.error = "heard recording: " + err;
    return a;
  }
  if (sent_wav.rate_hz != kProbeRate || heard_wav.rate_hz != kProbeRate) {
    a.error = "recordings are " + std::to_string(sent_wav.rate_hz) + "/" +
              std::to_string(heard_wav.rate_hz) + " Hz, expected 8000";
    return a;
  }
  const auto& s = sent_wav.samples;
  const auto& h = heard_wav.samples;
  const std::size_t probe_len = kSegmentSamples * kProbeTonesHz.size();

  // Where the probe starts in the sent recording.
  const auto [s_first, s_last] = active_extent(s, 0, s.size(), 1000);
  if (s_first >= s.size() || s_last - s_first + 1 < probe_len * 9 / 10) {
    a.error = "the sent recording does not hold the probe (" + std::to_string(s.size()) +
              " samples; caller audio missing?)";
    return a;
  }
  const std::size_t start = s_first > 10 ? s_first - 10 : 0;  // back to the fade-in's foot
  if (start + probe_len > s.size()) {
    a.error = "the sent recording ends inside the probe";
    return a;
  }
  a.sent_active_s = static_cast<double>(s_last - s_first + 1) / kProbeRate;

  // The echo's delay: the lag (-0.5 .. +1 s) that best correlates heard with sent. A negative
  // lag would mean the recordings' directions are swapped.
  const std::span<const std::int16_t> ref(s.data() + start, probe_len);
  double ref_energy = 0;
  for (const auto v : ref) ref_energy += static_cast<double>(v) * v;
  const long max_lag = kProbeRate;
  const long min_lag = -kProbeRate / 2;
  long best_lag = 0;
  double best_c = -2;
  for (long lag = min_lag; lag <= max_lag; ++lag) {
    const long off = static_cast<long>(start) + lag;
    if (off < 0 || static_cast<std::size_t>(off) + probe_len > h.size()) continue;
    std::int64_t dot = 0;
    double e = 0;
    const std::int16_t* hp = h.data() + off;
    for (std::size_t i = 0; i < probe_len; ++i) {
      dot += static_cast<std::int64_t>(ref[i]) * hp[i];
      e += static_cast<double>(hp[i]) * hp[i];
    }
    const double c = static_cast<double>(dot) / std::sqrt(ref_energy * e + 1.0);
    if (c > best_c) {
      best_c = c;
      best_lag = lag;
    }
  }
  if (best_c < -1) {
    a.error = "the heard recording is too short to hold the echo";
    return a;
  }
  a.lag_ms = 1000.0 * static_cast<double>(best_lag) / kProbeRate;
  a.correlation = best_c;
  const std::size_t hstart = static_cast<std::size_t>(static_cast<long>(start) + best_lag);
  const std::span<const std::int16_t> echo(h.data() + hstart, probe_len);
  a.sent_dbfs = dbfs(rms(ref));
  a.heard_dbfs = dbfs(rms(echo));
  const auto [h_first, h_last] = active_extent(h, hstart > 800 ? hstart - 800 : 0,
                                               std::min(h.size(), hstart + probe_len + 800), 1000);
  a.heard_active_s = h_last >= h_first ? static_cast<double>(h_last - h_first + 1) / kProbeRate : 0;

  // Per tone: frequency, level, purity (50 ms clear of each tone's edges).
  const std::size_t margin = kProbeRate / 20;
  for (std::size_t k = 0; k < kProbeTonesHz.size(); ++k) {
    const std::size_t from = k * kSegmentSamples + margin;
    const std::size_t len = kSegmentSamples - 2 * margin;
    a.sent[k] = analyse_tone(ref.subspan(from, len), kProbeRate);
    a.heard[k] = analyse_tone(echo.subspan(from, len), kProbeRate);
  }

  // Dropouts: inside each tone (20 ms clear of the fades, so a one-off 20 ms change of the
  // echo's delay is no dropout), every 10 ms block of the echo must be as loud as the probe.
  const double sent_rms = rms(ref);
  const std::size_t block = kProbeRate / 100;
  std::vector<double> sb;
  for (std::size_t i = 0; i + block <= probe_len; i += block)
    sb.push_back(rms(ref.subspan(i, block)));
  for (std::size_t j = 2; j + 2 < sb.size(); ++j) {
    bool interior = true;
    for (std::size_t k = j - 2; k <= j + 2; ++k) interior = interior && sb[k] >= 0.5 * sent_rms;
    if (!interior) continue;
    ++a.loud_blocks;
    if (rms(echo.subspan(j * block, block)) < 0.316 * sb[j]) ++a.missing_blocks;
  }
  a.ok = true;
  return a;
}

// ---------------------------------------------------------------------------------------------
// A TCP tap between Asterisk and voxbridge, for the calls whose bytes on the wire the test checks
// (the server-hangup calls: Asterisk treats 0x00 and a plain close alike, so only the wire shows
// that voxbridge really sent 0x00). It forwards each read in one write, passes half-closes on,
// and records both directions with arrival times. One connection at a time.

struct WireChunk {
  double t = 0;  ///< seconds since the connection was accepted
  std::vector<std::uint8_t> bytes;
};

struct TapSession {
  std::vector<WireChunk> down;    ///< voxbridge -> Asterisk
  std::vector<WireChunk> up;      ///< Asterisk -> voxbridge
  bool voxbridge_closed = false;  ///< voxbridge ended its side in order (FIN, not RST)
  std::string error;
};

struct WireMessage {
  double t = 0;  ///< arrival of the chunk that completed it
  std::uint8_t kind = 0;
  std::vector<std::uint8_t> payload;
};

/// Splits a recorded direction into AudioSocket messages; `rest` gets what is left over.
std::vector<WireMessage> parse_wire(const std::vector<WireChunk>& chunks, std::size_t& rest) {
  std::vector<WireMessage> out;
  std::vector<std::uint8_t> buf;
  std::size_t pos = 0;
  for (const auto& c : chunks) {
    buf.insert(buf.end(), c.bytes.begin(), c.bytes.end());
    while (buf.size() - pos >= 3) {
      const std::size_t len = static_cast<std::size_t>(buf[pos + 1]) << 8 | buf[pos + 2];
      if (buf.size() - pos < 3 + len) break;
      WireMessage m;
      m.t = c.t;
      m.kind = buf[pos];
      m.payload.assign(buf.begin() + static_cast<std::ptrdiff_t>(pos + 3),
                       buf.begin() + static_cast<std::ptrdiff_t>(pos + 3 + len));
      out.push_back(std::move(m));
      pos += 3 + len;
    }
  }
  rest = buf.size() - pos;
  return out;
}

class Tap {
 public:
  Tap() = default;
  Tap(const Tap&) = delete;
  Tap& operator=(const Tap&) = delete;
  ~Tap() { stop(); }

  /// Listens on 127.0.0.1 (a port the kernel picks) and forwards to 127.0.0.1:upstream_port.
  bool start(unsigned short upstream_port, std::string& error) {
    upstream_port_ = upstream_port;
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd_, 8) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        pipe2(stop_pipe_, O_CLOEXEC) != 0) {
      error = std::string("tap: ") + std::strerror(errno);
      return false;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
    return true;
  }

  void stop() {
    if (thread_.joinable()) {
      const char x = 'x';
      [[maybe_unused]] const auto n = write(stop_pipe_[1], &x, 1);
      thread_.join();
    }
    for (int* fd : {&listen_fd_, &stop_pipe_[0], &stop_pipe_[1]}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  unsigned short port() const { return port_; }

  /// The oldest finished session not taken yet, waiting up to `timeout` for one.
  std::optional<TapSession> take(std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!done_.empty()) {
          TapSession s = std::move(done_.front());
          done_.erase(done_.begin());
          return s;
        }
      }
      if (SteadyClock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }

 private:
  void run() {
    for (;;) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (poll(p, 2, -1) < 0 && errno != EINTR) return;
      if (p[1].revents != 0) return;
      if ((p[0].revents & POLLIN) == 0) continue;
      const int down_fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (down_fd < 0) continue;
      TapSession s = relay(down_fd);
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(s));
    }
  }

  TapSession relay(int asterisk_fd) {
    TapSession s;
    const auto t0 = SteadyClock::now();
    const int vb_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(upstream_port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (vb_fd < 0 || connect(vb_fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      s.error = std::string("tap: connect to voxbridge: ") + std::strerror(errno);
      if (vb_fd >= 0) close(vb_fd);
      close(asterisk_fd);
      return s;
    }
    const int one = 1;
    setsockopt(vb_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(asterisk_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool asterisk_eof = false, vb_eof = false;
    std::vector<std::uint8_t> buf(65536 + 3);
    while (!(asterisk_eof && vb_eof) && s.error.empty()) {
      pollfd p[3] = {{asterisk_fd, static_cast<short>(asterisk_eof ? 0 : POLLIN), 0},
                     {vb_fd, static_cast<short>(vb_eof ? 0 : POLLIN), 0},
                     {stop_pipe_[0], POLLIN, 0}};
      if (poll(p, 3, 30000) <= 0 || p[2].revents != 0) {
        s.error = "tap: stopped or idle for 30 s";
        break;
      }
      for (int side = 0; side < 2 && s.error.empty(); ++side) {
        if (p[side].revents == 0) continue;
        const int from = side == 0 ? asterisk_fd : vb_fd;
        const int to = side == 0 ? vb_fd : asterisk_fd;
        const ssize_t n = read(from, buf.data(), buf.size());
        if (n < 0) {
          s.error = std::string("tap: read from ") + (side == 0 ? "Asterisk" : "voxbridge") + ": " +
                    std::strerror(errno);
          break;
        }
        if (n == 0) {
          (side == 0 ? asterisk_eof : vb_eof) = true;
          if (side == 1) s.voxbridge_closed = true;
          shutdown(to, SHUT_WR);
          continue;
        }
        const auto count = static_cast<std::size_t>(n);
        WireChunk c;
        c.t = std::chrono::duration<double>(SteadyClock::now() - t0).count();
        c.bytes.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(count));
        // One write per read: Asterisk must get a message's header and payload together.
        if (send(to, buf.data(), count, MSG_NOSIGNAL) != n) {
          // The other side is gone (it hung up); what was read still counts as sent.
        }
        (side == 0 ? s.up : s.down).push_back(std::move(c));
      }
    }
    close(vb_fd);
    close(asterisk_fd);
    return s;
  }

  unsigned short upstream_port_ = 0;
  unsigned short port_ = 0;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  std::mutex mu_;
  std::vector<TapSession> done_;
};

// ---------------------------------------------------------------------------------------------
// The shared Asterisk + voxbridge.

class E2E : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;

  bool ready() const { return ready_; }
  const std::string& error() const { return error_; }
  const fs::path& tmp() const { return tmp_; }
  const fs::path& rec_dir() const { return rec_dir_; }
  unsigned short vb_port() const { return vb_port_; }

  CommandResult rx(const std::string& cli, std::chrono::milliseconds timeout = 15s) const {
    return run_command({asterisk_bin_.string(), "-C", conf_.string(), "-rx", cli}, timeout);
  }
  std::map<std::string, std::string> globals() const;
  int active_channels() const;  ///< -1 if unknown
  std::string voxbridge_log() const { return read_file(vb_log_); }
  Tap& tap() { return tap_; }

  /// Tails of every log, for failure messages.
  std::string diagnostics() const {
    return tail_file(vb_log_, 25) + tail_file(tmp_ / "log" / "messages.log", 25) +
           tail_file(tmp_ / "asterisk.out", 10) + "(all files: " + tmp_.string() + ")\n";
  }

 private:
  bool setup(std::string& error);
  bool check_prefix(std::string& error);
  bool write_configs(std::string& error);
  bool start_voxbridge(std::string& error);
  bool start_asterisk(std::string& error);

  bool ready_ = false;
  std::string error_;
  fs::path prefix_;
  fs::path asterisk_bin_;
  fs::path tmp_;
  fs::path conf_;
  fs::path rec_dir_;
  fs::path probe_;
  fs::path vb_log_;
  unsigned short vb_port_ = 0;
  Process voxbridge_;
  Process asterisk_;
  Tap tap_;
  SteadyClock::time_point started_;
};

E2E* g_env = nullptr;

void E2E::SetUp() {
  started_ = SteadyClock::now();
  std::string err;
  ready_ = setup(err);
  if (!ready_) {
    error_ = err;
    if (!tmp_.empty()) error_ += "\n" + diagnostics();
  } else {
    std::cout << "[ e2e      ] Asterisk " << prefix_.string()
              << " and voxbridge on 127.0.0.1:" << vb_port_ << " ready in "
              << std::chrono::duration<double>(SteadyClock::now() - started_).count()
              << " s; files in " << tmp_.string() << "\n";
  }
}

bool E2E::check_prefix(std::string& error) {
  const char* env = std::getenv("VOXBRIDGE_ASTERISK_PREFIX");
  const char* home = std::getenv("HOME");
  if (env != nullptr && *env != '\0') {
    prefix_ = env;
  } else {
    prefix_ = fs::path(home != nullptr ? home : "/root") / ".cache/voxbridge/asterisk";
  }
  asterisk_bin_ = prefix_ / "sbin" / "asterisk";
  std::vector<fs::path> needed = {
      asterisk_bin_,
      prefix_ / "lib/asterisk/modules/app_audiosocket.so",
      prefix_ / "lib/asterisk/modules/chan_audiosocket.so",
      prefix_ / "lib/asterisk/modules/res_audiosocket.so",
      prefix_ / "lib/asterisk/modules/app_mixmonitor.so",
      prefix_ / "var/lib/asterisk/documentation",
  };
  for (const auto& p : needed) {
    std::error_code ec;
    if (!fs::exists(p, ec)) {
      error = "No usable Asterisk in " + prefix_.string() + " (" + p.string() +
              " is missing). Build it first: run `bash ../shared/asterisk/build.sh " +
              prefix_.string() +
              "` from the repository root (script: " VB_ASTERISK_BUILD_SCRIPT
              "), or point VOXBRIDGE_ASTERISK_PREFIX at a built one.";
      return false;
    }
  }
  if (access(asterisk_bin_.c_str(), X_OK) != 0) {
    error = asterisk_bin_.string() + " is not executable";
    return false;
  }
  return true;
}

bool E2E::setup(std::string& error) {
  if (!check_prefix(error)) return false;
  if (access(VB_VOXBRIDGE_BIN, X_OK) != 0) {
    error = "voxbridge binary " VB_VOXBRIDGE_BIN " is missing: build the project first";
    return false;
  }

  // Temp dir: short, since Asterisk's control socket path must fit in sockaddr_un.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base = (tmpdir != nullptr && std::strlen(tmpdir) < 60) ? tmpdir : "/tmp";
  std::string tmpl = base + "/vb-asterisk-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    error = "mkdtemp(" + tmpl + "): " + std::strerror(errno);
    return false;
  }
  tmp_ = tmpl;
  rec_dir_ = tmp_ / "rec";
  for (const char* d : {"etc", "cache", "varlib", "db", "keys", "data", "agi", "spool", "run",
                        "log", "rec", "sounds"}) {
    fs::create_directories(tmp_ / d);
  }
  // Asterisk validates its modules' options against the XML documentation at load.
  fs::create_directory_symlink(prefix_ / "var/lib/asterisk/documentation",
                               tmp_ / "data" / "documentation");

  probe_ = tmp_ / "sounds" / "probe";
  std::string err;
  if (!voxbridge::audio::write_wav(tmp_ / "sounds" / "probe.wav", kProbeRate, make_probe(), err)) {
    error = "cannot write the probe: " + err;
    return false;
  }
  if (!start_voxbridge(error)) return false;
  if (!tap_.start(vb_port_, error)) return false;
  if (!write_configs(error)) return false;
  return start_asterisk(error);
}

bool E2E::start_voxbridge(std::string& error) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> dist(20000, 60999);
  vb_log_ = tmp_ / "voxbridge.log";
  std::string last;
  for (int attempt = 0; attempt < 20; ++attempt) {
    const auto port = static_cast<unsigned short>(dist(rng));
    if (!port_is_free(port)) continue;
    const std::string listen = "127.0.0.1:" + std::to_string(port);
    std::error_code ec;
    fs::remove(vb_log_, ec);
    if (!voxbridge_.start(
            {VB_VOXBRIDGE_BIN, "--listen", listen, "--agent", "echo", "--log-level", "debug"},
            vb_log_, error)) {
      return false;
    }
    const auto deadline = SteadyClock::now() + 10s;
    while (SteadyClock::now() < deadline) {
      if (read_file(vb_log_).find("listening on " + listen) != std::string::npos) {
        vb_port_ = port;
        return true;
      }
      if (!voxbridge_.running()) break;
      std::this_thread::sleep_for(20ms);
    }
    voxbridge_.kill_now();
    last = "voxbridge on " + listen + " " + voxbridge_.describe_exit() + ":\n" + read_file(vb_log_);
  }
  error = "could not start voxbridge on a free port; last try: " + last;
  return false;
}

bool E2E::write_configs(std::string& error) {
  conf_ = tmp_ / "etc" / "asterisk.conf";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(VB_ASTERISK_CONF_DIR, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string text = read_file(entry.path());
    replace_all(text, "@PREFIX@", prefix_.string());
    replace_all(text, "@TMP@", tmp_.string());
    replace_all(text, "@VB_PORT@", std::to_string(vb_port_));
    replace_all(text, "@VB_TAP_PORT@", std::to_string(tap_.port()));
    replace_all(text, "@REC_DIR@", rec_dir_.string());
    replace_all(text, "@PROBE@", probe_.string());
    std::ofstream out(tmp_ / "etc" / entry.path().filename(), std::ios::binary);
    out << text;
    if (!out) {
      error = "cannot write " + (tmp_ / "etc" / entry.path().filename()).string();
      return false;
    }
  }
  if (ec || !fs::exists(conf_)) {
    error = "no Asterisk config templates in " VB_ASTERISK_CONF_DIR;
    return false;
  }
  return true;
}

bool E2E::start_asterisk(std::string& error) {
  if (!asterisk_.start({asterisk_bin_.string(), "-C", conf_.string(), "-f", "-n"},
                       tmp_ / "asterisk.out", error)) {
    return false;
  }
  const auto deadline = SteadyClock::now() + 60s;
  CommandResult r;
  while (SteadyClock::now() < deadline) {
    if (!asterisk_.running()) {
      error = "Asterisk " + asterisk_.describe_exit() + " while starting";
      return false;
    }
    r = rx("core waitfullybooted", 30s);
    if (r.exit_code == 0 && r.output.find("fully booted") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  if (r.output.find("fully booted") == std::string::npos) {
    error = "Asterisk did not finish booting within 60 s: " + r.output;
    return false;
  }
  const auto mods = rx("module show like audiosocket").output;
  for (const char* m : {"res_audiosocket.so", "app_audiosocket.so", "chan_audiosocket.so"}) {
    if (mods.find(m) == std::string::npos) {
      error = std::string("Asterisk did not load ") + m + ":\n" + mods;
      return false;
    }
  }
  return true;
}

void E2E::TearDown() {
  if (asterisk_.running()) {
    rx("core stop now", 10s);
    if (!asterisk_.wait_for(15s)) {
      std::cout << "[ e2e      ] Asterisk did not stop; killing it\n";
      asterisk_.kill_now();
    }
  }
  tap_.stop();
  if (voxbridge_.running()) {
    voxbridge_.signal(SIGTERM);
    if (!voxbridge_.wait_for(15s)) {
      std::cout << "[ e2e      ] voxbridge did not stop on SIGTERM; killing it\n";
      voxbridge_.kill_now();
    }
  }
  if (tmp_.empty()) return;
  const bool failed = ::testing::UnitTest::GetInstance()->Failed();
  const char* keep = std::getenv("VOXBRIDGE_E2E_KEEP");
  if (failed || (keep != nullptr && *keep != '\0' && *keep != '0')) {
    std::cout << "[ e2e      ] kept " << tmp_.string()
              << " (voxbridge.log, log/full.log, rec/*.wav)\n";
  } else {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  std::cout << "[ e2e      ] total "
            << std::chrono::duration<double>(SteadyClock::now() - started_).count() << " s\n";
}

std::map<std::string, std::string> E2E::globals() const {
  std::map<std::string, std::string> g;
  std::istringstream in(rx("dialplan show globals").output);
  for (std::string line; std::getline(in, line);) {
    const auto b = line.find_first_not_of(' ');
    const auto eq = line.find('=');
    if (b == std::string::npos || eq == std::string::npos || eq < b) continue;
    g[line.substr(b, eq - b)] = line.substr(eq + 1);
  }
  return g;
}

int E2E::active_channels() const {
  const auto out = rx("core show channels count").output;
  const auto pos = out.find(" active channel");
  if (pos == std::string::npos) return -1;
  auto b = out.rfind('\n', pos);
  b = b == std::string::npos ? 0 : b + 1;
  return std::atoi(out.c_str() + b);
}

// ---------------------------------------------------------------------------------------------
// Placing a call and collecting what both sides saw.

struct Call {
  std::string id;    ///< the extension, unique per call
  std::string uuid;  ///< ${UUID()} the agent half passed to AudioSocket
  std::optional<CallEnd> end;
  std::string dtmf_seen;                    ///< digits in voxbridge's debug lines, in order
  std::vector<std::string> problems;        ///< voxbridge warnings/errors naming this call
  std::map<std::string, std::string> vars;  ///< VB_AFTER, VB_CALLER for this call (if set)
  double seconds = 0;                       ///< originate -> no channel left in Asterisk
  fs::path sent, heard;
};

class AsteriskE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_env, nullptr);
    ASSERT_TRUE(g_env->ready()) << g_env->error();
    ASSERT_EQ(g_env->active_channels(), 0) << "a previous call is still up\n"
                                           << g_env->diagnostics();
  }

  /// Originates Local/ID@caller-CALLER/n -> ID@agent-AGENT and waits until voxbridge logged the
  /// call's end, the recordings (if any) are closed and Asterisk has no channel left.
  static Call place_call(const std::string& caller, const std::string& agent, bool recorded,
                         std::chrono::seconds timeout = 25s) {
    static int next_id = 1001;
    Call c;
    c.id = std::to_string(next_id++);
    const fs::path done = g_env->rec_dir() / (c.id + ".done");
    if (recorded) {
      c.sent = g_env->rec_dir() / (c.id + "-sent.wav");
      c.heard = g_env->rec_dir() / (c.id + "-heard.wav");
    }
    const auto t0 = SteadyClock::now();
    const auto r = g_env->rx("channel originate Local/" + c.id + "@caller-" + caller +
                             "/n extension " + c.id + "@agent-" + agent);
    EXPECT_EQ(r.exit_code, 0) << "originate failed: " << r.output;
    const auto deadline = t0 + timeout;
    bool idle = false;
    for (;;) {
      if (c.uuid.empty()) {
        const auto g = g_env->globals();
        if (auto it = g.find("VB_UUID_" + c.id); it != g.end()) c.uuid = it->second;
      }
      if (!c.uuid.empty() && !c.end) c.end = find_call_end(g_env->voxbridge_log(), c.uuid);
      const bool recorded_ok = !recorded || fs::exists(done);
      if (c.end && recorded_ok) {
        idle = g_env->active_channels() == 0;
        if (idle) break;
      }
      if (SteadyClock::now() >= deadline) break;
      std::this_thread::sleep_for(50ms);
    }
    c.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    const auto g = g_env->globals();
    for (const char* v : {"VB_AFTER_", "VB_CALLER_"}) {
      if (auto it = g.find(v + c.id); it != g.end()) c.vars[v] = it->second;
    }
    if (!c.uuid.empty()) {
      for (const auto& line : lines_with(g_env->voxbridge_log(), c.uuid)) {
        const auto lvl = log_level_of(line);
        if (lvl == "warning" || lvl == "error" || lvl == "critical") c.problems.push_back(line);
        if (const auto p = line.find("] dtmf "); p != std::string::npos && p + 7 < line.size()) {
          c.dtmf_seen += line[p + 7];
        }
      }
    }
    EXPECT_FALSE(c.uuid.empty()) << "the agent half never published its UUID (call " << c.id
                                 << ")\n"
                                 << g_env->diagnostics();
    EXPECT_TRUE(c.end.has_value()) << "voxbridge logged no call end for uuid=" << c.uuid
                                   << " within " << timeout.count() << " s\n"
                                   << g_env->diagnostics();
    if (recorded) {
      EXPECT_TRUE(fs::exists(done)) << "MixMonitor never finished (call " << c.id << ")";
    }
    EXPECT_TRUE(idle) << "Asterisk still has channels up " << timeout.count() << " s after call "
                      << c.id << " began:\n"
                      << g_env->rx("core show channels").output << g_env->diagnostics();
    EXPECT_TRUE(c.problems.empty()) << "voxbridge warned about call " << c.uuid << ":\n"
                                    << (c.problems.empty() ? "" : c.problems.front());
    return c;
  }

  /// The echo checks shared by the three media modes.
  static void check_echo(const Call& c, const std::string& mode, const std::string& codec,
                         int rate) {
    ASSERT_TRUE(c.end.has_value());
    const CallEnd& e = *c.end;
    EXPECT_EQ(e.codec, codec) << e.line;
    EXPECT_EQ(e.rate, rate) << e.line;
    ASSERT_GT(e.duration_s, 1.0) << e.line;
    const double out_fps = static_cast<double>(e.frames_out) / e.duration_s;
    EXPECT_GE(out_fps, 49.0) << "voxbridge sent too few frames per second: " << e.line;
    EXPECT_LE(out_fps, 51.0) << "voxbridge sent too many frames per second: " << e.line;
    // The caller sent 2.4 s of audio: about 120 frames of 20 ms reached voxbridge.
    EXPECT_GE(e.frames_in, 110u) << e.line;
    EXPECT_LE(e.frames_in, 135u) << e.line;

    const EchoAnalysis a = analyse_echo(c.sent, c.heard);
    ASSERT_TRUE(a.ok) << a.error << "\n" << g_env->diagnostics();
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "[ figures  ] %-14s sent %.2f dBFS heard %.2f dBFS (%+.2f dB) corr %.3f "
                  "delay %.1f ms | frames_out/s %.2f frames_in %llu in %.2f s late %llu "
                  "underruns %llu dropouts %zu/%zu by=%s",
                  mode.c_str(), a.sent_dbfs, a.heard_dbfs, a.heard_dbfs - a.sent_dbfs,
                  a.correlation, a.lag_ms, out_fps, static_cast<unsigned long long>(e.frames_in),
                  e.duration_s, static_cast<unsigned long long>(e.late),
                  static_cast<unsigned long long>(e.underruns), a.missing_blocks, a.loud_blocks,
                  e.by.c_str());
    std::cout << buf << "\n";
    std::string tones = "[ figures  ] " + std::string(14, ' ') + " tones Hz sent->heard:";
    for (std::size_t k = 0; k < kProbeTonesHz.size(); ++k) {
      std::snprintf(buf, sizeof buf, " %.1f->%.1f (%.2f/%.2f dBFS, purity %.4f)", a.sent[k].freq_hz,
                    a.heard[k].freq_hz, a.sent[k].rms_dbfs, a.heard[k].rms_dbfs, a.heard[k].purity);
      tones += buf;
    }
    std::cout << tones << "\n";
    // The caller hears its own audio, not noise and not silence, with little delay. (The delay
    // is as MixMonitor aligns its r() and t() files: roughly, not to the millisecond.)
    EXPECT_GE(a.lag_ms, -20.0) << "the echo comes before the audio: r()/t() swapped?";
    EXPECT_LT(a.lag_ms, 300.0) << "the echo is late";
    EXPECT_GT(a.correlation, 0.9) << "the heard audio is not the sent audio";
    EXPECT_NEAR(a.heard_dbfs, a.sent_dbfs, 3.0) << "echo level differs from the sent level";
    for (std::size_t k = 0; k < kProbeTonesHz.size(); ++k) {
      EXPECT_NEAR(a.sent[k].freq_hz, kProbeTonesHz[k], 3.0) << "tone " << k << " (analysis bug?)";
      EXPECT_NEAR(a.heard[k].freq_hz, a.sent[k].freq_hz, 5.0) << "tone " << k << " came back at "
                                                              << "another frequency";
      EXPECT_NEAR(a.heard[k].rms_dbfs, a.sent[k].rms_dbfs, 3.0) << "tone " << k;
      EXPECT_GT(a.heard[k].purity, 0.9) << "tone " << k << " came back distorted or noisy";
    }
    // Paced right: the echo lasts as long as the probe and has no holes.
    EXPECT_NEAR(a.heard_active_s, a.sent_active_s, 0.04);
    EXPECT_GT(a.loud_blocks, 200u);
    // One late frame (an underrun: voxbridge's echo has no jitter margin) can cost up to two
    // blocks when the machine is loaded; more is a real pacing or playout fault.
    EXPECT_LE(a.missing_blocks, 2u) << "10 ms blocks of the echo missing (dropouts)";
    if (a.missing_blocks > 0) {
      std::cout << "[ note     ] " << mode << ": " << a.missing_blocks
                << " 10 ms block(s) of the echo missing (underruns=" << e.underruns << ")\n";
    }

    ::testing::Test::RecordProperty(mode + "_sent_dbfs", std::to_string(a.sent_dbfs));
    ::testing::Test::RecordProperty(mode + "_heard_dbfs", std::to_string(a.heard_dbfs));
    ::testing::Test::RecordProperty(mode + "_frames_out_per_s", std::to_string(out_fps));
  }

  /// The bytes of a call voxbridge hung up on ('#'), as the tap saw them: Asterisk sent the UUID
  /// and the digit; voxbridge sent paced audio, then one 0x00, then closed its side.
  static void check_server_hangup_wire(const Call& c, const std::string& mode) {
    auto s = g_env->tap().take(5s);
    ASSERT_TRUE(s.has_value()) << "the call did not go through the tap";
    EXPECT_TRUE(s->error.empty()) << s->error;
    std::size_t rest_up = 0, rest_down = 0;
    const auto up = parse_wire(s->up, rest_up);
    const auto down = parse_wire(s->down, rest_down);
    EXPECT_EQ(rest_up, 0u) << "Asterisk's last message was cut short";
    EXPECT_EQ(rest_down, 0u) << "voxbridge's last message was cut short";

    ASSERT_FALSE(up.empty());
    EXPECT_EQ(up.front().kind, 0x01) << "the UUID must come first";
    std::string uuid;
    for (std::size_t i = 0; i < up.front().payload.size(); ++i) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", up.front().payload[i]);
      uuid += hex;
      if (i == 3 || i == 5 || i == 7 || i == 9) uuid += '-';
    }
    std::string want = c.uuid;
    std::transform(want.begin(), want.end(), want.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    EXPECT_EQ(uuid, want) << "the UUID on the wire is not the dialplan's";
    double hash_t = -1;
    for (const auto& m : up) {
      if (m.kind == 0x03 && m.payload.size() == 1 && m.payload[0] == '#') hash_t = m.t;
    }
    EXPECT_GE(hash_t, 0.0) << "Asterisk sent no DTMF '#' (kind 0x03)";

    ASSERT_GE(down.size(), 2u) << "voxbridge sent nothing before hanging up";
    EXPECT_EQ(down.back().kind, 0x00) << "voxbridge's last message is not a hangup";
    EXPECT_TRUE(down.back().payload.empty());
    std::size_t audio = 0, bad = 0;
    for (std::size_t i = 0; i + 1 < down.size(); ++i) {
      const auto& m = down[i];
      const bool is_audio = m.kind >= 0x10 && m.kind <= 0x18;
      if (is_audio && !m.payload.empty() && m.payload.size() % 2 == 0) {
        ++audio;
      } else {
        ++bad;
      }
    }
    EXPECT_EQ(bad, 0u) << "voxbridge sent something other than audio before its hangup";
    // Who closes first is a race (Asterisk closes as soon as it reads the 0x00); what matters is
    // that voxbridge closes its side cleanly right after its hangup message.
    EXPECT_TRUE(s->voxbridge_closed) << "voxbridge did not close its side after the hangup";
    ASSERT_GE(audio, 10u);
    const double span = down[down.size() - 2].t - down.front().t;
    const double wire_fps = static_cast<double>(audio - 1) / span;
    EXPECT_GE(wire_fps, 49.0) << "frames on the wire: " << audio << " in " << span << " s";
    EXPECT_LE(wire_fps, 51.0) << "frames on the wire: " << audio << " in " << span << " s";
    const double hangup_after = down.back().t - hash_t;
    EXPECT_LT(hangup_after, 0.2) << "voxbridge took long to hang up after '#'";
    std::printf(
        "[ figures  ] server hangup %s on the wire: %zu audio frames (kind 0x%02x, %zu B) at "
        "%.2f/s, then 0x00 %.1f ms after the '#', then FIN: %s\n",
        mode.c_str(), audio, down.front().kind, down.front().payload.size(), wire_fps,
        1000.0 * hangup_after, s->voxbridge_closed ? "yes" : "no");
    std::fflush(stdout);
  }

  /// A caller hangup is by=caller. On a channel-driver leg Asterisk closes the socket with
  /// voxbridge's latest frame still unread, so the kernel sends RST; voxbridge must still log
  /// by=caller. `strict` = false only reports a by=io line instead of failing.
  static void check_caller_hangup(const CallEnd& e, bool strict) {
    if (!strict && e.by == "io" &&
        (e.reason.find("reset by peer") != std::string::npos ||
         e.reason.find("Broken pipe") != std::string::npos)) {
      std::cout << "[ known    ] caller hangup logged as by=io reason=\"" << e.reason
                << "\" (voxbridge should log by=caller)\n";
      return;
    }
    EXPECT_EQ(e.by, "caller") << e.line;
    EXPECT_EQ(e.reason, "caller hung up") << e.line;
  }
};

// 1. Dialplan app: Answer(), AudioSocket(${UUID()},127.0.0.1:PORT); slin 8 kHz, kind 0x10.
TEST_F(AsteriskE2E, AppModeSlin8Echo) {
  const Call c = place_call("echo", "app", true);
  ASSERT_TRUE(c.end.has_value());
  check_echo(c, "app/slin8", "slin", 8000);
  check_caller_hangup(*c.end, true);
}

// 2. Channel driver, c(ulaw): G.711 bytes in as 0x10, slin8 back.
TEST_F(AsteriskE2E, ChannelDriverUlawEcho) {
  const Call c = place_call("echo", "ulaw", true);
  ASSERT_TRUE(c.end.has_value());
  check_echo(c, "chan/ulaw", "ulaw", 8000);
  check_caller_hangup(*c.end, true);
}

// 3. Channel driver, c(slin16): kind 0x12, 640-byte frames.
TEST_F(AsteriskE2E, ChannelDriverSlin16Echo) {
  const Call c = place_call("echo", "slin16", true);
  ASSERT_TRUE(c.end.has_value());
  check_echo(c, "chan/slin16", "slin", 16000);
  check_caller_hangup(*c.end, true);
}

// 3b. The slin16 leg on the wire (through the tap): Asterisk sends 0x12 with 640 B per 20 ms, and
// voxbridge answers in the kind it received (Asterisk before 20.17 would reject any other), paced
// at 50 per second as counted on the wire. (Through the tap, how the hangup looks to voxbridge
// is the tap's doing, so it is not checked here.)
TEST_F(AsteriskE2E, ChannelDriverSlin16RepliesInKindOnTheWire) {
  const Call c = place_call("echo", "slin16-tap", true);
  ASSERT_TRUE(c.end.has_value());
  check_echo(c, "tap/slin16", "slin", 16000);
  auto s = g_env->tap().take(5s);
  ASSERT_TRUE(s.has_value()) << "the call did not go through the tap";
  std::size_t rest_up = 0, rest_down = 0;
  const auto up = parse_wire(s->up, rest_up);
  const auto down = parse_wire(s->down, rest_down);
  std::size_t in_audio = 0, in_other_kind = 0, in_not_20ms = 0, in_last_bytes = 0;
  double first_in = -1;
  for (const auto& m : up) {
    if (m.kind < 0x10 || m.kind > 0x18) continue;
    ++in_audio;
    if (first_in < 0) first_in = m.t;
    if (m.kind != 0x12) ++in_other_kind;
    if (m.payload.size() != 640) ++in_not_20ms;
    in_last_bytes = m.payload.size();
  }
  EXPECT_GE(in_audio, 110u);
  EXPECT_EQ(in_other_kind, 0u) << "c(slin16) should give kind 0x12";
  // 640 B each, but the last frame of a played file is shorter (see docs/audiosocket.md).
  EXPECT_LE(in_not_20ms, 1u) << "c(slin16) should give 640 B per 20 ms";
  ASSERT_GE(first_in, 0.0);
  std::size_t out_audio = 0, out_after = 0, out_wrong = 0;
  double t_first = -1, t_last = -1;
  for (const auto& m : down) {
    if (m.kind < 0x10 || m.kind > 0x18) continue;
    ++out_audio;
    if (t_first < 0) t_first = m.t;
    t_last = m.t;
    if (m.t < first_in + 0.025) continue;  // before voxbridge heard the leg: slin8 silence
    ++out_after;
    if (m.kind != 0x12 || m.payload.size() != 640) ++out_wrong;
  }
  EXPECT_GT(out_after, 100u);
  EXPECT_EQ(out_wrong, 0u) << "voxbridge should answer a slin16 leg with 0x12, 640 B";
  ASSERT_GT(t_last - t_first, 1.0);
  const double wire_fps = static_cast<double>(out_audio - 1) / (t_last - t_first);
  EXPECT_GE(wire_fps, 49.0);
  EXPECT_LE(wire_fps, 51.0);
  std::printf(
      "[ figures  ] tap/slin16 on the wire: in %zu frames 0x12, %zu not 640 B (last %zu B); out "
      "%zu frames at %.2f/s, %zu after the leg was known, %zu not 0x12/640 B\n",
      in_audio, in_not_20ms, in_last_bytes, out_audio, wire_fps, out_after, out_wrong);
  std::fflush(stdout);
}

// 4. DTMF: SendDTMF(123) on the caller side reaches voxbridge as three 0x03 messages.
TEST_F(AsteriskE2E, DtmfAppMode) {
  const Call c = place_call("dtmf", "app", false);
  ASSERT_TRUE(c.end.has_value());
  EXPECT_EQ(c.end->dtmf, 3u) << c.end->line;
  EXPECT_EQ(c.dtmf_seen, "123");
  check_caller_hangup(*c.end, true);
  std::cout << "[ figures  ] dtmf app: digits " << c.dtmf_seen << " dtmf=" << c.end->dtmf << "\n";
}

TEST_F(AsteriskE2E, DtmfChannelDriver) {
  const Call c = place_call("dtmf", "slin16", false);
  ASSERT_TRUE(c.end.has_value());
  EXPECT_EQ(c.end->dtmf, 3u) << c.end->line;
  EXPECT_EQ(c.dtmf_seen, "123");
  std::cout << "[ figures  ] dtmf chan/slin16: digits " << c.dtmf_seen << " dtmf=" << c.end->dtmf
            << "\n";
}

// 5a. The caller hangs up (right after its audio, mid-echo): voxbridge notices at once.
TEST_F(AsteriskE2E, CallerHangupAppMode) {
  const Call c = place_call("short", "app", false);
  ASSERT_TRUE(c.end.has_value());
  check_caller_hangup(*c.end, true);
  // The caller's dialplan lasts 2.6 s; voxbridge's idle timeout would take 10 s more.
  EXPECT_LT(c.end->duration_s, 3.5) << c.end->line;
  EXPECT_FALSE(c.vars.contains("VB_AFTER_")) << "AudioSocket() returned normally after hangup?";
  std::cout << "[ figures  ] caller hangup app: voxbridge call lasted " << c.end->duration_s
            << " s, by=" << c.end->by << "\n";
}

TEST_F(AsteriskE2E, CallerHangupChannelDriver) {
  const Call c = place_call("short", "ulaw", false);
  ASSERT_TRUE(c.end.has_value());
  check_caller_hangup(*c.end, true);
  EXPECT_LT(c.end->duration_s, 3.5) << c.end->line;
  std::cout << "[ figures  ] caller hangup chan/ulaw: voxbridge call lasted " << c.end->duration_s
            << " s, by=" << c.end->by << "\n";
}

// chan_audiosocket closes with voxbridge's frame unread (RST): still the caller hanging up.
TEST_F(AsteriskE2E, ChannelDriverCallerHangupIsLoggedByCaller) {
  for (const char* agent : {"ulaw", "slin16"}) {
    const Call c = place_call("short", agent, false);
    ASSERT_TRUE(c.end.has_value());
    check_caller_hangup(*c.end, true);
  }
}

// 5b. voxbridge hangs up ('#', the echo agent's hangup digit): it sends 0x00 and closes; the
// AudioSocket() app returns and the dialplan continues; the caller is hung up long before its
// own Wait(10) would end. These calls go through the tap, which checks the bytes.
TEST_F(AsteriskE2E, ServerHangupAppModeContinuesDialplan) {
  const Call c = place_call("hash", "app-tap", false);
  ASSERT_TRUE(c.end.has_value());
  EXPECT_EQ(c.end->by, "server") << c.end->line;
  EXPECT_EQ(c.end->reason, "hangup digit pressed") << c.end->line;
  EXPECT_EQ(c.end->dtmf, 1u) << c.end->line;
  EXPECT_EQ(c.vars.count("VB_AFTER_") ? c.vars.at("VB_AFTER_") : "(unset)", "continued")
      << "the dialplan did not continue after AudioSocket()";
  EXPECT_FALSE(c.vars.contains("VB_CALLER_")) << "the caller was not hung up: it finished Wait(10)";
  EXPECT_LT(c.seconds, 5.0) << "the call outlived voxbridge's hangup";
  std::cout << "[ figures  ] server hangup app: gone after " << c.seconds
            << " s (caller would wait 10.5 s)\n";
  check_server_hangup_wire(c, "app");
}

TEST_F(AsteriskE2E, ServerHangupChannelDriverEndsDial) {
  const Call c = place_call("hash", "slin16-tap", false);
  ASSERT_TRUE(c.end.has_value());
  EXPECT_EQ(c.end->by, "server") << c.end->line;
  EXPECT_EQ(c.end->reason, "hangup digit pressed") << c.end->line;
  EXPECT_EQ(c.vars.count("VB_AFTER_") ? c.vars.at("VB_AFTER_") : "(unset)", "ANSWER")
      << "Dial() did not return with DIALSTATUS=ANSWER after voxbridge hung up";
  EXPECT_FALSE(c.vars.contains("VB_CALLER_")) << "the caller was not hung up: it finished Wait(10)";
  EXPECT_LT(c.seconds, 5.0) << "the call outlived voxbridge's hangup";
  std::cout << "[ figures  ] server hangup chan/slin16: gone after " << c.seconds << " s\n";
  check_server_hangup_wire(c, "chan/slin16");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_env = new E2E;
  ::testing::AddGlobalTestEnvironment(g_env);  // gtest owns and deletes it
  return RUN_ALL_TESTS();
}
