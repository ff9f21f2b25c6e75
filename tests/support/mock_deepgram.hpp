// A local stand-in for Deepgram's streaming speech-to-text WebSocket (Live Audio, GET /v1/listen),
// for voxbridge's tests and benchmarks. Written from Deepgram's published reference:
//   https://developers.deepgram.com/reference/speech-to-text/listen-streaming (the AsyncAPI
//     specification: the query parameters and their enums, the Authorization header, binary
//     ListenV1Media, the KeepAlive / Finalize / CloseStream text messages, and the server's
//     ListenV1Results, ListenV1Metadata, ListenV1UtteranceEnd, ListenV1SpeechStarted with their
//     fields); https://developers.deepgram.com/reference/streaming ("Authorization: token KEY"
//     or "Bearer JWT"; sample_rate "required (and only read) when ... encoding")
//   https://developers.deepgram.com/docs/audio-keep-alive (a KeepAlive text frame, no answer;
//     10 s without audio or a text message closes the socket with NET-0001)
//   https://developers.deepgram.com/docs/close-stream (CloseStream: the remaining results, a
//     Metadata summary, then the socket closes) and /docs/finalize (Finalize: final results with
//     from_finalize true, "not guaranteed if there is no significant amount of audio")
//   https://developers.deepgram.com/docs/understand-endpointing-interim-results and
//   /docs/endpointing
//     (is_final vs speech_final; endpointing defaults to 10 ms, or false)
//   https://developers.deepgram.com/docs/utterance-end (UtteranceEnd, channel [A,B] and
//     last_word_end; interim_results=true is required) and /docs/speech-started (vad_events,
//     SpeechStarted with channel [0,1] and timestamp)
//   https://developers.deepgram.com/docs/stt-troubleshooting-websocket-data-and-net-errors (close
//     1008 DATA-0000, 1011 NET-0000 / NET-0001; "Using KeepAlive messages alone will not prevent
//     closure; you must send at least one audio message"; an empty binary frame closes)
//   https://developers.deepgram.com/reference/errors (401 {"err_code":"INVALID_AUTH",
//     "err_msg":"Invalid credentials.","request_id":...}; 400 bodies err_code "Bad Request")
// What the service was seen to do where the reference says nothing: the NET-0001 reason text
// (https://github.com/deepgram/deepgram-python-sdk/issues/319), a Metadata message before a close
// by the service (https://github.com/deepgram/deepgram-js-sdk/issues/336, duration 0 and channels
// 0 when no audio came), Metadata's models/model_info once audio came
// (https://github.com/deepgram/deepgram-python-sdk/issues/427), a 400 for utterance_end_ms under
// 1000 with "Invalid 'utterance_end_ms' value of '999'."
// (https://github.com/deepgram/deepgram-python-sdk/issues/279), a 400 for keywords on Nova-3
// (https://github.com/deepgram/deepgram-js-sdk/issues/474), unknown query parameters ignored
// (https://github.com/tempo-riz/deepgram_speech_to_text/issues/29: a misspelt `punctuation` did
// not fail), and JSON numbers written as Rust's serde does (0.0, 1.5). Where none says, the .cpp
// marks the wording or the behaviour as the mock's.
//
// Offers: MockDeepgram, a WebSocket server on 127.0.0.1 (ws://, or wss:// with a throwaway
// certificate for Options::cert_host, see ca_file()). The upgrade must be GET /v1/listen (else
// 404) with "Authorization: Token KEY" or "Bearer KEY" (else 401) and a query the mock can serve:
// encoding linear16 | mulaw | alaw with sample_rate 8000..48000, channels 1 (else 400 with
// Deepgram's error JSON). Binary frames are audio, decoded and cut in 20 ms blocks; a block is
// voiced when its RMS >= Options::voiced_rms. Deterministic recognition, in audio time (samples
// received, never the wall clock):
//   - a voiced block after silence: SpeechStarted {"channel":[0,1],"timestamp":block start}
//     (vad_events=true); an utterance starts, its text the next push_transcript() (else
//     "hello"), taken at that moment;
//   - every interim_every of audio while the utterance lasts: an interim Results (is_final and
//     speech_final false) whose transcript is the first k words (k = 1, 2, ...), the words spread
//     evenly over [utterance start, end of the last voiced block] (interim_results=true);
//   - endpointing ms of unvoiced blocks: a final Results (is_final, speech_final true; with
//     endpointing=false one unvoiced block ends it and speech_final is false) with every word;
//   - utterance_end_ms after the last word's end with no new word: UtteranceEnd.
// Every Results covers [the previous final's end, now]: `start` and `duration` in seconds. Text
// frames: KeepAlive (nothing sent), Finalize (a final Results with from_finalize true: the
// utterance so far, or "" when only silence came since the last final; nothing when no audio
// came since), CloseStream (the utterance so far as a final, then Metadata, then close 1000; an
// empty binary frame does the same, the deprecated way); any other text closes 1008 DATA-0000.
// Idle: no audio and no text message for idle_timeout: Metadata, then close 1011 with NET-0001's
// reason (a KeepAlive before any audio does not count, keepalive_needs_audio).
// Server messages are text frames. Ids are deterministic: every upgrade attempt n (0, 1, ...)
// gets request_id(n), accepted or refused; Options::created fixes Metadata.created.
//
// Records, per upgrade attempt: the target as sent, the query as a multimap, the Authorization
// header, the HTTP status (101 or the refusal's) and body, every client message in order (text
// frames whole, binary ones' first bytes and size), the audio (byte count, the first
// max_kept_audio_bytes kept), every message the mock sent (exact JSON text) and how it ended.
// Thread: the server runs on its own io thread (Options::io_threads of them); each connection's
// state lives on its strand. Every public method may be called from any thread (queries take one
// mutex; actions are posted to the connections' strands).
// Ownership: the mock owns its connections; the destructor stops the server, drops every
// connection and joins the threads.
// Bounds: a client message is at most max_message_bytes; the audio kept per connection stops at
// max_kept_audio_bytes (audio_bytes keeps counting); a binary message's record keeps its first 64
// bytes; the upgrade request is at most 8 KiB of headers. Every message and every upgrade attempt
// is recorded until the mock is destroyed (a long benchmark: max_kept_audio_bytes 0).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace voxbridge::testing {

