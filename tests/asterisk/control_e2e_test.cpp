// End-to-end test of voxbridge's control path against a real Asterisk: AMI (Redirect, PlayDTMF,
// Setvar, Originate) and ARI (Stasis + externalMedia + bridge).
//
// One private Asterisk (config templates in conf/, AMI and HTTP/ARI on 127.0.0.1 at free ports)
// and three voxbridge processes, started once for the program:
//   - AMI mode: listener "recep" with the built-in receptionist (DTMF 1 -> "Connecting you to
//     sales." then transfer to 100 in voxbridge-transfer), listener "rules" with this test's rule
//     set (3 -> dtmf 42, 4 -> set VB_RESULT=sales, 5 -> transfer 999 (not allowed), # -> hangup),
//     listener "s2s" with a speech-to-speech agent: this program's FakeSpeechAgent (gRPC on
//     127.0.0.1), which greets and then asks for a transfer to 100;
//   - ARI mode: listener with the echo agent; calls entering Stasis(voxbridge) are answered,
//     given an externalMedia AudioSocket leg (slin16) and bridged;
//   - routed: no control path, the HTTP API (http_listen) and a listener with the echo agent that
//     takes only pre-registered calls; [route-tone] gives calls with VB_AGENT=tone a tone agent.
//     Asterisk's globals VOXBRIDGE and VOXBRIDGE_API point the shipped voxbridge-routed context
//     at it.
// Calls: channel originate Local/ID@caller-ctl/n extension ID@agent-ctl|agent-rules. The caller
// half (caller-ctl in conf/extensions.conf) does what the test puts in global VB_GO_<ID>: send
// digits, send digits then Read() two, or hang up. The dialplan publishes what happened in
// globals the test reads back (VB_XFER_<ID>, VB_AFTER_<ID>, VB_READ_<ID>, VB_RESULT_<ID>).
//
// Needs Asterisk built by ../shared/asterisk/build.sh (see asterisk_e2e_test.cpp).
// VOXBRIDGE_E2E_KEEP=1 keeps the temp dir (it is always kept when a test failed).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <span>

#include "e2e_support.hpp"
#include "support/fake_providers.hpp"
#include "voxbridge/base64/base64.hpp"

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

using namespace vb_e2e;

constexpr const char* kAriUser = "voxbridge";
constexpr const char* kAriPassword = "vbari";

struct HttpReply {
  int status = 0;  ///< 0: no answer
  std::string body;
};

/// METHOD http://127.0.0.1:port/path with basic auth and no body, Connection: close (a few
/// lines of HTTP/1.1).
HttpReply http_request(unsigned short port, const std::string& method, const std::string& path,
                       const std::string& user, const std::string& password) {
  HttpReply r;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return r;
  }
  const std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
      "\r\nContent-Length: 0" + "\r\nAuthorization: Basic " +
      voxbridge::base64::encode(user + ":" + password) + "\r\nConnection: close\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return r;
  }
  std::string resp;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  if (resp.rfind("HTTP/1.1 ", 0) != 0) return r;
  r.status = std::atoi(resp.c_str() + 9);
  const auto hdr_end = resp.find("\r\n\r\n");
  if (hdr_end != std::string::npos) r.body = resp.substr(hdr_end + 4);
  return r;
}

HttpReply http_get(unsigned short port, const std::string& path, const std::string& user,
                   const std::string& password) {
  return http_request(port, "GET", path, user, password);
}

/// The music-on-hold class vbtest's tone (musiconhold.conf): none of the probe's tones.
constexpr double kMohToneHz = 1100.0;

/// The share of x's energy in the sinusoid at f (1 = all of it).
double energy_share(std::span<const std::int16_t> x, double f, int rate) {
  double energy = 0;
  for (const auto v : x) energy += static_cast<double>(v) * v;
  if (energy <= 0) return 0;
  return 2.0 * tone_power(x, f, rate, false) / (static_cast<double>(x.size()) * energy);
}

/// Seconds since midnight of an spdlog line "YYYY-MM-DD HH:MM:SS.mmm ..." (-1 if none).
double log_time(const std::string& line) {
  int h = 0, m = 0;
  double s = 0;
  if (line.size() < 23 || std::sscanf(line.c_str() + 11, "%d:%d:%lf", &h, &m, &s) != 3) return -1;
  return h * 3600.0 + m * 60.0 + s;
}

// ---------------------------------------------------------------------------------------------

struct Voxbridge {
  Process proc;
  fs::path conf;
  fs::path log;
  std::string log_text() const { return read_file(log); }
};

class ControlEnv : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;

  bool ready() const { return ready_; }
  const std::string& error() const { return error_; }
  const fs::path& rec_dir() const { return rec_dir_; }
  const fs::path& tmp() const { return tmp_; }
  unsigned short http_port() const { return http_port_; }
  Voxbridge& ami() { return vb_ami_; }
  Voxbridge& ari() { return vb_ari_; }
  Voxbridge& routed() { return vb_routed_; }
  voxbridge::testing::FakeSpeechAgent& s2s_agent() { return *s2s_agent_; }
  const fs::path& busy_conf() const { return busy_conf_; }

  CommandResult rx(const std::string& cli, std::chrono::milliseconds timeout = 15s) const {
    return run_command({asterisk_bin_.string(), "-C", conf_.string(), "-rx", cli}, timeout);
  }
  std::map<std::string, std::string> globals() const {
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
  std::optional<std::string> global(const std::string& name) const {
    const auto g = globals();
    if (auto it = g.find(name); it != g.end()) return it->second;
    return std::nullopt;
  }
  int active_channels() const {
    const auto out = rx("core show channels count").output;
    const auto pos = out.find(" active channel");
    if (pos == std::string::npos) return -1;
    auto b = out.rfind('\n', pos);
    b = b == std::string::npos ? 0 : b + 1;
    return std::atoi(out.c_str() + b);
  }
  std::string diagnostics() const {
    return tail_file(vb_ami_.log, 25) + tail_file(vb_ari_.log, 15) + tail_file(vb_routed_.log, 10) +
           tail_file(tmp_ / "log" / "messages.log", 25) + "(all files: " + tmp_.string() + ")\n";
  }

 private:
  bool setup(std::string& error);
  bool start_asterisk(std::string& error);
  bool start_voxbridge(Voxbridge& vb, const std::string& name, const std::string& text,
                       const std::vector<std::string>& wait_for, std::string& error);

  bool ready_ = false;
  std::string error_;
  fs::path prefix_, asterisk_bin_, tmp_, conf_, rec_dir_, busy_conf_;
  unsigned short ami_port_ = 0, http_port_ = 0, ctl_port_ = 0, rules_port_ = 0, ari_port_ = 0,
                 routed_port_ = 0, api_port_ = 0, s2s_port_ = 0;
  std::unique_ptr<voxbridge::testing::FakeSpeechAgent> s2s_agent_;
  std::unique_ptr<voxbridge::testing::FakeProviderServer> s2s_server_;
  Process asterisk_;
  Voxbridge vb_ami_, vb_ari_, vb_routed_;
  SteadyClock::time_point started_;
};

