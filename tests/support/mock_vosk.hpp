// A local stand-in for vosk-server's gRPC speech recognition (SttService/StreamingRecognize),
// for voxbridge's integration tests and benchmarks: real voxbridge streams go through it and the
// tests assert the exact requests voxbridge sent. Written from the vendor's published code:
//   alphacep/vosk-server grpc/stt_server.py (HEAD c2e82f0, 2025-05-25), StreamingRecognize:
//     - `request = next(request_iterator)`: the first message is taken as the config, whatever it
//       is (an audio message first leaves every spec field 0); partial_results,
//       sample_rate_hertz, max_alternatives, enable_word_time_offsets are read from it, nothing
//       else (audio_encoding, language_code, model, profanity_filter, single_utterance,
//       raw_results are ignored);
//     - per later message: `res = recognizer.AcceptWaveform(audio_content)`; then
//       `chunk_time / (chunk_processed_bytes / (2 * sample_rate))` (a ZeroDivisionError for an
//       empty message); then `if res: yield Result()` (a final chunk) `elif partial: yield
//       PartialResult()` (a partial chunk, final=False) - at most one response per message;
//     - after the client half-closes: `yield FinalResult()`, then `execution_time / audio_time`
//       (a ZeroDivisionError when no audio byte came at all, raised after the final was sent);
//     - get_alternative(): words from "result" with start/end through get_duration() (seconds =
//       int(x), nanos = (int(x * 1000) % 1000) * 1000000: truncated to the millisecond), word
//       confidence `x.get('conf', 1.0)`; alternative confidence = "confidence" if present, else
//       the mean of the words' confidences, else 1.0; chunks=[one chunk]; end_of_utterance is
//       never set;
//     - grpc.server(ThreadPoolExecutor(VOSK_SERVER_THREADS)), with VOSK_SERVER_NO_QUEUE
//       `maximum_concurrent_rpcs=threads`; no TLS, no authentication.
//   alphacep/vosk-server grpc/stt_service.proto (field numbers, the comments), grpc/stt_client.py
//     (the reference client: partial_results, LINEAR16_PCM, 8000 Hz, enable_word_time_offsets,
//     max_alternatives 5, CHUNK_SIZE 4000 bytes).
//   alphacep/vosk-api (HEAD 9adbd76, 2026-02-22) src/recognizer.cc, src/vosk_api.cc,
//     python/vosk/__init__.py, src/json.h, src/model.cc:
//     - AcceptWaveform(): len/2 samples (an odd byte is dropped), fed in steps of
//       `int(sample_frequency * 0.2)` samples: a rate below 5 Hz makes the step 0 and the loop
//       never ends (the stream hangs on its first non-empty message); the endpoint is checked
//       once per call (EndpointDetected);
//     - the feature pipeline resamples down, never up: model.cc sets only allow_downsample, so a
//       rate below the model's makes Kaldi's MaybeCreateResampler throw "Sampling frequency
//       mismatch, expected 16000, got 8000" (kaldi src/feat/online-feature.cc; quoted in
//       alphacep/vosk-api#1726), vosk_api.cc's catch(...) returns -1 and the Python binding
//       raises Exception("Failed to process waveform");
//     - Result()/FinalResult() JSON: max_alternatives 0 -> MbrResult {"result":[{"word",
//       "start","end","conf"}] (words only with SetWords), "text"}; otherwise NbestResult
//       {"alternatives":[{"result":[{"word","start","end"}], "text", "confidence": the path
//       likelihood (not 0..1)}]}; empty: {"text": ""} or {"alternatives":[{"text": "",
//       "confidence": 1.0}]}; PartialResult() {"partial": "..."} ("" before anything decoded);
//       numbers are written with std::to_string (6 decimals); word times are
//       start-of-stream based, in 0.03 s frames (frame subsampling 3);
//     - endpointing: vosk models' conf/model.conf (and ConfigureV1 for old models) set
//       --endpoint.rule2.min-trailing-silence=0.5, rule3 1.0, rule4 2.0; Kaldi's defaults
//       (src/online2/online-endpoint.h) rule1: 5.0 s of silence with nothing decoded, rule5: an
//       utterance of 20 s.
//   grpc/grpc src/python/grpcio/grpc/_server.py: an exception while iterating a
//     response-streaming handler -> StatusCode.UNKNOWN "Exception iterating responses: <the
//     exception's text>" (a generator: not "Exception calling application"); an undecodable
//     message -> INTERNAL "Exception deserializing request!"; over maximum_concurrent_rpcs ->
//     RESOURCE_EXHAUSTED "Concurrent RPC limit exceeded!". Python's texts: "float division by
//     zero" (a float divided by 0.0), "division by zero" (int by int), and next() on an empty
//     iterator inside a generator -> RuntimeError "generator raised StopIteration" (PEP 479).
// What the mock does of its own, marked "(mock)" here and in the .cpp:
//   - the recognizer (mock): 16-bit LE PCM at the config's rate, cut in 20 ms blocks; a block
//     is speech when its RMS is over Options::speech_rms. Endpoints (Kaldi's rules on the
//     blocks): speech then >= 0.5 s of trailing silence (rule2; rules 3 and 4 are longer), no
//     speech for >= 5 s (rule1, a final with text ""), an utterance of >= 20 s (rule5).
//   - what was said (mock): a FIFO of scripted texts shared by all streams; an utterance takes
//     the next one when its first speech block comes (default kDefaultText); the partial text
//     reveals one word per kMsPerWord of speech (rounded up); a final without speech has text "".
//   - word times (mock): the utterance's speech span cut in equal parts per word, each bound
//     rounded to the 0.03 s frame; then written and read back as vosk-api and the server do.
//   - n-best (max_alternatives != 0): one alternative only (Kaldi returns up to N distinct
//     paths), its confidence Options::nbest_likelihood; a silence-only n-best result's
//     confidence is 1.0 (mock).
//   - a rate of -5 or less (Kaldi asserts on a negative step and the process aborts): the RPC
//     ends UNAVAILABLE "Socket closed" (mock; the real server dies for every stream).
//   - a rate below 5 Hz (mock of the infinite loop): the stream records `stalled` and answers
//     nothing until the client cancels (or the mock is destroyed).
//   - TLS (mock: vosk-server has none; a TLS proxy in front of it): a throwaway certificate for
//     Options::cert_host, ca_file() to trust.
//   - StreamScript: scripted failures and delays per RPC (mock).
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
#include <vector>

