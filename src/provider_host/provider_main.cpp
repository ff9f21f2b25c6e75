// voxbridge-provider: the built-in offline providers as a standalone gRPC server, reached by
// voxbridge (or anything speaking the contract) over the network like any other provider.
//
//   voxbridge-provider [--listen HOST:PORT] [--config voxbridge.conf] [--only asr,llm,tts]
//                      [--asr-decoders N] [--tts-cache-mb N] [--realtime NAME]
//                      [--gemini NAME] [--deepgram NAME] [--elevenlabs NAME]
//                      [--transcription NAME] [--speech NAME] [--vosk NAME] [--riva NAME]
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "voxbridge/asr_deepgram/backend.hpp"
#include "voxbridge/asr_openai/backend.hpp"
#include "voxbridge/asr_vosk/backend.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/realtime_gemini/backend.hpp"
#include "voxbridge/realtime_openai/backend.hpp"
#include "voxbridge/riva/backend.hpp"
#include "voxbridge/tts_elevenlabs/backend.hpp"
#include "voxbridge/tts_openai/backend.hpp"

namespace {

constexpr const char* kUsage =
    "usage: voxbridge-provider [options]\n"
    "  --listen HOST:PORT   where to serve (default 127.0.0.1:50061)\n"
    "  --config FILE        voxbridge.conf with the [rules-NAME] / [intent-NAME] sections\n"
    "                       (default: the built-in receptionist)\n"
    "  --only LIST          serve only some of asr,llm,tts (default: all three)\n"
    "  --asr-decoders N     speech decoders, utterances recognized at once (default 2)\n"
    "  --tts-cache-mb N     audio of recent texts the TTS keeps, MiB (default: the config's\n"
    "                       builtin_tts_cache_mb, 16; 0 = none)\n"
    "  --realtime NAME      serve the config's [realtime-NAME] OpenAI Realtime backend as\n"
    "                       voxbridge.agent.v1.Agent (`openai`: the built-in defaults with\n"
    "                       OPENAI_API_KEY); alone, it serves only that\n"
    "  --gemini NAME        the same for the config's [gemini-NAME] Gemini Live backend\n"
    "                       (`google`: the built-in defaults with GEMINI_API_KEY)\n"
    "  --deepgram NAME      serve the config's [deepgram-NAME] Deepgram recognizer as\n"
    "                       voxbridge.asr.v1.Recognizer (`deepgram`: the defaults with\n"
    "                       DEEPGRAM_API_KEY); alone, it serves only that\n"
    "  --elevenlabs NAME    serve the config's [elevenlabs-NAME] ElevenLabs voice as\n"
    "                       voxbridge.tts.v1.Synthesizer (`elevenlabs`: the defaults with\n"
    "                       ELEVENLABS_API_KEY); alone, it serves only that\n"
    "  --transcription NAME serve the config's [transcription-NAME] OpenAI-compatible\n"
    "                       transcription server as voxbridge.asr.v1.Recognizer\n"
    "  --speech NAME        serve the config's [speech-NAME] OpenAI-compatible speech server\n"
    "                       as voxbridge.tts.v1.Synthesizer\n"
    "  --vosk NAME          serve the config's [vosk-NAME] Vosk server as\n"
    "                       voxbridge.asr.v1.Recognizer\n"
    "  --riva NAME          serve the config's [riva-NAME] Riva server as\n"
    "                       voxbridge.asr.v1.Recognizer and voxbridge.tts.v1.Synthesizer\n"
    "  --help\n"
    "Services: voxbridge.asr.v1.Recognizer (PocketSphinx), voxbridge.llm.v1.Dialogue (rules),\n"
    "voxbridge.tts.v1.Synthesizer (Flite), and grpc.health.v1.Health.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace voxbridge;
  provider_host::BuiltinOptions o;
  o.listen = "127.0.0.1:50061";
  std::string config_file;
  std::optional<std::size_t> cache_mb;
  std::string realtime;
  std::string gemini;
  std::string deepgram;
  std::string elevenlabs;
  std::string transcription;
  std::string speech;
  std::string vosk;
  std::string riva;
  bool only = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto need = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(a + ": missing value");
        return argv[++i];
      };
      auto count = [&](std::size_t min, std::size_t max) -> std::size_t {
        const std::string v = need();
        std::size_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size() || n < min || n > max) {
          throw std::runtime_error(a + ": '" + v + "' is not a number from " + std::to_string(min) +
                                   " to " + std::to_string(max));
        }
        return n;
      };
      if (a == "--help" || a == "-h") {
        std::cout << kUsage;
        return 0;
      } else if (a == "--listen") {
        o.listen = need();
      } else if (a == "--config") {
        config_file = need();
      } else if (a == "--only") {
        const std::string v = need();
        o.asr = v.find("asr") != std::string::npos;
        o.llm = v.find("llm") != std::string::npos;
        o.tts = v.find("tts") != std::string::npos;
        if (!o.asr && !o.llm && !o.tts) throw std::runtime_error("--only: name asr, llm or tts");
        only = true;
      } else if (a == "--realtime") {
        realtime = need();
      } else if (a == "--gemini") {
        gemini = need();
      } else if (a == "--deepgram") {
        deepgram = need();
      } else if (a == "--elevenlabs") {
        elevenlabs = need();
      } else if (a == "--transcription") {
        transcription = need();
      } else if (a == "--speech") {
        speech = need();
      } else if (a == "--vosk") {
        vosk = need();
      } else if (a == "--riva") {
        riva = need();
      } else if (a == "--asr-decoders") {
        o.sphinx.decoders = count(1, 256);
      } else if (a == "--tts-cache-mb") {
        cache_mb = count(0, 4096);
      } else {
        throw std::runtime_error(a + ": unknown option (see --help)");
      }
    }
    const config::Config cfg =
        config_file.empty() ? config::default_config() : config::load_config_file(config_file);
    o.rules = cfg.rules;
    o.openai = cfg.openai;
    o.tts_cache_bytes = cache_mb.value_or(cfg.general.builtin_tts_cache_mb) << 20;
    if (!realtime.empty()) {
      // The same backend a voxbridge runs in process, with its key resolved the same way.
      o.agent_backend = std::make_shared<realtime_openai::RealtimeBackend>(
          config::realtime_backend(cfg, realtime), cfg.general.resampler_quality);
      o.agent_target.name = realtime;
      o.agent_target.backend = "realtime:" + realtime;
      if (!only) o.asr = o.llm = o.tts = false;
    }
    if (!gemini.empty()) {
      if (!realtime.empty()) throw std::runtime_error("--realtime or --gemini, not both");
      o.agent_backend = std::make_shared<realtime_gemini::GeminiBackend>(
          config::gemini_backend(cfg, gemini), cfg.general.resampler_quality);
      o.agent_target.name = gemini;
      o.agent_target.backend = "gemini:" + gemini;
      if (!only) o.asr = o.llm = o.tts = false;
    }
    if (int(!deepgram.empty()) + int(!transcription.empty()) + int(!vosk.empty()) +
            int(!riva.empty()) >
        1) {
      throw std::runtime_error("one of --deepgram, --transcription, --vosk and --riva");
    }
    if (!elevenlabs.empty() && !speech.empty()) {
      throw std::runtime_error("--elevenlabs or --speech, not both");
    }
    if (!riva.empty() && (!elevenlabs.empty() || !speech.empty())) {
      throw std::runtime_error("--riva serves its own voice: not beside --elevenlabs or --speech");
    }
    if (!vosk.empty() || !riva.empty()) {
      // Servers of their own gRPC service, translated to the contract's.
      std::shared_ptr<providers::ProviderClients> b;
      if (!vosk.empty()) {
        const auto it = cfg.vosk.find(vosk);
        if (it == cfg.vosk.end()) throw std::runtime_error("no [vosk-" + vosk + "] section");
        b = std::make_shared<asr_vosk::VoskBackend>(it->second);
        o.asr_target.name = vosk;
        o.asr_target.backend = "vosk:" + vosk;
      } else {
        const auto it = cfg.riva.find(riva);
        if (it == cfg.riva.end()) throw std::runtime_error("no [riva-" + riva + "] section");
        b = std::make_shared<riva::RivaBackend>(it->second);
        o.asr_target.name = o.tts_target.name = riva;
        o.asr_target.backend = o.tts_target.backend = "riva:" + riva;
        o.tts_backend = b;
        o.tts = true;
      }
      o.asr_backend = b;
      if (!only) {
        o.llm = false;
        if (riva.empty()) o.tts = false;
      }
      if (realtime.empty() && gemini.empty()) o.asr = true;
    }
    if (!deepgram.empty() || !transcription.empty()) {
      if (!deepgram.empty()) {
        // One socket per utterance stream's call UUID, kept `linger` between its utterances:
        // over gRPC the end of the call is not known.
        o.asr_backend = std::make_shared<asr_deepgram::DeepgramBackend>(
            config::deepgram_backend(cfg, deepgram));
        o.asr_target.name = deepgram;
        o.asr_target.backend = "deepgram:" + deepgram;
      } else {
        o.asr_backend = std::make_shared<asr_openai::TranscriptionBackend>(
            config::transcription_backend(cfg, transcription));
        o.asr_target.name = transcription;
        o.asr_target.backend = "transcription:" + transcription;
      }
      if (!only) o.llm = o.tts = false;
      if (realtime.empty() && gemini.empty()) o.asr = true;
    }
    if (!elevenlabs.empty() || !speech.empty()) {
      if (!elevenlabs.empty()) {
        o.tts_backend = std::make_shared<tts_elevenlabs::ElevenLabsBackend>(
            config::elevenlabs_backend(cfg, elevenlabs));
        o.tts_target.name = elevenlabs;
        o.tts_target.backend = "elevenlabs:" + elevenlabs;
      } else {
        o.tts_backend =
            std::make_shared<tts_openai::SpeechBackend>(config::speech_backend(cfg, speech));
        o.tts_target.name = speech;
        o.tts_target.backend = "speech:" + speech;
      }
      if (!only) {
        o.llm = false;
        // --deepgram / --transcription / --vosk beside it serves its recognizer
        if (deepgram.empty() && transcription.empty() && vosk.empty()) o.asr = false;
      }
      o.tts = true;
    }
  } catch (const std::exception& e) {
    std::cerr << "voxbridge-provider: " << e.what() << "\n";
    return 2;
  }
  try {
    provider_host::BuiltinProviders host(o);
    spdlog::info("voxbridge-provider serving {}{}{}on {}", o.asr ? "asr " : "", o.llm ? "llm " : "",
                 o.tts ? "tts " : "", host.address());
    // Shutdown from a signal handler is not async-signal-safe; a watcher thread does it.
    static std::atomic<bool> stop{false};
    std::signal(SIGINT, [](int) { stop = true; });
    std::signal(SIGTERM, [](int) { stop = true; });
    std::thread watcher([&host] {
      while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      host.shutdown();
    });
    host.wait();
    watcher.join();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  provider_host::exit_after_clean_stop(0);
}
