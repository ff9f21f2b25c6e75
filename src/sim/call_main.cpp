// `voxbridge call`: the simulator's command line.
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <numbers>
#include <thread>

#include "voxbridge/asr_sphinx/sphinx_asr.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/audio/wav.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/http_get.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/sim/sim_call.hpp"
#include "voxbridge/tts_flite/flite_tts.hpp"

namespace voxbridge::sim {
namespace {

/// Stretches of `x` (at `rate`) louder than -50 dBFS, split at pauses of 0.5 s or more:
/// [start, end) sample ranges.
std::vector<std::pair<std::size_t, std::size_t>> spoken_parts(const std::vector<std::int16_t>& x,
                                                              int rate) {
  std::vector<std::pair<std::size_t, std::size_t>> parts;
  const auto block = static_cast<std::size_t>(rate / 50);
  std::size_t start = 0, quiet = 0;
  bool in = false;
  for (std::size_t at = 0; at + block <= x.size(); at += block) {
    double e = 0;
    for (std::size_t i = at; i < at + block; ++i) e += static_cast<double>(x[i]) * x[i];
    const bool loud = e / static_cast<double>(block) > 100.0 * 100.0;
    if (loud && !in) {
      in = true;
      start = at;
    }
    quiet = loud ? 0 : quiet + 1;
    if (in && (quiet >= 25 || at + 2 * block > x.size())) {
      in = false;
      parts.emplace_back(start, at + block);
    }
  }
  return parts;
}

/// Prints what the built-in recognizer hears in each part of the reply.
void print_transcript(const CallResult& r) {
  const int rate = r.reply_rate_hz();
  if (rate == 0 || r.received.empty()) return;
  asr_sphinx::DecoderPool pool({"/usr/share/pocketsphinx/model/en-us", 1});
  audio::Resampler to16(rate, 16000, 5);
  for (const auto& [from, to] : spoken_parts(r.received, rate)) {
    const std::span<const std::int16_t> part(r.received.data() + from, to - from);
    std::vector<std::int16_t> v(8000, 0);  // 0.5 s of silence around it
    const std::size_t at = v.size();
    v.resize(at + to16.max_output(part.size()));
    v.resize(at + to16.process(part, {v.data() + at, v.size() - at}));
    v.resize(v.size() + 11200, 0);
    std::printf("agent     %6.2f s  \"%s\"\n", static_cast<double>(from) / rate,
                asr_sphinx::recognize(pool, v).c_str());
  }
}

/// One transcript event of the server's, as a line: "  2.31 s  caller  \"...\"".
void print_event(const boost::json::object& e) {
  const double t = e.contains("t_ms") && e.at("t_ms").is_int64()
                       ? static_cast<double>(e.at("t_ms").as_int64()) / 1000.0
                       : 0.0;
  const std::string type = e.contains("type") && e.at("type").is_string()
                               ? std::string(e.at("type").as_string())
                               : std::string("?");
  if (type == "interim") return;  // partial results: the final one follows
  const char* who = type == "user" ? "caller" : type == "agent" ? "agent" : type.c_str();
  if (e.contains("text") && e.at("text").is_string()) {
    std::printf("server    %6.2f s  %-8s \"%s\"\n", t, who, e.at("text").as_string().c_str());
  } else {
    boost::json::object rest;  // the other fields, in the server's order (not the start's schema)
    for (const auto& kv : e) {
      if (kv.key() != "t_ms" && kv.key() != "type" && kv.key() != "schema") {
        rest.emplace(kv.key(), kv.value());
      }
    }
    std::printf("server    %6.2f s  %-8s %s\n", t, who, boost::json::serialize(rest).c_str());
  }
  std::fflush(stdout);
}

/// Prints the server's transcript of this call while it runs: what its recognizer heard, what
/// the agent said, DTMF, barge-ins, actions and the end, from GET /v1/calls/UUID/events on the
/// server's HTTP API, polled every 200 ms on a thread of its own.
class EventPrinter {
 public:
  EventPrinter(std::string api, std::string token, std::string uuid)
      : api_(std::move(api)), token_(std::move(token)), uuid_(std::move(uuid)) {
    thread_ = std::thread([this] { run(); });
  }
  ~EventPrinter() { stop(); }
  /// Polls until the server has the call's end (it may still be closing it; 1.5 s at most),
  /// then the thread ends.
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    std::chrono::steady_clock::time_point give_up{};
    for (;;) {
      if (done_) return;
      // After the call: a few more polls, until the server has closed it and has its end.
      if (stopping_ && give_up == std::chrono::steady_clock::time_point{}) {
        give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
      }
      if (stopping_ && std::chrono::steady_clock::now() >= give_up) return;
      lock.unlock();
      poll();
      lock.lock();
      if (stopping_) {
        cv_.wait_for(lock, std::chrono::milliseconds(100));
      } else {
        cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_; });
      }
    }
  }

  void poll() {
    net::HttpReply r;
    try {
      r = net::http_get(api_, "/v1/calls/" + uuid_ + "/events?from=" + std::to_string(next_),
                        token_, std::chrono::milliseconds(2000));
    } catch (const std::exception& e) {
      warn(std::string("cannot reach ") + api_ + ": " + net::error_text(e));
      return;
    }
    if (r.status == 404) return;  // not up yet, or already gone
    if (r.status != 200) {
      warn("HTTP " + std::to_string(r.status) + " " + r.body);
      return;
    }
    boost::system::error_code ec;
    const auto v = boost::json::parse(r.body, ec);
    if (ec || !v.is_object()) return;
    const auto& o = v.as_object();
    if (const auto* events = o.if_contains("events"); events != nullptr && events->is_array()) {
      for (const auto& e : events->as_array()) {
        if (e.is_object()) print_event(e.as_object());
      }
    }
    if (const auto* n = o.if_contains("next"); n != nullptr && n->is_int64()) {
      next_ = static_cast<std::size_t>(n->as_int64());
    }
    if (const auto* e = o.if_contains("ended"); e != nullptr && e->is_bool() && e->as_bool()) {
      std::lock_guard lock(mu_);
      done_ = true;  // the whole transcript is in: nothing more will come
    }
  }

  void warn(const std::string& what) {
    if (warned_) return;
    warned_ = true;
    std::fprintf(stderr, "voxbridge call: --events: %s\n", what.c_str());
  }

  std::string api_, token_, uuid_;
  std::size_t next_ = 0;
  bool warned_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool done_ = false;
  std::thread thread_;
};

