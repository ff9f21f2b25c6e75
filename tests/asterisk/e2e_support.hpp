// Shared by the Asterisk end-to-end tests (asterisk_e2e_test.cpp, control_e2e_test.cpp): the
// probe, processes and commands, voxbridge's log lines, the echo analysis of MixMonitor's
// recordings, a TCP tap, and writing the config templates.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
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
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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

namespace vb_e2e {

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

inline std::vector<std::int16_t> make_probe() {
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

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string tail_lines(const std::string& text, std::size_t n) {
  std::size_t pos = text.size();
  for (std::size_t k = 0; k <= n && pos > 0; ++k) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

inline std::string tail_file(const fs::path& p, std::size_t n = 30) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return "(" + p.string() + " does not exist)\n";
  return "---- last lines of " + p.string() + " ----\n" + tail_lines(read_file(p), n);
}

inline void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

inline std::vector<char*> c_argv(std::vector<std::string>& args) {
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
inline CommandResult run_command(std::vector<std::string> args, std::chrono::milliseconds timeout) {
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

inline bool port_is_free(unsigned short port) {
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
inline std::map<std::string, std::string> parse_fields(const std::string& line) {
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

inline std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

inline std::optional<CallEnd> find_call_end(const std::string& log, const std::string& uuid) {
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
inline std::string log_level_of(const std::string& line) {
  std::istringstream in(line);
  std::string date, time, level;
  in >> date >> time >> level;
  return level;
}

// ---------------------------------------------------------------------------------------------
// Signal analysis of the recordings (8 kHz mono, from MixMonitor).

/// |DFT of x at frequency f|^2, optionally Hann-windowed (a rotating phasor, no trig per sample).
inline double tone_power(std::span<const std::int16_t> x, double f, int rate, bool hann) {
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

inline double rms(std::span<const std::int16_t> x) {
  if (x.empty()) return 0;
  double e = 0;
  for (const auto v : x) e += static_cast<double>(v) * v;
  return std::sqrt(e / static_cast<double>(x.size()));
}

inline double dbfs(double rms_value) {
  return 20.0 * std::log10(std::max(rms_value, 1e-3) / 32768.0);
}

struct Tone {
  double freq_hz = 0;
  double rms_dbfs = -200;
  double purity = 0;  ///< share of the energy in that one sinusoid (1 = pure tone, ~0 = noise)
};

/// The dominant sinusoid of x: a 2 Hz Hann-windowed scan, refined in 0.05 Hz steps.
inline Tone analyse_tone(std::span<const std::int16_t> x, int rate) {
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

inline std::pair<std::size_t, std::size_t> active_extent(const std::vector<std::int16_t>& x,
                                                         std::size_t from, std::size_t to,
                                                         int threshold) {
  std::size_t first = to, last = from;
  for (std::size_t i = from; i < to && i < x.size(); ++i) {
    if (std::abs(static_cast<int>(x[i])) > threshold) {
      first = std::min(first, i);
      last = i;
    }
  }
  return {first, last};
}

inline EchoAnalysis analyse_echo(const fs::path& sent_path, const fs::path& heard_path) {
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
inline std::vector<WireMessage> parse_wire(const std::vector<WireChunk>& chunks,
                                           std::size_t& rest) {
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
// Config templates and ports.

/// A free TCP port on 127.0.0.1 in 20000..60999 not in `taken` (0 if none found).
inline unsigned short pick_free_port(std::mt19937& rng,
                                     const std::vector<unsigned short>& taken = {}) {
  std::uniform_int_distribution<int> dist(20000, 60999);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto port = static_cast<unsigned short>(dist(rng));
    if (std::find(taken.begin(), taken.end(), port) != taken.end()) continue;
    if (port_is_free(port)) return port;
  }
  return 0;
}

/// Copies every template in `from` to `to`, replacing each @KEY@ of `vars` (keys with the @).
inline bool write_templates(const fs::path& from, const fs::path& to,
                            const std::map<std::string, std::string>& vars, std::string& error) {
  std::error_code ec;
  bool any = false;
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string text = read_file(entry.path());
    for (const auto& [k, v] : vars) replace_all(text, k, v);
    std::ofstream out(to / entry.path().filename(), std::ios::binary);
    out << text;
    if (!out) {
      error = "cannot write " + (to / entry.path().filename()).string();
      return false;
    }
    any = true;
  }
  if (ec || !any) {
    error = "no Asterisk config templates in " + from.string();
    return false;
  }
  return true;
}

}  // namespace vb_e2e
