#include "voxbridge/session/call_session.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cstring>

namespace voxbridge::session {

namespace asio = boost::asio;
using asio::ip::tcp;
using audiosocket::Kind;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {
std::string endpoint_text(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}
const char* cause_name(EndCause c) {
  switch (c) {
    case EndCause::caller_hangup:
      return "caller";
    case EndCause::server_hangup:
      return "server";
    case EndCause::protocol_error:
      return "protocol";
    case EndCause::timeout:
      return "timeout";
    case EndCause::io_error:
      return "io";
    case EndCause::shutdown:
      return "shutdown";
  }
  return "?";
}
}  // namespace

std::shared_ptr<CallSession> CallSession::start(tcp::socket socket,
                                                std::shared_ptr<const SessionConfig> config,
                                                playout::PacingClock& clock, SessionList* list,
                                                std::shared_ptr<Mailbox> mailbox) {
  auto s = std::make_shared<CallSession>(std::move(socket), std::move(config), clock,
                                         std::move(mailbox));
  if (list != nullptr) list->push_back(*s);
  s->run();
  return s;
}

CallSession::CallSession(tcp::socket socket, std::shared_ptr<const SessionConfig> config,
                         playout::PacingClock& clock, std::shared_ptr<Mailbox> mailbox)
    : socket_(std::move(socket)),
      mailbox_(std::move(mailbox)),
      timer_(socket_.get_executor()),
      clock_(clock),
      config_(std::move(config)),
      parser_(config_->limits.max_payload_bytes),
      media_(config_->media, config_->make_agent ? config_->make_agent() : nullptr),
      peer_(endpoint_text(socket_)),
      accepted_at_(Clock::now()) {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);  // each message leaves in one segment, now
  if (config_->limits.send_buffer_bytes > 0) {
    socket_.set_option(
        asio::socket_base::send_buffer_size(static_cast<int>(config_->limits.send_buffer_bytes)),
        ec);
  }
  socket_.non_blocking(true, ec);  // frames are sent from the pacing tick
  // Agents whose work completes on other threads (gRPC) come back through the io thread's
  // mailbox, which outlives the call (a late callback finds it closed rather than a dead
  // io_context once the server has stopped).
  if (!mailbox_) mailbox_ = std::make_shared<Mailbox>(socket_.get_executor());
  media_.set_poster([m = mailbox_](std::function<void()> fn) { m->post(std::move(fn)); });
}

CallSession::~CallSession() {
  if (fd_ >= 0) ::close(fd_);
  if (config_->counters != nullptr) config_->counters->active.fetch_sub(1);
}

void CallSession::spawn_read_loop(std::shared_ptr<CallSession> self) {
  asio::co_spawn(socket_.get_executor(), read_loop(),
                 [self](std::exception_ptr e, bool handed_over) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("[{}] session read loop failed: {}", self->peer_, ex.what());
                     }
                   } else if (handed_over) {
                     return;  // the pacing tick reads from now on
                   }
                   self->finish();
                 });
}

void CallSession::read_on_tick() {
  boost::system::error_code ec;
  v6_ = socket_.local_endpoint(ec).address().is_v6();
  if (ec) return;
  const int fd = socket_.release(ec);
  if (ec || fd < 0) return;
  fd_ = fd;
  self_ = shared_from_this();
}

void CallSession::read_with_asio() {
  if (fd_ < 0) return;
  auto keep = std::move(self_);
  boost::system::error_code ec;
  socket_.assign(v6_ ? tcp::v6() : tcp::v4(), fd_, ec);
  if (ec) {
    ::close(fd_);
    spdlog::error("[{}] cannot hand the socket back to Asio: {}", peer_, ec.message());
  }
  fd_ = -1;
  socket_.non_blocking(true, ec);
  spawn_read_loop(std::move(keep));  // a read on a closed socket fails at once: finish() follows
}

void CallSession::abandon() {
  closing_ = true;
  playout::PacingClock::remove(*this);
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  boost::system::error_code ec;
  socket_.close(ec);
  self_.reset();  // may destroy this session
}

void CallSession::run() {
  auto self = shared_from_this();
  spawn_read_loop(self);
  timer_.expires_at(accepted_at_ + config_->limits.handshake_timeout);
  timer_.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->have_uuid_ || self->closing_) return;
    spdlog::warn("[{}] closing: no UUID within {} ms", self->peer_,
                 self->config_->limits.handshake_timeout.count());
    if (self->config_->counters != nullptr) self->config_->counters->protocol_errors.fetch_add(1);
    self->fail(EndCause::protocol_error, "handshake timeout");
  });
}

