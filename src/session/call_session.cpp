#include "voxbridge/session/call_session.hpp"
#include "voxbridge/logtext/log_text.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

#include "session_log.hpp"
#include "voxbridge/net/error_text.hpp"

namespace voxbridge::session {

namespace asio = boost::asio;
using asio::ip::tcp;
using audiosocket::Kind;

namespace {
// Talkspurts: a reply's first frame may leave up to one period early (when its audio comes),
// and the lead goes back 1 ms per silent frame after it (see on_pacing_tick).
constexpr Clock::duration kMaxTalkspurtLead = std::chrono::milliseconds(20);
constexpr Clock::duration kTimelineReturnStep = std::chrono::milliseconds(1);

std::string endpoint_text(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}
}  // namespace

namespace detail {

FloodGate& flood_gate() {
  thread_local FloodGate gate;
  return gate;
}

std::string exception_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return logtext::log_text(ex.what(), 200);
  } catch (...) {
    return "a non-standard exception";
  }
}

std::string skipped_note(std::uint64_t skipped) {
  return skipped == 0 ? std::string()
                      : " (" + std::to_string(skipped) + " more like it not logged)";
}

}  // namespace detail

using detail::exception_text;
using detail::skipped_note;

const char* end_cause_name(EndCause c) {
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

const char* input_error_name(InputError e) {
  switch (e) {
    case InputError::zero_length_payload:
      return "zero_length_payload";
    case InputError::unknown_kind:
      return "unknown_kind";
    case InputError::payload_too_large:
      return "payload_too_large";
    case InputError::expected_uuid_first:
      return "expected_uuid_first";
    case InputError::duplicate_uuid:
      return "duplicate_uuid";
    case InputError::bad_uuid_length:
      return "bad_uuid_length";
    case InputError::bad_dtmf:
      return "bad_dtmf";
    case InputError::handshake_timeout:
      return "handshake_timeout";
    case InputError::bad_audio:
      return "bad_audio";
  }
  return "?";
}

std::shared_ptr<CallSession> CallSession::start(tcp::socket socket,
                                                std::shared_ptr<const SessionConfig> config,
                                                playout::PacingClock& clock, SessionList* list,
                                                std::shared_ptr<Mailbox> mailbox,
                                                SessionCounters* counters,
                                                access::AdmissionTicket admission) {
  auto s = std::make_shared<CallSession>(std::move(socket), std::move(config), clock,
                                         std::move(mailbox), counters, std::move(admission));
  if (list != nullptr) list->push_back(*s);
  s->run();
  return s;
}

CallSession::CallSession(tcp::socket socket, std::shared_ptr<const SessionConfig> config,
                         playout::PacingClock& clock, std::shared_ptr<Mailbox> mailbox,
                         SessionCounters* counters, access::AdmissionTicket admission)
    : admission_(std::move(admission)),
      socket_(std::move(socket)),
      mailbox_(std::move(mailbox)),
      timer_(socket_.get_executor()),
      clock_(clock),
      config_(std::move(config)),
      parser_(config_->limits.max_payload_bytes),
      media_(config_->media, config_->observer ? config_->observer->make_agent() : nullptr),
      peer_(endpoint_text(socket_)),
      accepted_at_(Clock::now()),
      counters_(counters) {
  agent_name_ = config_->agent_name;
  set_socket_state(SocketState::handshaking);
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
  // Right after the handler that queued the audio (a provider's message, drained from the
  // mailbox), never inside it.
  media_.set_talkspurt_handler([this] {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->start_talkspurt(); });
  });
}

CallSession::~CallSession() {
  if (tick_.fd >= 0) ::close(tick_.fd);
  set_socket_state(SocketState::none);
}

void CallSession::abandon() {
  closing_ = true;
  playout::PacingClock::remove(*this);
  if (tick_.fd >= 0) {
    ::close(tick_.fd);
    tick_.fd = -1;
  }
  boost::system::error_code ec;
  socket_.close(ec);
  self_.reset();  // may destroy this session
}

