#include "voxbridge/providers/grpc_clients.hpp"

#include "voxbridge/agent/v1/agent.grpc.pb.h"
#include "voxbridge/asr/v1/asr.grpc.pb.h"
#include "voxbridge/llm/v1/llm.grpc.pb.h"
#include "voxbridge/providers/stream.hpp"
#include "voxbridge/providers/vendor_grpc.hpp"
#include "voxbridge/tts/v1/tts.grpc.pb.h"

namespace voxbridge::providers {

namespace {

template <class Handler>
auto closed_with(Handler h) {
  return [h = std::move(h)](const grpc::Status& st) {
    if (h) h(status_of(st));
  };
}

void dispatch(const AsrEvents& ev, const asr::v1::RecognizeResponse& r) {
  switch (r.event_case()) {
    case asr::v1::RecognizeResponse::kSpeechStarted:
      if (ev.speech_started) ev.speech_started(r.speech_started().offset_ms());
      break;
    case asr::v1::RecognizeResponse::kResult:
      if (ev.result) {
        const auto& p = r.result();
        ev.result(AsrResult{p.transcript(), p.is_final(), p.stability(), p.confidence(),
                            p.start_ms(), p.end_ms()});
      }
      break;
    case asr::v1::RecognizeResponse::kEndOfUtterance:
      if (ev.end_of_utterance) ev.end_of_utterance(r.end_of_utterance().offset_ms());
      break;
    default:
      break;  // an event of a newer contract version
  }
}

class GrpcAsr final : public AsrStream {
 public:
  using Stream = BidiStream<asr::v1::RecognizeRequest, asr::v1::RecognizeResponse>;
  explicit GrpcAsr(std::shared_ptr<Stream> s) : stream_(std::move(s)) {}
  bool send_audio(std::span<const std::uint8_t> bytes) override {
    asr::v1::RecognizeRequest m;
    m.set_audio(bytes.data(), bytes.size());
    return stream_->send(std::move(m));
  }
  void finish() override { stream_->finish(); }
  void cancel() override { stream_->cancel(); }
  std::uint64_t dropped() const override { return stream_->dropped(); }

 private:
  std::shared_ptr<Stream> stream_;
};

class GrpcLlm final : public LlmTurn {
 public:
  using Stream = ReadStream<llm::v1::TurnResponse>;
  explicit GrpcLlm(std::shared_ptr<Stream> s) : stream_(std::move(s)) {}
  void cancel() override { stream_->cancel(); }

 private:
  std::shared_ptr<Stream> stream_;
};

class GrpcTts final : public TtsStream {
 public:
  using Stream = BidiStream<tts::v1::SynthesizeRequest, tts::v1::SynthesizeResponse>;
  explicit GrpcTts(std::shared_ptr<Stream> s) : stream_(std::move(s)) {}
  bool send_text(const std::string& text, std::uint64_t chunk_id) override {
    tts::v1::SynthesizeRequest m;
    m.mutable_text()->set_text(text);
    m.mutable_text()->set_chunk_id(chunk_id);
    return stream_->send(std::move(m));
  }
  void finish() override { stream_->finish(); }
  void cancel() override { stream_->cancel(); }
  void pause_reads() override { stream_->pause_reads(); }
  void resume_reads() override { stream_->resume_reads(); }

 private:
  std::shared_ptr<Stream> stream_;
};

class GrpcAgent final : public AgentStream {
 public:
  using Stream = BidiStream<agent::v1::AgentRequest, agent::v1::AgentResponse>;
  explicit GrpcAgent(std::shared_ptr<Stream> s) : stream_(std::move(s)) {}
  bool send(agent::v1::AgentRequest request) override { return stream_->send(std::move(request)); }
  void finish() override { stream_->finish(); }
  void cancel() override { stream_->cancel(); }
  void close(std::chrono::milliseconds grace) override { stream_->close(grace); }
  void pause_reads() override { stream_->pause_reads(); }
  void resume_reads() override { stream_->resume_reads(); }
  std::uint64_t dropped() const override { return stream_->dropped(); }

