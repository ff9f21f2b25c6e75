// A local stand-in for OpenAI's speech HTTP API (POST /v1/audio/transcriptions and
// POST /v1/audio/speech), for voxbridge's tests and benchmarks. Written from OpenAI's published
// reference:
//   https://platform.openai.com/docs/api-reference/audio/createTranscription (multipart/form-data:
//     file, model, language, prompt, response_format json | text | srt | verbose_json | vtt,
//     temperature, include[] logprobs, stream; "Note: Streaming is not supported for the
//     whisper-1 model and will be ignored."; "For gpt-4o-transcribe and gpt-4o-mini-transcribe,
//     the only supported format is json"; the page as mirrored at
//     https://openai-hd4n6.mintlify.app/api-reference/audio/create-transcription and quoted in
//     https://github.com/openai/openai-dotnet/issues/513)
//   the transcription objects of the OpenAPI specification (generated docs:
//     https://docs.rs/crate/openai-client-base/0.12.0/source/docs/TranscriptTextDoneEvent.md,
//     .../TranscriptTextUsageTokens.md, .../TranscriptTextUsageDuration.md,
//     https://v03.api.js.langchain.com/interfaces/_langchain_openai.OpenAIClient.Audio.Transcriptions.TranscriptionTextDeltaEvent-1.html):
//     transcript.text.delta {type, delta, logprobs?}, transcript.text.done {type, text,
//     logprobs?, usage?}; usage {type "tokens", input_tokens, input_token_details {text_tokens,
//     audio_tokens}, output_tokens, total_tokens} or {type "duration", seconds}
//   https://platform.openai.com/docs/api-reference/audio/createSpeech (JSON: model, input "The
//     maximum length is 4096 characters", instructions, voice, response_format mp3 | opus | aac |
//     flac | wav | pcm, speed 0.25..4.0, stream_format sse | audio; generated docs:
//     https://docs.rs/crate/openai-client-base/latest/source/docs/CreateSpeechRequest.md)
//   https://platform.openai.com/docs/guides/text-to-speech (pcm: "raw samples in 24kHz (16-bit
//     signed, low-endian), without the header"; PcmAudioFormat rate "Always 24000")
//   https://help.openai.com/en/articles/7031512-whisper-api-faq ("the maximum request size is
//     25 MiB"; "streaming is not supported with the whisper-1 model")
//   https://help.openai.com/en/articles/6891781-error-code-401-incorrect-api-key-provided
// What the service was seen to answer, where the reference shows no body:
//   401 wrong key: {"message":"Incorrect API key provided: sk-4sJHr****...w8ZP. You can find your
//     API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error",
//     "param":null,"code":"invalid_api_key"}
//     (https://github.com/chatanywhere/GPT_API_free/issues/427: the key's first 8 and last 4
//     characters, a '*' for each one between; a short key is shown whole,
//     https://github.com/SevaSk/ecoute/issues/163); no key: "You didn't provide an API key. ..."
//     with code null (https://github.com/chatboxai/chatbox/issues/98)
//   400 no model in the form: "you must provide a model parameter", param null, code null
//     (https://github.com/mgallo/openai.ex test/openai/client_test.exs, a transcription whose
//     form misspelt `model`;
//     https://community.openai.com/t/getting-invalid-request-header-from-transcriptions-endpoint/674865)
//   400 no file: "1 validation error for Request\nbody -> file\n  field required
//     (type=value_error.missing)" (https://github.com/dongri/openai-api-rs/issues/91)
//   400 a file name of another extension: "Invalid file format. Supported formats: ['flac', 'm4a',
//     'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']", param null, code null
//     (https://github.com/Automattic/jetpack/issues/36159); an undecodable file: "The audio file
//     could not be decoded or its format is not supported."
//     (https://github.com/adamcohenhillel/ADeus/issues/60)
//   400 verbose_json (srt, vtt) with a gpt-4o model: "response_format 'verbose_json' is not
//     compatible with model 'gpt-4o-transcribe'. Use 'json' or 'text' instead.", param
//     response_format, code unsupported_value (https://github.com/openai/openai-dotnet/issues/401,
//     https://github.com/zachlatta/freeflow/pull/218): so `text` is served by those models too
//   413 over 25 MiB: "Maximum content size limit (26214400) exceeded (N bytes read)", type
//     server_error, param and code null, after the whole body was read
//     (https://github.com/chidiwilliams/buzz/issues/381,
//     https://github.com/StanGirard/speechdigest/issues/1)
//   400 a body that is not JSON (speech): "We could not parse the JSON body of your request.
//     (HINT: ...)" (https://github.com/ChatGPTNextWeb/NextChat/issues/4064)
//   404 an unknown path: "Unknown request URL: POST /x. Please check the URL for typos, or see the
//     docs at https://platform.openai.com/docs/api-reference/.", code unknown_url
//     (https://github.com/artificial-julien/docker-nginx-openai-api-cache/issues/2)
//   the speech answer's Content-Type is the format's own media type, not the specification's
//     application/octet-stream (https://github.com/openai/openai-openapi/issues/141)
// Where none says, the .cpp marks the wording or the behaviour as the mock's ("mock").
//
// Offers: MockOpenAiSpeech, an HTTP/1.1 server on 127.0.0.1 (http://, or https:// with a throwaway
// certificate for Options::cert_host, see ca_file()). Every request needs "Authorization: Bearer
// KEY" (else 401 as above). Persistent connections: any number of requests on one connection,
// in order (pipelined ones too); "Connection: close" (or HTTP/1.0 without keep-alive) closes it
// after the answer; "Expect: 100-continue" is answered 100 before the body is read. Unknown
// paths: 404; a known path with another method: 405 (Allow: POST). A streamed body is chunked
// (HTTP/1.0: close-delimited). TCP_NODELAY by default (Options::no_delay).
//   POST /v1/audio/transcriptions: the form is parsed and recorded (Transcription), checked as
//     the service checks it (model, then file, its extension, the WAV itself, response_format),
//     then answered by the next TranscriptionScript (default: 200, "hello"). Models: whisper-1,
//     gpt-4o-transcribe*, gpt-4o-mini-transcribe* (others 404 model_not_found, mock); audio: a
//     RIFF/WAVE PCM file of at least 0.1 s under any of the service's file extensions:
//       json {"text", "usage"} | text (the transcript, text/plain) | verbose_json (whisper-1) |
//       srt, vtt (whisper-1): one segment or cue spanning the audio;
//       stream=true with a gpt-4o model: text/event-stream, one transcript.text.delta per word
//       (a word with the blank before it, so the deltas concatenate to the text), then
//       transcript.text.done with the text and the usage; `data:` lines only, no `[DONE]`
//       (Options::stream_done_sentinel adds one). whisper-1 ignores stream (reference).
//     Usage: whisper-1 {"type":"duration","seconds": the audio's length rounded up}; gpt-4o
//     models {"type":"tokens", input = prompt words + one audio token per 100 ms begun, output =
//     the transcript's words} (mock: the counts are the mock's own, deterministic).
//   POST /v1/audio/speech: the JSON is parsed and recorded (Speech), checked (model, input,
//     voice, lengths, response_format, speed), then answered by the next SpeechScript (default:
//     200 with speech_audio(input)): Content-Type audio/pcm (pcm) or audio/wav (wav),
//     Transfer-Encoding: chunked, in chunk_bytes pieces. The mock produces pcm and wav only:
//     the other formats (mp3, the default, opus, aac, flac) are refused 400 (mock).
// Scripts are taken, in order, by the requests that pass the checks (the service checks before
// it works); a request refused by a check takes none.
// Records, per request reaching one of the two paths (in arrival order): what it carried, which
// connection carried it, the status answered; a speech also whether its body was all written.
// Thread: the server runs on Options::threads io threads; each connection stays on its strand.
// Every public method may be called from any thread (one mutex).
// Ownership: the mock owns its connections; the destructor stops the io threads and closes them
// (removes the CA file too).
// Bounds: request headers at most 16 KiB; a body is read whole but at most kMaxBodyBytes of it
// kept (more: 413); the connection is closed past kHardBodyBytes. Everything is recorded until
// the mock is destroyed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace voxbridge::testing {

