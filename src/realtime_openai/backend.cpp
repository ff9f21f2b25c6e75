#include "voxbridge/realtime_openai/backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <optional>

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/url.hpp"
#include "voxbridge/realtime_openai/conversation.hpp"

namespace voxbridge::realtime_openai {

namespace asio = boost::asio;
using providers::StreamStatus;

namespace {

/// A server event can carry a few seconds of audio as base64 (the service sends ~100 ms).
constexpr std::size_t kMaxServerEventBytes = 4u << 20;

}  // namespace

std::string session_url(const RealtimeOptions& o) {
  // Azure's GA endpoint (/openai/v1/realtime) names the deployment as `model`, like OpenAI;
  // its preview endpoint (/openai/realtime) wants api-version and deployment.
  const bool azure_ga =
      o.url.size() >= 19 && o.url.compare(o.url.size() - 19, 19, "/openai/v1/realtime") == 0;
  if (o.azure && !azure_ga) {
    return o.url + "?api-version=" + net::percent_encode(o.api_version) +
           "&deployment=" + net::percent_encode(o.model);
  }
  return o.url + "?model=" + net::percent_encode(o.model);
}

namespace {

/// One call's Realtime session: the shared stream (ws_agent.hpp) with OpenAI's wire protocol
/// (Conversation) and its reconnect-once rule.
class Stream final : public ws_agent::ConversationStream<Conversation, RealtimeBackend::State> {
 public:
  using ConversationStream::ConversationStream;

 private:
  net::WsOptions socket_options() override {
    const RealtimeOptions& o = *sh_->options;
    net::WsOptions w;
    w.url = session_url(o);
    if (o.azure) {
      w.headers.emplace_back("api-key", o.api_key);
    } else {
      w.headers.emplace_back("Authorization", "Bearer " + o.api_key);
    }
    w.connect_timeout = o.connect_timeout;
    w.idle_timeout = o.idle_timeout;
    w.max_message_bytes = kMaxServerEventBytes;
    return w;
  }

  void message(std::string_view m) override {
    std::string why;
    const auto before = conv_->errors();
    if (conv_->server_event(m, why) == Conversation::Verdict::fatal) {
      fail(StreamStatus::kUnavailable, why);
      return;
    }
    if (conv_->errors() != before) {
      sh_->counters.service_errors.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("{}: the service reported an error: {}", log_name(),
                   logtext::log_text(conv_->last_error()));
    }
  }

  void broke(const net::WsClose& c) override {
    if (was_open() && sh_->options->reconnect && !reconnected_) {
      // Once per call: a new socket, and the conversation so far told to it as items.
      reconnected_ = true;
      conv_->disconnected();
      sh_->counters.reconnects.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("{}: the socket broke ({}); reconnecting once", log_name(),
                   logtext::log_text(c.reason));
      connect();
      return;
    }
    fail(StreamStatus::kUnavailable,
         std::string(was_open() ? "the socket broke: " : "cannot connect: ") +
             logtext::log_text(c.reason));
  }

  bool reconnected_ = false;
};

}  // namespace

RealtimeBackend::RealtimeBackend(RealtimeOptions options, int resampler_quality)
    : Backend("realtime", "an OpenAI Realtime backend", std::move(options), resampler_quality) {}

std::shared_ptr<providers::AgentStream> RealtimeBackend::open_agent(
    const providers::ProviderTarget&, const agent::v1::AgentConfig& config, providers::Poster post,
    providers::AgentEvents events, std::size_t max_queued) {
  return open<Stream>(config, std::move(post), std::move(events), max_queued);
}

}  // namespace voxbridge::realtime_openai
