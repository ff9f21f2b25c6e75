// A local stand-in for NVIDIA Riva's streaming speech services, self-hosted or behind NVIDIA's
// hosted gateway (NVCF), for voxbridge's integration tests and benchmarks: one gRPC server with
// RivaSpeechRecognition/StreamingRecognize and RivaSpeechSynthesis/SynthesizeOnline. Real
// voxbridge calls go through it and the tests assert the exact requests voxbridge sent.
// Written from the vendor's published references:
//   nvidia-riva/common riva/proto/riva_asr.proto, riva_tts.proto, riva_audio.proto (HEAD
//     87a6b16, 2026-03-02) and their comments: "The first message sent must include only a
//     StreamingRecognitionConfig. Subsequent messages ... must contain only raw bytes of the
//     audio"; interim results is_final=false with `stability`, "only provided for interim
//     results"; a final's `confidence` and `words` "only populated if is_final=true"; WordInfo
//     start/end "in ms" from the beginning of the audio; `audio_processed` "Length of audio
//     processed so far in seconds"; EndpointingConfig stop_history ("If stop_threshold of
//     stop_history ms ... end of utterance is detected and decoder will be reset") and
//     stop_history_eou (2-pass EOU: "generate a partial transcript with stability of 1");
//     "The Riva server will automatically down-sample/up-sample the audio"; a request's `id`
//     "will be returned in the corresponding responses"; SynthesizeOnline takes a stream of
//     SynthesizeSpeechRequest since 87a6b16 ("Update TTS online API to support streaming
//     input").
//   nvidia-riva/python-clients (HEAD 7f611ba, 2026-05-06): riva/client/auth.py (metadata sent
//     with every call), riva/client/asr.py (streaming_request_generator: the config, then one
//     message per audio chunk), riva/client/tts.py (synthesize_online: one request per text,
//     the same language/encoding/rate/voice), scripts/tts/talk.py (voices listed as
//     voice_name + "." + subvoice, e.g. "English-US.Female-1"), and the error texts its
//     integration tests expect from a server, tests/integration/tts/test_talk.sh:
//     "Model is not available on server: Voice foo for language en-US not found. Please
//     specify the voice name in your SynthesizeSpeechRequest." and "... Voice  for language
//     ru-RU not found." (an empty voice name), tests/integration/asr/*.sh: "Error:
//     Unavailable model requested. Lang: ru-RU, Type: online" (older servers).
//   Riva 2.24.0 server logs and client tracebacks (quoted in public issue threads and scripts):
//     INVALID_ARGUMENT "Error: Unavailable model requested given these parameters:
//     language_code=en; sample_rate=16000; type=online; " for an undeployed language (the
//     language's primary subtag: es-US, es-ES and es all print "es"), a hosted function given
//     sample_rate 0 printing "sample_rate=0"; "subvoice requested not found" (INVALID_ARGUMENT,
//     also as "Model is not available on server: subvoice requested not found") for an unknown
//     subvoice of a deployed voice; INVALID_ARGUMENT "Error: config format doesn't match with
//     header format" (nvidia-riva/tutorials#149) for a WAV header that contradicts the config.
//   Riva's user guide sample output (Python API, Sample Services, Riva 1.5): a final
//     transcript ends with a space ("What is natural language processing? "), confidence 1.0,
//     channel_tag 1, audio_processed in seconds.
//   Riva's streaming endpointing defaults as clients reproduce riva-build's (start_history
//     300, start_threshold 0.2, stop_history 800, stop_threshold 0.98; "final endpointing
//     stop_history=800 ms").
//   NVCF, NVIDIA/nvcf src/invocation-plane-services/grpc-proxy/proxy/director.go (HEAD
//     fadc0f8): the gateway (grpc.nvcf.nvidia.com:443) reads metadata "authorization"
//     ("Bearer <key>"; missing or without "Bearer " -> UNAUTHENTICATED "no authorization was
//     passed in the metadata") and "function-id" (missing -> INVALID_ARGUMENT "no function-id
//     was passed in the metadata"), then asks the NVCF API, whose refusal comes back as
//     "failed to open stateful work request: <the API's error>"; a wrong key is answered
//     PERMISSION_DENIED (observed by its users); docs.nvidia.com/nvcf gRPC Function Invocation
//     (the metadata table).
// What the mock does of its own, marked "(mock)" here and in the .cpp:
//   - the recognizer (mock): 20 ms energy blocks (RMS over Options::speech_rms), decoded from
//     LINEAR_PCM or G.711 MULAW/ALAW; the end of an utterance after stop_history ms of
//     silence following speech (the request's EndpointingConfig, else Options::stop_history_ms
//     = 800); start_history/thresholds are not modelled (speech starts at its first block).
//     FLAC and OGGOPUS are refused INVALID_ARGUMENT (the mock decodes neither).
//   - what was said (mock): a scripted FIFO (AsrText) shared by all streams, taken when an
//     utterance's speech starts (default "hello"); interim transcripts reveal one word per
//     kMsPerWord of speech; interim stability Options::interim_stability (0.1); one interim per
//     audio message while an utterance has speech, none before; with stop_history_eou, one
//     interim of stability 1.0 after that silence. Finals: punctuation (mock: first letter
//     upper-cased, "." appended unless the text ends in . ? !) when
//     enable_automatic_punctuation, then the trailing space; words (ms, the speech span cut in
//     equal parts) when enable_word_time_offsets; confidence from the script. One alternative
//     (max_alternatives not modelled). After the half-close: the final of an utterance with
//     speech, nothing for silence; then OK.
//   - the texts of errors Riva's references do not show (mock): a first message without
//     streaming_config, a later config, the FLAC/OGGOPUS refusal, every TTS check but the
//     voice (empty text, an encoding, sample_rate_hz <= 0), NVCF's wrong key and unknown
//     function id (kBadKeyMessage, kUnknownFunctionMessage). Their codes: INVALID_ARGUMENT
//     (a request), PERMISSION_DENIED (a key), NOT_FOUND (a function id) (mock).
//   - a model name: the error names it as "model=NAME; " before "type=online; " (mock).
//   - TTS audio (mock): kMsPerCharacter ms of a 440 Hz sine (amplitude 8000) per character
//     (UTF-8 code point) at sample_rate_hz, as LINEAR_PCM or G.711 (tts_audio()); OGGOPUS
//     refused. Chunks of TtsScript::chunk_bytes; an empty voice_name takes the language's
//     first deployed voice.
//   - TLS (mock: a throwaway certificate for Options::cert_host, ca_file()).
//   - AsrScript/TtsScript: scripted failures, delays and pacing per RPC (mock).
// Thread: gRPC's sync server, one thread per RPC; every public method may be called from any
// thread (one mutex). Ownership: the destructor cancels every RPC still open, stops the server
// and removes the CA file. Everything is recorded until the mock is destroyed.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vendor/riva/riva_asr.pb.h"
#include "vendor/riva/riva_tts.pb.h"

