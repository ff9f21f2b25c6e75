// A local stand-in for the OpenAI Realtime API over WebSocket (the GA protocol: session.type
// "realtime", audio.input/audio.output formats, response.output_audio.delta; not the 2024 beta
// names), for voxbridge's tests and benchmarks. Written from OpenAI's published reference:
//   https://developers.openai.com/api/reference/resources/realtime/server-events
//   https://platform.openai.com/docs/api-reference/realtime-client-events
//   https://github.com/openai/openai-python/tree/main/src/openai/types/realtime (the generated
//     types: formats, turn detection, response, usage, item shapes)
//   https://learn.microsoft.com/azure/foundry-classic/openai/realtime-audio-reference-ga and
//   https://learn.microsoft.com/azure/foundry/openai/how-to/realtime-audio-websockets (Azure:
//     wss://RESOURCE.openai.azure.com/openai/v1/realtime?model=DEPLOYMENT, header `api-key`)
// Error texts the reference does not spell out are the service's own as reported in public
// threads (https://github.com/tleyden/arty/issues/81 conversation_already_has_active_response,
// https://github.com/twilio-samples/speech-assistant-openai-realtime-api-python/issues/22
// "Audio content of Xms is already shorter than Yms",
// https://github.com/livekit/agents-js/issues/304 integer_below_min_value); where neither says, the
// mock's wording is marked so in the .cpp. The reference's examples are fixtures in
// tests/data/openai_realtime/.
//
// Offers: MockRealtime, a WebSocket server on 127.0.0.1 (ws://, or wss:// with a throwaway
// certificate for Options::cert_host, see ca_file()). It checks the upgrade like the service
// (path, ?model=, the key: `Authorization: Bearer KEY`, or `api-key: KEY` in Azure mode;
// refusals are HTTP errors with the vendor's JSON body), sends session.created, then validates
// every client event and answers as the reference says, or with the vendor's `error` event
// (the connection stays open, as the service's does). Responses come from a script queue
// (spoken reply: a 440 Hz tone of reply_ms in the session's output format, faster than real
// time; or a function call). With turn_detection on, an energy VAD emulates the service's
// (speech_started / speech_stopped / committed, barge-in cancels the response). Every client
// event is recorded (parsed JSON, raw text, receive time, connection index), and so is every
// server event sent, for the tests to assert on.
//
// Server VAD emulation (documented thresholds, deterministic): input audio is cut in 20 ms
// blocks; a block is voiced when its RMS (linear PCM, G.711 decoded) is >= 2000 x threshold
// (threshold from turn_detection, 0.5 by default and for semantic_vad: RMS 1000, about -30
// dBFS). Three voiced blocks in a row (60 ms) start speech: speech_started with audio_start_ms
// = start of the first voiced block - prefix_padding_ms (not below 0). Then silence_duration_ms
// (semantic_vad: 500) of unvoiced blocks stops it: speech_stopped with audio_end_ms = the end of
// the last silent block, committed, conversation.item.added/done for the user item, with
// audio.input.transcription set conversation.item.input_audio_transcription.completed (the
// next push_transcript() text, else "hello"), then a response if create_response (default
// true). A response in progress at speech_started is cancelled if interrupt_response (default
// true): response.done with status "cancelled", status_details.reason "turn_detected".
// Times are audio time (ms of input appended since the connection opened), not wall time.
//
// Usage in response.done (deterministic): output audio_tokens = audio ms sent / 50, output
// text_tokens = the words of the transcript (or arguments) sent; input audio_tokens =
// committed user audio ms / 100, input text_tokens = (bytes of instructions + every text and
// function_call_output item in the conversation) / 4; cached 0; totals are the sums.
//
// Not emulated: output_modalities ["text"] (accepted; replies are still spoken),
// idle_timeout_ms (accepted, never fires), input transcription deltas, MCP tools, images,
// out-of-band responses (conversation "none" is accepted and treated as "auto").
//
// Ids are deterministic per connection c: session sess_c, conversation conv_c, server events
// event_c_N, items item_c_N, responses resp_c_N, call ids call_c_N (N counts from 1).
//
// Thread: the server runs on its own io thread(s) (Options::io_threads, default 1); each
// connection's protocol state lives on its own strand: no thread per connection, and every
// per-event cost is independent of the number of connections. Every public method may be
// called from any thread (queries take one mutex; actions are posted to the connection).
// Ownership: the mock owns its connections; the destructor stops the server, drops every
// connection and joins the threads.
// Bounds: a client message is at most max_message_bytes (the reference allows 15 MiB of audio
// per append, base64 of that fits in the default 24 MiB); the audio kept per connection for
// appended_audio() stops at max_kept_audio_bytes (appended_bytes() keeps counting); recorded
// events grow with the test (turn off record_appends / record_sent for long benchmarks); the
// upgrade request is at most 8 KiB of headers.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace voxbridge::testing {

