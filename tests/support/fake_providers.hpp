// In-process fake gRPC providers with scripted behaviour, for tests and the pipeline's
// integration tests. Each runs on a real gRPC server bound to 127.0.0.1 on a free port.
#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "voxbridge/agent/v1/agent.grpc.pb.h"
#include "voxbridge/asr/v1/asr.grpc.pb.h"
#include "voxbridge/llm/v1/llm.grpc.pb.h"
#include "voxbridge/tts/v1/tts.grpc.pb.h"

namespace voxbridge::testing {

/// A recognizer that "hears" voice: it judges the audio stream (LINEAR16, MULAW or OPUS, decoded)
/// in 20 ms frames from the stream's start, however the messages cut it, and a frame whose mean
/// absolute sample is above `voice_level` is voiced. It sends speech_started at the first voiced
/// frame, an interim result with the first word after `voiced_frames / 2` voiced frames, and
/// once it has heard `voiced_frames` voiced frames followed by `silence_frames` unvoiced ones in
/// a row, the final `transcript` and end_of_utterance. Offsets are the stream's time. A stream
/// whose first message is not a config ends with INVALID_ARGUMENT.
class FakeRecognizer final : public asr::v1::Recognizer::Service {
 public:
  std::string transcript = "hello world";
  int voiced_frames = 10;
  /// Unvoiced frames after the voiced ones before the final result (the endpointer's silence).
  int silence_frames = 10;
  int voice_level = 500;

  grpc::Status StreamingRecognize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* stream)
      override;

  /// The next `failing_streams` streams break with UNAVAILABLE once they have heard
  /// `fail_after_frames` 20 ms frames (a provider restarting mid-utterance).
  int fail_after_frames = 0;
  std::atomic<int> failing_streams{0};
  /// Voiced frames each finished stream heard, in stream order.
  std::vector<int> voiced_per_stream() const;

  /// What the last stream saw.
  std::atomic<int> streams{0};
  std::atomic<int> audio_messages{0};
  std::atomic<bool> saw_config{false};
  std::atomic<int> encoding{0};  ///< of the last stream's config (common::v1::AudioEncoding)
  std::string last_call_id;      // written before the stream ends

 private:
  mutable std::mutex mu_;
  std::vector<int> voiced_per_stream_;
};

/// A synthesizer that speaks each word as a tone of `word_ms` (amplitude `level`, 440 Hz) in
/// the requested LINEAR16 rate, sent in 20 ms messages, then ChunkDone. The first audio of a
/// stream waits `first_audio_delay_ms`.
class FakeSynthesizer final : public tts::v1::Synthesizer::Service {
 public:
  int word_ms = 200;
  int level = 6000;
  int first_audio_delay_ms = 0;
  /// Wait this long between 20 ms audio messages (0 = as fast as possible), so a stream is
  /// still running when the caller interrupts it.
  int pace_ms = 0;

  grpc::Status StreamingSynthesize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<tts::v1::SynthesizeResponse, tts::v1::SynthesizeRequest>* stream)
      override;

  /// The next `failing_streams` streams break with UNAVAILABLE after `fail_after_ms` of audio;
  /// later streams work.
  int fail_after_ms = 0;
  std::atomic<int> failing_streams{0};

  std::vector<std::string> texts() const;  ///< every chunk received, in order
  std::atomic<int> streams{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> audio_written{0};  ///< audio messages whose Write returned (all streams)

 private:
  mutable std::mutex mu_;
  std::vector<std::string> texts_;
};

/// A dialogue that answers from a script: the reply for the first key found in the user text
/// (else `default_reply`, with "{user}" replaced by the user text), streamed word by word with
/// `delta_delay_ms` between deltas. A reply may end in an action: "[hangup]" (the words before
/// it become the hangup's final words), "[transfer:TARGET]" or "[transfer:TARGET@CONTEXT]",
/// "[dtmf:DIGITS]", "[setvar:NAME=VALUE]", "[call:NUMBER]" (agent "bot", VB_REASON=callback).
/// Records every request.
class FakeDialogue final : public llm::v1::Dialogue::Service {
 public:
  std::map<std::string, std::string> replies;
  std::string default_reply = "You said {user}.";
  int delta_delay_ms = 0;
  int first_token_delay_ms = 0;
  /// The next turn fails with UNAVAILABLE (a broken stream); the one after works.
  std::atomic<bool> fail_first{false};
  /// Sent as they are after the reply text of the next turn (then forgotten): a hostile
  /// model's exact actions, whatever bytes they hold.
  void script_actions(std::vector<common::v1::Action> actions);