namespace voxbridge::testing {

class MockRiva {
 public:
  static constexpr int kBlockMs = 20;         ///< energy blocks (mock)
  static constexpr int kMsPerWord = 300;      ///< interim: one word per 300 ms of speech (mock)
  static constexpr int kMsPerCharacter = 60;  ///< TTS audio per character (mock)
  static constexpr double kToneHz = 440.0;    ///< TTS tone (mock)
  static constexpr double kToneAmplitude = 8000.0;
  static constexpr const char* kDefaultText = "hello";
  /// NVCF's gateway (reference: director.go).
  static constexpr const char* kNoAuthMessage = "no authorization was passed in the metadata";
  static constexpr const char* kNoFunctionMessage = "no function-id was passed in the metadata";
  /// A wrong key / a function id the key cannot call (mock wording after "failed to open
  /// stateful work request: ").
  static constexpr const char* kBadKeyMessage =
      "failed to open stateful work request: rpc error: code = PermissionDenied desc = "
      "invalid API key";
  static constexpr const char* kUnknownFunctionMessage =
      "failed to open stateful work request: rpc error: code = NotFound desc = function not "
      "found";
  static constexpr const char* kNoConfigMessage =
      "Error: the first StreamingRecognizeRequest must contain a streaming_config";  // (mock)
  static constexpr const char* kLateConfigMessage =
      "Error: a StreamingRecognizeRequest after the first must contain audio_content";  // (mock)
  static constexpr const char* kHeaderMismatchMessage =
      "Error: config format doesn't match with header format";
  static constexpr const char* kSubvoiceMessage =
      "Model is not available on server: subvoice requested not found";

  struct AsrModel {
    std::string name;           ///< as riva-build --name
    std::string language_code;  ///< BCP-47
  };
  struct Voice {
    std::string name;  ///< "VoiceModel.Subvoice", e.g. "English-US.Female-1"
    std::string language_code;
  };

  struct Options {
    bool tls = false;  ///< a throwaway certificate for cert_host (ca_file())
    std::string cert_host = "127.0.0.1";
    std::uint16_t port = 0;  ///< on 127.0.0.1; 0: any free one
    bool keep_audio = true;  ///< keep the ASR audio bytes (a benchmark keeps only the counts)
    /// NVCF: when set, every RPC needs "authorization: Bearer <api_key>" and "function-id" equal
    /// to the service's (asr_function_id / tts_function_id). Empty: a self-hosted Riva.
    std::string api_key;
    std::string asr_function_id, tts_function_id;
    std::vector<AsrModel> asr_models{{"conformer-en-US-asr-streaming", "en-US"}};
    std::vector<Voice> voices{{"English-US.Female-1", "en-US"}, {"English-US.Male-1", "en-US"}};
    double speech_rms = 500.0;       ///< a 20 ms block over this RMS is speech (mock)
    int stop_history_ms = 800;       ///< riva-build's default stop_history
    float interim_stability = 0.1f;  ///< (mock)
  };

  /// The next utterance's words (FIFO, shared by all ASR streams) and its confidence.
  struct AsrText {
    std::string text;
    float confidence = 1.0f;
  };

