#include "caller.hpp"

#include <algorithm>
#include <boost/asio/write.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "voxbridge/net/stamped_recv.hpp"

namespace voxbridge::loadgen {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// A writer this far behind (one second) is facing a server that stopped reading; older frames
/// are given up rather than sent as a burst.
constexpr std::uint64_t kMaxWriteBacklog = 50;
/// A returned frame later than this after the previous one shows on the progress line.
constexpr auto kLongGap = 30ms;
/// Arrival-time slack when counting frame slots at the edges of the window.
constexpr auto kEdgeTolerance = kFramePeriod / 2;
/// Churn: a call that starts inside the window owes frames from this long after its connect
/// on (the UUID's trip and the server's first pacing tick).
constexpr auto kStartGrace = 3 * kFramePeriod;

std::uint64_t to_ns(Clock::duration d) {
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

/// Frame slots that must have been served within an edge of length `d` of the window.
std::uint64_t edge_slots(Clock::duration d) {
  if (d <= kEdgeTolerance) return 0;
  return static_cast<std::uint64_t>((d - kEdgeTolerance) / kFramePeriod);
}

}  // namespace

Caller::Caller(CallEnv& env, const audiosocket::Uuid& uuid, Clock::duration phase,
               Clock::duration length)
    : env_(env), socket_(env.io), phase_(phase), length_(length) {
  audiosocket::encode(audiosocket::Kind::uuid, uuid.bytes, uuid_message_);
}

void Caller::start() {
  socket_.async_connect(env_.server,
                        [this](const boost::system::error_code& ec) { on_connect(ec); });
}

void Caller::on_connect(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) {
    if (ec == asio::error::connection_refused) ++env_.totals.connects_refused;
    fail(Failure::connect, "connect: " + ec.message());
    return;
  }
  up_ = true;
  connected_at_ = Clock::now();
  if (length_ > Clock::duration::zero()) hangup_at_ = connected_at_ + length_;
  ++env_.totals.calls_connected;
  LiveCounters::bump(env_.live.connected);
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);
  // The kernel stamps each received segment: arrival times then show the server's pacing, not
  // how soon this thread got around to reading (both are reported).
  net::enable_receive_stamps(socket_.native_handle());
  t0_ = connected_at_ + phase_;
  write_next();  // the UUID goes first
  read_more();
  env_.clock.add(*this, t0_);
}

void Caller::on_pacing_tick(Clock::time_point now) {
  if (closed_) return;
  if (now >= hangup_at_) {
    hang_up();
    return;
  }
  // Frames are due by the clock, not by ticks: after a stall the writes catch up in order.
  due_ = static_cast<std::uint64_t>((now - t0_) / kFramePeriod) + 1;
  write_next();
}

void Caller::write_next() {
  if (writing_ || closed_) return;
  if (!uuid_sent_) {
    uuid_sent_ = true;
    if (!send(uuid_message_)) return;
  }
  while (sent_ < due_) {
    if (due_ - sent_ > kMaxWriteBacklog) {
      env_.totals.frames_skipped += due_ - sent_ - 1;
      sent_ = due_ - 1;
    }
    const auto now = Clock::now();
    const bool in_window = env_.window.contains(now);
    if (in_window) {
      ++env_.totals.frames_sent;
      env_.totals.send_lateness.add(to_ns(now - (t0_ + kFramePeriod * static_cast<long>(sent_))));
    }
    if (env_.scenario != Scenario::echo) {
      const Message* m = &env_.signal.silence;
      if (env_.scenario == Scenario::listen) {
        m = &env_.signal.voice[sent_ % env_.signal.voice.size()];
      } else {
        const std::uint64_t at = sent_ % kCycleFrames;
        if (at < env_.signal.voice.size()) {
          m = &env_.signal.voice[at];
          if (at == 0 && awaiting_reply_ && reply_in_window_) ++env_.totals.replies_missed;
          if (at == 0) awaiting_reply_ = false;
          if (at == env_.signal.last_voiced) {
            awaiting_reply_ = true;
            reply_in_window_ = in_window;
            speech_end_ = now + kFramePeriod;  // the end of this frame's audio
          }
        }
      }
      ++sent_;
      LiveCounters::bump(env_.live.frames_sent);
      if (!send(*m)) return;
      continue;
    }
    const bool marker = sent_ % kMarkerEveryFrames == 0;
    if (marker) {
      if (marker_pending_ && marker_in_window_) ++env_.totals.markers_lost;
      marker_pending_ = true;
      marker_in_window_ = in_window;
      marker_sent_at_ = now;
      if (in_window) ++env_.totals.markers_sent;
    }
    ++sent_;
    LiveCounters::bump(env_.live.frames_sent);
    if (!send(marker ? env_.signal.marker : env_.signal.quiet)) return;
  }
}