class MockDeepgram {
 public:
  /// The endpoint's path (Live Audio, v1).
  static constexpr const char* kPath = "/v1/listen";
  /// The close reason for NET-0001, as the service sends it.
  static constexpr const char* kNet0001 =
      "Deepgram did not receive audio data or a text message within the timeout window. See "
      "https://dpgr.am/net0001";

  struct Options {
    unsigned short port = 0;  ///< on 127.0.0.1; 0 = any free port
    bool tls = false;         ///< wss:// with a self-signed certificate for cert_host
    std::string cert_host = "localhost";
    std::string api_key = "dg-test-key";
    double voiced_rms = 1000;  ///< a 20 ms block this loud (RMS of s16 samples) is voiced
    /// Audio time between two interim results of an utterance (interim_results=true).
    std::chrono::milliseconds interim_every{200};
    /// Wall time without audio or a text message before NET-0001 (the service: 10 s).
    std::chrono::milliseconds idle_timeout{10000};
    /// The mock's own processing time, wall clock, before each Results goes out (what follows
    /// it waits too, order kept): for latency benchmarks. 0 = at once.
    std::chrono::milliseconds result_delay{0};
    /// A KeepAlive resets the idle timer only once audio has come (the troubleshooting guide:
    /// "you must send at least one audio message"). False: every KeepAlive counts.
    bool keepalive_needs_audio = true;
    /// Metadata.created as sent; empty = the socket's open time, UTC, "2025-01-31T12:00:00.000Z".
    std::string created{};
    std::size_t max_message_bytes = 1u << 20;
    std::size_t max_kept_audio_bytes = 2u << 20;
    /// Keep every client and server message in the record (false for load tests: only the
    /// counts, so memory does not grow with the run).
    bool record_messages = true;
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

  /// One upgrade attempt and, when accepted, its connection.
  struct Connection {
    std::string request_id;
    std::string target;  ///< path and query as sent
    std::string path;
    std::multimap<std::string, std::string> query;  ///< percent-decoded, every repeat kept
    std::string authorization;                      ///< the header as sent ("" when absent)
    int status = 0;                                 ///< 101, or the refusal's HTTP status
    std::string refusal_body;
    std::vector<ClientMessage> received;
    std::size_t audio_bytes = 0;      ///< every binary byte received (decoded as audio)
    std::vector<std::uint8_t> audio;  ///< the first max_kept_audio_bytes of them
    std::vector<std::string> sent;    ///< every server message, exactly as sent, in order
    End end = End::open;
    std::uint16_t close_code = 0;  ///< closed_by_mock: the close frame's code and reason
    std::string close_reason;

    /// The text messages received, in order.
    std::vector<std::string> texts() const;
  };

  explicit MockDeepgram(Options options);
  MockDeepgram() : MockDeepgram(Options{}) {}
  ~MockDeepgram();
  MockDeepgram(const MockDeepgram&) = delete;
  MockDeepgram& operator=(const MockDeepgram&) = delete;

  unsigned short port() const;
  /// ws://127.0.0.1:PORT/v1/listen (TLS: wss://CERT_HOST:PORT/v1/listen), no query.
  std::string url() const;
  const std::string& api_key() const;
  /// The certificate as a PEM file, the CA to trust (TLS only; removed by the destructor).
  std::string ca_file() const;

  /// The next utterance's text (a queue shared by all connections; "hello" when empty).
  void push_transcript(std::string text);
  /// Breaks every open socket (no close frame) after what was handed to it.
  void drop_all();
  /// Closes every open socket with this code and reason (after what was handed to it; results
  /// still held by result_delay are not sent).
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

  /// The request id of upgrade attempt `n`: a UUID, "6d6f636b-0000-4000-8000-" + n in 12 digits.
  static std::string request_id(std::size_t n);
  /// G.711 to linear (ITU-T G.711, the classic Sun reference decoder): what the mock decodes.
  static std::int16_t mulaw_to_s16(std::uint8_t u);
  static std::int16_t alaw_to_s16(std::uint8_t a);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::testing
