// The two ways a call reads (see call_session.hpp): Asio's read coroutine until the UUID and
// on the unusual paths, the pacing tick's non-blocking reads once the call is up, and the
// parsing both feed. Same class and thread as call_session.cpp.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

#include "session_log.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/stamped_recv.hpp"
#include "voxbridge/session/call_session.hpp"

namespace voxbridge::session {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using detail::skipped_note;

void CallSession::spawn_read_loop(std::shared_ptr<CallSession> self) {
  asio::co_spawn(
      socket_.get_executor(), read_loop(), [self](std::exception_ptr e, bool handed_over) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            spdlog::error("[{}] session read loop failed: {}", self->peer_, net::error_text(ex));
          }
        } else if (handed_over) {
          return;  // the pacing tick reads from now on
        }
        self->finish();
      });
}

void CallSession::read_on_tick() {
  boost::system::error_code ec;
  tick_.v6 = socket_.local_endpoint(ec).address().is_v6();
  if (ec) return;
  const int fd = socket_.release(ec);
  if (ec || fd < 0) return;
  tick_.fd = fd;
  self_ = shared_from_this();
  if (config_->tick_alignment) {
    // The kernel stamps each segment it receives; the tick reads the stamp of the newest.
    if (net::enable_receive_stamps(tick_.fd)) {
      playout::PhaseAligner::Options o;
      o.margin = config_->tick_alignment_margin;
      tick_.aligner = playout::PhaseAligner(o);
      tick_.aligning = true;
    }
  }
}

void CallSession::read_with_asio() {
  if (tick_.fd < 0) return;
  auto keep = std::move(self_);
  tick_.aligning = false;
  boost::system::error_code ec;
  socket_.assign(tick_.v6 ? tcp::v6() : tcp::v4(), tick_.fd, ec);
  if (ec) {
    ::close(tick_.fd);
    spdlog::error("[{}] cannot hand the socket back to Asio: {}", peer_, ec.message());
  }
  tick_.fd = -1;
  socket_.non_blocking(true, ec);
  spawn_read_loop(std::move(keep));  // a read on a closed socket fails at once: finish() follows
}

bool CallSession::consume(std::size_t n) {
  parser_.commit(n);
  std::error_code perr;
  while (auto m = parser_.next(perr)) {
    if (!handle(*m)) return false;
  }
  if (perr) {
    std::uint64_t skipped = 0;
    if (have_uuid_ || detail::flood_gate().allow(Clock::now(), skipped)) {
      spdlog::warn("call uuid={} peer={}: closing: {}{}", have_uuid_ ? uuid_.data() : "(none)",
                   peer_, perr.message(), skipped_note(skipped));
    }
    reject_input(static_cast<InputError>(perr.value()), perr.message());
    return false;
  }
  return !closing_;
}

void CallSession::align_tick(Clock::time_point deadline, Clock::time_point now) {
  // Frames read without a stamp (the kernel starts stamping a moment after the first socket
  // asks) say nothing about the phase.
  const int frames = tick_.newest_rx == Clock::time_point{} ? 0 : tick_.frames;
  tick_.frames = 0;
  const bool odd = std::exchange(tick_.odd, false);
  const Clock::duration move = tick_.aligner.on_tick(deadline, frames, odd, tick_.newest_rx);
  if (move == Clock::duration::zero()) return;
  const Clock::time_point next = media_.next_deadline() + move;
  if (next <= now) return;  // earlier would be in the past already (a late tick): not now
  media_.shift_timeline(move);
  clock_.add(*this, next);
  spdlog::debug("[{}] tick moved {} us to follow the caller's frames", uuid_.data(),
                std::chrono::duration_cast<std::chrono::microseconds>(move).count());
}

ssize_t CallSession::receive(std::span<std::uint8_t> buf) {
  if (!tick_.aligning) return ::recv(tick_.fd, buf.data(), buf.size(), MSG_DONTWAIT);
  return net::recv_stamped(tick_.fd, buf, tick_.newest_rx);
}

std::size_t CallSession::tick_read_budget() {
  // Before the first audio the leg's frame size is unknown: one parser buffer.
  if (media_.leg_codec() == LegCodec::unknown) return parser_.writable().size();
  const std::size_t frame =
      audiosocket::kHeaderBytes + media_.leg_bytes_for(std::chrono::milliseconds(20));
  return kTickReadFrames * frame;
}

bool CallSession::poll_input(Clock::time_point now) {
  // What a tick reads is bounded: a peer sending faster than real time gets what a few frames
  // take per tick, and the rest waits in the kernel (TCP's window then slows the peer down)
  // instead of keeping this io thread, and every other call on it, in a read loop.
  std::size_t budget = tick_read_budget();
  for (;;) {
    auto buf = parser_.writable();
    if (buf.size() > budget) buf = buf.first(budget);
    const ssize_t r = receive(buf);
    if (r > 0) {
      last_rx_ = now;
      const auto n = static_cast<std::size_t>(r);
      if (!consume(n)) return false;
      if (n < buf.size()) return true;  // drained (a full buffer may have more behind it)
      budget -= n;
      if (budget == 0) return true;  // the rest on the next tick
      continue;
    }
    if (r == 0) {
      fail(EndCause::caller_hangup, "caller hung up");
      return false;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return true;
    if (err == ECONNRESET) {
      fail(EndCause::caller_hangup, "caller hung up");  // see read_loop on RST
    } else {
      fail(EndCause::io_error, std::string("read error: ") + std::strerror(err));
    }
    return false;
  }
}

asio::awaitable<bool> CallSession::read_loop() {
  // Once the call is closing, what still arrives (until Asterisk's FIN) is read and dropped.
  static thread_local std::array<std::uint8_t, 2048> discard;
  for (;;) {
    auto buf = closing_ ? std::span<std::uint8_t>(discard) : parser_.writable();
    auto [ec, n] =
        co_await socket_.async_read_some(asio::buffer(buf.data(), buf.size()), use_nothrow);
    if (ec) {
      if (closing_) {
        timer_.cancel();  // the peer closed after our hangup: no need to wait out the grace
        co_return false;
      }
      if (!have_uuid_) {
        if (counters_ != nullptr) counters_->no_uuid.add();
        spdlog::debug(
            "[{}] connection closed before a UUID arrived ({}); if this came from the dialplan "
            "app, put Answer() before AudioSocket()",
            peer_, ec.message());
        fail(EndCause::caller_hangup, "closed before UUID");
      } else if (ec == asio::error::eof || ec == asio::error::connection_reset) {
        // chan_audiosocket hangs up with close() while our latest frame is still unread, which
        // the kernel turns into RST instead of FIN: the same hangup, said less politely.
        fail(EndCause::caller_hangup, "caller hung up");
      } else {
        fail(EndCause::io_error, "read error: " + ec.message());
      }
      co_return false;
    }
    if (closing_) continue;
    last_rx_ = Clock::now();
    if (!consume(n)) continue;  // closing: drain until the peer closes or the grace ends
    if (have_uuid_ && !out_.pending && config_->read_on_tick) {
      read_on_tick();
      if (tick_.fd >= 0) co_return true;
    }
  }
}

}  // namespace voxbridge::session