void CallSession::run() {
  auto self = shared_from_this();
  // A posted function that throws ends this call only (on_mailbox_error).
  const std::weak_ptr<Mailbox::Owner> owner =
      std::shared_ptr<Mailbox::Owner>(self, static_cast<Mailbox::Owner*>(this));
  media_.set_poster(
      [m = mailbox_, owner](std::function<void()> fn) { m->post(std::move(fn), owner); });
  spawn_read_loop(self);
  timer_.expires_at(accepted_at_ + config_->limits.handshake_timeout);
  timer_.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->have_uuid_ || self->closing_) return;
    std::uint64_t skipped = 0;
    if (detail::flood_gate().allow(Clock::now(), skipped)) {
      spdlog::warn("[{}] closing: no UUID within {} ms{}", self->peer_,
                   self->config_->limits.handshake_timeout.count(), skipped_note(skipped));
    }
    self->reject_input(InputError::handshake_timeout, "handshake timeout");
  });
}

void CallSession::fail(EndCause cause, std::string reason) {
  if (closing_) return;
  closing_ = true;
  read_with_asio();  // the hangup exchange and the close run on Asio
  cause_ = cause;
  reason_ = std::move(reason);
  set_socket_state(SocketState::closing);
  send_hangup_ =
      cause == EndCause::server_hangup || cause == EndCause::timeout || cause == EndCause::shutdown;
  playout::PacingClock::remove(*this);
  timer_.cancel();
  if (send_hangup_) {
    arm_close_grace();
    if (out_.pending) {
      out_.hangup_after = true;  // the frame in flight first: messages never interleave
    } else {
      send_hangup();
    }
  } else {
    boost::system::error_code ec;
    socket_.close(ec);  // ends the read loop
  }
}

void CallSession::arm_close_grace() {
  // Asterisk closes right after a hangup (its FIN ends the read loop, which cancels this
  // timer); we close if it does not within the grace time. Counted from the decision, not from
  // the hangup message's write: a peer that does not read would never let that write complete,
  // and closing the socket also ends the writes still waiting.
  auto self = shared_from_this();
  timer_.expires_after(config_->limits.close_grace);
  timer_.async_wait([self](const boost::system::error_code&) {
    boost::system::error_code ec;
    self->socket_.close(ec);
  });
}

