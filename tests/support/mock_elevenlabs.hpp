// A local stand-in for ElevenLabs' text-to-speech WebSocket with input streaming
// (wss://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream-input), for voxbridge's tests and
// benchmarks. Written from ElevenLabs' published reference:
//   https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input
//     (the AsyncAPI specification, read in github.com/elevenlabs/elevenlabs-docs at 3557f0b,
//     fern/apis/api/asyncapi.yml: the query parameters, their types, defaults and enums
//     (output_format, apply_text_normalization, inactivity_timeout default 20 "up to 180", seed
//     0..4294967295); initializeConnection {"text":" ", voice_settings, generation_config,
//     pronunciation_dictionary_locators, xi-api-key, authorization} "only in the first message";
//     sendText {text "should always end with a single space", try_trigger_generation, flush,
//     voice_settings and generator_config that "must either be not provided or not changed"};
//     closeConnection {"text":""}; audioOutput {audio, normalizedAlignment, alignment} and
//     finalOutput {isFinal: true, "audio will be null"}; alignment times "relative to the returned
//     chunk from the model, and not the full audio response"; chunk_length_schedule items 50..500)
//   https://elevenlabs.io/docs/websockets (the guide "Generate audio in real-time", same
//     snapshot: the key in the xi-api-key header or the first message's xi_api_key; the schedule
//     default [120, 160, 250, 290], each value the characters needed for the next generation, the
//     last repeating; flush generates what is buffered; the end message generates the rest; 20 s
//     of inactivity closes; " " keeps the socket open, "" closes it)
//   The reference page before the AsyncAPI one (elevenlabs-docs history, fern/api-reference/
//     pages/websockets.mdx): sync_alignment false = "all timing data ... with the first chunk
//     only", true = "timing data with every audio chunk"; pcm_N is "PCM format (S16LE)", ulaw_8000
//     "mu-law ... 8kHz"; the wire names charStartTimesMs / charDurationsMs (the AsyncAPI file's
//     "charsDurationsMs" is not what the service sends); and, in its first version (4a44e14,
//     2023-08-15), try_trigger_generation "will not run if the accumulated text is less than 50
//     characters".
// What the service was seen to do where the reference says nothing:
//   - errors after the upgrade: a JSON message {"message","error","code":1008} (keys in that
//     order), then a close 1008 whose reason is the message: invalid_input_message "Could not
//     parse input message, make sure it is a json and follows the schema outlined in protocol."
//     (https://github.com/elevenlabs/elevenlabs-python/issues/167); input_timeout_exceeded "Have
//     not received a new text input within the timeout of 20 seconds. Streaming input terminated.
//     Please make sure to either feed the input in the timely manner, or to send the end of input
//     text (empty string "") when done." (https://github.com/livekit/agents/issues/218 for the
//     JSON message, https://github.com/elevenlabs/elevenlabs-docs/issues/426 for the close 1008
//     whose reason stops after its first 120 bytes, "...Please make sure to eit"); "voice_settings
//     field must be provided in the first message and then either be not provided or not change."
//     (https://github.com/pipecat-ai/pipecat/issues/4520); "an error message ... first, then close
//     the connection" (https://github.com/livekit/agents/pull/4182);
//   - a wrong API key or voice id: the socket opens, then closes 1008
//     (https://github.com/pipecat-ai/pipecat/issues/1006; https://github.com/livekit/agents/issues/
//     134: a key problem seen only in a message); the words are REST's ("Invalid API key", "A voice
//     with voice_id '...' was not found.", error codes invalid_api_key / voice_not_found from
//     /docs/developer-guides/error-messages);
//   - a model the socket does not serve (eleven_v3) refused with HTTP 403 at the upgrade
//     (https://github.com/livekit/agents/issues/3235); the mock refuses every query it cannot
//     accept the same way;
//   - unknown query parameters are accepted (livekit's plugin sends optimize_streaming_latency);
//   - the wire shape of the answers: {"audio":"...","isFinal":null,"normalizedAlignment":{...},
//     "alignment":{...}} with "chars" first (a received message quoted in a client's source),
//     and a final {"audio":null,"isFinal":true,"normalizedAlignment":null,"alignment":null} (a
//     measured multi-stream-input reply, with its contextId); both found with the code index,
//     which does not name their repositories. isFinal comes only after the end message (a flush
//     ends nothing: "the server generates remaining audio and then waits for more input", a Go
//     client's notes, same index).
// Where neither says, the .cpp marks the rule or the wording as the mock's (see "mock:").
//
// Offers: MockElevenLabs, a WebSocket server on 127.0.0.1 (ws://, or wss:// with a throwaway
// certificate for Options::cert_host, see ca_file()). The upgrade must be
// GET /v1/text-to-speech/{voice_id}/stream-input (else 404) with a query the mock can serve
// (else 403, see Connection::refusal_body). The key: the xi-api-key header (checked when the
// socket opens), else the first message's xi_api_key (or "xi-api-key"), or "Bearer KEY" in an
// authorization query parameter or field (mock). Messages are JSON text frames; the first must be
// the initialize ({"text":" "}); text accumulates in a buffer; a generation takes
//   - with the schedule (chunk_length_schedule, default [120,160,250,290], the n-th value for the
//     n-th generation, the last repeating): the buffer up to its last space, once that many
//     characters are there (mock: a word still being typed waits);
//   - with try_trigger_generation: the same, from 50 characters;
//   - with flush, the end message, or auto_mode=true (every message): the whole buffer.
// A generation's text becomes Options::ms_per_char of audio per character (code point): a sine
// of tone_hz at amplitude ~8000 for letters and digits (and any non-ASCII character), silence for
// spaces and punctuation, in the query's output_format (pcm_N: s16 little-endian mono at N Hz;
// ulaw_8000 / alaw_8000: G.711 bytes; mp3 and opus are refused, the mock cannot encode them). It
// goes out in messages of at most audio_chunk_ms; alignment and normalizedAlignment (mock: the
// same) carry, with sync_alignment=true, the characters starting in that message, times relative
// to that message's first sample; without it, the first message of a generation carries all of
// its characters (times relative to the generation's start) and the others null.
// first_audio_delay holds each generation's first message (what follows waits its turn).
// The end message {"text":""} generates the rest, sends the final message and closes 1000. No
// message for inactivity_timeout seconds (the query's, default 20; one second lasts
// Options::inactivity_second): input_timeout_exceeded. A message that is no JSON object of the
// schema's shape, a binary frame, or a first message that is no initialize: invalid_input_message.
// There are no ids on this socket; everything the mock sends is a function of what it received.
//
// Records, per upgrade attempt: the target, path, voice id, query (a multimap), the xi-api-key
// header, the HTTP status (101 or the refusal's) and body, every client message in order (text
// whole, binary its first 64 bytes and size), the text of each sendText, the generations (text,
// trigger, bytes), every message the mock sent (exact JSON text), the audio bytes sent and how it
// ended.
// Thread: the server runs on its own io thread (Options::io_threads of them); each connection's
// state lives on its strand. Every public method may be called from any thread (queries take one
// mutex; actions are posted to the connections' strands).
// Ownership: the mock owns its connections; the destructor stops the server, drops every
// connection and joins the threads.
// Bounds: a client message is at most max_message_bytes (a larger one ends the socket, 1009);
// the buffered text is at most max_buffered_chars (more: max_character_limit_exceeded, 1008); the
// sent messages kept per connection stop at max_kept_sent_bytes (sent_messages and audio_bytes
// keep counting); a binary message's record keeps its first 64 bytes; the upgrade request is at
// most 8 KiB of headers. Everything else is kept until the mock is destroyed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace voxbridge::testing {