const char* kUsage = R"(usage: voxbridge call [options]
Places one call into an AudioSocket server the way Asterisk does, and reports what came back.

  --to H:P            server address (default 127.0.0.1:5001)
  --codec C           slin8 (dialplan app, default) | ulaw | alaw | slin12 | slin16 | slin24 |
                      slin32 | slin44 | slin48 | slin96 | slin192 (channel driver c(...))
  --say TEXT          the caller speaks TEXT (Flite's voice), after --say-at; the leg defaults
                      to slin16 and the reply is transcribed (PocketSphinx) when the call ends
  --say-at MS         when the caller starts speaking (default 7000: after the built-in
                      receptionist's greeting)
  --transcribe        print what PocketSphinx hears in the reply (default with --say)
  --wav FILE          caller audio (any rate; resampled to the leg's rate)
  --tone HZ           caller audio: a sine at HZ (default 440 when no --wav)
  --seconds S         length of the tone (default 3)
  --tail-ms MS        silence streamed after the audio before hanging up (default 1000)
  --dtmf SPEC         digits, e.g. "1@500,2@700,#@2500" (digit@ms after the first frame)
  --frame-ms MS       frame length (default 20; Asterisk with ptime 30 sends 30)
  --wait-hangup       do not hang up at the end: wait for the server's hangup
  --record FILE       write the audio that came back to a WAV file
  --events H:P        print the server's own transcript of the call live (what its recognizer
                      heard, what the agent said, DTMF, actions, the end) from its HTTP API
                      (http_listen; token from --token or VOXBRIDGE_HTTP_TOKEN)
  --token T           bearer token for --events
  --uuid UUID         the call's UUID (default: random)
  --max-seconds S     give up after S seconds (default 60)
)";

bool parse_num(const std::string& s, long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

int call_main(int argc, const char* const* argv) {
  CallPlan plan;
  std::string wav_in, record, say, events_api, token;
  if (const char* t = std::getenv("VOXBRIDGE_HTTP_TOKEN")) token = t;
  long tone_hz = 440, seconds = 3, tail_ms = 1000, max_s = 60, say_at = 7000;
  bool codec_given = false, transcribe = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto need = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "voxbridge call: " << a << ": missing value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    auto need_num = [&](long& out) {
      const std::string v = need();
      if (!parse_num(v, out) || out < 0) {
        std::cerr << "voxbridge call: " << a << ": '" << v << "' is not a number\n";
        std::exit(2);
      }
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--to") {
      const std::string v = need();
      if (!net::split_host_port(v, plan.host, plan.port)) {
        std::cerr << "voxbridge call: --to: '" << v << "' is not HOST:PORT\n";
        return 2;
      }
    } else if (a == "--codec") {
      const std::string v = need();
      auto f = LegFormat::parse(v);
      if (!f) {
        std::cerr << "voxbridge call: --codec: unknown codec '" << v << "'\n";
        return 2;
      }
      plan.format = *f;
      codec_given = true;
    } else if (a == "--say") {
      say = need();
      transcribe = true;
    } else if (a == "--say-at") {
      need_num(say_at);
    } else if (a == "--transcribe") {
      transcribe = true;
    } else if (a == "--wav") {
      wav_in = need();
    } else if (a == "--tone") {
      need_num(tone_hz);
    } else if (a == "--seconds") {
      need_num(seconds);
    } else if (a == "--tail-ms") {
      need_num(tail_ms);
    } else if (a == "--frame-ms") {
      long v = 20;
      need_num(v);
      plan.frame = std::chrono::milliseconds(std::max(1L, v));
    } else if (a == "--dtmf") {
      std::string spec = need();
      std::size_t pos = 0;
      while (pos < spec.size()) {
        auto comma = spec.find(',', pos);
        std::string item =
            spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        pos = comma == std::string::npos ? spec.size() : comma + 1;
        long at = 0;
        if (item.size() < 3 || item[1] != '@' || !audiosocket::is_dtmf_digit(item[0]) ||
            !parse_num(item.substr(2), at)) {
          std::cerr << "voxbridge call: --dtmf: '" << item << "' is not DIGIT@MS\n";
          return 2;
        }
        plan.dtmf.emplace_back(std::chrono::milliseconds(at), item[0]);
      }
    } else if (a == "--wait-hangup") {
      plan.hangup_at_end = false;
    } else if (a == "--record") {
      record = need();
    } else if (a == "--events") {
      events_api = need();
      std::string h;
      unsigned short p = 0;
      if (!net::split_host_port(events_api, h, p)) {
        std::cerr << "voxbridge call: --events: '" << events_api << "' is not HOST:PORT\n";
        return 2;
      }
    } else if (a == "--token") {
      token = need();
    } else if (a == "--uuid") {
      const std::string v = need();
      plan.uuid = audiosocket::Uuid::parse(v);
      if (!plan.uuid) {
        std::cerr << "voxbridge call: --uuid: '" << v << "' is not a UUID\n";
        return 2;
      }
    } else if (a == "--max-seconds") {
      need_num(max_s);
    } else {
      std::cerr << "voxbridge call: unknown option " << a << " (see --help)\n";
      return 2;
    }
  }
  if (!say.empty() && !codec_given) plan.format = *LegFormat::parse("slin16");
  const int rate = plan.format.rate_hz();
  if (!say.empty()) {
    tts_flite::FliteEngine tts;
    const auto speech = tts.synthesize(say);
    audio::Resampler rs(tts_flite::FliteEngine::kRateHz, rate, 5);
    plan.audio.assign(static_cast<std::size_t>(rate * say_at / 1000), 0);
    const std::size_t at = plan.audio.size();
    plan.audio.resize(at + rs.max_output(speech.size()));
    plan.audio.resize(at + rs.process(speech, {plan.audio.data() + at, plan.audio.size() - at}));
    if (tail_ms == 1000) tail_ms = 6000;  // time for the answer
    std::printf("caller    %6.2f s  \"%s\" (%.2f s of Flite speech)\n",
                static_cast<double>(say_at) / 1000.0, say.c_str(),
                static_cast<double>(speech.size()) / tts_flite::FliteEngine::kRateHz);
    std::fflush(stdout);
  } else if (!wav_in.empty()) {
    std::string err;
    auto wav = audio::read_wav(wav_in, err);
    if (!err.empty()) {
      std::cerr << "voxbridge call: " << err << "\n";
      return 2;
    }
    audio::Resampler rs(wav.rate_hz, rate, 5);
    plan.audio.resize(rs.max_output(wav.samples.size()));
    plan.audio.resize(rs.process(wav.samples, plan.audio));
  } else {
    const auto n = static_cast<std::size_t>(rate * seconds);
    plan.audio.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      plan.audio[i] = static_cast<std::int16_t>(
          std::lround(8000.0 * std::sin(2.0 * std::numbers::pi * static_cast<double>(tone_hz) *
                                        static_cast<double>(i) / rate)));
    }
  }
  plan.tail = std::chrono::milliseconds(tail_ms);
  plan.max_duration = std::chrono::seconds(max_s);
  std::unique_ptr<EventPrinter> events;
  if (!events_api.empty()) {
    if (!plan.uuid) plan.uuid = random_uuid();
    events = std::make_unique<EventPrinter>(events_api, token, plan.uuid->text().data());
  }
  const CallResult r = place_call(plan);
  if (events) events->stop();
  std::cout << summary(plan, r);
  if (transcribe) print_transcript(r);
  if (!record.empty() && r.reply_kind) {
    std::string err;
    if (!audio::write_wav(record, r.reply_rate_hz(), r.received, err)) {
      std::cerr << "voxbridge call: " << err << "\n";
      return 1;
    }
    std::cout << "recorded  " << record << " (" << r.reply_rate_hz() << " Hz)\n";
  }
  return r.connected && r.error.empty() ? 0 : 1;
}

}  // namespace voxbridge::sim