class MockRealtime {
 public:
  enum class Api {
    openai,  ///< GET /v1/realtime?model=MODEL, Authorization: Bearer KEY
    azure,   ///< GET /openai/v1/realtime?model=DEPLOYMENT (or the preview path
             ///< /openai/realtime?api-version=V&deployment=DEPLOYMENT), api-key: KEY
  };
  struct Options {
    unsigned short port = 0;  ///< on 127.0.0.1; 0 = any free port (see port())
    bool tls = false;         ///< wss:// with a self-signed certificate for cert_host
    std::string cert_host = "localhost";
    Api api = Api::openai;
    std::string api_key = "sk-mock-0123456789";
    std::string model = "gpt-realtime";  ///< expected ?model= (Azure: the deployment)
    int io_threads = 1;
    int chunk_ms = 100;          ///< audio per response.output_audio.delta
    int chunk_interval_ms = 20;  ///< between two deltas (100 ms every 20 ms: 5x real time)
    // For a long benchmark (hundreds of calls): record_appends, record_sent false and
    // max_kept_audio_bytes 0, or every call's audio and events stay in memory.
    bool record_appends = true;  ///< keep input_audio_buffer.append events in received()
    bool record_sent = true;     ///< keep the server events in sent()
    /// TCP_NODELAY on accepted sockets, as voxbridge sets on its own. Without it a small event
    /// written while an earlier one is unacknowledged waits for the peer's ACK (up to its
    /// delayed ACK, 40 ms on Linux): a benchmark timing the mock's events needs it on. Off by
    /// default, the timing the tests were written against.
    bool no_delay = false;
    std::size_t max_message_bytes = 24u << 20;
    std::size_t max_kept_audio_bytes = 8u << 20;  ///< per connection (87 s of audio/pcm)
    /// Benchmarks: called on the connection's strand, without the mock's lock, so a load test
    /// can time events without recording them. Each must be cheap and thread-safe across
    /// connections (io_threads > 1 runs several strands at once). Unset: not called.
    struct Observer {
      /// A session.update was applied: the effective session.
      std::function<void(std::size_t conn, const boost::json::object& session)> session;
      /// An input_audio_buffer.append was accepted: its audio, decoded from base64, in
      /// `format` ("audio/pcm": 24 kHz s16le; G.711 bytes otherwise).
      std::function<void(std::size_t conn, const std::vector<std::uint8_t>& audio,
                         const std::string& format)>
          append;
      /// A response.output_audio.delta is being handed to the socket (after what was queued
      /// before it): chunk 0 is the response's first.
      std::function<void(std::size_t conn, std::size_t chunk)> audio_delta;
    };
    Observer observer{};
  };
  /// What the next response says. Speech: `text` as transcript with `reply_ms` of tone; with
  /// stall_after_ms >= 0 the audio stops after that many ms and the response stays in progress
  /// (for barge-in and response.create-while-active tests) until resume(), response.cancel or
  /// speech. Function call: function_call item `name` with `arguments` (a JSON text), call_id
  /// as given or call_c_N; `more_calls`: further function_call items of the same response
  /// (output_index 1, 2 ...), as the service sends parallel calls.
  struct Script {
    enum class Kind { speech, function_call };
    struct Call {
      std::string name, arguments, call_id;
    };
    Kind kind = Kind::speech;
    std::string text = "Hello from the mock.";
    int reply_ms = 1000;
    int stall_after_ms = -1;
    std::string name{}, arguments{}, call_id{};
    std::vector<Call> more_calls{};