ControlEnv* g_env = nullptr;

void ControlEnv::SetUp() {
  started_ = SteadyClock::now();
  std::string err;
  ready_ = setup(err);
  if (!ready_) {
    error_ = err;
    if (!tmp_.empty()) error_ += "\n" + diagnostics();
  } else {
    std::cout << "[ control  ] Asterisk (AMI :" << ami_port_ << ", ARI :" << http_port_
              << ") and voxbridge (AMI mode :" << ctl_port_ << " :" << rules_port_
              << ", ARI mode :" << ari_port_ << ", routed :" << routed_port_
              << " API :" << api_port_ << ") ready in "
              << std::chrono::duration<double>(SteadyClock::now() - started_).count()
              << " s; files in " << tmp_.string() << "\n";
  }
}

bool ControlEnv::setup(std::string& error) {
  const char* env = std::getenv("VOXBRIDGE_ASTERISK_PREFIX");
  const char* home = std::getenv("HOME");
  prefix_ = (env != nullptr && *env != '\0')
                ? fs::path(env)
                : fs::path(home != nullptr ? home : "/root") / ".cache/voxbridge/asterisk";
  asterisk_bin_ = prefix_ / "sbin" / "asterisk";
  for (const auto& p :
       {asterisk_bin_, prefix_ / "lib/asterisk/modules/app_audiosocket.so",
        prefix_ / "lib/asterisk/modules/res_ari.so", prefix_ / "lib/asterisk/modules/app_stasis.so",
        prefix_ / "lib/asterisk/modules/app_read.so", prefix_ / "var/lib/asterisk/documentation"}) {
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
  if (access(VB_VOXBRIDGE_BIN, X_OK) != 0) {
    error = "voxbridge binary " VB_VOXBRIDGE_BIN " is missing: build the project first";
    return false;
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base = (tmpdir != nullptr && std::strlen(tmpdir) < 60) ? tmpdir : "/tmp";
  std::string tmpl = base + "/vb-control-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    error = "mkdtemp(" + tmpl + "): " + std::strerror(errno);
    return false;
  }
  tmp_ = tmpl;
  rec_dir_ = tmp_ / "rec";
  for (const char* d : {"etc", "cache", "varlib", "db", "keys", "data", "agi", "spool", "run",
                        "log", "rec", "sounds", "moh", "vbrec"}) {
    fs::create_directories(tmp_ / d);
  }
  fs::create_directory_symlink(prefix_ / "var/lib/asterisk/documentation",
                               tmp_ / "data" / "documentation");
  const fs::path probe = tmp_ / "sounds" / "probe";
  std::string err;
  if (!voxbridge::audio::write_wav(tmp_ / "sounds" / "probe.wav", kProbeRate, make_probe(), err)) {
    error = "cannot write the probe: " + err;
    return false;
  }
  {
    // musiconhold.conf's class vbtest plays this: 4 s of kMohToneHz, raw slin 8 kHz.
    std::ofstream moh(tmp_ / "moh" / "tone.sln", std::ios::binary);
    for (int i = 0; i < 4 * 8000; ++i) {
      const auto v =
          static_cast<std::int16_t>(8000.0 * std::sin(2.0 * M_PI * kMohToneHz * i / 8000.0));
      moh.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
  }

  std::mt19937 rng(std::random_device{}());
  std::vector<unsigned short> taken;
  for (unsigned short* p : {&ami_port_, &http_port_, &ctl_port_, &rules_port_, &ari_port_,
                            &routed_port_, &api_port_, &s2s_port_}) {
    *p = pick_free_port(rng, taken);
    if (*p == 0) {
      error = "no free port";
      return false;
    }
    taken.push_back(*p);
  }
  conf_ = tmp_ / "etc" / "asterisk.conf";
  if (!write_templates(VB_ASTERISK_CONF_DIR, tmp_ / "etc",
                       {{"@PREFIX@", prefix_.string()},
                        {"@TMP@", tmp_.string()},
                        // agent-app & co. (asterisk_e2e_test's echo calls) are unused here.
                        {"@VB_PORT@", std::to_string(ari_port_)},
                        {"@VB_TAP_PORT@", std::to_string(ari_port_)},
                        {"@VB_RT_TAP_PORT@", std::to_string(ari_port_)},
                        {"@VB_CTL_PORT@", std::to_string(ctl_port_)},
                        {"@VB_RULES_PORT@", std::to_string(rules_port_)},
                        {"@VB_S2S_PORT@", std::to_string(s2s_port_)},
                        {"@AMI_PORT@", std::to_string(ami_port_)},
                        {"@HTTP_PORT@", std::to_string(http_port_)},
                        {"@REC_DIR@", rec_dir_.string()},
                        {"@PROBE@", probe.string()},
                        {"@DIALPLAN_DIR@", VB_DIALPLAN_DIR}},
                       error)) {
    return false;
  }
  if (!start_asterisk(error)) return false;
  // The speech-to-speech agent: greets (400 ms of tone), then asks for a transfer to 100
  // (transfer_context voxbridge-transfer).
  s2s_agent_ = std::make_unique<voxbridge::testing::FakeSpeechAgent>();
  s2s_agent_->actions.emplace_back();
  s2s_agent_->actions[0].mutable_transfer()->set_target("100");
  s2s_server_ = std::make_unique<voxbridge::testing::FakeProviderServer>(s2s_agent_.get());

  const std::string general =
      "[general]\nlog_level = debug\n"
      // The Local caller half is silent: Asterisk sends voxbridge no audio at all.
      "idle_timeout_ms = 30000\n";
  auto ami_conf_with = [&](const std::string& callee_context) {
    return general + "[listener-recep]\nbind = 127.0.0.1:" + std::to_string(ctl_port_) +
           "\ncodec = slin\nagent = receptionist\n"
           "[listener-rules]\nbind = 127.0.0.1:" +
           std::to_string(rules_port_) +
           "\ncodec = slin\nagent = ctlrules\n"
           "[listener-s2s]\nbind = 127.0.0.1:" +
           std::to_string(s2s_port_) +
           "\ncodec = slin\nagent = s2s\n"
           "[provider-s2s]\naddress = " +
           s2s_server_->address() +
           "\n[agent-s2s]\ntype = s2s\nprovider = s2s\n"
           "[agent-ctlrules]\ntype = pipeline\nasr = builtin\nllm = builtin\ntts = builtin\n"
           "rules = ctl\ngreeting = Hello.\n"
           "[rules-ctl]\nfallback = Sorry, I did not catch that.\n"
           "[intent-digits]\nrules = ctl\ndtmf = 3\nreply = Sending digits.\naction = dtmf w42\n"
           "[intent-result]\nrules = ctl\ndtmf = 4\nreply = Noted.\naction = set VB_RESULT=sales\n"
           "[intent-deny]\nrules = ctl\ndtmf = 5\nreply = Trying nine nine nine.\n"
           "action = transfer 999\n"
           "[intent-bye]\nrules = ctl\ndtmf = #\nreply = Goodbye.\naction = hangup\n"
           "[control]\nmode = ami\nallow_contexts = voxbridge-transfer\n"
           "allow_extensions = 100, 200\nallow_numbers = _7XXX\nallow_variables = VB_RESULT\n"
           "transfer_context = voxbridge-transfer\nuuid_variable = VB_UUID\n"
           "originate_context = agent-orig\noriginate_exten = s\n"
           "originate_channel = Local/${NUMBER}@" +
           callee_context +
           "\n"
           "[ami]\nhost = 127.0.0.1\nport = " +
           std::to_string(ami_port_) +
           "\nusername = voxbridge\nsecret = change-me-to-a-long-random-secret\nauth = md5\n";
  };
  const std::string ami_conf = ami_conf_with("callee-answer");
  {
    busy_conf_ = tmp_ / "voxbridge-ami-busy.conf";
    std::ofstream out(busy_conf_);
    out << ami_conf_with("callee-busy");
  }
  if (!start_voxbridge(vb_ami_, "ami", ami_conf,
                       {"listening on 127.0.0.1:" + std::to_string(ctl_port_),
                        "listening on 127.0.0.1:" + std::to_string(rules_port_),
                        "listening on 127.0.0.1:" + std::to_string(s2s_port_), "control: AMI up"},
                       error)) {
    return false;
  }
  const std::string ari_conf = general +
                               "[listener-ari]\nbind = 127.0.0.1:" + std::to_string(ari_port_) +
                               "\nagent = echo\n"
                               "[control]\nmode = ari\nmedia_format = slin16\n"
                               "[recording]\nrecord = yes\ndirectory = " +
                               (tmp_ / "vbrec").string() +
                               "\n"
                               "[ari]\nurl = http://127.0.0.1:" +
                               std::to_string(http_port_) + "\nusername = " + kAriUser +
                               "\npassword = " + kAriPassword + "\napp = voxbridge\n";
  if (!start_voxbridge(vb_ari_, "ari", ari_conf,
                       {"listening on 127.0.0.1:" + std::to_string(ari_port_), "control: ARI up"},
                       error)) {
    return false;
  }
  // Per-call routing without a control path (dialplan/extensions_voxbridge.conf,
  // voxbridge-routed): the dialplan POSTs /v1/calls/UUID before AudioSocket(); only such calls
  // are taken (require_registration), and [route-tone] picks the tone agent for VB_AGENT=tone
  // with a caller number (CALLERID(num) made it through the form body).
  const std::string routed_conf =
      general + "http_listen = 127.0.0.1:" + std::to_string(api_port_) +
      "\n"
      "[listener-routed]\nbind = 127.0.0.1:" +
      std::to_string(routed_port_) +
      "\ncodec = slin\nagent = echo\nrequire_registration = yes\n"
      "[agent-tone]\ntype = playback\ntone_hz = 440\ntone_ms = 1000\nthen = hangup\n"
      "[route-tone]\nvariable = VB_AGENT=tone\ncaller = _X.\nagent = tone\n";
  if (!start_voxbridge(vb_routed_, "routed", routed_conf,
                       {"listening on 127.0.0.1:" + std::to_string(routed_port_),
                        "HTTP API on 127.0.0.1:" + std::to_string(api_port_)},
                       error)) {
    return false;
  }
  for (const auto& [name, port] :
       {std::pair<std::string, unsigned short>{"VOXBRIDGE", routed_port_},
        {"VOXBRIDGE_API", api_port_}}) {
    const auto r = rx("dialplan set global " + name + " 127.0.0.1:" + std::to_string(port));
    if (r.exit_code != 0) {
      error = "cannot set global " + name + ": " + r.output;
      return false;
    }
  }
  return true;
}

bool ControlEnv::start_asterisk(std::string& error) {
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
  const auto mods = rx("module show like s").output;
  for (const char* m : {"app_audiosocket.so", "res_ari.so", "res_ari_channels.so",
                        "res_ari_bridges.so", "app_stasis.so", "app_read.so"}) {
    if (mods.find(m) == std::string::npos) {
      error = std::string("Asterisk did not load ") + m;
      return false;
    }
  }
  return true;
}

bool ControlEnv::start_voxbridge(Voxbridge& vb, const std::string& name, const std::string& text,
                                 const std::vector<std::string>& wait_for, std::string& error) {
  vb.conf = tmp_ / ("voxbridge-" + name + ".conf");
  vb.log = tmp_ / ("voxbridge-" + name + ".log");
  {
    std::ofstream out(vb.conf);
    out << text;
  }
  if (!vb.proc.start({VB_VOXBRIDGE_BIN, "--config", vb.conf.string()}, vb.log, error)) {
    return false;
  }
  const auto deadline = SteadyClock::now() + 20s;
  while (SteadyClock::now() < deadline) {
    const std::string log = vb.log_text();
    bool all = true;
    for (const auto& w : wait_for) all = all && log.find(w) != std::string::npos;
    if (all) return true;
    if (!vb.proc.running()) break;
    std::this_thread::sleep_for(20ms);
  }
  error = "voxbridge (" + name + " mode) " + vb.proc.describe_exit() +
          "; did not log all of the expected start lines within 20 s:\n" + tail_file(vb.log, 30);
  return false;
}

void ControlEnv::TearDown() {
  if (asterisk_.running()) {
    rx("core stop now", 10s);
    if (!asterisk_.wait_for(15s)) asterisk_.kill_now();
  }
  for (Voxbridge* vb : {&vb_ami_, &vb_ari_, &vb_routed_}) {
    if (vb->proc.running()) {
      vb->proc.signal(SIGTERM);
      if (!vb->proc.wait_for(15s)) vb->proc.kill_now();
    }
  }
  s2s_server_.reset();  // after voxbridge: its streams are closed by now
  if (tmp_.empty()) return;
  const bool failed = ::testing::UnitTest::GetInstance()->Failed();
  const char* keep = std::getenv("VOXBRIDGE_E2E_KEEP");
  if (failed || (keep != nullptr && *keep != '\0' && *keep != '0')) {
    std::cout << "[ control  ] kept " << tmp_.string()
              << " (voxbridge-ami.log, voxbridge-ari.log, voxbridge-routed.log, log/full.log, "
                 "rec/*.wav)\n";
  } else {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  std::cout << "[ control  ] total "
            << std::chrono::duration<double>(SteadyClock::now() - started_).count() << " s\n";
}

// ---------------------------------------------------------------------------------------------

class ControlE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_env, nullptr);
    ASSERT_TRUE(g_env->ready()) << g_env->error();
    ASSERT_EQ(g_env->active_channels(), 0) << "a previous call is still up\n"
                                           << g_env->diagnostics();
  }

  static fs::path rec_path(const std::string& id, const std::string& kind) {
    return g_env->rec_dir() / (id + "-" + kind + ".wav");
  }

  static std::string next_id() {
    static int next = 2001;
    return std::to_string(next++);
  }

  /// Originates Local/ID@caller-CALLER/n -> ID@AGENT; returns the UUID the agent half published
  /// once voxbridge logged the call's start.
  static std::string start_call(const std::string& id, const std::string& caller,
                                const std::string& agent) {
    const auto r = g_env->rx("channel originate Local/" + id + "@" + caller + "/n extension " + id +
                             "@" + agent);
    EXPECT_EQ(r.exit_code, 0) << "originate failed: " << r.output;
    const auto uuid = wait_global("VB_UUID_" + id, 5s);
    EXPECT_TRUE(uuid.has_value()) << "the agent half never published its UUID\n"
                                  << g_env->diagnostics();
    if (!uuid) return {};
    EXPECT_TRUE(wait_log(g_env->ami(), "call start uuid=" + *uuid + " ", 5s))
        << "voxbridge logged no call start\n"
        << g_env->diagnostics();
    return *uuid;
  }

  static std::optional<std::string> wait_global(const std::string& name,
                                                std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      if (auto v = g_env->global(name)) return v;
      if (SteadyClock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(50ms);
    }
  }

  /// The first log line holding all of `needles`, waiting up to `timeout` for it.
  static std::optional<std::string> wait_log(const Voxbridge& vb,
                                             const std::vector<std::string>& needles,
                                             std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      for (const auto& line : lines_with(vb.log_text(), needles.front())) {
        bool all = true;
        for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
        if (all) return line;
      }
      if (SteadyClock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(50ms);
    }
  }
  static std::optional<std::string> wait_log(const Voxbridge& vb, const std::string& needle,
                                             std::chrono::milliseconds timeout) {
    return wait_log(vb, std::vector<std::string>{needle}, timeout);
  }

  /// The agent finished its turn `n` (0: the greeting). Digits sent while it speaks wait for
  /// its next turn (see the report on pipeline.cpp), so the tests send them between turns.
  static void wait_turn(const std::string& uuid, int n, std::chrono::milliseconds timeout = 10s) {
    EXPECT_TRUE(wait_log(
        g_env->ami(), {"call uuid=" + uuid + ": turn " + std::to_string(n) + " spoken"}, timeout))
        << "turn " << n << " did not end within " << timeout.count() << " ms\n"
        << g_env->diagnostics();
  }
  static void wait_greeting(const std::string& uuid) { wait_turn(uuid, 0); }

  /// Tells the caller half (caller-ctl) what to do next: digits, "R<digits>" or "H".
  static void caller_does(const std::string& id, const std::string& what) {
    const auto r = g_env->rx("dialplan set global VB_GO_" + id + " " + what);
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }

  /// Waits for voxbridge's call end line and for Asterisk to have no channel left.
  static std::optional<CallEnd> wait_end(const Voxbridge& vb, const std::string& uuid,
                                         std::chrono::milliseconds timeout = 10s) {
    const auto deadline = SteadyClock::now() + timeout;
    std::optional<CallEnd> end;
    bool idle = false;
    while (SteadyClock::now() < deadline) {
      if (!end) end = find_call_end(vb.log_text(), uuid);
      if (end && (idle = g_env->active_channels() == 0)) break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(end.has_value()) << "voxbridge logged no call end for uuid=" << uuid << "\n"
                                 << g_env->diagnostics();
    EXPECT_TRUE(idle) << "Asterisk still has channels up:\n"
                      << g_env->rx("core show channels").output << g_env->diagnostics();
    return end;
  }
};

// 1. The receptionist: DTMF 1 -> it says "Connecting you to sales.", then AMI Redirect moves the
// channel out of AudioSocket() to voxbridge-transfer,100; the line after AudioSocket() never runs.
// The shipped dialplan (dialplan/extensions_voxbridge.conf, included by conf/extensions.conf)
// loads in the real Asterisk with every entry an integrator uses; the AMI user every test here
// logs in with is the shipped dialplan/manager_voxbridge.conf.
TEST_F(ControlE2E, ShippedDialplanSamplesLoad) {
  for (const std::string ctx :
       {"voxbridge-agent", "voxbridge-app", "voxbridge-app-legacy", "voxbridge-routed",
        "voxbridge-channel", "voxbridge-stasis", "voxbridge-outbound"}) {
    const auto out = g_env->rx("dialplan show s@" + ctx).output;
    EXPECT_NE(out.find("'s' =>"), std::string::npos) << ctx << ":\n" << out;
  }
  const auto app = g_env->rx("dialplan show s@voxbridge-app").output;
  EXPECT_NE(app.find("AudioSocket(${VB_UUID},${VB_HOST})"), std::string::npos) << app;
  EXPECT_NE(g_env->rx("dialplan show s@voxbridge-stasis").output.find("Stasis(voxbridge)"),
            std::string::npos);
  const auto routed = g_env->rx("dialplan show s@voxbridge-routed").output;
  EXPECT_NE(routed.find("CURL(http://${VB_API}/v1/calls/${VB_UUID},"), std::string::npos) << routed;
  EXPECT_NE(g_env->rx("manager show user voxbridge").output.find("call,originate"),
            std::string::npos);
}

// Issue 20, finding 1, in the real dialplan: whatever VB_TRANSFER holds when voxbridge hangs up,
// the shipped voxbridge-app's FILTER lets only 0-9*#+ reach its GotoIf, so the hostile note
// (which on d65311a sent the call to from-internal,9011441234567) never leaves
// voxbridge-transfer: there is no such extension there, and the call ends.
TEST_F(ControlE2E, AHostileTransferNoteNeverLeavesVoxbridgeTransfer) {
  const std::string id = next_id();
  const auto starts = lines_with(g_env->ami().log_text(), "call start uuid=").size();
  const auto r = g_env->rx("channel originate Local/" + id + "@caller-ctl/n extension " + id +
                           "@agent-hostile");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto deadline = SteadyClock::now() + 5s;
  while (lines_with(g_env->ami().log_text(), "call start uuid=").size() == starts &&
         SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GT(lines_with(g_env->ami().log_text(), "call start uuid=").size(), starts)
      << g_env->diagnostics();
  std::this_thread::sleep_for(1500ms);  // "Hello."
  caller_does(id, "#");                 // the rules agent says goodbye and hangs up
  const auto done = wait_global("VB_DONE_" + id, 10s);
  ASSERT_TRUE(done.has_value()) << "the agent half never ended\n" << g_env->diagnostics();
  EXPECT_FALSE(g_env->global("VB_ESCAPED_" + id).has_value())
      << "the hostile VB_TRANSFER sent the call to from-internal,"
      << g_env->global("VB_ESCAPED_" + id).value_or("");
  EXPECT_FALSE(g_env->global("VB_AFTER_" + id).has_value());
}

TEST_F(ControlE2E, AmiRedirectTransfersLiveAudioSocketCall) {
  const auto t0 = SteadyClock::now();
  const std::string id = next_id();
  const std::string uuid = start_call(id, "caller-ctl", "agent-ctl");
  ASSERT_FALSE(uuid.empty());
  wait_greeting(uuid);
  caller_does(id, "1");
  const auto xfer = wait_global("VB_XFER_" + id, 8s);
  EXPECT_EQ(xfer.value_or("(unset)"), "100") << "the call never reached voxbridge-transfer,100\n"
                                             << g_env->diagnostics();
  const auto done = wait_log(g_env->ami(), "call uuid=" + uuid + ": transfer to 100", 3s);
  ASSERT_TRUE(done.has_value()) << g_env->diagnostics();
  EXPECT_NE(done->find(": done"), std::string::npos) << *done;
  const auto digit = wait_log(g_env->ami(), "[" + uuid + "] dtmf 1", 1s);
  ASSERT_TRUE(digit.has_value());
  // "Connecting you to sales." (about 1.5 s of speech) is played before the Redirect.
  const double said = log_time(*done) - log_time(*digit);
  EXPECT_GT(said, 1.0) << "the transfer came before the reply was spoken:\n"
                       << *digit << "\n"
                       << *done;
  EXPECT_LT(said, 6.0);
  const auto end = wait_end(g_env->ami(), uuid);
  EXPECT_FALSE(g_env->global("VB_AFTER_" + id).has_value())
      << "the dialplan after AudioSocket() ran: Redirect did not move the channel";
  if (end) {
    EXPECT_NE(end->by, "server") << end->line;  // Asterisk closed the socket (the Redirect)
  }
  std::cout << "[ figures  ] AMI redirect: DTMF 1 -> transfer done after " << said
            << " s; test took " << std::chrono::duration<double>(SteadyClock::now() - t0).count()
            << " s\n";
}

// 1b. The speech-to-speech agent's transfer takes the same way: after its greeting has played,
// AMI Redirect moves the channel to voxbridge-transfer,100, and the agent is told it worked.
TEST_F(ControlE2E, SpeechAgentsTransferRedirectsTheCallThroughAmi) {
  const std::string id = next_id();
  const std::string uuid = start_call(id, "caller-ctl", "agent-s2s");
  ASSERT_FALSE(uuid.empty());
  const auto xfer = wait_global("VB_XFER_" + id, 8s);
  EXPECT_EQ(xfer.value_or("(unset)"), "100") << "the call never reached voxbridge-transfer,100\n"
                                             << g_env->diagnostics();
  const auto done = wait_log(g_env->ami(), "call uuid=" + uuid + ": transfer to 100", 3s);
  ASSERT_TRUE(done.has_value()) << g_env->diagnostics();
  EXPECT_NE(done->find(": done"), std::string::npos) << *done;
  const auto end = wait_end(g_env->ami(), uuid);
  EXPECT_FALSE(g_env->global("VB_AFTER_" + id).has_value())
      << "the dialplan after AudioSocket() ran: Redirect did not move the channel";
  if (end) {
    EXPECT_NE(end->by, "server") << end->line;  // Asterisk closed the socket (the Redirect)
  }
  const auto results = g_env->s2s_agent().action_results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok()) << results[0].error();
  EXPECT_EQ(results[0].action().transfer().target(), "100");
  const auto events = g_env->s2s_agent().events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front(), "mark_played 1");  // the greeting played before the transfer
}

