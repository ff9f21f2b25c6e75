// WebhookSender against a local fake receiver (Boost.Beast, 127.0.0.1, ephemeral port) that
// records every request and answers each with a scripted status, or never.
#include "voxbridge/webhooks/webhooks.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "support/test_tls.hpp"

namespace voxbridge::webhooks {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// A webhook receiver. The script gives the status for the nth request (from 0); 0 = read the
/// request and never answer.
class FakeReceiver {
 public:
  using Script = std::function<int(std::size_t)>;
  struct Request {
    std::string method, target, body;
    std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
    int status = 0;                                            // what it was answered
    std::string header(const std::string& name) const {
      for (const auto& [k, v] : headers) {
        if (beast::iequals(k, name)) return v;
      }
      return {};
    }
    bool has(const std::string& name) const {
      for (const auto& [k, v] : headers) {
        if (beast::iequals(k, name)) return true;
      }
      return false;
    }
  };

  explicit FakeReceiver(
      Script script = [](std::size_t) { return 200; }, bool tls = false)
      : script_(std::move(script)) {
    if (tls) {
      const auto [cert, key] = testing::self_signed_localhost();
      ctx_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      ctx_->use_certificate_chain(asio::buffer(cert));
      ctx_->use_private_key(asio::buffer(key), asio::ssl::context::pem);
      ca_file_ = (std::filesystem::temp_directory_path() /
                  ("vb_webhooks_ca_" + std::to_string(port()) + ".pem"))
                     .string();
      std::ofstream(ca_file_) << cert;
    }
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeReceiver() {
    io_.stop();
    thread_.join();
    if (!ca_file_.empty()) std::filesystem::remove(ca_file_);
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path = "/hook") const {
    return ctx_ ? "https://localhost:" + std::to_string(port()) + path
                : "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  const std::string& ca_file() const { return ca_file_; }

  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  /// Waits until at least `n` requests have arrived.
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = 3s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return requests_.size() >= n; });
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    if (!ctx_) {
      co_await handle(socket);
      co_return;
    }
    asio::ssl::stream<tcp::socket> tls(std::move(socket), *ctx_);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server,
                                             asio::as_tuple(asio::use_awaitable));
    if (!ec) co_await handle(tls);
  }

  template <class Stream>
  asio::awaitable<void> handle(Stream& s) {
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(s, buf, req, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    Request r{std::string(req.method_string()), std::string(req.target()), req.body(), {}, 0};
    for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
    {
      std::lock_guard lock(mu_);
      r.status = script_(requests_.size());
      requests_.push_back(r);
    }
    cv_.notify_all();
    if (r.status == 0) {
      asio::steady_timer never(io_, asio::steady_timer::time_point::max());
      co_await never.async_wait(asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
    res.set(http::field::content_type, "text/plain");
    if (r.status != 204) res.body() = "thanks";
    res.keep_alive(false);
    res.prepare_payload();
    co_await http::async_write(s, res, asio::as_tuple(asio::use_awaitable));
  }

  Script script_;
  std::unique_ptr<asio::ssl::context> ctx_;  // outlives io_ (its handshakes die with io_)
  asio::io_context io_;
  tcp::acceptor acceptor_{io_, {asio::ip::make_address("127.0.0.1"), 0}};
  std::string ca_file_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
  std::thread thread_;
};

template <class F>
bool eventually(F done, std::chrono::milliseconds limit = 3s) {
  const auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

/// Fast retries for tests.
WebhookOptions fast(const std::string& url) {
  WebhookOptions o;
  o.url = url;
  o.timeout = 500ms;
  o.backoff = 5ms;
  o.max_attempts = 5;
  return o;
}

/// HMAC-SHA256 straight from OpenSSL's EVP_MAC, apart from the code under test.
std::string reference_hmac(const std::string& key, const std::string& data) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params);
  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  EVP_MAC_final(ctx, out, &len, sizeof out);
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  std::string hex;
  char b[3];
  for (std::size_t i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", out[i]);
    hex += b;
  }
  return hex;
}

/// A port with nothing listening on it.
unsigned short closed_port() {
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

TEST(WebhookSignature, HmacMatchesRfc4231Vectors) {
  // RFC 4231 test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 1: key 20 x 0x0b, "Hi There".
  EXPECT_EQ(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hmac_sha256_hex("", ""), reference_hmac("", ""));
}

TEST(WebhookSignature, SignIsHmacOfTimestampDotBody) {
  EXPECT_EQ(sign("s3cret", "1700000000", R"({"a":1})"),
            hmac_sha256_hex("s3cret", R"(1700000000.{"a":1})"));
  EXPECT_EQ(sign("s3cret", "1700000000", R"({"a":1})"),
            reference_hmac("s3cret", R"(1700000000.{"a":1})"));
  EXPECT_NE(sign("s3cret", "1700000001", R"({"a":1})"), sign("s3cret", "1700000000", R"({"a":1})"));
}

TEST(WebhookOptionsCheck, RejectsBadUrlsAndCaFiles) {
  for (const char* bad :
       {"ftp://example.com/x", "example.com/hook", "http://", "http:///x", "http://127.0.0.1:0/x",
        "http://127.0.0.1:99999/x", "http://user:pw@example.com/x", "http://[::1/x",
        "http://example.com/a b", "http://example.com/a\r\nX-Evil: 1"}) {
    WebhookOptions o;
    o.url = bad;
    EXPECT_THROW(WebhookSender{o}, std::invalid_argument) << bad;
  }
  WebhookOptions o;
  o.url = "https://localhost/hook";
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(WebhookSender{o}, std::runtime_error);
  o.url = "http://[::1]:8080";  // no path, IPv6: fine
  o.ca_file.clear();
  EXPECT_NO_THROW(WebhookSender{o});
}

TEST(Webhooks, SendsExactHeadersBodyAndSignature) {
  FakeReceiver rx;
  auto o = fast(rx.url("/hooks/vb?tenant=7"));
  o.secret = "s3cret";
  WebhookSender sender(o);
  sender.start();
  const std::string body = R"({"call":"7c9e","caller":"+12125551234"})";
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(sender.post("call_started", body));
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 1; }));
  const auto after = std::chrono::system_clock::now();
  sender.stop(1s);

  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& r = reqs[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/vb?tenant=7");
  EXPECT_EQ(r.body, body);
  std::vector<std::string> names;
  for (const auto& h : r.headers) names.push_back(h.first);
  EXPECT_EQ(names,
            (std::vector<std::string>{"Host", "User-Agent", "Content-Type", "X-Voxbridge-Event",
                                      "X-Voxbridge-Delivery", "X-Voxbridge-Timestamp",
                                      "X-Voxbridge-Signature", "Connection", "Content-Length"}));
  EXPECT_EQ(r.header("Host"), "127.0.0.1:" + std::to_string(rx.port()));
  EXPECT_EQ(r.header("User-Agent"), "voxbridge");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.header("X-Voxbridge-Event"), "call_started");
  EXPECT_TRUE(std::regex_match(
      r.header("X-Voxbridge-Delivery"),
      std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << r.header("X-Voxbridge-Delivery");
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_EQ(r.header("Content-Length"), std::to_string(body.size()));
  const std::string ts = r.header("X-Voxbridge-Timestamp");
  const auto secs = [](auto t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  };
  ASSERT_FALSE(ts.empty());
  EXPECT_GE(std::stoll(ts), secs(before));
  EXPECT_LE(std::stoll(ts), secs(after));
  EXPECT_EQ(r.header("X-Voxbridge-Signature"),
            "sha256=" + reference_hmac("s3cret", ts + "." + body));

  const auto& s = sender.stats();
  EXPECT_EQ(s.queued, 1u);
  EXPECT_EQ(s.delivered, 1u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.retries, 0u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.abandoned, 0u);
}

TEST(Webhooks, UnsignedWithoutSecretAndEachDeliveryHasItsOwnId) {
  FakeReceiver rx;
  WebhookSender sender(fast(rx.url()));
  sender.start();
  ASSERT_TRUE(sender.post("call_ended", R"({"transcript":[]})"));
  ASSERT_TRUE(sender.post("action", R"({"action":"transfer"})"));
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 2; }));
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_FALSE(reqs[0].has("X-Voxbridge-Signature"));
  EXPECT_TRUE(reqs[0].has("X-Voxbridge-Timestamp"));
  EXPECT_EQ(reqs[0].header("X-Voxbridge-Event"), "call_ended");
  EXPECT_EQ(reqs[1].header("X-Voxbridge-Event"), "action");
  EXPECT_NE(reqs[0].header("X-Voxbridge-Delivery"), reqs[1].header("X-Voxbridge-Delivery"));
}

