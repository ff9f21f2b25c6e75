#include "voxbridge/net/http_pool.hpp"

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/url.hpp"

namespace voxbridge::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kPieceBytes = 16 * 1024;

template <bool Tls>
using Stream = std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

/// One TCP (and TLS) connection, in use by one exchange or idle in the pool.
template <bool Tls>
struct Conn {
  Conn(asio::any_io_executor ex, asio::ssl::context* tls) : stream(make(ex, tls)), idle_timer(ex) {}
  static Stream<Tls> make(const asio::any_io_executor& ex, asio::ssl::context* tls) {
    if constexpr (Tls) {
      return Stream<Tls>(ex, *tls);
    } else {
      (void)tls;
      return Stream<Tls>(ex);
    }
  }
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream); }
  void close() {
    error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

  Stream<Tls> stream;
  beast::flat_buffer buffer;
  asio::steady_timer idle_timer;
  std::uint64_t idle_gen = 0;
};

template <bool Tls>
class Pool;

template <bool Tls>
class Exchange final : public HttpExchange, public std::enable_shared_from_this<Exchange<Tls>> {
 public:
  Exchange(std::shared_ptr<Pool<Tls>> pool, HttpRequest r, HttpHandlers h)
      : pool_(std::move(pool)), h_(std::move(h)), resolver_(pool_->executor()) {
    const auto& url = pool_->url();
    req_.method_string(r.method);
    req_.target(pool_->base_path() + r.target);
    req_.version(11);
    req_.set(http::field::host, url.authority);
    req_.set(http::field::user_agent, "voxbridge");
    if (!r.content_type.empty()) req_.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) req_.set(name, value);
    req_.keep_alive(true);
    req_.body() = std::move(r.body);
    req_.prepare_payload();
  }

  void begin() {
    if (cancelled_) return finish(cancelled_done());
    conn_ = pool_->take();
    if (conn_) {
      reused_ = true;
      pool_->count_reused();
      return send();
    }
    open();
  }

  void cancel() override {
    asio::post(pool_->executor(), [self = this->shared_from_this()] { self->do_cancel(); });
  }

 private:
  std::shared_ptr<Exchange> self() { return this->shared_from_this(); }

  static HttpDone cancelled_done() {
    HttpDone d;
    d.cancelled = true;
    d.error = "cancelled";
    return d;
  }

  void do_cancel() {
    if (finished_ || cancelled_) return;
    cancelled_ = true;
    resolver_.cancel();
    if (conn_) conn_->close();  // the operation under way completes with an error
  }

  void open() {
    conn_ = std::make_unique<Conn<Tls>>(pool_->executor(), pool_->tls());
    reused_ = false;
    pool_->count_opened();
    connecting_ = true;
    const auto& url = pool_->url();
    resolver_.async_resolve(url.host, url.port,
                            [self = self()](error_code ec, tcp::resolver::results_type r) {
                              self->on_resolve(ec, std::move(r));
                            });
  }

  void on_resolve(error_code ec, const tcp::resolver::results_type& results) {
    if (cancelled_) return finish(cancelled_done());
    if (ec) return fail("resolve " + pool_->url().host + ": " + ec.message());
    conn_->tcp().expires_after(pool_->options().connect_timeout);
    conn_->tcp().async_connect(
        results, [self = self()](error_code cec, const tcp::endpoint&) { self->on_tcp(cec); });
  }

  void on_tcp(error_code ec) {
    if (cancelled_) return finish(cancelled_done());
    if (ec == beast::error::timeout) {
      return fail("connect " + pool_->url().authority + ": no answer within " +
                  std::to_string(pool_->options().connect_timeout.count()) + " ms");
    }
    if (ec) return fail("connect " + pool_->url().authority + ": " + ec.message());
    conn_->tcp().socket().set_option(tcp::no_delay(true), ec);
    if constexpr (Tls) {
      try {
        tls_client_prepare(conn_->stream.native_handle(), pool_->url().host, pool_->verify());
      } catch (const std::runtime_error& e) {
        return fail(e.what());
      }
      conn_->stream.async_handshake(asio::ssl::stream_base::client,
                                    [self = self()](error_code hec) { self->on_tls(hec); });
    } else {
      connecting_ = false;
      send();
    }
  }

  void on_tls(error_code ec) {
    if (cancelled_) return finish(cancelled_done());
    if (ec) {
      if constexpr (Tls) {
        const std::string why = tls_verify_failure(conn_->stream.native_handle());
        if (!why.empty()) return fail("certificate verify failed: " + why);
      }
      if (ec == beast::error::timeout) {
        return fail("TLS handshake with " + pool_->url().authority + ": no answer within " +
                    std::to_string(pool_->options().connect_timeout.count()) + " ms");
      }
      return fail("TLS handshake failed: " + ec.message());
    }
    connecting_ = false;
    send();
  }

  void send() {
    pool_->count_request();
    conn_->tcp().expires_after(pool_->options().stall_timeout);
    http::async_write(conn_->stream, req_,
                      [self = self()](error_code ec, std::size_t) { self->on_written(ec); });
  }

  void on_written(error_code ec) {
    if (cancelled_) return finish(cancelled_done());
    if (ec) {
      if (retry()) return;
      return fail(ec == beast::error::timeout
                      ? "the request could not be sent within " + std::to_string(stall_ms()) + " ms"
                      : "write: " + ec.message());
    }
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(pool_->options().max_body_bytes);
    conn_->tcp().expires_after(pool_->options().stall_timeout);
    http::async_read_header(conn_->stream, conn_->buffer, *parser_,
                            [self = self()](error_code rec, std::size_t) { self->on_header(rec); });
  }

  void on_header(error_code ec) {
    if (cancelled_) return finish(cancelled_done());
    if (ec) {
      if (ec != beast::error::timeout && !parser_->got_some() && retry()) return;
      if (ec == beast::error::timeout) {
        return fail("no response header within " + std::to_string(stall_ms()) + " ms");
      }
      if (ec == http::error::header_limit) {
        return fail("response header over " + std::to_string(kMaxHeaderBytes) + " bytes");
      }
      if (ec == http::error::body_limit) {  // a Content-Length over it, seen in the header
        return fail("response body over " + std::to_string(pool_->options().max_body_bytes) +
                    " bytes");
      }
      return fail("reading the response header: " + ec.message());
    }
    const auto& res = parser_->get();
    status_ = static_cast<int>(res.result_int());
    HttpResponseHead head;
    head.status = status_;
    head.content_type = std::string(res[http::field::content_type]);
    head.retry_after = std::string(res[http::field::retry_after]);
    if (h_.head) h_.head(head);
    if (cancelled_) return finish(cancelled_done());
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return complete();
    parser_->get().body().data = piece_.data();
    parser_->get().body().size = piece_.size();
    conn_->tcp().expires_after(pool_->options().stall_timeout);
    http::async_read_some(conn_->stream, conn_->buffer, *parser_,
                          [self = self()](error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(error_code ec) {
    if (cancelled_) return finish(cancelled_done());
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t n = piece_.size() - parser_->get().body().size;
    if (n > 0 && h_.body) {
      h_.body(std::string_view(piece_.data(), n));
      if (cancelled_) return finish(cancelled_done());
    }
    if (ec == beast::error::timeout) {
      return fail("the response stalled: nothing for " + std::to_string(stall_ms()) + " ms");
    }
    if (ec == http::error::body_limit) {
      return fail("response body over " + std::to_string(pool_->options().max_body_bytes) +
                  " bytes");
    }
    if (ec == http::error::partial_message || ec == asio::error::eof) {
      return fail("the server closed the connection mid-response");
    }
    if (ec) return fail("reading the response: " + ec.message());
    read_body();
  }

  void complete() {
    const bool keep = parser_->keep_alive();
    parser_.reset();
    conn_->tcp().expires_never();
    if (keep) {
      pool_->put(std::move(conn_));  // before `done`: a request it starts may reuse it
    } else {
      conn_->close();
      conn_.reset();
    }
    HttpDone d;
    d.complete = true;
    d.status = status_;
    finish(d);
  }

  /// A reused connection that failed before any answer: the server had closed it while idle.
  bool retry() {
    if (!reused_ || retried_) return false;
    retried_ = true;
    pool_->count_retried();
    conn_->close();
    conn_.reset();
    open();
    return true;
  }

  void fail(std::string why) {
    HttpDone d;
    d.status = status_;
    d.error = std::move(why);
    finish(d);
  }

  void finish(const HttpDone& d) {
    if (finished_) return;
    finished_ = true;
    if (conn_) {
      conn_->close();
      conn_.reset();
    }
    if (h_.done) h_.done(d);
    h_ = {};
  }

  long long stall_ms() const { return pool_->options().stall_timeout.count(); }

  std::shared_ptr<Pool<Tls>> pool_;
  HttpHandlers h_;
  tcp::resolver resolver_;
  http::request<http::string_body> req_;
  std::unique_ptr<Conn<Tls>> conn_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::array<char, kPieceBytes> piece_{};
  int status_ = 0;
  bool reused_ = false;
  bool retried_ = false;
  bool connecting_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
};

template <bool Tls>
class Pool final : public HttpPool, public std::enable_shared_from_this<Pool<Tls>> {
 public:
  Pool(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls, bool verify,
       HttpPoolOptions o, HttpUrl url)
      : ex_(std::move(ex)),
        tls_(std::move(tls)),
        verify_(verify),
        opts_(std::move(o)),
        url_(std::move(url)) {
    base_path_ = url_.target;
    if (const auto q = base_path_.find('?'); q != std::string::npos) base_path_.resize(q);
    while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  }

  std::shared_ptr<HttpExchange> start(HttpRequest request, HttpHandlers handlers) override {
    auto x = std::make_shared<Exchange<Tls>>(this->shared_from_this(), std::move(request),
                                             std::move(handlers));
    asio::post(ex_, [x] { x->begin(); });
    return x;
  }

  void close_idle() override {
    for (auto& c : idle_) {
      c->idle_timer.cancel();
      c->close();
    }
    idle_.clear();
  }

  std::size_t idle() const override { return idle_.size(); }

  HttpPoolCounters counters() const override {
    HttpPoolCounters c;
    c.connections_opened = opened_.load(std::memory_order_relaxed);
    c.requests = requests_.load(std::memory_order_relaxed);
    c.reused = reused_.load(std::memory_order_relaxed);
    c.retried = retried_.load(std::memory_order_relaxed);
    return c;
  }

  const asio::any_io_executor& executor() const override { return ex_; }

  // --- for the exchanges (the pool's thread) ---
  const HttpUrl& url() const { return url_; }
  const std::string& base_path() const { return base_path_; }
  const HttpPoolOptions& options() const { return opts_; }
  asio::ssl::context* tls() const { return tls_.get(); }
  bool verify() const { return verify_; }
  void count_opened() { opened_.fetch_add(1, std::memory_order_relaxed); }
  void count_request() { requests_.fetch_add(1, std::memory_order_relaxed); }
  void count_reused() { reused_.fetch_add(1, std::memory_order_relaxed); }
  void count_retried() { retried_.fetch_add(1, std::memory_order_relaxed); }

  /// The most recently used idle connection, or null.
  std::unique_ptr<Conn<Tls>> take() {
    if (idle_.empty()) return nullptr;
    auto c = std::move(idle_.back());
    idle_.pop_back();
    ++c->idle_gen;
    c->idle_timer.cancel();
    return c;
  }

  /// A connection whose response was read to the end and may carry another request.
  void put(std::unique_ptr<Conn<Tls>> c) {
    if (opts_.max_idle == 0 || opts_.idle_timeout.count() <= 0) return c->close();
    if (idle_.size() >= opts_.max_idle) {  // the least recently used goes
      idle_.front()->idle_timer.cancel();
      idle_.front()->close();
      idle_.erase(idle_.begin());
    }
    const std::uint64_t gen = ++c->idle_gen;
    Conn<Tls>* raw = c.get();
    c->idle_timer.expires_after(opts_.idle_timeout);
    c->idle_timer.async_wait([w = this->weak_from_this(), raw, gen](error_code ec) {
      auto self = w.lock();
      if (ec || !self) return;
      self->expire(raw, gen);
    });
    idle_.push_back(std::move(c));
  }

 private:
  void expire(Conn<Tls>* raw, std::uint64_t gen) {
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->get() == raw && raw->idle_gen == gen) {
        raw->close();
        idle_.erase(it);
        return;
      }
    }
  }

  asio::any_io_executor ex_;
  std::shared_ptr<asio::ssl::context> tls_;
  bool verify_;
  HttpPoolOptions opts_;
  HttpUrl url_;
  std::string base_path_;
  std::vector<std::unique_ptr<Conn<Tls>>> idle_;  // back: the most recently used
  std::atomic<std::uint64_t> opened_{0}, requests_{0}, reused_{0}, retried_{0};
};

}  // namespace