// 2. A transfer to an extension not in allow_extensions is refused inside voxbridge: no Redirect,
// the call goes on with the agent (its goodbye on '#' ends it, and only then does the dialplan
// after AudioSocket() run).
TEST_F(ControlE2E, DeniedTransferKeepsTheCall) {
  const std::string id = next_id();
  const std::string uuid = start_call(id, "caller-ctl", "agent-rules");
  ASSERT_FALSE(uuid.empty());
  wait_greeting(uuid);
  caller_does(id, "5");
  const auto denied =
      wait_log(g_env->ami(), {"call uuid=" + uuid + ": transfer to 999", "denied"}, 5s);
  ASSERT_TRUE(denied.has_value()) << g_env->diagnostics();
  EXPECT_EQ(log_level_of(*denied), "warning") << *denied;
  // The agent is told the transfer was refused and speaks again (turn 2; turn 1 was its reply
  // announcing the transfer).
  wait_turn(uuid, 2);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(g_env->global("VB_XFER_" + id).has_value()) << "the denied transfer happened";
  EXPECT_FALSE(g_env->global("VB_AFTER_" + id).has_value()) << "the call ended after the denial";
  EXPECT_EQ(g_env->active_channels(), 2) << "the call is not up any more";
  // The agent still answers: '#' -> "Goodbye." and voxbridge hangs up; the dialplan continues.
  caller_does(id, "#");
  const auto after = wait_global("VB_AFTER_" + id, 8s);
  EXPECT_EQ(after.value_or("(unset)"), "continued") << g_env->diagnostics();
  const auto end = wait_end(g_env->ami(), uuid);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->by, "server") << end->line;
  EXPECT_FALSE(g_env->global("VB_XFER_" + id).has_value());
  EXPECT_TRUE(
      lines_with(g_env->ami().log_text(), "call uuid=" + uuid + ": transfer to 999: done").empty());
}