void CallSession::fail(EndCause cause, std::string reason) {
  if (closing_) return;
  closing_ = true;
  read_with_asio();  // the hangup exchange and the close run on Asio
  cause_ = cause;
  reason_ = std::move(reason);
  send_hangup_ =
      cause == EndCause::server_hangup || cause == EndCause::timeout || cause == EndCause::shutdown;
  playout::PacingClock::remove(*this);
  timer_.cancel();
  if (send_hangup_) {
    if (write_pending_) {
      hangup_after_write_ = true;  // the frame in flight first: messages never interleave
    } else {
      send_hangup();
    }
  } else {
    boost::system::error_code ec;
    socket_.close(ec);  // ends the read loop
  }
}

void CallSession::send_hangup() {
  auto self = shared_from_this();
  asio::async_write(
      socket_, asio::buffer(audiosocket::kHangupMessage.data(), audiosocket::kHangupMessage.size()),
      [self](const boost::system::error_code&, std::size_t) {
        boost::system::error_code ec;
        self->socket_.shutdown(tcp::socket::shutdown_send, ec);
        // Asterisk closes right after a hangup (its FIN ends the read loop, which cancels this
        // timer); close ourselves if it does not within the grace time.
        self->timer_.expires_after(self->config_->limits.close_grace);
        self->timer_.async_wait([self](const boost::system::error_code&) {
          boost::system::error_code cec;
          self->socket_.close(cec);
        });
      });
}

void CallSession::on_pacing_tick(Clock::time_point now) {
  if (closing_) return;
  const SessionLimits& lim = config_->limits;
  if (lim.idle_timeout.count() > 0 && now - last_rx_ >= lim.idle_timeout) {
    fail(EndCause::timeout, "idle timeout: nothing from Asterisk for " +
                                std::to_string(lim.idle_timeout.count()) + " ms");
    return;
  }
  if (lim.max_call_duration.count() > 0 && now - started_at_ >= lim.max_call_duration) {
    fail(EndCause::timeout, "max call duration reached");
    return;
  }
  if (fd_ >= 0 && !poll_input(now)) return;
  const auto msg = media_.on_tick(now);
  if (!msg.empty()) send_frame(msg);
  if (!closing_ && media_.hangup_due()) fail(EndCause::server_hangup, media_.hangup_reason());
}

void CallSession::send_frame(std::span<const std::uint8_t> msg) {
  if (write_pending_) {
    ++send_drops_;
    return;
  }
  // The socket is non-blocking: a 323-byte frame normally goes straight into the kernel's send
  // buffer in this one call, with no handler, allocation or wake-up.
  boost::system::error_code ec;
  std::size_t n = 0;
  if (fd_ >= 0) {
    const ssize_t r = ::send(fd_, msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) {
      n = static_cast<std::size_t>(r);
    } else {
      ec = boost::system::error_code(errno, boost::system::system_category());
    }
  } else {
    n = socket_.write_some(asio::buffer(msg.data(), msg.size()), ec);
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ++send_drops_;
    return;
  }
  if (ec) {
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
      fail(EndCause::caller_hangup, "caller hung up");
    } else {
      fail(EndCause::io_error, "write error: " + ec.message());
    }
    return;
  }
  if (n == msg.size()) return;
  // The kernel took part of the message: the rest must follow at once (Asterisk drops a call
  // whose payload trails its header by ~5 ms), so it goes out asynchronously now.
  if (!pending_) pending_.reset(new std::uint8_t[CallMedia::kMaxMessageBytes]);
  pending_len_ = msg.size() - n;
  std::memcpy(pending_.get(), msg.data() + n, pending_len_);
  write_pending_ = true;
  read_with_asio();  // until the tail is out (the read loop hands back when it is)
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(pending_.get(), pending_len_),
                    [self](const boost::system::error_code& wec, std::size_t) {
                      self->write_pending_ = false;
                      if (wec) {
                        self->fail(EndCause::io_error, "write error: " + wec.message());
                      } else if (self->hangup_after_write_) {
                        self->hangup_after_write_ = false;
                        self->send_hangup();
                      }
                    });
}

void CallSession::hangup(std::string_view reason) {
  media_.flush();
  fail(EndCause::shutdown, std::string(reason));
}

