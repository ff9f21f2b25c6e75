// voxbridge-stub-provider: ASR, LLM and TTS (and a speech-to-speech agent) on one gRPC port,
// with configurable delays, for benchmarking the pipeline without real AI backends. The same
// scripted providers the tests use (tests/support/fake_providers.hpp):
//   ASR: "hello world" after N voiced 20 ms frames and M silent ones (its endpointing);
//   LLM: "You said hello world." after --llm-delay-ms;
//   TTS: 200 ms of 440 Hz per word, the first audio after --tts-delay-ms.
#include <grpcpp/server_builder.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "support/fake_providers.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

bool number(std::string_view s, int& out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && out >= 0;
}

const char* kUsage =
    "usage: voxbridge-stub-provider [options]\n"
    "  --listen HOST:PORT       where to serve (default 127.0.0.1:50051)\n"
    "  --asr-voiced-frames N    voiced 20 ms frames before a final (default 10)\n"
    "  --asr-endpoint-ms MS     silence after them before the final (default 200)\n"
    "  --llm-delay-ms MS        before the first text delta (default 0)\n"
    "  --tts-delay-ms MS        before the first audio of a reply (default 0)\n"
    "  --word-ms MS             audio per word (default 200)\n";

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:50051";
  voxbridge::testing::FakeRecognizer asr;
  voxbridge::testing::FakeDialogue llm;
  voxbridge::testing::FakeSynthesizer tts;
  voxbridge::testing::FakeSpeechAgent agent;
  int endpoint_ms = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: missing value\n%s", argv[i], kUsage);
      return 2;
    }
    const std::string_view v = argv[++i];
    bool ok = true;
    if (a == "--listen") {
      listen = std::string(v);
    } else if (a == "--asr-voiced-frames") {
      ok = number(v, asr.voiced_frames);
    } else if (a == "--asr-endpoint-ms") {
      ok = number(v, endpoint_ms);
    } else if (a == "--llm-delay-ms") {
      ok = number(v, llm.first_token_delay_ms);
    } else if (a == "--tts-delay-ms") {
      ok = number(v, tts.first_audio_delay_ms);
    } else if (a == "--word-ms") {
      ok = number(v, tts.word_ms);
    } else {
      std::fprintf(stderr, "unknown option %s\n%s", argv[i - 1], kUsage);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "%s: bad value\n", argv[i - 1]);
      return 2;
    }
  }
  asr.silence_frames = endpoint_ms / 20;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&asr);
  b.RegisterService(&llm);
  b.RegisterService(&tts);
  b.RegisterService(&agent);
  auto server = b.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::printf("voxbridge-stub-provider on port %d (asr endpoint %d ms, llm %d ms, tts %d ms)\n",
              port, endpoint_ms, llm.first_token_delay_ms, tts.first_audio_delay_ms);
  std::fflush(stdout);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (g_stop == 0) pause();
  server->Shutdown();
  return 0;
}