// 3. voxbridge -> caller DTMF: intent 3 sends "w42" (a 0.5 s pause, then 4 and 2) with AMI
// PlayDTMF; the caller half Read()s it. (Without the pause the digits reach the caller within
// ~0.2 s of its own '3', while its SendDTMF() still runs and drops them: Read() starts only after.)
TEST_F(ControlE2E, AmiPlayDtmfReachesTheCaller) {
  const std::string id = next_id();
  const std::string uuid = start_call(id, "caller-ctl", "agent-rules");
  ASSERT_FALSE(uuid.empty());
  wait_greeting(uuid);
  caller_does(id, "R3");
  const auto read = wait_global("VB_READ_" + id, 10s);
  EXPECT_EQ(read.value_or("(unset)"), "42") << g_env->diagnostics();
  const auto done = wait_log(g_env->ami(), "call uuid=" + uuid + ": send DTMF w42", 3s);
  ASSERT_TRUE(done.has_value()) << g_env->diagnostics();
  EXPECT_NE(done->find(": done"), std::string::npos) << *done;
  caller_does(id, "H");
  const auto end = wait_end(g_env->ami(), uuid);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->by, "caller") << end->line;
}

// 4. Setvar: intent 4 sets VB_RESULT=sales on the channel; after voxbridge's hangup ('#') the
// dialplan after AudioSocket() sees it.
TEST_F(ControlE2E, AmiSetvarIsSeenByTheDialplan) {
  const std::string id = next_id();
  const std::string uuid = start_call(id, "caller-ctl", "agent-rules");
  ASSERT_FALSE(uuid.empty());
  wait_greeting(uuid);
  caller_does(id, "4");
  const auto done = wait_log(g_env->ami(), "call uuid=" + uuid + ": set VB_RESULT", 5s);
  ASSERT_TRUE(done.has_value()) << g_env->diagnostics();
  EXPECT_NE(done->find(": done"), std::string::npos) << *done;
  wait_turn(uuid, 1);  // "Noted."
  caller_does(id, "#");
  const auto result = wait_global("VB_RESULT_" + id, 8s);
  EXPECT_EQ(result.value_or("(unset)"), "sales") << g_env->diagnostics();
  EXPECT_EQ(g_env->global("VB_AFTER_" + id).value_or("(unset)"), "continued");
  const auto end = wait_end(g_env->ami(), uuid);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->by, "server") << end->line;
}

