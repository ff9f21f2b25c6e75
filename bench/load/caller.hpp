// One simulated Asterisk call (dialplan-app mode) on an io thread: connect, send the 16-byte
// UUID (kind 0x01), then one 320-byte slin8 frame (kind 0x10) per 20 ms at absolute deadlines
// t0 + n * 20 ms, t0 carrying a random phase; read the echo and measure it.
//
// Lives on one io_context and is touched only from its thread. Completion handlers capture
// `this`: the owning worker keeps every Caller alive until its io_context has run dry.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "metrics.hpp"
#include "options.hpp"
#include "test_signal.hpp"
#include "voxbridge/playout/pacing_clock.hpp"

namespace voxbridge::loadgen {

/// What the calls of one io thread share.
class Caller;

struct CallEnv {
  boost::asio::io_context& io;
  boost::asio::ip::tcp::endpoint server;
  const TestSignal& signal;
  const Window& window;
  LiveCounters& live;
  playout::PacingClock& clock;  ///< the thread's: sends every call's frames on a 1 ms grid
  Totals& totals;               ///< this thread's; no locking
  Scenario scenario = Scenario::echo;
  bool stamps = false;  ///< --stamps: keep CallStamps, into totals at the call's end
  bool stopping = false;
  /// Call churn: told when a call has ended (we hung up, or it failed) and its window
  /// accounting is done. Unset without churn: calls then stay until stop().
  std::function<void(Caller&, bool failed)> on_end{};
};

class Caller : private playout::PacingClock::Client {
 public:
  /// `phase` (0..20 ms) offsets this call's frame timeline from its connect time. A non-zero
  /// `length` makes the caller hang up that long after connecting (call churn).
  Caller(CallEnv& env, const audiosocket::Uuid& uuid, Clock::duration phase,
         Clock::duration length = Clock::duration::zero());
  Caller(const Caller&) = delete;
  Caller& operator=(const Caller&) = delete;

  void start();
  /// Closes the call (the caller hangs up) and adds its frame accounting for the window.
  void stop();

 private:
  void on_connect(const boost::system::error_code& ec);
  /// The thread's pacing clock: this call's next frame is due.
  void on_pacing_tick(Clock::time_point now) override;
  void write_next();
  /// Conversation and dialogue: the index in the voice of the frame sent now, or past its end
  /// for silence (dialogue decides here when the caller's next turn starts).
  std::uint64_t voice_frame(Clock::time_point now);
  /// Sends one message; false if part of it waits in `pending_` (or the call failed).
  bool send(std::span<const std::uint8_t> message);
  /// Reads everything that came back, with the kernel's receive stamp (SO_TIMESTAMPNS, on the
  /// steady clock) as its arrival; false if the call failed (the server closed it, or an error).
  bool poll_input();
  /// The call's read tick: reads, and keeps the tick half a period away from the arrivals.
  void on_read_tick(Clock::time_point now);
  /// Handles every complete message in rx_; false if the call failed on one.
  bool consume(Clock::time_point arrival);
  void on_message(std::uint8_t kind, std::span<const std::uint8_t> payload,
                  Clock::time_point arrival);
  void on_audio(std::span<const std::uint8_t> payload, Clock::time_point arrival);
  /// Inter-arrival jitter (by kernel stamp) and the frame count of the window.
  void count_arrival(Clock::time_point arrival, bool in_window);
  void fail(Failure why, const std::string& detail);
  void close();
  /// Churn: reads what already arrived, then hangs up (closes the socket).
  void hang_up();
  /// Churn: the call has ended at `end`; accounts its window and tells the worker.
  void finish(Clock::time_point end, bool failed);
  void account_window(Clock::time_point end);
  /// --stamps: hands this call's stamps to the totals (once).
  void keep_stamps();

  CallEnv& env_;
  boost::asio::ip::tcp::socket socket_;  // until connected; then the call owns fd_
  int fd_ = -1;
  std::array<std::uint8_t, audiosocket::kHeaderBytes + audiosocket::kUuidBytes> uuid_message_{};
  Clock::duration phase_;
  Clock::duration length_;  // zero: no hangup of our own
  Clock::time_point connected_at_{};
  Clock::time_point hangup_at_{Clock::time_point::max()};
  bool up_ = false;
  bool closed_ = false;
  bool accounted_ = false;
  Clock::time_point failed_at_{Clock::time_point::max()};

  // Sending: the tick moves `due_` on; writes chase it in order, the rest of a message the
  // kernel did not take first (like a blocking writer), so a slow socket delays frames rather
  // than dropping them.
  Clock::time_point t0_{};
  std::uint64_t due_ = 0;                    // frames whose deadline has passed
  std::uint64_t sent_ = 0;                   // frames handed to the socket
  std::span<const std::uint8_t> pending_{};  // the unsent rest of a message
  bool uuid_sent_ = false;

  // Receiving: on a tick of its own, 20 ms apart like the sends but at the phase that keeps it
  // half a period from the returned frames' arrivals.
  struct Reader : playout::PacingClock::Client {
    explicit Reader(Caller& c) : call(c) {}
    void on_pacing_tick(Clock::time_point now) override { call.on_read_tick(now); }
    Caller& call;
  };
  static constexpr auto kReadPhaseSlack = std::chrono::milliseconds(4);
  Reader reader_;
  Clock::duration read_phase_{};  // of the read tick, from t0_
  Clock::time_point newest_arrival_{};
  std::array<std::uint8_t, 2048> rx_{};
  std::size_t rx_len_ = 0;
  std::uint64_t received_ = 0;  // audio frames over the whole call
  bool heard_tone_ = false;
  bool marker_pending_ = false;
  bool marker_in_window_ = false;
  // Conversation: waiting for the reply to the speech that ended at speech_end_.
  bool awaiting_reply_ = false;
  bool reply_in_window_ = false;
  Clock::time_point speech_end_{};
  Clock::time_point last_loud_{};  // arrival of the agent's last loud frame
  // Dialogue: the frame where the caller's current turn started, and since when it listens.
  static constexpr std::uint64_t kSilent = ~std::uint64_t{0};
  std::uint64_t speaking_from_ = kSilent;
  Clock::time_point listening_since_{};
  Clock::time_point marker_sent_at_{};
  // --stamps (bounded: kMaxStamps each).
  CallStamps stamps_;
  std::uint64_t quiet_frames_ = kReplyOnsetQuietFrames;

  // Returned frames inside the steady window.
  std::uint64_t window_frames_ = 0;
  std::uint64_t holes_ = 0;  // frames missing between those of the window
  Clock::time_point first_in_window_{};
  Clock::time_point last_in_window_{};
};

}  // namespace voxbridge::loadgen
