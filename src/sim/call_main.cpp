// `voxbridge call`: the simulator's command line.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numbers>

#include "voxbridge/asr_sphinx/sphinx_asr.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/audio/wav.hpp"
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
  std::string wav_in, record, say;
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
  const CallResult r = place_call(plan);
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