// 5. `voxbridge originate`: AMI Originate of Local/7001@callee-answer; once answered the call
// continues at agent-orig,s and reaches the receptionist. A busy callee gives "busy" and exit 1.
TEST_F(ControlE2E, OriginateAnsweredAndBusy) {
  const auto r = run_command({VB_VOXBRIDGE_BIN, "originate", "--config", g_env->ami().conf.string(),
                              "--to", "7001", "--agent", "recep"},
                             10s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("answered channel=Local/7001@callee-answer"), std::string::npos)
      << r.output;
  const auto uuid = wait_global("VB_ORIG_UUID_7001", 5s);
  ASSERT_TRUE(uuid.has_value()) << "the answered call never reached agent-orig\n"
                                << g_env->diagnostics();
  const auto start = wait_log(g_env->ami(), "call start uuid=" + *uuid + " ", 5s);
  EXPECT_TRUE(start.has_value()) << g_env->diagnostics();
  if (start) {
    EXPECT_NE(start->find("agent=receptionist"), std::string::npos) << *start;
  }
  const auto end = wait_end(g_env->ami(), *uuid);  // the callee hangs up after 3 s
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->by, "caller") << end->line;

  const auto busy = run_command(
      {VB_VOXBRIDGE_BIN, "originate", "--config", g_env->busy_conf().string(), "--to", "7002"},
      10s);
  EXPECT_EQ(busy.exit_code, 1) << busy.output;
  EXPECT_NE(busy.output.find("busy ("), std::string::npos) << busy.output;

  EXPECT_EQ(g_env->active_channels(), 0);
  std::cout << "[ figures  ] originate: " << tail_lines(r.output, 1)
            << "             busy: " << tail_lines(busy.output, 1);
}