class MockOpenAiSpeech {
 public:
  /// The service's request size limit (25 MiB, reference: the FAQ and the 413's text).
  static constexpr std::size_t kMaxBodyBytes = 26214400;
  /// Past this the mock stops reading and closes the connection without an answer (mock).
  static constexpr std::size_t kHardBodyBytes = 64u << 20;
  /// The speech audio's format (reference): 24 kHz, 16-bit signed little-endian, mono.
  static constexpr int kSpeechRate = 24000;
  /// Audio per input character in speech_audio() (mock).
  static constexpr int kMsPerCharacter = 60;

  struct Options {
    std::string api_key = "test-key";  ///< Authorization: Bearer <api_key>, else 401
    bool tls = false;  ///< https:// with a throwaway certificate for cert_host (ca_file())
    std::string cert_host = "127.0.0.1";
    int threads = 1;  ///< io threads; any number of connections at once
    /// TCP_NODELAY on accepted sockets (mock: on, so a chunk is not held back by Nagle's
    /// algorithm waiting for the client's delayed ACK; off for the kernel's default).
    bool no_delay = true;
    /// After transcript.text.done, a `data: [DONE]` event (the reference documents none; for a
    /// client's tolerance of one).
    bool stream_done_sentinel = false;
    /// The port on 127.0.0.1 (0: any free one, see port()).
    std::uint16_t port = 0;
    /// Keep each transcription's file and samples (a benchmark keeps only the rest: its memory
    /// would grow with every utterance).
    bool keep_audio = true;
  };

