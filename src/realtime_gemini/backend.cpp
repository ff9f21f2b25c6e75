#include "voxbridge/realtime_gemini/backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <optional>

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/url.hpp"
#include "voxbridge/realtime_gemini/conversation.hpp"

namespace voxbridge::realtime_gemini {

namespace asio = boost::asio;
using providers::StreamStatus;

namespace {

/// A server message can carry a few seconds of audio as base64.
constexpr std::size_t kMaxServerMessageBytes = 4u << 20;

}  // namespace

std::string session_url(const GeminiOptions& o) {
  return o.key_in_query ? o.url + "?key=" + net::percent_encode(o.api_key) : o.url;
}

namespace {

/// One call's Live session: the shared stream (ws_agent.hpp) with Gemini's wire protocol
/// (Conversation) and its resumption on a new socket.
class Stream final : public ws_agent::ConversationStream<Conversation, GeminiBackend::State> {
 public:
  using ConversationStream::ConversationStream;

 private:
  net::WsOptions socket_options() override {
    const GeminiOptions& o = *sh_->options;
    net::WsOptions w;
    w.url = session_url(o);
    if (!o.key_in_query) w.headers.emplace_back("x-goog-api-key", o.api_key);
    w.connect_timeout = o.connect_timeout;
    w.idle_timeout = o.idle_timeout;
    w.max_message_bytes = kMaxServerMessageBytes;
    return w;
  }

  void message(std::string_view m) override {
    std::string why;
    switch (conv_->server_event(m, why)) {
      case Conversation::Verdict::go_on:
        break;
      case Conversation::Verdict::fatal:
        fail(StreamStatus::kUnavailable, why);
        break;
      case Conversation::Verdict::resume:
        resume("the service sent goAway");
        break;
    }
  }

  /// A new socket goes on with the call (the old one, if still open, is closed politely).
  void resume(const std::string& why) {
    if (resumes_ >= sh_->options->max_resumes) {
      fail(StreamStatus::kUnavailable,
           why + ", and the call has resumed " + std::to_string(resumes_) + " times (max_resumes)");
      return;
    }
    ++resumes_;
    sh_->counters.resumptions.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("{}: {}; resuming on a new socket{}", log_name(), why,
                 conv_->resumption_handle().empty() ? " (no handle: a new session)" : "");
    conv_->disconnected();
    connect();
  }

  void broke(const net::WsClose& c) override {
    // The service ends what it refuses with a close frame: 1007 for a bad setup or message,
    // 1008 for policy (key, quota), 1011 for its own failure. Those end the call; a normal close
    // (1000) or a broken socket mid-call is resumed.
    const bool refused = c.clean && c.code != 1000;
    const std::string what = c.clean ? "the service closed the session (" + std::to_string(c.code) +
                                           " " + logtext::log_text(c.reason) + ")"
                                     : "the socket broke (" + logtext::log_text(c.reason) + ")";
    if (was_open() && conv_->ready() && !refused && sh_->options->resume) {
      resume(what);
      return;
    }
    fail(c.code == 1008 ? StreamStatus::kResourceExhausted : StreamStatus::kUnavailable,
         was_open() ? what : "cannot connect: " + logtext::log_text(c.reason));
  }

  int resumes_ = 0;
};

}  // namespace

GeminiBackend::GeminiBackend(GeminiOptions options, int resampler_quality)
    : Backend("gemini", "a Gemini Live backend", std::move(options), resampler_quality) {}

std::shared_ptr<providers::AgentStream> GeminiBackend::open_agent(
    const providers::ProviderTarget&, const agent::v1::AgentConfig& config, providers::Poster post,
    providers::AgentEvents events, std::size_t max_queued) {
  return open<Stream>(config, std::move(post), std::move(events), max_queued);
}

}  // namespace voxbridge::realtime_gemini
