// voxbridge-baseline-echo: the cheapest AudioSocket echo this machine can run, as a yardstick.
//
// One thread, one level-triggered epoll set, non-blocking sockets with TCP_NODELAY. Every audio
// message (0x10..0x18) is written back the moment it is read; the UUID and DTMF are ignored; a
// hangup (0x00), EOF or error closes the connection. No decoding, resampling or pacing: this is
// what the issue calls "a minimal C epoll echo with no DSP". Run it under voxbridge-load (or
// bench/run_load.py --server-bin) to see the part of a call's cost that is the kernel's TCP path.
//
// Accepts the server's flags that bench/run_load.py passes (--listen HOST:PORT; --agent,
// --threads, --log-level and --config are ignored) so it can stand in for voxbridge.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace {

struct Connection {
  int fd = -1;
  std::size_t have = 0;
  std::array<std::uint8_t, 8192> buf{};
};

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) {
  stop_requested = 1;
}

// Returns false when the connection should close.
bool serve(Connection& c) {
  const ssize_t r = ::recv(c.fd, c.buf.data() + c.have, c.buf.size() - c.have, 0);
  if (r < 0) return errno == EAGAIN || errno == EINTR;
  if (r == 0) return false;
  c.have += static_cast<std::size_t>(r);
  std::size_t off = 0;
  while (c.have - off >= 3) {
    const std::size_t len = (std::size_t{c.buf[off + 1]} << 8) | c.buf[off + 2];
    if (3 + len > c.buf.size()) return false;  // larger than any audio frame: not a peer we serve
    if (c.have - off < 3 + len) break;
    const std::uint8_t kind = c.buf[off];
    if (kind == 0x00 || kind == 0xff) return false;
    if (kind >= 0x10 && kind <= 0x18 &&
        ::send(c.fd, c.buf.data() + off, 3 + len, MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
      return false;
    }
    off += 3 + len;
  }
  std::memmove(c.buf.data(), c.buf.data() + off, c.have - off);
  c.have -= off;
  return true;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--listen HOST:PORT]   (default 127.0.0.1:5001)\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:5001";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(argv[0]);
      return 0;
    }
    if (i + 1 >= argc) return usage(argv[0]);
    if (a == "--listen") {
      listen = argv[++i];
    } else if (a == "--agent" || a == "--threads" || a == "--log-level" || a == "--config") {
      ++i;  // voxbridge's flags, meaningless here
    } else {
      return usage(argv[0]);
    }
  }
  const auto colon = listen.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  std::uint16_t port = 0;
  const char* port_end = listen.data() + listen.size();
  if (colon == std::string::npos ||
      ::inet_pton(AF_INET, listen.substr(0, colon).c_str(), &addr.sin_addr) != 1 ||
      std::from_chars(listen.data() + colon + 1, port_end, port).ptr != port_end) {
    std::fprintf(stderr, "--listen: want IPv4:PORT, got \"%s\"\n", listen.c_str());
    return 2;
  }
  addr.sin_port = htons(port);

  const int one = 1;
  const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ls < 0 || ::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(ls, 4096) != 0) {
    std::perror(listen.c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;  // the listener
  ::epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
  std::array<epoll_event, 256> events{};
  while (stop_requested == 0) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 500);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Connection*>(events[static_cast<std::size_t>(i)].data.ptr);
      if (c == nullptr) {
        for (;;) {
          const int fd = ::accept4(ls, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto conn = std::make_unique<Connection>();
          conn->fd = fd;
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.ptr = conn.get();
          if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) == 0) {
            conn.release();  // owned by the epoll set until it closes
          } else {
            ::close(fd);
          }
        }
      } else if (!serve(*c)) {
        ::close(c->fd);  // also leaves the epoll set
        delete c;
      }
    }
  }
  return 0;  // connections still open are the kernel's to close
}
