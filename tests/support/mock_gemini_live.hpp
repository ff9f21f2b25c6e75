// A local stand-in for Google's Gemini Live API (the BidiGenerateContent WebSocket of the Gemini
// Developer API, v1beta), for voxbridge's tests and benchmarks. Written from Google's published
// reference and its generated client types:
//   https://ai.google.dev/api/live (BidiGenerateContentSetup, ...RealtimeInput, ...ClientContent,
//     ...ToolResponse; ...ServerContent, ...ToolCall, ...ToolCallCancellation, GoAway,
//     SessionResumptionUpdate, UsageMetadata)
//   https://ai.google.dev/gemini-api/docs/live-session (sessionResumption, goAway,
//     contextWindowCompression) and https://ai.google.dev/gemini-api/docs/live-tools
//   https://googleapis.github.io/js-genai/release_docs/interfaces/types.LiveServerContent.html
//     ("When model is interrupted while generating there will be no generation_complete message
//     in interrupted turn, it will go through interrupted > turn_complete")
//   https://googleapis.github.io/js-genai/release_docs/interfaces/types.LiveServerSessionResumptionUpdate.html
//     (newHandle empty unless resumable)
//   https://docs.cloud.google.com/nodejs/docs/reference/generativelanguage/latest/generativelanguage/protos.google.ai.generativelanguage.v1beta.ibidigeneratecontentservercontent
// Close codes and reasons the reference does not spell out are the service's as reported in
// public threads: 1007 "Request contains an invalid argument."
// (https://github.com/google/adk-python/issues/225, https://github.com/livekit/agents/issues/4159),
// 1007 with the key's problem as the reason (https://github.com/yagudaev/voiceclaw/pull/155), 1011
// for its own failures (https://github.com/google/adk-python/issues/3918), and Google's JSON error
// wording "Invalid JSON payload received. Unknown name \"X\" at 'Y': Cannot find field."
// (https://github.com/musistudio/claude-code-router/issues/187). Where none says, the .cpp marks
// the wording as the mock's. Fixtures from the reference's examples: tests/data/gemini_live/.
//
// Offers: MockGeminiLive, a WebSocket server on 127.0.0.1 (ws://, or wss:// with a throwaway
// certificate for Options::cert_host, see ca_file()). It checks the upgrade (the path, the key
// as `x-goog-api-key` or `?key=`; a wrong or missing key: the socket opens and closes with 1007
// and the key's problem, as the service does), then wants `setup` first and exactly once,
// validates every client message (unknown fields, wrong types, bad enums, bad base64, a
// toolResponse for no call: close 1007 with the reason), and answers as the reference says:
// setupComplete, then model turns from a script queue (spoken reply: a 440 Hz tone of reply_ms
// at 24 kHz, "audio/pcm;rate=24000", faster than real time, with outputTranscription words;
// or a toolCall), generationComplete once it is all sent, turnComplete with usageMetadata once
// the audio has had its real time to play (interruptible until then), and after each turn a
// sessionResumptionUpdate with a new handle when setup asked for sessionResumption.
// Server messages go out as binary frames, as the service sends its JSON.
//
// Activity detection (deterministic, unless setup disables it): input audio is cut in 20 ms
// blocks; a block is voiced when its RMS >= Options::voiced_rms (1000, about -30 dBFS). Three
// voiced blocks in a row start speech: a model turn in progress is interrupted
// (serverContent.interrupted, then turnComplete; no generationComplete). Then silenceDurationMs
// (default 500) of unvoiced blocks end it: inputTranscription with the next push_transcript() text
// (else "hello"), then a model turn. A clientContent with turnComplete true starts a model turn too
// (interrupting one in progress); a toolResponse answering every call of the last toolCall starts
// the next. Usage (deterministic): promptTokenCount = (bytes of systemInstruction and text turns) /
// 4 + input audio ms * 32 / 1000; responseTokenCount = reply audio ms * 32 / 1000 (the reference's
// 32 tokens a second of audio); totalTokenCount the sum.
// goAway: go_away() sends {"goAway":{"timeLeft":"Ns"}} and closes the socket (1000) when that
// time has passed. A setup whose sessionResumption.handle is one this mock issued resumes that
// session (its conversation and counts); an unknown handle is refused (close 1007).
//
// Ids are deterministic per connection c: function call ids fc_c_N, handles handle_c_N.
// Thread: the server runs on its own io thread (Options::io_threads of them); each connection's
// state lives on its strand.
// Every public method may be called from any thread (queries take one mutex; actions are posted).
// Ownership: the mock owns its connections; the destructor stops the server, drops every
// connection and joins the thread.
// Bounds: a client message is at most max_message_bytes; the audio kept per connection stops at
// max_kept_audio_bytes (audio_bytes() keeps counting); the upgrade request is at most 8 KiB of
// headers.
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