  /// What the next ASR RPC does besides recognizing (FIFO, one per RPC).
  struct AsrScript {
    /// Fail the RPC after this many audio messages were answered (0: right after the config);
    /// -1: never. fail_at_start: before reading anything (after the NVCF checks).
    int fail_after_audio = -1;
    bool fail_at_start = false;
    grpc::StatusCode fail_code = grpc::StatusCode::UNAVAILABLE;
    std::string fail_message = "mock failure";
    int response_delay_ms = 0;  ///< before every response
  };

  /// How the next TTS RPC answers (FIFO, one per RPC; Options-less default: TtsScript{}).
  struct TtsScript {
    bool fail_at_start = false;  ///< answer this status before reading (after the NVCF checks)
    /// Stop after this many audio bytes of the RPC were sent and fail; -1: never.
    long fail_after_bytes = -1;
    grpc::StatusCode fail_code = grpc::StatusCode::UNAVAILABLE;
    std::string fail_message = "mock failure";
    std::size_t chunk_bytes = 3200;  ///< audio per SynthesizeSpeechResponse
    int first_delay_ms = 0;          ///< before each request's first chunk
    int chunk_delay_ms = 0;          ///< between chunks
  };

  struct AsrStream {
    std::multimap<std::string, std::string> metadata;
    std::string peer;
    bool got_first = false;
    std::string first_message;  ///< its exact bytes
    nvidia::riva::asr::StreamingRecognizeRequest first;
    nvidia::riva::asr::StreamingRecognitionConfig config;  ///< first.streaming_config()
    std::vector<nvidia::riva::asr::SpeechContext> speech_contexts;
    std::size_t audio_messages = 0;  ///< messages after the first
    std::size_t audio_bytes = 0;
    std::string audio;  ///< the audio bytes, concatenated (keep_audio)
    std::vector<nvidia::riva::asr::StreamingRecognizeResponse> responses;
    std::size_t utterances = 0;  ///< texts taken from the script
    bool half_closed = false, cancelled = false, done = false;
    grpc::Status status;
  };

  struct TtsRequest {
    std::string raw;  ///< exact bytes
    nvidia::riva::tts::SynthesizeSpeechRequest request;
    std::size_t audio_bytes = 0;  ///< of its audio, written to the stream
    bool completed = false;       ///< all its audio was written
  };

  struct TtsStream {
    std::multimap<std::string, std::string> metadata;
    std::string peer;
    std::vector<TtsRequest> requests;
    std::size_t audio_bytes_sent = 0;  ///< over all requests
    std::size_t responses = 0;         ///< SynthesizeSpeechResponse messages written
    bool half_closed = false;
    bool cancelled = false;  ///< the client cancelled (mid-audio or not)
    bool completed = false;  ///< every request answered whole, then OK
    bool done = false;
    grpc::Status status;
  };

  explicit MockRiva(Options o);
  MockRiva() : MockRiva(Options{}) {}
  ~MockRiva();
  MockRiva(const MockRiva&) = delete;
  MockRiva& operator=(const MockRiva&) = delete;

  std::string address() const;  ///< "127.0.0.1:PORT"
  std::uint16_t port() const;
  std::string ca_file() const;

  void script_text(AsrText t);
  void script_asr(AsrScript s);
  void script_tts(TtsScript s);

  std::vector<AsrStream> asr_streams() const;
  AsrStream asr_stream(std::size_t i) const;  ///< throws std::out_of_range
  std::vector<TtsStream> tts_streams() const;
  TtsStream tts_stream(std::size_t i) const;

  bool wait_asr_streams(std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_asr_done(std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_asr_responses(std::size_t i, std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_tts_streams(std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_tts_done(std::size_t n, std::chrono::milliseconds timeout) const;
  /// Until TTS RPC `i` has written at least `bytes` audio bytes.
  bool wait_tts_bytes(std::size_t i, std::size_t bytes, std::chrono::milliseconds timeout) const;

  /// The exact audio the mock answers `text` with (mock): kMsPerCharacter ms per character of
  /// a kToneHz sine, amplitude kToneAmplitude, at `rate` Hz; LINEAR_PCM (s16le), MULAW or ALAW.
  static std::string tts_audio(std::string_view text, int rate,
                               nvidia::riva::AudioEncoding encoding);
  /// The number of characters (UTF-8 code points; an invalid byte counts as one).
  static std::size_t characters(std::string_view text);
  /// The ASR error for a model that is not deployed (reference wording, Riva 2.24).
  static std::string unavailable_model(const std::string& language, int rate,
                                       const std::string& model = {});
  /// The TTS error for a voice not found (reference wording).
  static std::string voice_not_found(const std::string& voice, const std::string& language);
  /// G.711 (ITU-T) sample conversions, as the mock decodes and encodes them.
  static std::int16_t mulaw_decode(std::uint8_t u);
  static std::int16_t alaw_decode(std::uint8_t a);
  static std::uint8_t mulaw_encode(std::int16_t s);
  static std::uint8_t alaw_encode(std::int16_t s);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::testing