bool Caller::send(std::span<const std::uint8_t> message) {
  // The socket is non-blocking: a send that takes the whole message (nearly always) needs no
  // completion handler; anything left is finished asynchronously.
  boost::system::error_code ec;
  const std::size_t n = socket_.write_some(asio::buffer(message.data(), message.size()), ec);
  if (!ec && n == message.size()) return true;
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
    if (!env_.stopping) fail(Failure::io_error, "write: " + ec.message());
    return false;
  }
  const std::size_t done = ec ? 0 : n;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(message.data() + done, message.size() - done),
                    [this](const boost::system::error_code& wec, std::size_t) { on_written(wec); });
  return false;
}

void Caller::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  if (closed_) return;
  if (ec) {
    if (!env_.stopping) fail(Failure::io_error, "write: " + ec.message());
    return;
  }
  write_next();
}

void Caller::read_more() {
  socket_.async_wait(tcp::socket::wait_read,
                     [this](const boost::system::error_code& ec) { on_readable(ec); });
}

std::size_t Caller::read_once(Clock::time_point& arrival, Clock::time_point& read_at,
                              boost::system::error_code& ec) {
  read_at = Clock::now();
  arrival = read_at;
  const ssize_t n = net::recv_stamped(socket_.native_handle(),
                                      {rx_.data() + rx_len_, rx_.size() - rx_len_}, arrival);
  if (n < 0) {
    ec = boost::system::error_code(errno, boost::system::system_category());
    return 0;
  }
  if (n == 0) {
    ec = asio::error::eof;
    return 0;
  }
  ec = {};
  return static_cast<std::size_t>(n);
}

void Caller::on_readable(const boost::system::error_code& wait_ec) {
  if (closed_) return;
  boost::system::error_code ec = wait_ec;
  std::size_t bytes = 0;
  Clock::time_point arrival{};
  Clock::time_point read_at{};
  if (!ec) bytes = read_once(arrival, read_at, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    read_more();
    return;
  }
  if (ec) {
    if (env_.stopping) return;
    if (ec == asio::error::eof) {
      fail(Failure::closed_by_server, "server closed the connection");
    } else {
      fail(Failure::io_error, "read: " + ec.message());
    }
    return;
  }
  rx_len_ += bytes;
  if (consume(arrival, read_at)) read_more();
}

bool Caller::consume(Clock::time_point arrival, Clock::time_point read_at) {
  std::size_t off = 0;
  while (rx_len_ - off >= audiosocket::kHeaderBytes) {
    const std::uint8_t* h = rx_.data() + off;
    const std::size_t len = static_cast<std::size_t>(h[1]) << 8 | h[2];
    if (len > rx_.size() - audiosocket::kHeaderBytes) {
      fail(Failure::protocol_error, "server sent a " + std::to_string(len) + "-byte payload");
      return false;
    }
    if (rx_len_ - off < audiosocket::kHeaderBytes + len) break;
    on_message(h[0], {h + audiosocket::kHeaderBytes, len}, arrival, read_at);
    if (closed_) return false;
    off += audiosocket::kHeaderBytes + len;
  }
  if (off > 0) {
    std::memmove(rx_.data(), rx_.data() + off, rx_len_ - off);
    rx_len_ -= off;
  }
  return true;
}

void Caller::on_message(std::uint8_t kind, std::span<const std::uint8_t> payload,
                        Clock::time_point arrival, Clock::time_point read_at) {
  const auto k = static_cast<audiosocket::Kind>(kind);
  if (k == audiosocket::Kind::hangup) {
    fail(Failure::server_hangup, "server sent hangup (0x00)");
  } else if (audiosocket::is_audio(k) && !payload.empty()) {
    if (k != audiosocket::Kind::slin8 || payload.size() != kFrameBytes) {
      if (env_.window.contains(arrival)) ++env_.totals.odd_frames;
    }
    on_audio(payload, arrival, read_at);
  } else {
    char text[64];
    std::snprintf(text, sizeof text, "server sent kind 0x%02x, %zu bytes", kind, payload.size());
    fail(Failure::protocol_error, text);
  }
}