 private:
  std::shared_ptr<Stream> stream_;
};

class GrpcClients final : public ProviderClients {
 public:
  explicit GrpcClients(std::shared_ptr<ChannelPool> channels) : channels_(std::move(channels)) {}

  std::shared_ptr<AsrStream> open_asr(const ProviderTarget& target,
                                      const asr::v1::RecognitionConfig& config, Poster post,
                                      AsrEvents events, std::size_t max_queued) override {
    auto stub = std::shared_ptr<asr::v1::Recognizer::Stub>(
        asr::v1::Recognizer::NewStub(channels_->get(target)));
    asr::v1::RecognizeRequest first;
    *first.mutable_config() = config;
    auto ev = std::make_shared<AsrEvents>(std::move(events));
    return std::make_shared<GrpcAsr>(GrpcAsr::Stream::start(
        [stub](grpc::ClientContext* c, GrpcAsr::Stream::Reactor* r) {
          stub->async()->StreamingRecognize(c, r);
        },
        stub, target, std::move(first), std::move(post),
        [ev](asr::v1::RecognizeResponse& r) { dispatch(*ev, r); },
        [ev](const grpc::Status& st) {
          if (ev->closed) ev->closed(status_of(st));
        },
        max_queued));
  }

  std::shared_ptr<LlmTurn> open_llm(const ProviderTarget& target,
                                    const llm::v1::TurnRequest& request, Poster post,
                                    LlmEvents events) override {
    auto stub = std::shared_ptr<llm::v1::Dialogue::Stub>(
        llm::v1::Dialogue::NewStub(channels_->get(target)));
    // gRPC serializes the request when the call starts; it must live until then: keep it with
    // the stream.
    auto req = std::make_shared<llm::v1::TurnRequest>(request);
    auto keep = std::make_shared<std::pair<decltype(stub), decltype(req)>>(stub, req);
    return std::make_shared<GrpcLlm>(GrpcLlm::Stream::start(
        [stub, req](grpc::ClientContext* c, GrpcLlm::Stream* r) {
          stub->async()->Turn(c, req.get(), r);
        },
        keep, target, std::move(post), std::move(events.response),
        closed_with(std::move(events.closed))));
  }

  std::shared_ptr<TtsStream> open_tts(const ProviderTarget& target,
                                      const tts::v1::SynthesisConfig& config, Poster post,
                                      TtsEvents events, std::size_t max_queued) override {
    auto stub = std::shared_ptr<tts::v1::Synthesizer::Stub>(
        tts::v1::Synthesizer::NewStub(channels_->get(target)));
    tts::v1::SynthesizeRequest first;
    *first.mutable_config() = config;
    return std::make_shared<GrpcTts>(GrpcTts::Stream::start(
        [stub](grpc::ClientContext* c, GrpcTts::Stream::Reactor* r) {
          stub->async()->StreamingSynthesize(c, r);
        },
        stub, target, std::move(first), std::move(post), std::move(events.response),
        closed_with(std::move(events.closed)), max_queued));
  }

  std::shared_ptr<AgentStream> open_agent(const ProviderTarget& target,
                                          const agent::v1::AgentConfig& config, Poster post,
                                          AgentEvents events, std::size_t max_queued) override {
    auto stub =
        std::shared_ptr<agent::v1::Agent::Stub>(agent::v1::Agent::NewStub(channels_->get(target)));
    agent::v1::AgentRequest first;
    *first.mutable_config() = config;
    return std::make_shared<GrpcAgent>(GrpcAgent::Stream::start(
        [stub](grpc::ClientContext* c, GrpcAgent::Stream::Reactor* r) {
          stub->async()->Converse(c, r);
        },
        stub, target, std::move(first), std::move(post), std::move(events.response),
        closed_with(std::move(events.closed)), max_queued));
  }

 private:
  std::shared_ptr<ChannelPool> channels_;
};

}  // namespace

std::shared_ptr<ProviderClients> grpc_clients(std::shared_ptr<ChannelPool> channels) {
  return std::make_shared<GrpcClients>(std::move(channels));
}

}  // namespace voxbridge::providers
