// net::HttpPool against a scripted HTTP/1.1 server on a socket: kept-alive reuse, a connection
// the server closed while idle, bodies streamed piece by piece, the stall and size limits, and
// cancel.
#include "voxbridge/net/http_pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace voxbridge::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

/// One scripted server: for each accepted connection, a function that serves it (blocking).
class ScriptedServer {
 public:
  using Serve = std::function<void(tcp::socket&)>;
  explicit ScriptedServer(std::vector<Serve> connections)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}),
        thread_([this, c = std::move(connections)] {
          for (const auto& serve : c) {
            boost::system::error_code ec;
            tcp::socket s(io_);
            acceptor_.accept(s, ec);
            if (ec) return;
            serve(s);
          }
        }) {}
  ~ScriptedServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1";
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

/// Reads one request (header, then Content-Length bytes); returns its request line.
std::string read_request(tcp::socket& s) {
  asio::streambuf buf;
  boost::system::error_code ec;
  asio::read_until(s, buf, "\r\n\r\n", ec);
  if (ec) return "";
  std::string head(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
  const auto end = head.find("\r\n\r\n") + 4;
  std::size_t length = 0;
  if (const auto at = head.find("Content-Length: "); at != std::string::npos) {
    length = std::stoul(head.substr(at + 16));
  }
  std::size_t have = head.size() - end;
  std::vector<char> rest(length > have ? length - have : 0);
  if (!rest.empty()) asio::read(s, asio::buffer(rest), ec);
  return head.substr(0, head.find("\r\n"));
}

void write(tcp::socket& s, const std::string& text) {
  boost::system::error_code ec;
  asio::write(s, asio::buffer(text), ec);
}

std::string ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// A pool on its own io thread, and the exchanges' outcomes.
struct Client {
  asio::io_context io;
  std::shared_ptr<HttpPool> pool;
  std::thread thread;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};

  explicit Client(HttpPoolOptions o) {
    pool = HttpPool::create(io.get_executor(), nullptr, true, std::move(o));
    thread = std::thread([this] { io.run(); });
  }
  ~Client() {
    asio::post(io, [p = pool] { p->close_idle(); });
    work.reset();
    thread.join();
  }

  struct Outcome {
    HttpDone done;
    std::vector<std::string> pieces;
    std::string body() const {
      std::string b;
      for (const auto& p : pieces) b += p;
      return b;
    }
  };

  /// Sends POST `target` and waits for its end; `on_piece` may act on each piece.
  Outcome send(const std::string& target,
               std::function<void(const std::string&)> on_piece = nullptr) {
    auto out = std::make_shared<Outcome>();
    std::promise<void> finished;
    HttpHandlers h;
    std::shared_ptr<HttpExchange> x;
    h.body = [out, on_piece](std::string_view p) {
      out->pieces.emplace_back(p);
      if (on_piece) on_piece(std::string(p));
    };
    h.done = [out, &finished](const HttpDone& d) {
      out->done = d;
      finished.set_value();
    };
    HttpRequest r;
    r.target = target;
    r.content_type = "text/plain";
    r.body = "hello";
    std::promise<void> started;
    asio::post(io, [&] {
      x = pool->start(r, h);
      started.set_value();
    });
    started.get_future().wait();
    current = x;
    finished.get_future().wait();
    return *out;
  }
  std::shared_ptr<HttpExchange> current;
};

HttpPoolOptions options(const ScriptedServer& s) {
  HttpPoolOptions o;
  o.base_url = s.url();
  o.stall_timeout = 2000ms;
  return o;
}

TEST(HttpPool, ASecondRequestReusesTheKeptAliveConnection) {
  std::vector<std::string> lines;
  ScriptedServer server({[&](tcp::socket& s) {
    lines.push_back(read_request(s));
    write(s, ok("one"));
    lines.push_back(read_request(s));
    write(s, ok("two"));
    read_request(s);  // until the client closes
  }});
  {
    Client c(options(server));
    const auto a = c.send("/audio/speech");
    EXPECT_TRUE(a.done.complete) << a.done.error;
    EXPECT_EQ(a.done.status, 200);
    EXPECT_EQ(a.body(), "one");
    const auto b = c.send("/audio/speech");
    EXPECT_TRUE(b.done.complete) << b.done.error;
    EXPECT_EQ(b.body(), "two");
    const auto n = c.pool->counters();
    EXPECT_EQ(n.connections_opened, 1u);
    EXPECT_EQ(n.requests, 2u);
    EXPECT_EQ(n.reused, 1u);
    EXPECT_EQ(n.retried, 0u);
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"POST /v1/audio/speech HTTP/1.1",
                                             "POST /v1/audio/speech HTTP/1.1"}));
}

