#include "voxbridge/providers/routed_clients.hpp"

#include <stdexcept>

namespace voxbridge::providers {

namespace {

class RoutedClients final : public ProviderClients {
 public:
  RoutedClients(std::shared_ptr<ProviderClients> grpc,
                std::map<std::string, std::shared_ptr<ProviderClients>> backends)
      : grpc_(std::move(grpc)), backends_(std::move(backends)) {}

  std::shared_ptr<AsrStream> open_asr(const ProviderTarget& t, const asr::v1::RecognitionConfig& c,
                                      Poster post, AsrEvents ev, std::size_t max_queued) override {
    return pick(t).open_asr(t, c, std::move(post), std::move(ev), max_queued);
  }
  std::shared_ptr<LlmTurn> open_llm(const ProviderTarget& t, const llm::v1::TurnRequest& r,
                                    Poster post, LlmEvents ev) override {
    return pick(t).open_llm(t, r, std::move(post), std::move(ev));
  }
  std::shared_ptr<TtsStream> open_tts(const ProviderTarget& t, const tts::v1::SynthesisConfig& c,
                                      Poster post, TtsEvents ev, std::size_t max_queued) override {
    return pick(t).open_tts(t, c, std::move(post), std::move(ev), max_queued);
  }
  std::shared_ptr<AgentStream> open_agent(const ProviderTarget& t, const agent::v1::AgentConfig& c,
                                          Poster post, AgentEvents ev,
                                          std::size_t max_queued) override {
    return pick(t).open_agent(t, c, std::move(post), std::move(ev), max_queued);
  }
  void call_ended(std::string_view call_uuid) override {
    grpc_->call_ended(call_uuid);
    for (const auto& [name, b] : backends_) b->call_ended(call_uuid);
  }

 private:
  ProviderClients& pick(const ProviderTarget& t) const {
    if (t.backend.empty()) return *grpc_;
    const auto it = backends_.find(t.backend);
    if (it == backends_.end()) throw std::runtime_error("no backend " + t.backend);
    return *it->second;
  }

  std::shared_ptr<ProviderClients> grpc_;
  std::map<std::string, std::shared_ptr<ProviderClients>> backends_;
};

}  // namespace

std::shared_ptr<ProviderClients> routed_clients(
    std::shared_ptr<ProviderClients> grpc,
    std::map<std::string, std::shared_ptr<ProviderClients>> backends) {
  return std::make_shared<RoutedClients>(std::move(grpc), std::move(backends));
}

}  // namespace voxbridge::providers