// 5b. Per-call routing by pre-registration with the shipped voxbridge-routed context and no
// control path: agent-routed (conf/extensions.conf) sets VB_AGENT and a caller number and goes
// there; its CURL() POSTs them to the routed voxbridge's HTTP API (form data) before
// AudioSocket(). That voxbridge takes only pre-registered calls, and its [route-tone] gives
// VB_AGENT=tone the tone agent (1 s of 440 Hz, then it hangs up); VB_AGENT=sales matches no
// route: the listener's echo agent, and no route= in the start line.
TEST_F(ControlE2E, PreRegistrationRoutesShippedDialplan) {
  const auto t0 = SteadyClock::now();
  // A call left up by a failed assertion would fail every later test's SetUp.
  struct HangupOnFailure {
    ~HangupOnFailure() {
      if (::testing::Test::HasFailure()) g_env->rx("channel request hangup all");
    }
  } cleanup;
  const auto mods = g_env->rx("module show").output;
  for (const char* m :
       {"func_curl.so", "res_curl.so", "func_uri.so", "func_callerid.so", "app_stack.so"}) {
    ASSERT_NE(mods.find(m), std::string::npos)
        << "Asterisk did not load " << m << " (conf/modules.conf)";
  }
  // Places a call through agent-routed with VB_AGENT=`agent`; returns the routed voxbridge's new
  // call start line.
  auto routed_call = [](const std::string& id,
                        const std::string& agent) -> std::optional<std::string> {
    const std::string needle = "call start uuid=";
    const auto before = lines_with(g_env->routed().log_text(), needle).size();
    const auto set = g_env->rx("dialplan set global VB_ROUTE_" + id + " " + agent);
    EXPECT_EQ(set.exit_code, 0) << set.output;
    const auto r = g_env->rx("channel originate Local/" + id + "@caller-ctl/n extension " + id +
                             "@agent-routed");
    EXPECT_EQ(r.exit_code, 0) << "originate failed: " << r.output;
    const auto deadline = SteadyClock::now() + 5s;
    for (;;) {
      const auto lines = lines_with(g_env->routed().log_text(), needle);
      if (lines.size() > before) return lines[before];
      if (SteadyClock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(50ms);
    }
  };

  const std::string tone_id = next_id();
  const auto tone_start = routed_call(tone_id, "tone");
  ASSERT_TRUE(tone_start.has_value())
      << "the routed voxbridge logged no call start (AudioSocket() to VB_HOST failed, or "
         "voxbridge refused a call that was not pre-registered)\n"
      << g_env->diagnostics();
  // The tone agent hangs up after its tone; agent-routed's hangup handler then publishes the
  // UUID voxbridge-routed made.
  const auto tone_uuid = wait_global("VB_UUID_" + tone_id, 8s);
  ASSERT_TRUE(tone_uuid.has_value()) << "the routed call did not end\n" << g_env->diagnostics();
  EXPECT_NE(tone_start->find("call start uuid=" + *tone_uuid + " "), std::string::npos)
      << *tone_start;
  EXPECT_NE(tone_start->find(" listener=routed "), std::string::npos) << *tone_start;
  EXPECT_NE(tone_start->find(" agent=tone route=tone"), std::string::npos)
      << "VB_AGENT=tone (and a caller number) did not reach [route-tone]: " << *tone_start;
  const auto tone_end = wait_end(g_env->routed(), *tone_uuid);
  ASSERT_TRUE(tone_end.has_value());
  EXPECT_EQ(tone_end->by, "server") << tone_end->line;  // the tone agent's then = hangup
  EXPECT_GT(tone_end->duration_s, 0.9) << tone_end->line;
  EXPECT_LT(tone_end->duration_s, 3.0) << tone_end->line;

  const std::string echo_id = next_id();
  const auto echo_start = routed_call(echo_id, "sales");
  ASSERT_TRUE(echo_start.has_value())
      << "the routed voxbridge logged no call start (AudioSocket() to VB_HOST failed, or "
         "voxbridge refused a call that was not pre-registered)\n"
      << g_env->diagnostics();
  EXPECT_NE(echo_start->find(" agent=echo"), std::string::npos) << *echo_start;
  EXPECT_EQ(echo_start->find(" route="), std::string::npos) << *echo_start;
  caller_does(echo_id, "H");
  const auto echo_uuid = wait_global("VB_UUID_" + echo_id, 5s);
  ASSERT_TRUE(echo_uuid.has_value()) << "the routed call did not end\n" << g_env->diagnostics();
  EXPECT_NE(echo_start->find("call start uuid=" + *echo_uuid + " "), std::string::npos)
      << *echo_start;
  const auto echo_end = wait_end(g_env->routed(), *echo_uuid);
  ASSERT_TRUE(echo_end.has_value());
  EXPECT_EQ(echo_end->by, "caller") << echo_end->line;
  EXPECT_TRUE(lines_with(g_env->routed().log_text(), "call refused").empty())
      << g_env->diagnostics();
  std::cout << "[ figures  ] pre-registration routing: tone call "
            << tone_end->line.substr(tone_end->line.find("duration=")) << "\n"
            << "             test took "
            << std::chrono::duration<double>(SteadyClock::now() - t0).count() << " s\n";
}

// A number outside allow_numbers is refused by voxbridge without asking Asterisk.
TEST_F(ControlE2E, OriginateDeniedByAllowlist) {
  const auto denied = run_command(
      {VB_VOXBRIDGE_BIN, "originate", "--config", g_env->ami().conf.string(), "--to", "8001"}, 10s);
  EXPECT_EQ(denied.exit_code, 1) << denied.output;
  EXPECT_NE(denied.output.find("denied"), std::string::npos) << denied.output;
  EXPECT_EQ(g_env->active_channels(), 0);
}

// 6. ARI mode: the caller enters Stasis(voxbridge); voxbridge answers, adds an externalMedia
// AudioSocket leg (slin16) to its echo listener and bridges them; the caller hears its probe
// back. After the caller hangs up, no channel and no bridge is left in ARI.
TEST_F(ControlE2E, AriStasisExternalMediaEcho) {
  const std::string id = next_id();
  const auto t0 = SteadyClock::now();
  const auto r = g_env->rx("channel originate Local/" + id + "@caller-echo-late/n extension " + id +
                           "@agent-stasis");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto entered =
      wait_log(g_env->ari(), {"ARI: call ", "(Local/" + id + "@caller-echo-late-", "uuid="}, 5s);
  ASSERT_TRUE(entered.has_value()) << "voxbridge saw no StasisStart\n" << g_env->diagnostics();
  const std::string uuid = entered->substr(entered->find("uuid=") + 5, 36);
  const fs::path done = g_env->rec_dir() / (id + ".done");
  const auto deadline = SteadyClock::now() + 12s;
  while (!fs::exists(done) && SteadyClock::now() < deadline) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(done)) << "MixMonitor never finished\n" << g_env->diagnostics();
  const auto end = wait_end(g_env->ari(), uuid);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->codec, "slin") << end->line;
  EXPECT_EQ(end->rate, 16000) << end->line;
  EXPECT_TRUE(wait_log(g_env->ari(), "ARI: call uuid=" + uuid + " ends:", 3s).has_value());
  EXPECT_FALSE(g_env->global("VB_AFTER_" + id).has_value())
      << "the caller left Stasis into the dialplan instead of being hung up";

  const EchoAnalysis a = analyse_echo(rec_path(id, "sent"), rec_path(id, "heard"));
  ASSERT_TRUE(a.ok) << a.error << "\n" << g_env->diagnostics();
  EXPECT_GT(a.correlation, 0.9) << "the caller did not hear its probe back";
  EXPECT_GE(a.lag_ms, -20.0);
  EXPECT_LT(a.lag_ms, 300.0) << "the echo is late";
  EXPECT_NEAR(a.heard_dbfs, a.sent_dbfs, 3.0);
  for (std::size_t k = 0; k < kProbeTonesHz.size(); ++k) {
    EXPECT_NEAR(a.heard[k].freq_hz, a.sent[k].freq_hz, 5.0) << "tone " << k;
  }
  EXPECT_GT(a.loud_blocks, 200u);
  EXPECT_LE(a.missing_blocks, 2u) << "10 ms blocks of the echo missing (dropouts)";

  // Nothing left over in ARI: voxbridge hung up its AudioSocket leg and destroyed the bridge.
  HttpReply ch, br;
  const auto clean_deadline = SteadyClock::now() + 5s;
  for (;;) {
    ch = http_get(g_env->http_port(), "/ari/channels", kAriUser, kAriPassword);
    br = http_get(g_env->http_port(), "/ari/bridges", kAriUser, kAriPassword);
    if ((ch.body == "[]" && br.body == "[]") || SteadyClock::now() >= clean_deadline) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(ch.status, 200);
  EXPECT_EQ(ch.body, "[]") << "channels left in ARI";
  EXPECT_EQ(br.status, 200);
  EXPECT_EQ(br.body, "[]") << "bridges left in ARI";
  std::printf(
      "[ figures  ] ARI externalMedia echo: corr %.3f delay %.1f ms sent %.2f heard %.2f dBFS "
      "dropouts %zu/%zu; %s; test took %.2f s\n",
      a.correlation, a.lag_ms, a.sent_dbfs, a.heard_dbfs, a.missing_blocks, a.loud_blocks,
      end->line.substr(end->line.find("call end")).c_str(),
      std::chrono::duration<double>(SteadyClock::now() - t0).count());
  std::fflush(stdout);
}

