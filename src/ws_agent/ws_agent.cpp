#include "voxbridge/ws_agent/ws_agent.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <stdexcept>
#include <thread>

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/tls_client.hpp"

namespace voxbridge::ws_agent {

namespace asio = boost::asio;
using providers::StreamStatus;

// --- Sessions -----------------------------------------------------------------------------------

Sessions::Sessions(std::string name, const std::string& url, const std::string& ca_file,
                   int threads, std::size_t max, StreamCounters& counters)
    : name_(std::move(name)), max_(max), counters_(counters) {
  if (url.rfind("wss://", 0) == 0) {
    tls_ = std::make_shared<asio::ssl::context>(net::tls_client_context({ca_file, true}));
  }
  pool_ = std::make_unique<net::IoPool>(static_cast<std::size_t>(std::max(1, threads)));
  pool_->start();
}

Sessions::~Sessions() {
  stop();
}

void Sessions::stop() {
  if (stopped_.exchange(true)) return;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (count_.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pool_->stop_now();
}

asio::io_context& Sessions::acquire() {
  const std::size_t now = count_.fetch_add(1) + 1;
  if (max_ > 0 && now > max_) {
    count_.fetch_sub(1);
    counters_.sessions_refused.fetch_add(1, std::memory_order_relaxed);
    throw std::runtime_error(name_ + ": all " + std::to_string(max_) +
                             " sessions (max_sessions) are in use");
  }
  counters_.sessions_opened.fetch_add(1, std::memory_order_relaxed);
  return pool_->context(next_.fetch_add(1) % pool_->size());
}

void Sessions::release() {
  count_.fetch_sub(1);
}

// --- WsAgentStream: the call's thread -----------------------------------------------------------

WsAgentStream::WsAgentStream(Setup setup, asio::io_context& io, providers::Poster post,
                             providers::AgentEvents events, std::size_t max_queued)
    : setup_(std::move(setup)),
      io_(io),
      post_(std::move(post)),
      ev_(std::move(events)),
      max_queued_(max_queued),
      cap_timer_(io) {}

WsAgentStream::~WsAgentStream() {
  setup_.sessions->release();
}

void WsAgentStream::start(agent::v1::AgentConfig config) {
  asio::post(io_, [self = shared_from_this(), config = std::move(config)]() mutable {
    try {
      self->make_conversation(std::move(config));
    } catch (const std::exception& e) {
      self->end({StreamStatus::kInvalidArgument, e.what()});
      return;
    }
    self->connect();
  });
}

bool WsAgentStream::send(agent::v1::AgentRequest request) {
  if (finished_.load(std::memory_order_relaxed) ||
      queued_.load(std::memory_order_relaxed) >= max_queued_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    setup_.counters->dropped_messages.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  queued_.fetch_add(1, std::memory_order_relaxed);
  asio::post(io_, [self = shared_from_this(), r = std::move(request)]() mutable {
    self->queued_.fetch_sub(1, std::memory_order_relaxed);
    if (!self->ended_) self->request(r);
  });
  return true;
}

void WsAgentStream::finish() {
  finished_ = true;
  asio::post(io_, [self = shared_from_this()] { self->close_socket(); });
}

void WsAgentStream::cancel() {
  finished_ = true;
  asio::post(io_, [self = shared_from_this()] {
    self->closing_ = true;
    if (self->ws_) self->ws_->abort();
    self->end({StreamStatus::kCancelled, "cancelled"});
  });
}

void WsAgentStream::close(std::chrono::milliseconds grace) {
  (void)grace;
  owner_gone_ = true;
  finished_ = true;
  asio::post(io_, [self = shared_from_this()] { self->close_socket(); });
}

void WsAgentStream::pause_reads() {
  asio::post(io_, [self = shared_from_this()] { self->paused_ = true; });
}

void WsAgentStream::resume_reads() {
  asio::post(io_, [self = shared_from_this()] {
    self->paused_ = false;
    while (!self->held_.empty()) {
      self->deliver(std::move(self->held_.front()));
      self->held_.pop_front();
    }
  });
}

// --- WsAgentStream: the io thread ---------------------------------------------------------------

void WsAgentStream::connect() {
  if (ended_) return;
  net::WsOptions w = socket_options();
  // Each socket's handlers carry its generation: a replaced socket's late messages and its
  // close are ignored.
  const std::uint64_t gen = ++gen_;
  net::WsHandlers h;
  auto weak = weak_from_this();
  h.open = [weak, gen] {
    if (auto s = weak.lock(); s && s->gen_ == gen) s->on_open();
  };
  h.message = [weak, gen](std::string_view m) {
    if (auto s = weak.lock(); s && s->gen_ == gen && !s->ended_) s->message(m);
  };
  h.closed = [weak, gen](const net::WsClose& c) {
    if (auto s = weak.lock(); s && s->gen_ == gen) s->on_socket_closed(c);
  };
  if (ws_) ws_->close();  // replaced: its handlers are of an older generation from now on
  try {
    ws_ = net::WsClient::create(io_.get_executor(), setup_.sessions->tls(), true, std::move(w),
                                std::move(h));
  } catch (const std::exception& e) {
    ws_.reset();
    end({StreamStatus::kInvalidArgument, e.what()});
    return;
  }
  ws_->connect();
}

void WsAgentStream::send_text(std::string text) {
  if (ws_ && !ws_->send(std::move(text))) {
    // The service does not read what we send (1 MiB waiting): it is as good as gone.
    fail(StreamStatus::kUnavailable, "the service stopped reading (send queue full)");
  }
}

void WsAgentStream::on_open() {
  if (ended_) return;
  was_open_ = true;
  opened();
  const auto cap = setup_.max_call_duration;
  if (cap.count() > 0 && !cap_armed_ && !ended_) {
    cap_armed_ = true;
    cap_timer_.expires_after(cap);
    cap_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto s = weak.lock();
      if (!ec && s && !s->ended_) s->duration_cap();
    });
  }
}

void WsAgentStream::on_socket_closed(const net::WsClose& c) {
  if (ended_) return;
  if (closing_) {
    end({StreamStatus::kOk, ""});
    return;
  }
  if (c.http_status != 0) {
    std::string why = "the service refused the session: HTTP " + std::to_string(c.http_status);
    if (!c.retry_after.empty()) why += " (retry after " + logtext::log_text(c.retry_after) + ")";
    if (!c.http_body.empty()) why += ": " + logtext::log_text(c.http_body.substr(0, 300));
    fail(c.http_status == 429 ? StreamStatus::kResourceExhausted : StreamStatus::kUnavailable, why);
    return;
  }
  broke(c);
}

void WsAgentStream::close_socket() {
  if (ended_) return;
  closing_ = true;
  cap_timer_.cancel();
  if (ws_) {
    ws_->close();
  } else {
    end({StreamStatus::kOk, ""});
  }
}

void WsAgentStream::fail(int code, const std::string& why) {
  if (ended_) return;
  setup_.counters->sessions_failed.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("{}: {}", setup_.log_name, why);
  closing_ = true;
  if (ws_) ws_->abort();
  end({code, why});
}

void WsAgentStream::deliver(agent::v1::AgentResponse r) {
  if (ended_) return;
  if (paused_) {
    if (held_.size() >= kMaxHeldResponses) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    held_.push_back(std::move(r));
    return;
  }
  post_([self = shared_from_this(), r = std::move(r)]() mutable {
    if (!self->owner_gone_ && self->ev_.response) self->ev_.response(r);
  });
}

void WsAgentStream::end(StreamStatus st) {
  if (ended_) return;
  ended_ = true;
  cap_timer_.cancel();
  held_.clear();
  post_([self = shared_from_this(), st = std::move(st)] {
    if (!self->owner_gone_ && self->ev_.closed) self->ev_.closed(st);
  });
}

}  // namespace voxbridge::ws_agent