#include "vendor/vosk/stt_service.pb.h"

namespace voxbridge::testing {

class MockVosk {
 public:
  static constexpr int kBlockMs = 20;     ///< energy blocks (mock)
  static constexpr int kMsPerWord = 300;  ///< partial text: one word per 300 ms of speech (mock)
  static constexpr double kRule1Silence = 5.0;   ///< Kaldi rule1: silence with nothing decoded
  static constexpr double kRule2Silence = 0.5;   ///< vosk model.conf rule2 min-trailing-silence
  static constexpr double kRule5Length = 20.0;   ///< Kaldi rule5: utterance length
  static constexpr double kFrameSeconds = 0.03;  ///< Kaldi's frame after subsampling (word times)
  static constexpr const char* kDefaultText = "hello";
  /// python grpc's status texts for the exceptions the server can raise (reference).
  static constexpr const char* kWaveformError =
      "Exception iterating responses: Failed to process waveform";
  static constexpr const char* kFloatDivisionError =
      "Exception iterating responses: float division by zero";
  static constexpr const char* kIntDivisionError =
      "Exception iterating responses: division by zero";
  static constexpr const char* kNoMessageError =
      "Exception iterating responses: generator raised StopIteration";
  static constexpr const char* kDeserializeError = "Exception deserializing request!";
  static constexpr const char* kConcurrencyError = "Concurrent RPC limit exceeded!";