  /// What one /audio/transcriptions request carried (everything parsed from the multipart body).
  struct Transcription {
    std::string authorization;  ///< the header as sent
    /// Every non-file form field (model, language, prompt, response_format, stream,
    /// temperature, include[] ...); a repeated field keeps its last value.
    std::map<std::string, std::string> fields;
    std::string file_name, file_content_type;  ///< the file part's filename and Content-Type
    std::string file;                          ///< the file part's exact bytes (the WAV)
    /// From the WAV's fmt chunk; 0 when the file is no RIFF/WAVE PCM file (answered 400).
    int wav_rate = 0, wav_channels = 0, wav_bits = 0;
    /// The WAV's data chunk as s16 (8, 24 and 32-bit PCM scaled to 16 bits), interleaved.
    std::vector<std::int16_t> samples;
    std::size_t connection = 0;  ///< which TCP connection (0, 1, ... in accept order)
    int status = 0;              ///< the status answered (0: closed without an answer)
    bool streamed = false;       ///< answered with the event stream
    std::string response;        ///< the body answered (whole, the events too)
  };

  /// What one /audio/speech request carried.
  struct Speech {
    std::string authorization;
    std::string body;  ///< the raw JSON body
    std::string model, input, voice, response_format, instructions;
    double speed = 1.0;
    std::size_t connection = 0;
    int status = 0;  ///< the status answered
    /// The whole response was written (false: the client closed first, or close_mid_body).
    bool completed = false;
    std::size_t audio_bytes_sent = 0;  ///< body bytes handed to the socket (a WAV's header too)
  };

  /// The answer to the next transcription request (FIFO; when none is queued: 200, "hello").
  struct TranscriptionScript {
    int status = 200;
    std::string error_body{};           ///< body of a non-200 answer (default: OpenAI's JSON)
    std::string text = "hello";         ///< the transcript
    int delay_ms = 0;                   ///< before the response headers
    bool close_without_answer = false;  ///< read the request, then close the connection
  };

  /// The answer to the next speech request (FIFO; when none is queued: 200 with speech_audio()).
  struct SpeechScript {
    int status = 200;
    std::string error_body{};     ///< body of a non-200 answer (default: OpenAI's JSON)
    int first_byte_delay_ms = 0;  ///< before the response headers
    int chunk_bytes = 4800;       ///< audio in HTTP chunks of this size (100 ms at 24 kHz)
    int chunk_delay_ms = 0;       ///< between chunks
    bool close_mid_body = false;  ///< send half the audio, then close the connection
  };

  explicit MockOpenAiSpeech(Options o);
  /// Options{} (a separate constructor: GCC cannot take `Options o = {}` while the class is
  /// incomplete, the default member initializers of a nested struct).
  MockOpenAiSpeech() : MockOpenAiSpeech(Options{}) {}
  ~MockOpenAiSpeech();
  MockOpenAiSpeech(const MockOpenAiSpeech&) = delete;
  MockOpenAiSpeech& operator=(const MockOpenAiSpeech&) = delete;

  /// "http://127.0.0.1:PORT/v1" ("https://CERT_HOST:PORT/v1" with tls).
  std::string base_url() const;
  std::uint16_t port() const;
  /// The certificate as a PEM file, the CA to trust (tls only; removed by the destructor).
  std::string ca_file() const;
  const std::string& api_key() const;

  void script_transcription(TranscriptionScript s);
  void script_speech(SpeechScript s);

  std::vector<Transcription> transcriptions() const;  ///< so far, in order
  std::vector<Speech> speeches() const;
  std::size_t connections() const;  ///< TCP connections accepted so far
  std::size_t requests() const;     ///< HTTP requests read so far (every path)

  /// The exact audio the mock answers `input` with: 24 kHz s16le mono, kMsPerCharacter of a
  /// tone per character (a UTF-8 code point; an invalid byte counts as one), the tone's
  /// frequency from the character (300 Hz + 20 Hz x (code point mod 64)), amplitude 8000, each
  /// character's tone starting at phase 0. Deterministic and never silent.
  static std::vector<std::int16_t> speech_audio(std::string_view input);
  /// speech_audio() as the little-endian bytes the pcm format sends.
  static std::string speech_pcm(std::string_view input);
  /// `key` masked as the service masks one in its 401.
  static std::string masked_key(std::string_view key);
  /// OpenAI's error body {"error":{"message","type","param","code"}} (param and code: null when
  /// empty).
  static std::string error_json(std::string_view message, std::string_view type,
                                std::string_view param, std::string_view code);

  /// Waits (up to `timeout`) until `n` transcriptions / speeches have been received.
  bool wait_transcriptions(std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_speeches(std::size_t n, std::chrono::milliseconds timeout) const;
  /// Waits until speech `i` has ended (written whole or not), or `timeout`.
  bool wait_speech_done(std::size_t i, std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::testing