class MockElevenLabs {
 public:
  /// The close reason the service sends stops after this many bytes of the message (observed).
  static constexpr std::size_t kCloseReasonBytes = 120;

  struct Options {
    unsigned short port = 0;  ///< on 127.0.0.1; 0 = any free port
    bool tls = false;         ///< wss:// with a self-signed certificate for cert_host
    std::string cert_host = "localhost";
    std::string api_key = "el-test-key";
    /// The voice ids the account has; empty = any non-empty id.
    std::vector<std::string> voice_ids;
    /// Audio per character of generated text.
    std::chrono::milliseconds ms_per_char{60};
    double tone_hz = 440;
    /// The most audio one message carries.
    std::chrono::milliseconds audio_chunk_ms{200};
    /// Wall time before the first message of each generation (latency benchmarks; order kept).
    std::chrono::milliseconds first_audio_delay{0};
    /// How long one second of the query's inactivity_timeout lasts (tests: shorter).
    std::chrono::milliseconds inactivity_second{1000};
    std::size_t max_message_bytes = 1u << 20;
    std::size_t max_buffered_chars = 100000;
    std::size_t max_kept_sent_bytes = 16u << 20;
    int io_threads = 1;     ///< threads running the server (each connection stays on its strand)
    bool no_delay = false;  ///< TCP_NODELAY on accepted sockets (latency benchmarks)
  };