    static Script speech(std::string text, int reply_ms, int stall_after_ms = -1) {
      Script s;
      s.text = std::move(text);
      s.reply_ms = reply_ms;
      s.stall_after_ms = stall_after_ms;
      return s;
    }
    static Script function_call(std::string name, std::string arguments, std::string call_id = {}) {
      Script s;
      s.kind = Kind::function_call;
      s.name = std::move(name);
      s.arguments = std::move(arguments);
      s.call_id = std::move(call_id);
      return s;
    }
  };
  struct ClientEvent {
    std::size_t conn = 0;
    std::string type;         ///< "" when not JSON or without a string "type"
    std::string raw;          ///< the message as received
    boost::json::value json;  ///< null when it did not parse
    std::chrono::steady_clock::time_point at;
  };
  /// One upgrade attempt (accepted or refused). Secrets are not kept: `auth` says only which
  /// scheme came ("bearer", "api-key", "" for none).
  struct Upgrade {
    std::string target, auth;
    int status = 0;  ///< 101 when accepted
  };

  explicit MockRealtime(Options options);
  MockRealtime() : MockRealtime(Options{}) {}
  ~MockRealtime();
  MockRealtime(const MockRealtime&) = delete;
  MockRealtime& operator=(const MockRealtime&) = delete;

  unsigned short port() const;
  /// ws://127.0.0.1:PORT/v1/realtime?model=MODEL (TLS: wss://CERT_HOST:PORT/...; Azure: the
  /// /openai/v1/realtime path).
  std::string url() const;
  /// The headers a correct client sends ({"Authorization", "Bearer KEY"} or {"api-key", KEY}).
  std::vector<std::pair<std::string, std::string>> auth_headers() const;
  /// The certificate as a PEM file, the CA to trust (TLS only; removed by the destructor).
  std::string ca_file() const;

  /// Queues a scripted response; responses take them in order (all connections share the
  /// queue); when it is empty they use the default script.
  void push_script(Script s);
  void set_default_script(Script s);
  /// The next input transcription's text (queue; "hello" when empty).
  void push_transcript(std::string text);
  /// The next upgrade is refused with `status`, `body` (application/json) and, when not empty,
  /// a Retry-After header.
  void refuse_next(int status, std::string body, std::string retry_after = {});

  /// Sends `json_text` as is to connection `conn` (no validation: tests push anything).
  void send(std::size_t conn, std::string json_text);
  /// Closes the socket without a close frame, after the events already queued are written.
  void drop(std::size_t conn);
  /// A close handshake after what is queued.
  void close(std::size_t conn, std::uint16_t code = 1000, std::string reason = {});
  /// rate_limits.updated: requests 1000/999 and tokens 50000/49000, reset 60 s.
  void send_rate_limits(std::size_t conn);
  /// Lets a stalled response (Script::stall_after_ms) send the rest of its audio.
  void resume(std::size_t conn);

  /// Connections accepted so far: indexes 0 .. count-1, taken before the 101 goes out (clients
  /// that connect one after the other get 0, 1, 2 ...; refused upgrades take none).
  std::size_t connection_count() const;
  std::size_t open_count() const;
  std::vector<Upgrade> upgrades() const;
  std::vector<ClientEvent> received(std::size_t conn) const;
  /// The "type" of every received event, in order.
  std::vector<std::string> types(std::size_t conn) const;
  /// Every server event sent (the mock's and what send() pushed), as sent, in order.
  std::vector<std::string> sent(std::size_t conn) const;
  std::vector<boost::json::value> sent_json(std::size_t conn) const;
  std::vector<std::string> sent_types(std::size_t conn) const;
  /// Decoded input audio, in the input format in force when it was appended.
  std::vector<std::uint8_t> appended_audio(std::size_t conn) const;
  std::size_t appended_bytes(std::size_t conn) const;
  /// The effective session, as last sent (session.created or session.updated).
  boost::json::object session(std::size_t conn) const;
  /// Polls `pred` (called without the mock's lock) after every change until it is true or
  /// `timeout` passed; returns its last value.
  bool wait_until(const std::function<bool()>& pred,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;

  /// The mock's output signal: samples [first, first + count) of a 440 Hz tone, amplitude 8000,
  /// at the format's rate ("audio/pcm": 24 kHz s16le, 2 bytes a sample; "audio/pcmu",
  /// "audio/pcma": 8 kHz G.711, 1 byte a sample). Each response starts at sample 0.
  static std::vector<std::uint8_t> test_signal(std::string_view format_type, std::size_t first,
                                               std::size_t count);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::testing