TEST(HttpPool, AConnectionTheServerClosedWhileIdleIsReplacedAndTheRequestSentAgain) {
  ScriptedServer server({
      [](tcp::socket& s) {
        read_request(s);
        write(s, ok("first"));  // kept alive, as far as the client knows
        s.close();              // then closed while idle, as uvicorn does after 5 s
      },
      [](tcp::socket& s) {
        read_request(s);
        write(s, ok("second"));
        read_request(s);
      },
  });
  Client c(options(server));
  EXPECT_EQ(c.send("/x").body(), "first");
  std::this_thread::sleep_for(50ms);  // the close has reached the client's socket
  const auto b = c.send("/x");
  EXPECT_TRUE(b.done.complete) << b.done.error;
  EXPECT_EQ(b.body(), "second");
  const auto n = c.pool->counters();
  EXPECT_EQ(n.connections_opened, 2u);
  EXPECT_EQ(n.retried, 1u);
}

TEST(HttpPool, AChunkedBodyComesPieceByPieceAndAStallEndsIt) {
  std::promise<void> release;
  auto released = release.get_future().share();
  ScriptedServer server({[released](tcp::socket& s) {
    read_request(s);
    write(s,
          "HTTP/1.1 200 OK\r\nContent-Type: audio/pcm\r\nTransfer-Encoding: chunked\r\n\r\n"
          "4\r\nabcd\r\n");
    std::this_thread::sleep_for(100ms);
    write(s, "3\r\nefg\r\n");
    released.wait();  // then nothing: the client's stall timeout
  }});
  HttpPoolOptions o = options(server);
  o.stall_timeout = 300ms;
  Client c(o);
  const auto a = c.send("/audio/speech");
  release.set_value();
  EXPECT_FALSE(a.done.complete);
  EXPECT_EQ(a.done.status, 200);
  EXPECT_EQ(a.done.error, "the response stalled: nothing for 300 ms");
  EXPECT_EQ(a.pieces, (std::vector<std::string>{"abcd", "efg"}));  // as they came
}

TEST(HttpPool, ABodyOverTheLimitEndsTheExchange) {
  ScriptedServer server({[](tcp::socket& s) {
    read_request(s);
    write(s, ok(std::string(5000, 'x')));
  }});
  HttpPoolOptions o = options(server);
  o.max_body_bytes = 4096;
  Client c(o);
  const auto a = c.send("/x");
  EXPECT_FALSE(a.done.complete);
  EXPECT_EQ(a.done.error, "response body over 4096 bytes");
}

TEST(HttpPool, CancelEndsTheExchangeAndItsConnectionIsNeverReused) {
  std::promise<void> release;
  auto released = release.get_future().share();
  ScriptedServer server({
      [released](tcp::socket& s) {
        read_request(s);
        write(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n");
        released.wait();
      },
      [](tcp::socket& s) {
        read_request(s);
        write(s, ok("fresh"));
        read_request(s);
      },
  });
  Client c(options(server));
  const auto a = c.send("/x", [&](const std::string&) { c.current->cancel(); });
  release.set_value();
  EXPECT_TRUE(a.done.cancelled);
  EXPECT_FALSE(a.done.complete);
  EXPECT_EQ(a.body(), "abcd");
  const auto b = c.send("/x");
  EXPECT_EQ(b.body(), "fresh");
  EXPECT_EQ(c.pool->counters().connections_opened, 2u);
  EXPECT_EQ(c.pool->counters().reused, 0u);
}

TEST(HttpPool, ARefusedConnectionSaysWhere) {
  HttpPoolOptions o;
  {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    o.base_url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/v1";
  }  // closed: nothing listens there now
  Client c(o);
  const auto d = c.send("/x").done;
  EXPECT_FALSE(d.complete);
  EXPECT_EQ(d.error.rfind("connect 127.0.0.1:", 0), 0u) << d.error;
  EXPECT_NE(d.error.find("refused"), std::string::npos) << d.error;
}

}  // namespace
}  // namespace voxbridge::net