bool CallSession::handle(const audiosocket::Message& m) {
  switch (m.kind) {
    case Kind::uuid: {
      audiosocket::Uuid u;
      std::copy(m.payload.begin(), m.payload.end(), u.bytes.begin());
      uuid_ = u.text();
      have_uuid_ = true;
      started_at_ = Clock::now();
      if (config_->counters != nullptr) config_->counters->started.fetch_add(1);
      spdlog::info("call start uuid={} peer={} listener={} codec={} agent={}", uuid_.data(), peer_,
                   config_->listener, codec_mode_name(config_->media.codec), config_->agent_name);
      agent::CallInfo info;
      info.uuid = uuid_.data();
      info.peer = peer_;
      info.listener = config_->listener;
      if (config_->describe_call) config_->describe_call(info);
      media_.start(started_at_, std::move(info));
      timer_.cancel();  // handshake done
      clock_.add(*this, media_.next_deadline());
      return true;
    }
    case Kind::dtmf:
      spdlog::debug("[{}] dtmf {}", uuid_.data(), static_cast<char>(m.payload[0]));
      media_.on_dtmf(static_cast<char>(m.payload[0]));
      return true;
    case Kind::hangup:
      fail(EndCause::caller_hangup, "Asterisk sent hangup");
      return false;
    case Kind::error:
      fail(EndCause::caller_hangup,
           m.payload.empty() ? std::string("Asterisk sent error")
                             : "Asterisk sent error code " + std::to_string(m.payload[0]));
      return false;
    default: {
      std::string why;
      const bool first_audio = media_.leg_codec() == LegCodec::unknown;
      const bool ok = media_.on_audio(m.kind, m.payload, why);
      if (first_audio) {
        if (auto note = media_.take_format_note(); !note.empty()) {
          spdlog::warn("call uuid={} peer={}: {}", uuid_.data(), peer_, note);
        }
        spdlog::debug("[{}] leg format: {} {} Hz, replies as {}", uuid_.data(),
                      leg_codec_name(media_.leg_codec()), media_.leg_rate_hz(),
                      audiosocket::kind_name(media_.reply_kind()));
      }
      if (!ok) {
        spdlog::warn("call uuid={} peer={}: closing: {} ({})", uuid_.data(), peer_, why,
                     kind_name(m.kind));
        if (config_->counters != nullptr) config_->counters->protocol_errors.fetch_add(1);
        fail(EndCause::protocol_error, why);
        return false;
      }
      return true;
    }
  }
}

bool CallSession::consume(std::size_t n) {
  parser_.commit(n);
  std::error_code perr;
  while (auto m = parser_.next(perr)) {
    if (!handle(*m)) return false;
  }
  if (perr) {
    spdlog::warn("call uuid={} peer={}: closing: {}", have_uuid_ ? uuid_.data() : "(none)", peer_,
                 perr.message());
    if (config_->counters != nullptr) config_->counters->protocol_errors.fetch_add(1);
    fail(EndCause::protocol_error, perr.message());
    return false;
  }
  return !closing_;
}

bool CallSession::poll_input(Clock::time_point now) {
  for (;;) {
    auto buf = parser_.writable();
    const ssize_t r = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (r > 0) {
      last_rx_ = now;
      const auto n = static_cast<std::size_t>(r);
      if (!consume(n)) return false;
      if (n < buf.size()) return true;  // drained (a full buffer may have more behind it)
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
        if (config_->counters != nullptr) config_->counters->no_uuid.fetch_add(1);
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
    if (have_uuid_ && !write_pending_ && config_->read_on_tick) {
      read_on_tick();
      if (fd_ >= 0) co_return true;
    }
  }
}

void CallSession::finish() {
  media_.end(reason_);
  playout::PacingClock::remove(*this);
  boost::system::error_code ec;
  timer_.cancel();
  socket_.close(ec);
  SessionHook::unlink();
  if (config_->counters != nullptr) config_->counters->ended.fetch_add(1);
  if (!have_uuid_) return;  // already logged at debug (or warned) above
  const MediaStats st = media_.stats();
  if (auto* c = config_->counters) {
    c->frames_in.fetch_add(st.frames_in);
    c->frames_out.fetch_add(st.frames_out);
    c->late_ticks.fetch_add(st.late_ticks);
    c->underruns.fetch_add(st.underruns);
    c->send_drops.fetch_add(send_drops_);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - started_at_).count();
  spdlog::info(
      "call end uuid={} peer={} codec={} rate={} duration={:.2f}s frames_in={} frames_out={} "
      "dtmf={} late={} underruns={} send_drops={} by={} reason=\"{}\"",
      uuid_.data(), peer_, leg_codec_name(media_.leg_codec()), media_.leg_rate_hz(), secs,
      st.frames_in, st.frames_out, st.dtmf_in, st.late_ticks, st.underruns, send_drops_,
      cause_name(cause_), reason_);
}

}  // namespace voxbridge::session