TEST(Webhooks, RetriesOn5xx408And429ThenDelivers) {
  const std::vector<int> answers{500, 503, 429, 408, 200};
  FakeReceiver rx([&](std::size_t n) { return answers.at(n); });
  auto o = fast(rx.url());
  o.secret = "k";
  WebhookSender sender(o);
  sender.start();
  ASSERT_TRUE(sender.post("call_started", "{}"));
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 1; }));
  std::this_thread::sleep_for(50ms);  // nothing more comes
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 5u);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.header("X-Voxbridge-Delivery"), reqs[0].header("X-Voxbridge-Delivery"));
    EXPECT_EQ(r.header("X-Voxbridge-Signature"),
              "sha256=" + sign("k", r.header("X-Voxbridge-Timestamp"), "{}"));
  }
  EXPECT_EQ(sender.stats().retries, 4u);
  EXPECT_EQ(sender.stats().failed, 0u);
}

TEST(Webhooks, GivesUpAfterMaxAttempts) {
  FakeReceiver rx([](std::size_t) { return 502; });
  auto o = fast(rx.url());
  o.max_attempts = 3;
  WebhookSender sender(o);
  sender.start();
  ASSERT_TRUE(sender.post("call_started", "{}"));
  ASSERT_TRUE(eventually([&] { return sender.stats().failed == 1; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rx.requests().size(), 3u);
  EXPECT_EQ(sender.stats().retries, 2u);
  EXPECT_EQ(sender.stats().delivered, 0u);
}

TEST(Webhooks, ClientErrorsAreNotRetriedAndTheQueueMovesOn) {
  FakeReceiver rx([](std::size_t n) { return n == 0 ? 400 : n == 1 ? 404 : 200; });
  WebhookSender sender(fast(rx.url()));
  sender.start();
  ASSERT_TRUE(sender.post("call_started", R"({"n":0})"));
  ASSERT_TRUE(sender.post("call_started", R"({"n":1})"));
  ASSERT_TRUE(sender.post("call_started", R"({"n":2})"));
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 1; }));
  std::this_thread::sleep_for(50ms);  // backoff is 5 ms: a retry would have come
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].body, R"({"n":0})");
  EXPECT_EQ(reqs[1].body, R"({"n":1})");
  EXPECT_EQ(reqs[2].body, R"({"n":2})");
  EXPECT_EQ(sender.stats().failed, 2u);
  EXPECT_EQ(sender.stats().retries, 0u);
}