std::shared_ptr<HttpPool> HttpPool::create(asio::any_io_executor ex,
                                           std::shared_ptr<asio::ssl::context> tls, bool verify,
                                           HttpPoolOptions options) {
  HttpUrl url = parse_http_url(options.base_url);
  if (url.tls) {
    if (!tls) throw std::invalid_argument("https:// needs a TLS context");
    return std::make_shared<Pool<true>>(std::move(ex), std::move(tls), verify, std::move(options),
                                        std::move(url));
  }
  return std::make_shared<Pool<false>>(std::move(ex), nullptr, verify, std::move(options),
                                       std::move(url));
}

HttpPools::HttpPools(HttpPoolOptions options, const std::string& ca_file, int threads) {
  const HttpUrl url = parse_http_url(options.base_url);
  std::shared_ptr<asio::ssl::context> tls;
  if (url.tls) tls = std::make_shared<asio::ssl::context>(tls_client_context({ca_file, true}));
  io_ = std::make_unique<IoPool>(static_cast<std::size_t>(threads < 1 ? 1 : threads));
  for (std::size_t i = 0; i < io_->size(); ++i) {
    pools_.push_back(HttpPool::create(io_->context(i).get_executor(), tls, true, options));
  }
  io_->start();
}

HttpPools::~HttpPools() {
  stop();
}

const std::shared_ptr<HttpPool>& HttpPools::next() {
  return pools_[next_.fetch_add(1, std::memory_order_relaxed) % pools_.size()];
}

HttpPoolCounters HttpPools::counters() const {
  HttpPoolCounters sum;
  for (const auto& p : pools_) {
    const auto c = p->counters();
    sum.connections_opened += c.connections_opened;
    sum.requests += c.requests;
    sum.reused += c.reused;
    sum.retried += c.retried;
  }
  return sum;
}

void HttpPools::stop() {
  if (stopped_.exchange(true)) return;
  for (const auto& p : pools_) asio::post(p->executor(), [p] { p->close_idle(); });
  io_->stop_when_idle();
}

}  // namespace voxbridge::net