  /// One client message. Text: `data` is the whole message; binary: its first 64 bytes.
  struct ClientMessage {
    bool binary = false;
    std::string data;
    std::size_t bytes = 0;
  };

  enum class End {
    open,             ///< still open
    refused,          ///< the upgrade was answered with an HTTP error (Connection::status)
    closed_by_mock,   ///< the mock sent a close frame (close_code, close_reason)
    dropped_by_mock,  ///< drop_all() broke the socket
    ended_by_client,  ///< the client closed it, or the socket broke (the transport cannot tell)
  };

  /// What started a generation.
  enum class Trigger { schedule, try_trigger_generation, flush, end, auto_mode };

  struct Generation {
    std::string text;  ///< as generated (leading spaces dropped)
    Trigger trigger = Trigger::flush;
    std::size_t audio_bytes = 0;  ///< raw audio, before base64
    std::size_t messages = 0;
  };

  /// One upgrade attempt and, when accepted, its connection.
  struct Connection {
    std::string target;  ///< path and query as sent
    std::string path;
    std::string voice_id;                           ///< from the path ("" when it does not match)
    std::multimap<std::string, std::string> query;  ///< percent-decoded, every repeat kept
    std::string xi_api_key;                         ///< the header as sent ("" when absent)
    int status = 0;                                 ///< 101, or the refusal's HTTP status
    std::string refusal_body;
    std::vector<ClientMessage> received;
    std::string message_api_key;  ///< the first message's xi_api_key ("" when absent)
    std::string voice_settings;   ///< the initialize's voice_settings as JSON ("" when absent)
    std::vector<int> chunk_length_schedule;  ///< in force once initialized
    std::vector<std::string> texts;          ///< the text of each sendText, in order
    std::vector<Generation> generations;
    std::vector<std::string> sent;  ///< server messages, exactly as sent, in order (bounded)
    std::size_t sent_messages = 0;  ///< every server message, kept or not
    std::size_t audio_bytes = 0;    ///< raw audio sent (decoded base64)
    std::string error;              ///< the error the mock reported ("invalid_api_key"...), or ""
    End end = End::open;
    std::uint16_t close_code = 0;  ///< closed_by_mock: the close frame's code and reason
    std::string close_reason;
  };

  explicit MockElevenLabs(Options options);
  MockElevenLabs() : MockElevenLabs(Options{}) {}
  ~MockElevenLabs();
  MockElevenLabs(const MockElevenLabs&) = delete;
  MockElevenLabs& operator=(const MockElevenLabs&) = delete;

  unsigned short port() const;
  /// ws://127.0.0.1:PORT/v1/text-to-speech/VOICE_ID/stream-input (TLS: wss://CERT_HOST:PORT/...),
  /// no query.
  std::string url(std::string_view voice_id) const;
  const std::string& api_key() const;
  /// The certificate as a PEM file, the CA to trust (TLS only; removed by the destructor).
  std::string ca_file() const;

  /// Breaks every open socket (no close frame) after what was handed to it.
  void drop_all();
  /// Closes every open socket with this code and reason (after what was handed to it; what
  /// first_audio_delay still holds is not sent).
  void close_all(std::uint16_t code, std::string reason);

  /// Every upgrade attempt so far, in order (a snapshot).
  std::vector<Connection> connections() const;
  /// Attempt `i` (a default Connection when there is none).
  Connection connection(std::size_t i) const;
  std::size_t open_connections() const;
  /// Polls `pred` (called without the mock's lock) after every change until it is true or
  /// `timeout` passed; returns its last value.
  bool wait_for(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;

  /// The raw audio the mock generates for `text` in `output_format` with `options` (what a
  /// generation's messages carry, decoded and joined); "" for a format it cannot produce.
  static std::string synthesize(std::string_view text, std::string_view output_format,
                                const Options& options);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::testing