class MockGeminiLive {
 public:
  /// The endpoint's path (v1beta, as Google documents it).
  static constexpr const char* kPath =
      "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";

  struct Options {
    unsigned short port = 0;  ///< on 127.0.0.1; 0 = any free port
    bool tls = false;         ///< wss:// with a self-signed certificate for cert_host
    std::string cert_host = "localhost";
    std::string api_key = "AIzaMock-0123456789";
    int chunk_ms = 100;                 ///< audio per serverContent message
    int chunk_interval_ms = 20;         ///< between two (100 ms every 20 ms: 5x real time)
    bool record_audio_messages = true;  ///< keep realtimeInput messages in received()
    double voiced_rms = 1000;  ///< activity detection: a 20 ms block this loud (RMS) is voiced
    /// Keep the server messages in sent(). For a long benchmark (hundreds of calls):
    /// record_audio_messages, record_sent false and max_kept_audio_bytes 0, or every call's
    /// audio and messages stay in memory.
    bool record_sent = true;
    int io_threads = 1;  ///< threads running the server (each connection stays on its strand)
    /// TCP_NODELAY on accepted sockets, as voxbridge sets on its own. Without it a small message
    /// written while an earlier one is unacknowledged waits for the peer's ACK (up to its
    /// delayed ACK, 40 ms on Linux): a benchmark timing the mock's messages needs it on. Off by
    /// default, the timing the tests were written against.
    bool no_delay = false;
    std::size_t max_message_bytes = 16u << 20;
    std::size_t max_kept_audio_bytes = 8u << 20;
    /// Benchmarks: called on the connection's strand, without the mock's lock, so a load test
    /// can time messages without recording them. Each must be cheap and thread-safe across
    /// connections (io_threads > 1 runs several strands at once). Unset: not called.
    struct Observer {
      /// A setup was accepted: the `setup` object as received (systemInstruction included).
      std::function<void(std::size_t conn, const boost::json::object& setup)> setup;
      /// A realtimeInput with audio was accepted: its audio, decoded from base64 (s16le), at
      /// `rate` Hz as its mimeType says.
      std::function<void(std::size_t conn, const std::vector<std::uint8_t>& pcm, int rate)>
          input_audio;
      /// A serverContent with a model turn's audio is being handed to the socket (after what
      /// was queued before it): chunk 0 is the turn's first.
      std::function<void(std::size_t conn, std::size_t chunk)> audio_chunk;
    };
    Observer observer{};
  };
  /// What the next model turn does. Speech: `text` as outputTranscription with `reply_ms` of tone;
  /// with stall_after_ms >= 0 the audio stops after that many ms and the turn stays in progress
  /// until speech interrupts it. Tool call: one functionCall `name` with `args_json` (an object),
  /// id as given or fc_c_N.
  struct Script {
    enum class Kind { speech, tool_call };
    Kind kind = Kind::speech;
    std::string text = "Hello from the mock.";
    int reply_ms = 1000;
    int stall_after_ms = -1;
    std::string name{}, args_json{}, id{};