void CallSession::send_hangup() {
  auto self = shared_from_this();
  asio::async_write(
      socket_, asio::buffer(audiosocket::kHangupMessage.data(), audiosocket::kHangupMessage.size()),
      [self](const boost::system::error_code& ec, std::size_t) {
        if (ec) return;  // closed meanwhile (the grace ran out, or the peer went)
        boost::system::error_code sec;
        self->socket_.shutdown(tcp::socket::shutdown_send, sec);
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
  const Clock::time_point deadline = media_.next_deadline();
  tick_.newest_rx = Clock::time_point{};  // set by a read that carries the kernel's stamp
  if (tick_.fd >= 0 && !poll_input(now)) return;
  const auto msg = media_.on_tick(now);
  if (!msg.empty()) send_frame(msg);
  if (tick_.aligning && !closing_) align_tick(deadline, now);
  if (tick_.talkspurt_lead > Clock::duration::zero() && media_.playing_silence() && !closing_) {
    // The talkspurt is over: its lead goes back a step per silent frame (each gap 1 ms longer
    // than a period, never one long gap a receiver's jitter buffer would grow for), so the
    // call does not run ahead of real time. An aligned call follows the caller's frames
    // instead, which keep real time.
    if (tick_.aligning) {
      tick_.talkspurt_lead = Clock::duration::zero();
    } else {
      const Clock::duration step = std::min(tick_.talkspurt_lead, kTimelineReturnStep);
      media_.shift_timeline(step);
      tick_.talkspurt_lead -= step;
      clock_.add(*this, media_.next_deadline());
    }
  }
  if (++counted_.ticks >= 50) flush_counts();  // live totals, once a second
  if (!closing_ && media_.hangup_due()) fail(EndCause::server_hangup, media_.hangup_reason());
}

void CallSession::start_talkspurt() {
  if (closing_ || !media_.talkspurt_waiting()) return;
  const Clock::time_point now = Clock::now();
  const Clock::time_point due = media_.next_deadline();
  // The call runs at most kMaxTalkspurtLead ahead of real time: a talkspurt that comes before
  // the last one's lead is given back starts only as early as what is left of the bound.
  const Clock::duration early = std::min(due - now, kMaxTalkspurtLead - tick_.talkspurt_lead);
  // The clock serves calls on a 1 ms grid: a tick about that close plays it anyway.
  if (early <= playout::PacingClock::kResolution) return;
  media_.shift_timeline(-early);  // the next frame is due sooner, the rest 20 ms apart from it
  tick_.talkspurt_lead += early;
  if (early < due - now) {  // bounded: the frame waits for its (earlier) deadline
    clock_.add(*this, media_.next_deadline());
    return;
  }
  try {
    on_pacing_tick(now);
  } catch (...) {
    end_on_error("its tick", std::current_exception());
    return;
  }
  if (!closing_) clock_.add(*this, media_.next_deadline());
}

void CallSession::on_pacing_error(std::exception_ptr error) noexcept {
  end_on_error("its tick", error);
}

void CallSession::on_mailbox_error(std::exception_ptr error) noexcept {
  end_on_error("a provider callback", error);
}

void CallSession::end_on_error(const char* where, const std::exception_ptr& error) noexcept {
  try {
    const std::string what = exception_text(error);
    spdlog::error("call uuid={} peer={}: {} threw: {}; ending this call", uuid(), peer_, where,
                  what);
    if (closing_) return;
    media_.flush();
    fail(EndCause::server_hangup, "internal error: " + what);
  } catch (...) {
    // Nothing more can be done here (out of memory while ending it).
  }
}

void CallSession::send_frame(std::span<const std::uint8_t> msg) {
  if (out_.pending) {
    ++out_.drops;
    return;
  }
  // The socket is non-blocking: a 323-byte frame normally goes straight into the kernel's send
  // buffer in this one call, with no handler, allocation or wake-up.
  boost::system::error_code ec;
  std::size_t n = 0;
  if (tick_.fd >= 0) {
    const ssize_t r = ::send(tick_.fd, msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) {
      n = static_cast<std::size_t>(r);
    } else {
      ec = boost::system::error_code(errno, boost::system::system_category());
    }
  } else {
    n = socket_.write_some(asio::buffer(msg.data(), msg.size()), ec);
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ++out_.drops;
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
  if (!out_.tail) out_.tail.reset(new std::uint8_t[CallMedia::kMaxMessageBytes]);
  out_.tail_len = msg.size() - n;
  std::memcpy(out_.tail.get(), msg.data() + n, out_.tail_len);
  out_.pending = true;
  read_with_asio();  // until the tail is out (the read loop hands back when it is)
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(out_.tail.get(), out_.tail_len),
                    [self](const boost::system::error_code& wec, std::size_t) {
                      self->out_.pending = false;
                      if (wec) {
                        self->fail(EndCause::io_error, "write error: " + wec.message());
                      } else if (self->out_.hangup_after) {
                        self->out_.hangup_after = false;
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
      return start_call();
    }
    case Kind::dtmf:
      spdlog::debug("[{}] dtmf {}", uuid_.data(), static_cast<char>(m.payload[0]));
      note(events::dtmf(static_cast<char>(m.payload[0])));
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
        reject_input(InputError::bad_audio, why);
        return false;
      }
      if (tick_.aligning) {
        ++tick_.frames;
        if (m.payload.size() != media_.leg_bytes_for(std::chrono::milliseconds(20))) {
          tick_.odd = true;
        }
      }
      return true;
    }
  }
}

bool CallSession::start_call() {
  started_at_ = Clock::now();
  if (counters_ != nullptr) counters_->started.add();
  set_socket_state(SocketState::up);
  agent::CallInfo info;
  info.uuid = uuid_.data();
  info.peer = peer_;
  info.listener = config_->listener;
  if (counters_ != nullptr) info.metrics = &counters_->agent;
  CallPlan plan;
  if (config_->observer) plan = config_->observer->start(info);
  if (!plan.refuse.empty()) {
    spdlog::warn("call refused uuid={} peer={} listener={}: {}", uuid_.data(), peer_,
                 config_->listener, plan.refuse);
    if (counters_ != nullptr) counters_->unregistered.add();
    fail(EndCause::server_hangup, plan.refuse);
    return false;
  }
  if (plan.agent) {
    media_.set_agent(std::move(plan.agent));
    agent_name_ = std::move(plan.agent_name);
  }
  media_.set_recording(std::move(plan.recording));
  observed_ = std::move(plan.call);
  if (media_.recording() != nullptr || observed_) {
    info.transcript = [this](events::Event e) { note(e); };
  }
  if (plan.tools) info.tools = plan.tools(info, media_.poster());
  spdlog::info("call start uuid={} peer={} listener={} codec={} agent={}{}{}", uuid_.data(), peer_,
               config_->listener, codec_mode_name(config_->media.codec), agent_name_,
               plan.route.empty() ? "" : " route=", plan.route);
  note(events::start(plan.facts));
  media_.start(started_at_, std::move(info));
  timer_.cancel();  // handshake done
  clock_.add(*this, media_.next_deadline());
  return true;
}

void CallSession::finish() {
  try {
    media_.end(reason_);
  } catch (...) {
    // An agent that failed mid-call may fail again at its end: the call ends all the same.
    spdlog::error("call uuid={} peer={}: the agent's end threw: {}", uuid(), peer_,
                  exception_text(std::current_exception()));
  }
  playout::PacingClock::remove(*this);
  boost::system::error_code ec;
  timer_.cancel();
  socket_.close(ec);
  SessionHook::unlink();
  set_socket_state(SocketState::closing);
  if (!have_uuid_) return;  // already logged at debug (or warned) above
  flush_counts();
  const MediaStats st = media_.stats();
  const double secs = std::chrono::duration<double>(Clock::now() - started_at_).count();
  const events::Event end = events::end(end_cause_name(cause_), reason_, std::llround(secs * 1000));
  note(end);
  media_.set_recording(nullptr);  // closes the files now, not when the session goes
  if (observed_) observed_->end(end);
  // Counted last: whoever sees the call ended sees its recording closed and its event queued.
  if (counters_ != nullptr) counters_->ended[static_cast<std::size_t>(cause_)].add();
  spdlog::info(
      "call end uuid={} peer={} codec={} rate={} duration={:.2f}s frames_in={} frames_out={} "
      "dtmf={} late={} underruns={} send_drops={} by={} reason=\"{}\"",
      uuid_.data(), peer_, leg_codec_name(media_.leg_codec()), media_.leg_rate_hz(), secs,
      st.frames_in, st.frames_out, st.dtmf_in, st.late_ticks, st.underruns, out_.drops,
      end_cause_name(cause_), logtext::log_text(reason_, 200));
}

void CallSession::reject_input(InputError e, std::string reason) {
  if (counters_ != nullptr) counters_->bad_input[static_cast<std::size_t>(e)].add();
  fail(EndCause::protocol_error, std::move(reason));
}

void CallSession::flush_counts() {
  counted_.ticks = 0;
  if (counters_ == nullptr) return;
  const MediaStats st = media_.stats();
  counters_->frames_in.add(st.frames_in - counted_.stats.frames_in);
  counters_->frames_out.add(st.frames_out - counted_.stats.frames_out);
  counters_->dtmf_in.add(st.dtmf_in - counted_.stats.dtmf_in);
  counters_->late_ticks.add(st.late_ticks - counted_.stats.late_ticks);
  counters_->underruns.add(st.underruns - counted_.stats.underruns);
  counters_->send_drops.add(out_.drops - counted_.drops);
  counted_.stats = st;
  counted_.drops = out_.drops;
}

void CallSession::set_socket_state(SocketState s) {
  if (s == counted_.socket_state) return;
  if (counters_ != nullptr) {
    auto gauge = [this](SocketState st) -> metrics::Gauge* {
      switch (st) {
        case SocketState::handshaking:
          return &counters_->handshaking;
        case SocketState::up:
          return &counters_->up;
        case SocketState::closing:
          return &counters_->closing;
        case SocketState::none:
          break;
      }
      return nullptr;
    };
    if (auto* g = gauge(counted_.socket_state)) g->add(-1);
    if (auto* g = gauge(s)) g->add(1);
  }
  counted_.socket_state = s;
}

CallStatus CallSession::status(Clock::time_point now) const {
  CallStatus st;
  if (have_uuid_) st.uuid = uuid_.data();
  st.peer = peer_;
  st.listener = config_->listener;
  st.agent = agent_name_;
  st.codec = media_.leg_codec() == LegCodec::unknown ? "?" : leg_codec_name(media_.leg_codec());
  st.rate_hz = media_.leg_rate_hz();
  st.seconds =
      std::chrono::duration<double>(now - (have_uuid_ ? started_at_ : accepted_at_)).count();
  if (closing_) {
    st.state = "closing";
  } else if (!have_uuid_) {
    st.state = "handshake";
  } else {
    st.state = media_.agent_state();
  }
  return st;
}

void CallSession::note(const events::Event& e) {
  auto* rec = media_.recording();
  if (rec == nullptr && !observed_) return;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_at_);
  std::string line = e.serialize(ms);
  if (observed_) observed_->event(e, line);
  if (rec != nullptr) rec->event(std::move(line));
}

std::size_t CallSession::events_from(std::size_t from, std::vector<std::string>& out) const {
  return observed_ ? observed_->events_from(from, out) : from;
}

}  // namespace voxbridge::session
