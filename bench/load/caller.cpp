#include "caller.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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
/// Arrival-time slack when counting frame slots at the edges of the window: a slot there counts
/// as dropped only if no frame came back within this long of it. A frame returned late is late
/// (jitter and latency show it), not dropped. With half a period of slack, runs on 2026-12-07
/// booked up to 33 frames a run as dropped, every one at an edge (0 missing inside calls) while
/// the server logged 0 late ticks and 0 failed sends for all 1,000 calls: echoes a little late
/// at the edge, not lost. A call that stops for longer than this still counts.
constexpr auto kEdgeTolerance = 3 * kFramePeriod;
/// Churn: a call that starts inside the window owes frames from this long after its connect
/// on (the UUID's trip and the server's first pacing tick).
constexpr auto kStartGrace = 3 * kFramePeriod;
/// --stamps: turns and replies kept per call at most (a 6 s cycle: over 16 hours).
constexpr std::size_t kMaxStamps = 10000;

std::int64_t steady_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

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
    : env_(env), socket_(env.io), phase_(phase), length_(length), reader_(*this) {
  audiosocket::encode(audiosocket::Kind::uuid, uuid.bytes, uuid_message_);
  if (env_.stamps) stamps_.uuid = std::string(uuid.text().data(), 36);
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
  boost::system::error_code rec;
  socket_.set_option(tcp::no_delay(true), rec);
  // From here on the call is served from its pacing tick alone, like the server's: the tick
  // reads what came back and sends what is due. The socket leaves Asio (and its epoll set), so
  // a returned frame wakes nobody; the kernel's receive stamp says when it arrived.
  fd_ = socket_.release(rec);
  if (rec || fd_ < 0) {
    fail(Failure::io_error, "socket: " + rec.message());
    return;
  }
  net::enable_receive_stamps(fd_);
  t0_ = connected_at_ + phase_;
  write_next();  // the UUID goes first
  env_.clock.add(*this, t0_);
  read_phase_ = kFramePeriod / 2;
  env_.clock.add(reader_, t0_ + read_phase_);
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

std::uint64_t Caller::voice_frame(Clock::time_point now) {
  if (env_.scenario == Scenario::conversation) return sent_ % kCycleFrames;
  // Dialogue: a turn of voice, then silence while the agent answers, like a person would.
  if (speaking_from_ != kSilent) {
    const std::uint64_t at = sent_ - speaking_from_;
    if (at < env_.signal.voice.size()) return at;
    speaking_from_ = kSilent;
  }
  if (listening_since_ == Clock::time_point{}) listening_since_ = now;
  const bool answered = last_loud_ > listening_since_ && now - last_loud_ >= kTurnPause;
  if (!answered && now - listening_since_ < kReplyTimeout) return kSilent;
  speaking_from_ = sent_;
  listening_since_ = now + kFramePeriod * static_cast<long>(env_.signal.voice.size());
  return 0;
}

void Caller::write_next() {
  if (closed_) return;
  if (!pending_.empty() && !send(pending_)) return;
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
        const std::uint64_t at = voice_frame(now);
        if (at < env_.signal.voice.size()) {
          m = &env_.signal.voice[at];
          if (at == 0 && awaiting_reply_ && reply_in_window_) ++env_.totals.replies_missed;
          if (at == 0) awaiting_reply_ = false;
          if (at == 0 && env_.stamps && stamps_.voice.size() < kMaxStamps)
            stamps_.voice.push_back(steady_ns(now));
          if (at == env_.signal.last_voiced) {
            awaiting_reply_ = true;
            reply_in_window_ = in_window;
            // A caller sends a frame once its 20 ms have been spoken (Asterisk sends what it
            // has captured), so the frame leaving now is where the speech ended.
            speech_end_ = now;
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
  // Non-blocking: a send that takes the whole message (nearly always) is done. What the kernel
  // did not take waits for the next tick, ahead of any later frame: a slow socket delays
  // frames rather than dropping them, like a blocking writer.
  const ssize_t r = ::send(fd_, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  const std::size_t done = r > 0 ? static_cast<std::size_t>(r) : 0;
  if (done == message.size()) {
    pending_ = {};
    return true;
  }
  if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    if (!env_.stopping) fail(Failure::io_error, std::string("write: ") + std::strerror(errno));
    return false;
  }
  pending_ = message.subspan(done);
  return false;
}

bool Caller::poll_input() {
  for (;;) {
    const std::span<std::uint8_t> room{rx_.data() + rx_len_, rx_.size() - rx_len_};
    const Clock::time_point read_at = Clock::now();
    Clock::time_point arrival = read_at;
    const ssize_t r = net::recv_stamped(fd_, room, arrival);
    if (r < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return true;
      if (err == EINTR) continue;
      if (!env_.stopping) fail(Failure::io_error, std::string("read: ") + std::strerror(err));
      return false;
    }
    if (r == 0) {
      if (!env_.stopping) fail(Failure::closed_by_server, "server closed the connection");
      return false;
    }
    // Segments that wait together in the socket are merged by the kernel and carry the stamp
    // of the newest: the read tick keeps half a period away from the arrivals so that each
    // read finds one frame (see on_read_tick).
    if (arrival != read_at) {
      newest_arrival_ = arrival;
      if (env_.window.contains(arrival)) env_.totals.read_delay.add(to_ns(read_at - arrival));
    }
    rx_len_ += static_cast<std::size_t>(r);
    if (!consume(arrival)) return false;
    if (static_cast<std::size_t>(r) < room.size()) return true;  // drained
  }
}

void Caller::on_read_tick(Clock::time_point now) {
  if (closed_) return;
  const Clock::time_point seen = newest_arrival_;
  if (!poll_input()) return;
  if (newest_arrival_ == seen) return;
  // Keep this tick half a period from where the frames arrive (wrapping at the period), so
  // that jitter of up to +-10 ms never puts two frames in one read. Moves only when off by
  // more than kReadPhaseSlack, so jitter does not drag it about.
  const auto phase_of = [this](Clock::time_point t) {
    const auto d = (t - t0_) % kFramePeriod;
    return d < Clock::duration::zero() ? d + kFramePeriod : d;
  };
  const auto want = phase_of(newest_arrival_ + kFramePeriod / 2);
  auto off = want - read_phase_;
  if (off >= kFramePeriod / 2) off -= kFramePeriod;
  if (off < -kFramePeriod / 2) off += kFramePeriod;
  if (off <= kReadPhaseSlack && off >= -kReadPhaseSlack) return;
  read_phase_ = want;
  auto until = want - phase_of(now);
  if (until <= playout::PacingClock::kResolution) until += kFramePeriod;
  playout::PacingClock::remove(reader_);
  env_.clock.add(reader_, now + until);
}

bool Caller::consume(Clock::time_point arrival) {
  std::size_t off = 0;
  while (rx_len_ - off >= audiosocket::kHeaderBytes) {
    const std::uint8_t* h = rx_.data() + off;
    const std::size_t len = static_cast<std::size_t>(h[1]) << 8 | h[2];
    if (len > rx_.size() - audiosocket::kHeaderBytes) {
      fail(Failure::protocol_error, "server sent a " + std::to_string(len) + "-byte payload");
      return false;
    }
    if (rx_len_ - off < audiosocket::kHeaderBytes + len) break;
    on_message(h[0], {h + audiosocket::kHeaderBytes, len}, arrival);
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
                        Clock::time_point arrival) {
  const auto k = static_cast<audiosocket::Kind>(kind);
  if (k == audiosocket::Kind::hangup) {
    fail(Failure::server_hangup, "server sent hangup (0x00)");
  } else if (audiosocket::is_audio(k) && !payload.empty()) {
    if (k != audiosocket::Kind::slin8 || payload.size() != kFrameBytes) {
      if (env_.window.contains(arrival)) ++env_.totals.odd_frames;
    }
    on_audio(payload, arrival);
  } else {
    char text[64];
    std::snprintf(text, sizeof text, "server sent kind 0x%02x, %zu bytes", kind, payload.size());
    fail(Failure::protocol_error, text);
  }
}

void Caller::on_audio(std::span<const std::uint8_t> payload, Clock::time_point now) {
  LiveCounters::bump(env_.live.frames_received);
  ++received_;
  const bool in_window = env_.window.contains(now);
  if (env_.scenario != Scenario::echo) {
    if (env_.stamps) {
      if (frame_peak(payload) < kReplyOnsetPeak) {
        ++quiet_frames_;
      } else {
        if (quiet_frames_ >= kReplyOnsetQuietFrames && stamps_.reply.size() < kMaxStamps)
          stamps_.reply.push_back(steady_ns(now));
        quiet_frames_ = 0;
      }
    }
    if (frame_rms(payload) >= kReplyRms) {
      if (awaiting_reply_) {
        awaiting_reply_ = false;
        // Speech that ended while the agent was still talking: its voice goes on, no reply
        // starts, so there is nothing to time.
        const bool over_agent =
            now <= speech_end_ || last_loud_ + kAgentTalkingWithin >= speech_end_;
        if (reply_in_window_ && over_agent) ++env_.totals.replies_over_agent;
        if (reply_in_window_ && !over_agent) env_.totals.reply.add(to_ns(now - speech_end_));
      }
      last_loud_ = now;
    }
    count_arrival(now, in_window);
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
  count_arrival(now, in_window);
}

void Caller::count_arrival(Clock::time_point now, bool in_window) {
  if (!in_window) return;
  const auto off_period = [](Clock::duration gap) {
    return to_ns(gap > kFramePeriod ? gap - kFramePeriod : kFramePeriod - gap);
  };
  if (window_frames_ > 0) {
    const auto gap = now - last_in_window_;
    env_.totals.jitter.add(off_period(gap));
    if (gap > kLongGap) LiveCounters::bump(env_.live.long_gaps);
    // A hole: a gap of n periods (rounded) missed n - 1 slots, whether the frame was lost or
    // came a period late with the next right behind it (the caller's side has nothing to play
    // either way). Gaps shorter than a period (the server's talkspurt lead) and a period plus
    // a millisecond (the lead given back) miss none.
    if (gap > kFramePeriod + kFramePeriod / 2) {
      holes_ += static_cast<std::uint64_t>(
                    std::llround(std::chrono::duration<double>(gap) / kFramePeriod)) -
                1;
    }
  } else {
    first_in_window_ = now;
  }
  last_in_window_ = now;
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
  socket_.close(ignored);  // a connect still in flight
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  playout::PacingClock::remove(*this);
  playout::PacingClock::remove(reader_);
}

void Caller::hang_up() {
  if (!poll_input())
    return;  // read what already arrived (the server may have hung up)  // the server hung up or
             // failed the call meanwhile
  const auto now = Clock::now();
  ++env_.totals.calls_completed;
  env_.totals.completed_sent.add(sent_);
  env_.totals.completed_received.add(received_);
  env_.live.connected.fetch_sub(1, std::memory_order_relaxed);
  LiveCounters::bump(env_.live.completed);
  close();
  finish(now, false);
}

void Caller::keep_stamps() {
  if (!env_.stamps || stamps_.uuid.empty()) return;
  env_.totals.stamps.push_back(std::move(stamps_));
  stamps_.uuid.clear();
}

void Caller::finish(Clock::time_point end, bool failed) {
  if (up_) account_window(std::min(env_.window.end(), end));
  accounted_ = true;
  keep_stamps();
  env_.on_end(*this, failed);  // may retire this caller (kept alive for a while)
}

void Caller::stop() {
  if (accounted_) return;  // churn: accounted when it ended
  // Frames that came back since this call's last tick (up to 20 ms ago) count too.
  if (!closed_ && fd_ >= 0) poll_input();
  if (up_) account_window(std::min(env_.window.end(), failed_at_));
  keep_stamps();
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
  std::uint64_t inside = 0;  // slots from the first frame in the window to the last
  if (window_frames_ == 0) {
    expected = static_cast<std::uint64_t>((end - start) / kFramePeriod);
  } else {
    // The slots from the first frame to the last are the frames that came and the holes between
    // them. Not the span divided by the period: a reply that starts during silence leaves up to
    // a period early (the server's talkspurt lead) and the lead is given back a millisecond a
    // silent frame later, so the span is no whole number of periods (2026-12-07: rounding it
    // booked 9 frames of 20 calls as dropped inside calls whose server sent every frame it
    // received, frames_out = frames_in, 0 late, 0 send drops).
    inside = window_frames_ + holes_;
    expected = edge_slots(first_in_window_ - start) + inside + edge_slots(end - last_in_window_);
  }
  if (inside > window_frames_) env_.totals.frames_dropped_inside += inside - window_frames_;
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