    static Script speech(std::string text, int reply_ms, int stall_after_ms = -1) {
      Script s;
      s.text = std::move(text);
      s.reply_ms = reply_ms;
      s.stall_after_ms = stall_after_ms;
      return s;
    }
    static Script tool_call(std::string name, std::string args_json, std::string id = {}) {
      Script s;
      s.kind = Kind::tool_call;
      s.name = std::move(name);
      s.args_json = std::move(args_json);
      s.id = std::move(id);
      return s;
    }
  };
  struct ClientMessage {
    std::size_t conn = 0;
    /// The message's one top-level field: "setup", "realtimeInput", "clientContent",
    /// "toolResponse"; "" when not a JSON object with exactly one field.
    std::string kind;
    std::string raw;
    boost::json::value json;  ///< null when it did not parse
    std::chrono::steady_clock::time_point at;
  };
  /// One upgrade attempt. The key is not kept: `auth` says where it came ("header", "query", "").
  struct Upgrade {
    std::string path, auth;
    int status = 0;  ///< 101 when accepted
  };
  /// How the mock closed a connection (code 0: it did not, the client did or it broke).
  struct Closed {
    std::uint16_t code = 0;
    std::string reason;
  };

  explicit MockGeminiLive(Options options);
  MockGeminiLive() : MockGeminiLive(Options{}) {}
  ~MockGeminiLive();
  MockGeminiLive(const MockGeminiLive&) = delete;
  MockGeminiLive& operator=(const MockGeminiLive&) = delete;

  unsigned short port() const;
  /// ws://127.0.0.1:PORT/ws/...BidiGenerateContent (TLS: wss://CERT_HOST:PORT/...), no key.
  std::string url() const;
  const std::string& api_key() const;
  /// The certificate as a PEM file, the CA to trust (TLS only; removed by the destructor).
  std::string ca_file() const;

  /// Queues a scripted model turn (all connections share the queue); empty: the default.
  void push_script(Script s);
  void set_default_script(Script s);
  /// The next input transcription's text (queue; "hello" when empty).
  void push_transcript(std::string text);
  /// The next upgrade is refused with `status` and Google's JSON error `body`.
  void refuse_next(int status, std::string body, std::string retry_after = {});

  /// Sends `json_text` as is to connection `conn` (no validation: tests push anything).
  void send(std::size_t conn, std::string json_text);
  /// goAway with timeLeft, then a normal close (1000) once it has passed.
  void go_away(std::size_t conn, std::chrono::milliseconds time_left);
  /// Closes the socket without a close frame, after the events already queued are written.
  void drop(std::size_t conn);
  /// A close handshake with this code and reason.
  void close(std::size_t conn, std::uint16_t code, std::string reason);

  std::size_t connection_count() const;
  std::size_t open_count() const;
  std::vector<Upgrade> upgrades() const;
  std::vector<ClientMessage> received(std::size_t conn) const;
  /// The kind of every received message, in order.
  std::vector<std::string> kinds(std::size_t conn) const;
  /// The `setup` object as received (empty before it).
  boost::json::object setup(std::size_t conn) const;
  /// The session a resumed connection continued ("" for a new session).
  std::string resumed_handle(std::size_t conn) const;
  /// Handles issued on that connection, in order.
  std::vector<std::string> handles(std::size_t conn) const;
  /// Every server message sent, as sent, in order.
  std::vector<std::string> sent(std::size_t conn) const;
  /// Decoded realtimeInput audio (16 kHz s16le as the client declared it), and its byte count.
  std::vector<std::uint8_t> audio(std::size_t conn) const;
  std::size_t audio_bytes(std::size_t conn) const;
  Closed closed(std::size_t conn) const;
  /// Polls `pred` (called without the mock's lock) after every change until it is true or
  /// `timeout` passed; returns its last value.
  bool wait_until(const std::function<bool()>& pred,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;

  /// The mock's output signal: samples [first, first + count) of a 440 Hz tone, amplitude 8000,
  /// 24 kHz s16le. Each turn starts at sample 0.
  static std::vector<std::uint8_t> test_signal(std::size_t first, std::size_t count);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::testing
