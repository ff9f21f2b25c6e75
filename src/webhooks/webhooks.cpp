#include "voxbridge/webhooks/webhooks.hpp"
#include "voxbridge/net/backoff.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/url.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

namespace voxbridge::webhooks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::size_t kMaxResponseBody = 64 * 1024;  // read (and ignored) past the status

std::string hex(const unsigned char* p, std::size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 0x0f]);
  }
  return out;
}

/// Where the events go. Its `origin` (scheme://host:port) is all that is ever logged.
net::HttpUrl parse_target(const std::string& url) {
  try {
    return net::parse_http_url(url);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("webhook url: ") + e.what());
  }
}

/// Event names go into a header: a token of letters, digits and ._- only.
bool valid_event(std::string_view e) {
  return !e.empty() && e.size() <= 128 && std::all_of(e.begin(), e.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

struct Item {
  std::string event;
  std::string body;
  std::string id;  // the delivery id, given when it is first sent
};

enum class Verdict { kDelivered, kRejected, kRetry };

struct Outcome {
  Verdict verdict = Verdict::kRetry;
  std::string why;
};

Outcome classify(unsigned status, std::string_view reason) {
  std::string why = "HTTP " + std::to_string(status);
  if (!reason.empty()) why += " " + std::string(reason);
  if (status >= 200 && status < 300) return {Verdict::kDelivered, why};
  if (status == 408 || status == 429 || status >= 500) return {Verdict::kRetry, why};
  if (status >= 300 && status < 400) why += " (redirects are not followed)";
  return {Verdict::kRejected, why};
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  static const unsigned char kNothing = 0;  // OpenSSL wants non-null pointers
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kNothing) : key.data();
  const auto* d = data.empty() ? &kNothing : reinterpret_cast<const unsigned char*>(data.data());
  if (HMAC(EVP_sha256(), k, static_cast<int>(key.size()), d, data.size(), md, &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return hex(md, len);
}

std::string sign(std::string_view secret, std::string_view timestamp, std::string_view body) {
  std::string data;
  data.reserve(timestamp.size() + 1 + body.size());
  data.append(timestamp).append(".").append(body);
  return hmac_sha256_hex(secret, data);
}

struct WebhookSender::Impl {
  explicit Impl(WebhookOptions o) : opts(std::move(o)), target(parse_target(opts.url)) {
    opts.max_attempts = std::max(1, opts.max_attempts);
    if (target.tls) {
      try {
        tls_ctx = std::make_unique<asio::ssl::context>(
            net::tls_client_context({opts.ca_file, opts.verify_tls}));
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(std::string("webhooks: ") + e.what());
      }
    }
    wake.expires_at(asio::steady_timer::time_point::max());
  }

  // Declared first, destroyed last: coroutines left suspended when stop() ended the loop are
  // destroyed with it, after the members below. They use `this`, never an owner (an owning
  // handler inside `io` would be a cycle and leak).
  asio::io_context io{1};
  WebhookOptions opts;
  net::HttpUrl target;
  std::unique_ptr<asio::ssl::context> tls_ctx;
  WebhookStats stats;

  std::mutex mu;  // guards the members up to `thread`
  std::deque<Item> queue;
  bool accepting = true;  // false once stop() began
  bool started = false;
  bool idle = false;         // the worker waits on `wake` (post() then wakes it)
  bool in_flight = false;    // the worker holds an item
  bool stopping = false;     // flush what is queued, then end
  bool warned_full = false;  // logged that the queue is full (once until it drains)
  std::thread thread;

  // The sender's thread only:
  asio::steady_timer wake{io};      // idle worker
  asio::steady_timer backoff{io};   // between attempts
  asio::steady_timer watchdog{io};  // bounds name resolution
  asio::steady_timer flush{io};     // stop()'s deadline
  std::mt19937_64 rng{std::random_device{}()};

  std::string new_id() {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
      for (auto& x : b) x = static_cast<unsigned char>(rng());
    }
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 1
    const std::string h = hex(b, sizeof b);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
           "-" + h.substr(20);
  }

  http::request<http::string_body> make_request(const Item& item) const {
    const std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    http::request<http::string_body> req{http::verb::post, target.target, 11};
    req.set(http::field::host, target.authority);
    req.set(http::field::user_agent, "voxbridge");
    req.set(http::field::content_type, "application/json");
    req.set("X-Voxbridge-Event", item.event);
    req.set("X-Voxbridge-Delivery", item.id);
    req.set("X-Voxbridge-Timestamp", ts);
    if (!opts.secret.empty()) {
      req.set("X-Voxbridge-Signature", "sha256=" + sign(opts.secret, ts, item.body));
    }
    req.keep_alive(false);  // a connection per attempt
    req.body() = item.body;
    req.prepare_payload();
    return req;
  }

  template <class Stream>
  static awaitable<Outcome> exchange(Stream& s, const http::request<http::string_body>& req) {
    co_await http::async_write(s, req, use_awaitable);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    auto [ec, n] = co_await http::async_read(s, buf, parser, asio::as_tuple(use_awaitable));
    // Once the status line is in, the receiver has decided: a body cut short (a TLS peer that
    // closes without close_notify, an overlong body) does not change that.
    if (ec && !parser.is_header_done()) throw boost::system::system_error(ec);
    const auto& res = parser.get();
    co_return classify(res.result_int(), res.reason());
  }

  /// One attempt on a connection of its own, within opts.timeout.
  awaitable<Outcome> attempt(const Item& item) {
    const auto deadline = Clock::now() + opts.timeout;
    const std::string no_answer =
        "no answer within " + std::to_string(opts.timeout.count()) + " ms";
    auto resolver = std::make_shared<tcp::resolver>(io);
    watchdog.expires_at(deadline);
    watchdog.async_wait([resolver](boost::system::error_code ec) {
      if (!ec) resolver->cancel();
    });
    auto [rec, endpoints] =
        co_await resolver->async_resolve(target.host, target.port, asio::as_tuple(use_awaitable));
    watchdog.cancel();
    if (rec) {
      co_return Outcome{Verdict::kRetry,
                        Clock::now() >= deadline
                            ? no_answer
                            : "cannot resolve " + target.host + ": " + rec.message()};
    }
    beast::tcp_stream stream(io);
    stream.expires_at(deadline);  // connect, TLS, request and answer
    try {
      co_await stream.async_connect(endpoints, use_awaitable);
      const auto req = make_request(item);
      if (!tls_ctx) co_return co_await exchange(stream, req);
      asio::ssl::stream<beast::tcp_stream&> tls(stream, *tls_ctx);
      net::tls_client_prepare(tls.native_handle(), target.host, opts.verify_tls);
      co_await tls.async_handshake(asio::ssl::stream_base::client, use_awaitable);
      co_return co_await exchange(tls, req);
    } catch (const boost::system::system_error& e) {
      co_return Outcome{Verdict::kRetry,
                        e.code() == beast::error::timeout ? no_answer : e.code().message()};
    } catch (const std::runtime_error& e) {  // TLS: the host's name refused
      co_return Outcome{Verdict::kRetry, e.what()};
    }
  }

  awaitable<void> deliver(Item& item) {
    item.id = new_id();
    net::Backoff pauses(opts.backoff, std::max(kMaxBackoff, opts.backoff),
                        static_cast<std::uint32_t>(rng()));
    for (int n = 1;; ++n) {
      if (n > 1) ++stats.retries;
      const Outcome out = co_await attempt(item);
      if (out.verdict == Verdict::kDelivered) {
        ++stats.delivered;
        spdlog::debug("webhooks: {} {} delivered to {} ({}, attempt {})", item.event, item.id,
                      target.origin, out.why, n);
        co_return;
      }
      if (out.verdict == Verdict::kRejected) {
        ++stats.failed;
        spdlog::warn("webhooks: {} refused {} {}: {}; not retried", target.origin, item.event,
                     item.id, out.why);
        co_return;
      }
      if (n >= opts.max_attempts) {
        ++stats.failed;
        spdlog::warn("webhooks: gave up on {} {} to {} after {} attempts: {}", item.event, item.id,
                     target.origin, n, out.why);
        co_return;
      }
      const auto wait = pauses.next();
      spdlog::debug("webhooks: {} {} to {}: {}; attempt {} in {} ms", item.event, item.id,
                    target.origin, out.why, n + 1, wait.count());
      backoff.expires_after(wait);
      co_await backoff.async_wait(asio::as_tuple(use_awaitable));
    }
  }

  awaitable<void> run() {
    for (;;) {
      std::optional<Item> item;
      {
        std::lock_guard lock(mu);
        if (!queue.empty()) {
          item.emplace(std::move(queue.front()));
          queue.pop_front();
          in_flight = true;
        } else if (stopping) {
          break;
        } else {
          idle = true;
          warned_full = false;  // drained: warn again when it next fills up
        }
      }
      if (!item) {
        co_await wake.async_wait(asio::as_tuple(use_awaitable));
        continue;
      }
      co_await deliver(*item);
      std::lock_guard lock(mu);
      in_flight = false;
    }
    flush.cancel();  // all sent: the thread ends before the deadline
  }
};

WebhookSender::WebhookSender(WebhookOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {}

WebhookSender::~WebhookSender() {
  stop(kDestructorFlush);
}

const WebhookStats& WebhookSender::stats() const {
  return impl_->stats;
}

void WebhookSender::start() {
  Impl& i = *impl_;
  {
    std::lock_guard lock(i.mu);
    if (i.started || !i.accepting) return;
    i.started = true;
  }
  asio::co_spawn(i.io, i.run(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("webhooks: sender failed: {}", net::error_text(ex));
    }
  });
  i.thread = std::thread([&i] { i.io.run(); });
  std::string events;
  for (const auto& e : i.opts.events) events += (events.empty() ? "" : ", ") + e;
  spdlog::info("webhooks: sending {} to {}{}{}", events.empty() ? "all events" : events,
               i.target.origin, i.opts.secret.empty() ? " (unsigned)" : "",
               i.tls_ctx && !i.opts.verify_tls ? " (TLS certificate NOT verified)" : "");
}

void WebhookSender::stop(std::chrono::milliseconds flush) {
  Impl& i = *impl_;
  {
    std::lock_guard lock(i.mu);
    if (!i.accepting) return;
    i.accepting = false;
  }
  if (i.thread.joinable()) {
    const auto deadline = Clock::now() + flush;
    asio::post(i.io, [&i, deadline] {
      {
        std::lock_guard lock(i.mu);
        i.stopping = true;
      }
      i.flush.expires_at(deadline);
      i.flush.async_wait([&i](boost::system::error_code ec) {
        if (!ec) i.io.stop();  // whatever is still queued or in flight is abandoned
      });
      i.wake.cancel();
    });
    i.thread.join();
  }
  std::size_t left = 0;
  {
    std::lock_guard lock(i.mu);
    left = i.queue.size() + (i.in_flight ? 1 : 0);
    i.queue.clear();
    i.in_flight = false;
  }
  if (left > 0) {
    i.stats.abandoned += left;
    spdlog::warn("webhooks: stopped with {} event(s) to {} not delivered", left, i.target.origin);
  }
}

bool WebhookSender::post(std::string_view event, std::string json_body) {
  Impl& i = *impl_;
  if (!valid_event(event) ||
      (!i.opts.events.empty() && !i.opts.events.contains(std::string(event)))) {
    ++i.stats.filtered;
    return false;
  }
  bool accepted = false, wake = false, warn_full = false;
  {
    std::lock_guard lock(i.mu);
    if (!i.accepting || i.queue.size() >= i.opts.queue_limit) {
      ++i.stats.dropped;
      warn_full = i.accepting && !std::exchange(i.warned_full, true);
    } else {
      i.queue.push_back(Item{std::string(event), std::move(json_body), {}});
      ++i.stats.queued;
      accepted = true;
      wake = std::exchange(i.idle, false);
    }
  }
  if (warn_full) {
    spdlog::warn("webhooks: queue to {} full ({} events): dropping events", i.target.origin,
                 i.opts.queue_limit);
  }
  if (wake) asio::post(i.io, [&i] { i.wake.cancel(); });
  return accepted;
}

}  // namespace voxbridge::webhooks