TEST(Webhooks, TimesOutWhenTheReceiverNeverAnswers) {
  FakeReceiver rx([](std::size_t) { return 0; });
  auto o = fast(rx.url());
  o.timeout = 100ms;
  o.max_attempts = 3;
  WebhookSender sender(o);
  sender.start();
  const auto t0 = Clock::now();
  ASSERT_TRUE(sender.post("call_ended", "{}"));
  ASSERT_TRUE(eventually([&] { return sender.stats().failed == 1; }));
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 300ms);  // three attempts of 100 ms
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(rx.requests().size(), 3u);
  EXPECT_EQ(sender.stats().retries, 2u);
  EXPECT_EQ(sender.stats().delivered, 0u);
}

TEST(Webhooks, LogsNeitherTheSecretNorTheUrlPath) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_level(spdlog::level::trace);
  spdlog::set_default_logger(capture);
  {
    FakeReceiver rx([](std::size_t n) { return n == 0 ? 403 : 500; });
    auto o = fast(rx.url("/hooks/T0KEN-in-path"));
    o.secret = "hunter2-secret";
    o.max_attempts = 2;
    WebhookSender sender(o);
    sender.start();
    ASSERT_TRUE(sender.post("call_started", "{}"));  // refused
    ASSERT_TRUE(sender.post("call_ended", "{}"));    // given up
    ASSERT_TRUE(eventually([&] { return sender.stats().failed == 2; }));
    sender.stop(100ms);
  }
  spdlog::set_default_logger(previous);
  const std::string text = log.str();
  EXPECT_NE(text.find("HTTP 403"), std::string::npos) << text;
  EXPECT_NE(text.find("gave up"), std::string::npos) << text;
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_EQ(text.find("T0KEN"), std::string::npos) << text;
}