  struct Options {
    bool tls = false;  ///< a throwaway certificate for cert_host (ca_file()) (mock)
    std::string cert_host = "127.0.0.1";
    std::uint16_t port = 0;  ///< on 127.0.0.1; 0: any free one
    /// Keep each stream's audio bytes (a benchmark keeps only the counts).
    bool keep_audio = true;
    /// The model's feature rate: a lower sample_rate_hertz fails "Failed to process waveform"
    /// (Kaldi resamples down only). Default 8000 (mock: a narrowband model, as vosk-server's
    /// VOSK_SAMPLE_RATE default; the small wideband models are 16000).
    int model_rate = 8000;
    double speech_rms = 500.0;  ///< a 20 ms block over this RMS is speech (mock)
    /// VOSK_SERVER_THREADS: RPCs served at once (0: no limit); more wait for a thread, or with
    /// no_queue (VOSK_SERVER_NO_QUEUE) are refused RESOURCE_EXHAUSTED kConcurrencyError.
    int threads = 0;
    bool no_queue = false;
    float nbest_likelihood = 200.0f;  ///< an n-best alternative's "confidence" (mock)
  };

  /// What the next RPC does besides recognizing (FIFO; one per RPC, taken when it starts).
  struct StreamScript {
    /// Fail the RPC after this many audio messages were answered (0: right after the first
    /// message, before any audio); -1: never.
    int fail_after_audio = -1;
    grpc::StatusCode fail_code = grpc::StatusCode::UNAVAILABLE;
    std::string fail_message = "mock failure";
    int response_delay_ms = 0;  ///< before every response of the RPC
  };

  /// One RPC, in arrival order.
  struct Stream {
    std::multimap<std::string, std::string> metadata;  ///< the client's, as received
    std::string peer;
    bool got_first = false;                            ///< a first message arrived
    std::string first_message;                         ///< its exact bytes on the wire
    vosk::stt::v1::StreamingRecognitionRequest first;  ///< parsed
    vosk::stt::v1::RecognitionSpec spec;  ///< first.config().specification(), as the server reads
    std::size_t audio_messages = 0;       ///< messages after the first (each fed as audio)
    std::size_t non_audio_messages = 0;   ///< of those, the ones whose oneof was not audio
    std::size_t audio_bytes = 0;          ///< audio_content bytes received after the first
    std::string audio;                    ///< those bytes, concatenated (keep_audio)
    std::vector<vosk::stt::v1::StreamingRecognitionResponse> responses;  ///< sent, in order
    std::size_t utterances = 0;  ///< texts taken from the script
    bool queued = false;         ///< waited for a free thread (Options::threads)
    bool stalled = false;        ///< hung in AcceptWaveform (a rate below 5 Hz)
    bool half_closed = false;    ///< the client closed its side
    bool cancelled = false;      ///< the client cancelled (or the deadline passed)
    bool done = false;           ///< the handler returned
    grpc::Status status;         ///< what the handler returned (meaningless when cancelled)
  };

  explicit MockVosk(Options o);
  /// Options{} (a separate constructor: GCC cannot take `Options o = {}` while the class is
  /// incomplete).
  MockVosk() : MockVosk(Options{}) {}
  ~MockVosk();
  MockVosk(const MockVosk&) = delete;
  MockVosk& operator=(const MockVosk&) = delete;

  std::string address() const;  ///< "127.0.0.1:PORT"
  std::uint16_t port() const;
  std::string ca_file() const;  ///< the certificate as a PEM file (tls only)

  /// The next utterance's words (FIFO, shared by all streams); an MBR word's confidence.
  void script_text(std::string text, float word_confidence = 1.0f);
  void script_stream(StreamScript s);
  std::size_t scripted_texts_left() const;

  std::vector<Stream> streams() const;
  Stream stream(std::size_t i) const;  ///< throws std::out_of_range
  std::size_t stream_count() const;

  /// Wait (up to `timeout`) until `n` RPCs have started / returned.
  bool wait_streams(std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_done(std::size_t n, std::chrono::milliseconds timeout) const;
  /// Until RPC `i` has received `n` audio messages / sent `n` responses / stalled.
  bool wait_audio_messages(std::size_t i, std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_responses(std::size_t i, std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_stalled(std::size_t i, std::chrono::milliseconds timeout) const;

  /// vosk-server's get_duration() of a time vosk-api wrote with std::to_string (reference).
  static google::protobuf::Duration vosk_duration(double seconds);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::testing