void Caller::on_audio(std::span<const std::uint8_t> payload, Clock::time_point now,
                      Clock::time_point read_at) {
  LiveCounters::bump(env_.live.frames_received);
  ++received_;
  const bool in_window = env_.window.contains(now);
  if (env_.scenario != Scenario::echo) {
    if (awaiting_reply_ && frame_rms(payload) >= kReplyRms) {
      awaiting_reply_ = false;
      if (reply_in_window_) env_.totals.reply.add(to_ns(now - speech_end_));
    }
    count_arrival(now, read_at, in_window);
    return;
  }
  const FrameAnalysis a = analyse_frame(payload);
  if (marker_pending_ && a.marker_onset >= 0) {
    // The frame carrying the marker is back now; the marker's onset itself plays
    // `marker_onset` samples into it (the resamplers' delay shows there).
    marker_pending_ = false;
    if (marker_in_window_) {
      ++env_.totals.markers_returned;
      env_.totals.latency.add(to_ns(now - marker_sent_at_));
      env_.totals.onset_latency.add(to_ns(now + kSamplePeriod * a.marker_onset - marker_sent_at_));
    }
  }
  if (heard_tone_ && a.longest_zero_run >= kUnderrunZeroRun) {
    LiveCounters::bump(env_.live.underrun_frames);
    if (in_window) ++env_.totals.underrun_frames;
  }
  if (a.audible) heard_tone_ = true;
  count_arrival(now, read_at, in_window);
}

void Caller::count_arrival(Clock::time_point now, Clock::time_point read_at, bool in_window) {
  if (!in_window) return;
  const auto off_period = [](Clock::duration gap) {
    return to_ns(gap > kFramePeriod ? gap - kFramePeriod : kFramePeriod - gap);
  };
  if (window_frames_ > 0) {
    const auto gap = now - last_in_window_;
    env_.totals.jitter.add(off_period(gap));
    env_.totals.read_jitter.add(off_period(read_at - last_read_in_window_));
    if (gap > kLongGap) LiveCounters::bump(env_.live.long_gaps);
  } else {
    first_in_window_ = now;
  }
  last_in_window_ = now;
  last_read_in_window_ = read_at;
  ++window_frames_;
}

void Caller::fail(Failure why, const std::string& detail) {
  if (closed_) return;
  failed_at_ = Clock::now();
  env_.totals.fail(why, detail);
  LiveCounters::bump(env_.live.failed);
  if (up_) env_.live.connected.fetch_sub(1, std::memory_order_relaxed);
  close();
  if (env_.on_end) finish(failed_at_, true);
}

void Caller::close() {
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  playout::PacingClock::remove(*this);
}

void Caller::hang_up() {
  drain();
  if (closed_) return;  // the server hung up or failed the call meanwhile
  const auto now = Clock::now();
  ++env_.totals.calls_completed;
  env_.totals.completed_sent.add(sent_);
  env_.totals.completed_received.add(received_);
  env_.live.connected.fetch_sub(1, std::memory_order_relaxed);
  LiveCounters::bump(env_.live.completed);
  close();
  finish(now, false);
}

void Caller::drain() {
  for (;;) {
    boost::system::error_code ec;
    Clock::time_point arrival{};
    Clock::time_point read_at{};
    const std::size_t n = read_once(arrival, read_at, ec);
    if (ec || n == 0) return;  // nothing more now (or EOF/error: we hang up anyway)
    rx_len_ += n;
    if (!consume(arrival, read_at)) return;
  }
}

void Caller::finish(Clock::time_point end, bool failed) {
  if (up_) account_window(std::min(env_.window.end(), end));
  accounted_ = true;
  env_.on_end(*this, failed);  // may retire this caller (kept alive for a while)
}

void Caller::stop() {
  if (accounted_) return;  // churn: accounted when it ended
  if (up_) account_window(std::min(env_.window.end(), failed_at_));
  if (closed_) return;
  if (up_) env_.live.connected.fetch_sub(1, std::memory_order_relaxed);
  close();
}

void Caller::account_window(Clock::time_point end) {
  auto start = env_.window.start();
  // With churn, calls start inside the window: such a call owes frames from its start only.
  if (length_ > Clock::duration::zero()) start = std::max(start, connected_at_ + kStartGrace);
  if (end <= start) return;  // failed before the window
  std::uint64_t expected = 0;
  if (window_frames_ == 0) {
    expected = static_cast<std::uint64_t>((end - start) / kFramePeriod);
  } else {
    const double span = std::chrono::duration<double>(last_in_window_ - first_in_window_) /
                        std::chrono::duration<double>(kFramePeriod);
    expected = edge_slots(first_in_window_ - start) +
               static_cast<std::uint64_t>(std::llround(span)) + 1 +
               edge_slots(end - last_in_window_);
  }
  env_.totals.frames_expected += expected;
  env_.totals.frames_received += window_frames_;
  if (expected > window_frames_) {
    const std::uint64_t dropped = expected - window_frames_;
    env_.totals.frames_dropped += dropped;
    ++env_.totals.calls_with_drops;
    env_.totals.max_dropped_in_call = std::max(env_.totals.max_dropped_in_call, dropped);
  }
}

}  // namespace voxbridge::loadgen