TEST(Webhooks, RetriesWhenNothingListens) {
  auto o = fast("http://127.0.0.1:" + std::to_string(closed_port()) + "/hook");
  o.max_attempts = 3;
  WebhookSender sender(o);
  sender.start();
  ASSERT_TRUE(sender.post("call_started", "{}"));
  ASSERT_TRUE(eventually([&] { return sender.stats().failed == 1; }));
  EXPECT_EQ(sender.stats().retries, 2u);
}

TEST(Webhooks, FullQueueDropsAndCounts) {
  FakeReceiver rx;
  auto o = fast(rx.url());
  o.queue_limit = 3;
  WebhookSender sender(o);  // not started yet: everything waits in the queue
  for (int n = 0; n < 3; ++n) EXPECT_TRUE(sender.post("action", "{}"));
  EXPECT_FALSE(sender.post("action", "{}"));
  EXPECT_FALSE(sender.post("action", "{}"));
  EXPECT_EQ(sender.stats().queued, 3u);
  EXPECT_EQ(sender.stats().dropped, 2u);
  sender.start();
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 3; }));
  EXPECT_TRUE(sender.post("action", "{}"));  // room again
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 4; }));
  EXPECT_EQ(rx.requests().size(), 4u);
}

TEST(Webhooks, FiltersEventsAndRefusesBadNames) {
  FakeReceiver rx;
  auto o = fast(rx.url());
  o.events = {"call_ended"};
  WebhookSender sender(o);
  sender.start();
  EXPECT_FALSE(sender.post("call_started", "{}"));
  EXPECT_FALSE(sender.post("call_ended\r\nX-Evil: 1", "{}"));
  EXPECT_FALSE(sender.post("", "{}"));
  EXPECT_TRUE(sender.post("call_ended", "{}"));
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 1; }));
  EXPECT_EQ(sender.stats().filtered, 3u);
  EXPECT_EQ(sender.stats().queued, 1u);
  ASSERT_EQ(rx.requests().size(), 1u);
  EXPECT_EQ(rx.requests()[0].header("X-Voxbridge-Event"), "call_ended");
}

TEST(Webhooks, DeliversInOrderOfPostingAcrossRetries) {
  constexpr int kEvents = 40;
  FakeReceiver rx([](std::size_t n) { return n == 3 || n == 4 || n == 20 ? 500 : 200; });
  WebhookSender sender(fast(rx.url()));
  sender.start();
  for (int n = 0; n < kEvents; ++n) {
    ASSERT_TRUE(sender.post("action", R"({"n":)" + std::to_string(n) + "}"));
  }
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == kEvents; }));
  std::vector<std::string> delivered;
  for (const auto& r : rx.requests()) {
    if (r.status == 200) delivered.push_back(r.body);
  }
  ASSERT_EQ(delivered.size(), static_cast<std::size_t>(kEvents));
  for (int n = 0; n < kEvents; ++n) {
    EXPECT_EQ(delivered[n], R"({"n":)" + std::to_string(n) + "}");
  }
  EXPECT_EQ(sender.stats().retries, 3u);
}

TEST(Webhooks, PostsFromManyThreadsKeepEachThreadsOrder) {
  constexpr int kThreads = 4, kEach = 25;
  FakeReceiver rx;
  WebhookSender sender(fast(rx.url()));
  sender.start();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kEach; ++n) {
        EXPECT_TRUE(sender.post("action", std::to_string(t) + ":" + std::to_string(n)));
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == kThreads * kEach; }));
  std::vector<int> next(kThreads, 0);
  for (const auto& r : rx.requests()) {
    const int t = std::stoi(r.body.substr(0, r.body.find(':')));
    const int n = std::stoi(r.body.substr(r.body.find(':') + 1));
    EXPECT_EQ(n, next[t]++) << r.body;
  }
}