  grpc::Status Turn(grpc::ServerContext* ctx, const llm::v1::TurnRequest* req,
                    grpc::ServerWriter<llm::v1::TurnResponse>* writer) override;

  std::vector<llm::v1::TurnRequest> requests() const;
  std::atomic<int> cancelled{0};

 private:
  mutable std::mutex mu_;
  std::vector<llm::v1::TurnRequest> requests_;
  std::vector<common::v1::Action> scripted_;  // guarded by mu_
};

/// A speech-to-speech agent: at the start it says a greeting (`greeting_ms` of 440 Hz tone, a
/// transcript, then Mark 1). When the caller has spoken `voiced_frames` voiced frames it sends
/// ClearPlayback (interrupting whatever plays) and, after `silence_frames` silent frames, a
/// 200 ms answer and End. Records the caller's DTMF and the marks reported played.
/// With `actions`, it asks for them one at a time: the first right after the greeting's Mark 1,
/// each next one once the result of the one before has arrived (`action_results()`).
class FakeSpeechAgent final : public agent::v1::Agent::Service {
 public:
  int greeting_ms = 400;
  int voiced_frames = 10;
  int silence_frames = 5;
  int level = 6000;
  std::vector<common::v1::Action> actions;  ///< set before the call
  /// Once voxbridge half-closes, keep the stream open until it is cancelled (an agent that
  /// overstays the grace it is given), instead of ending it with OK.
  bool linger = false;
  /// (v1.1) Set: sent as AgentResponse.usage after the greeting, and in End.
  std::optional<common::v1::Usage> usage, end_usage;
  /// (v1.2) Sent as AgentResponse.tool_call, all at once, right after the greeting's Mark 1
  /// (set before the call).
  std::vector<common::v1::ToolCall> tool_calls;

  grpc::Status Converse(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<agent::v1::AgentResponse, agent::v1::AgentRequest>* stream) override;

  std::string dtmf() const;
  std::vector<std::uint64_t> marks_played() const;
  /// The CallEvent.action_result events voxbridge sent, in order.
  std::vector<common::v1::ActionResult> action_results() const;
  /// (v1.2) The CallEvent.tool_result events voxbridge sent, in order, and when each came.
  std::vector<common::v1::ToolResult> tool_results() const;
  std::vector<std::chrono::steady_clock::time_point> tool_result_times() const;
  /// The CallEvents in the order they came: "dtmf 5", "mark_played 1", "action_result".
  std::vector<std::string> events() const;
  std::atomic<int> input_rate{0};
  /// (v1.1) The config the last stream opened with (MULAW/ALAW: the fake answers in it).
  agent::v1::AgentConfig config() const;
  /// Every audio message's bytes, joined, as they came.
  std::string audio_in() const;
  /// The CallEvent.playback_cleared events, in order (also in events():
  /// "playback_cleared MARK MS").
  std::vector<agent::v1::PlaybackCleared> cleared() const;

 private:
  mutable std::mutex mu_;
  std::string dtmf_;
  std::vector<std::uint64_t> marks_;
  std::vector<common::v1::ActionResult> results_;
  std::vector<common::v1::ToolResult> tool_results_;
  std::vector<std::chrono::steady_clock::time_point> tool_result_times_;
  std::vector<std::string> events_;
  agent::v1::AgentConfig config_;
  std::string audio_in_;
  std::vector<agent::v1::PlaybackCleared> cleared_;
};

/// A gRPC server on 127.0.0.1:<free port> with the standard health service.
/// TLS for a fake provider server: its certificate and key (PEM), and whether it demands a
/// client certificate signed by `client_ca` (mutual TLS).
struct FakeTls {
  std::string cert;
  std::string key;
  std::string client_ca;  ///< empty = no client certificate asked for
};

class FakeProviderServer {
 public:
  explicit FakeProviderServer(std::vector<grpc::Service*> services, const FakeTls* tls = nullptr);
  explicit FakeProviderServer(grpc::Service* service)
      : FakeProviderServer(std::vector<grpc::Service*>{service}) {}
  ~FakeProviderServer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Marks `service` (e.g. "voxbridge.asr.v1.Recognizer") not serving in the health service.
  void set_not_serving(const std::string& service);

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace voxbridge::testing