// 7. ARI mode, music on hold (a slow business tool's filler, filler_moh): voxbridge starts it on
// the caller's channel. The caller hears it; the AudioSocket leg in the bridge never does, so the
// model and the VAD cannot take the music for the caller: voxbridge's recording of the call (what
// the leg received, and the echo agent's answer) has the caller's probe and no music.
TEST_F(ControlE2E, AriMusicOnHoldReachesTheCallerButNotTheAudioSocketLeg) {
  const std::string id = next_id();
  const auto r = g_env->rx("channel originate Local/" + id + "@caller-echo-late/n extension " + id +
                           "@agent-stasis");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto entered =
      wait_log(g_env->ari(), {"ARI: call ", "(Local/" + id + "@caller-echo-late-", "uuid="}, 5s);
  ASSERT_TRUE(entered.has_value()) << "voxbridge saw no StasisStart\n" << g_env->diagnostics();
  const std::string uuid = entered->substr(entered->find("uuid=") + 5, 36);
  const auto at = entered->find("ARI: call ") + 10;
  const std::string caller = entered->substr(at, entered->find(' ', at) - at);
  // What voxbridge's HoldMusic sends (ari_client music_on_hold), to the caller's channel.
  const auto moh =
      http_request(g_env->http_port(), "POST", "/ari/channels/" + caller + "/moh?mohClass=vbtest",
                   kAriUser, kAriPassword);
  ASSERT_EQ(moh.status, 204) << moh.body;
  const fs::path done = g_env->rec_dir() / (id + ".done");
  const auto deadline = SteadyClock::now() + 12s;
  while (!fs::exists(done) && SteadyClock::now() < deadline) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(done)) << "MixMonitor never finished\n" << g_env->diagnostics();
  ASSERT_TRUE(wait_end(g_env->ari(), uuid).has_value());

  std::string err;
  // The caller heard the music (from 0.5 s after the call began: MOH was started by then).
  const auto heard = voxbridge::audio::read_wav(rec_path(id, "heard"), err);
  ASSERT_TRUE(err.empty()) << err;
  const std::size_t skip = static_cast<std::size_t>(heard.rate_hz / 2);
  ASSERT_GT(heard.samples.size(), skip + static_cast<std::size_t>(heard.rate_hz));
  const std::span<const std::int16_t> heard_part(heard.samples.data() + skip,
                                                 heard.samples.size() - skip);
  const double heard_share = energy_share(heard_part, kMohToneHz, heard.rate_hz);
  EXPECT_GT(heard_share, 0.5) << "the caller did not hear the music on hold";
  // voxbridge's leg did not: its recording (caller and echo averaged) is the probe, not music.
  fs::path wav;
  for (const auto& e : fs::recursive_directory_iterator(g_env->tmp() / "vbrec")) {
    if (e.path().filename() == uuid + ".wav") wav = e.path();
  }
  ASSERT_FALSE(wav.empty()) << "no recording of the call";
  const auto leg = voxbridge::audio::read_wav(wav, err);
  ASSERT_TRUE(err.empty()) << err;
  const double leg_share = energy_share(leg.samples, kMohToneHz, leg.rate_hz);
  const double leg_dbfs = dbfs(rms(leg.samples));
  EXPECT_LT(leg_share, 0.01) << "the music on hold reached the AudioSocket leg";
  EXPECT_GT(leg_dbfs, -30.0) << "the leg did not get the caller's probe";
  std::printf(
      "[ figures  ] ARI music on hold: share of %.0f Hz in what the caller heard %.3f, "
      "on the AudioSocket leg %.5f (the leg's level %.1f dBFS: the caller's probe)\n",
      kMohToneHz, heard_share, leg_share, leg_dbfs);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_env = new ControlEnv;
  ::testing::AddGlobalTestEnvironment(g_env);  // gtest owns and deletes it
  return RUN_ALL_TESTS();
}