TEST(Webhooks, StopFlushesWhatIsQueued) {
  FakeReceiver rx;
  auto sender = std::make_unique<WebhookSender>(fast(rx.url()));
  sender->start();
  for (int n = 0; n < 10; ++n) ASSERT_TRUE(sender->post("call_ended", "{}"));
  sender->stop(2s);
  EXPECT_EQ(sender->stats().delivered, 10u);
  EXPECT_EQ(sender->stats().abandoned, 0u);
  EXPECT_FALSE(sender->post("call_ended", "{}"));  // stopped
  EXPECT_EQ(sender->stats().dropped, 1u);
  sender.reset();
  EXPECT_EQ(rx.requests().size(), 10u);
}

TEST(Webhooks, StopWithPendingEventsReturnsWithinTheFlushDeadline) {
  FakeReceiver rx([](std::size_t) { return 0; });
  auto o = fast(rx.url());
  o.timeout = 10s;
  WebhookSender sender(o);
  sender.start();
  for (int n = 0; n < 5; ++n) ASSERT_TRUE(sender.post("call_ended", "{}"));
  ASSERT_TRUE(rx.wait_for(1));  // the first is in flight, unanswered
  const auto t0 = Clock::now();
  sender.stop(200ms);
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 700ms);
  EXPECT_EQ(sender.stats().abandoned, 5u);
  EXPECT_EQ(sender.stats().delivered, 0u);
  EXPECT_EQ(rx.requests().size(), 1u);
}

TEST(Webhooks, NeverStartedCountsItsQueueAsAbandoned) {
  WebhookSender sender(fast("http://127.0.0.1:9/hook"));
  ASSERT_TRUE(sender.post("call_started", "{}"));
  ASSERT_TRUE(sender.post("call_ended", "{}"));
  const auto t0 = Clock::now();
  sender.stop(1s);
  EXPECT_LT(Clock::now() - t0, 100ms);
  EXPECT_EQ(sender.stats().abandoned, 2u);
  sender.start();  // not after stop()
  EXPECT_FALSE(sender.post("call_started", "{}"));
}

TEST(WebhooksTls, DeliversOverHttpsWithTheTestCa) {
  FakeReceiver rx([](std::size_t) { return 204; }, /*tls=*/true);
  auto o = fast(rx.url("/tls-hook"));
  o.ca_file = rx.ca_file();
  o.secret = "tls-secret";
  WebhookSender sender(o);
  sender.start();
  ASSERT_TRUE(sender.post("call_started", R"({"x":1})"));
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 1; }));
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/tls-hook");
  EXPECT_EQ(reqs[0].header("Host"), "localhost:" + std::to_string(rx.port()));
  EXPECT_EQ(reqs[0].header("X-Voxbridge-Signature"),
            "sha256=" + reference_hmac("tls-secret",
                                       reqs[0].header("X-Voxbridge-Timestamp") + R"(.{"x":1})"));
}

TEST(WebhooksTls, RefusesAnUntrustedCertificate) {
  FakeReceiver rx([](std::size_t) { return 200; }, /*tls=*/true);
  auto o = fast(rx.url());  // the system's CAs: the self-signed certificate is not among them
  o.max_attempts = 2;
  WebhookSender sender(o);
  sender.start();
  ASSERT_TRUE(sender.post("call_started", "{}"));
  ASSERT_TRUE(eventually([&] { return sender.stats().failed == 1; }));
  EXPECT_EQ(sender.stats().retries, 1u);
  EXPECT_TRUE(rx.requests().empty());
}

TEST(WebhooksTls, WithoutVerificationAcceptsAnyCertificate) {
  FakeReceiver rx([](std::size_t) { return 200; }, /*tls=*/true);
  auto o = fast(rx.url());
  o.verify_tls = false;
  WebhookSender sender(o);
  sender.start();
  ASSERT_TRUE(sender.post("call_started", "{}"));
  ASSERT_TRUE(eventually([&] { return sender.stats().delivered == 1; }));
  EXPECT_EQ(rx.requests().size(), 1u);
}

}  // namespace
}  // namespace voxbridge::webhooks
