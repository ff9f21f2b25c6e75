// One AudioSocket call on one TCP connection: UUID handshake, reading, the paced write,
// limits and timeouts, and hangup in either direction.
//
// Two ways of reading. Until the UUID (and whenever something unusual is going on: a frame the
// kernel took only in part, the hangup exchange) the socket is Asio's and a coroutine reads it.
// Once the call is up and healthy, the session takes the descriptor out of Asio's reactor and
// reads it on its own pacing tick, right before it writes: Asterisk sends one frame per 20 ms
// and the tick comes every 20 ms, so one non-blocking recv per tick collects what arrived,
// without an epoll wake-up per incoming frame and without the speculative read that finds
// nothing. The echo latency is unchanged (a frame waits for the next tick either way); DTMF and
// hangup are seen at most one tick later.
//
// A session lives on the io thread its socket belongs to and never leaves it, so it needs no
// locks or strands. It owns everything of its call (parser buffer, media core, agent, its
// admission ticket, what the observer follows it with) and keeps itself alive with
// shared_from_this while either loop runs. What is not the socket's or the tick's (routing,
// recording, webhooks, the events journal) goes through the listener's CallObserver, per call
// and per event, never per frame. Bad input from the peer closes only
// this call, with one warning naming the peer, the UUID (if known) and the reason.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "voxbridge/access/admission.hpp"
#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audiosocket/protocol.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/metrics/metrics.hpp"
#include "voxbridge/playout/pacing_clock.hpp"
#include "voxbridge/playout/phase_aligner.hpp"
#include "voxbridge/session/call_media.hpp"
#include "voxbridge/session/call_observer.hpp"
#include "voxbridge/session/mailbox.hpp"
#include "voxbridge/session/options.hpp"

namespace voxbridge::session {

/// Why a call ended, for logs and counters.
enum class EndCause { caller_hangup, server_hangup, protocol_error, timeout, io_error, shutdown };
inline constexpr std::size_t kEndCauses = 6;
/// The label of an end cause in logs and metrics ("caller", "server", ...).
const char* end_cause_name(EndCause c);

/// Why a connection was closed for bad input: the parser's reasons (audiosocket::ParseError,
/// same values), no UUID in time, or audio in a format the call cannot take.
enum class InputError : std::uint8_t {
  zero_length_payload = 1,
  unknown_kind,
  payload_too_large,
  expected_uuid_first,
  duplicate_uuid,
  bad_uuid_length,
  bad_dtmf,
  handshake_timeout,
  bad_audio,
};
inline constexpr std::size_t kInputErrors = 10;  // index = value (0 unused)
const char* input_error_name(InputError e);

/// The counters of one listener's calls on one io thread: that thread alone writes them
/// (metrics::Counter, no contention); the server sums every thread's set when asked.
struct SessionCounters {
  metrics::Counter started;                              ///< calls whose UUID arrived
  std::array<metrics::Counter, kEndCauses> ended;        ///< those calls, by how they ended
  metrics::Counter no_uuid;                              ///< connections closed before a UUID
  std::array<metrics::Counter, kInputErrors> bad_input;  ///< by InputError
  metrics::Counter frames_in;
  metrics::Counter frames_out;
  metrics::Counter dtmf_in;
  metrics::Counter late_ticks;
  metrics::Counter underruns;
  metrics::Counter send_drops;  ///< frames not sent: Asterisk was not reading
  // Sockets by state.
  metrics::Gauge handshaking;  ///< accepted, no UUID yet
  metrics::Gauge up;           ///< UUID in, call running
  metrics::Gauge closing;      ///< hangup exchange / close in progress
  /// Calls refused after their UUID: the listener wants pre-registered UUIDs only.
  metrics::Counter unregistered;
  /// The agents of these calls (turn phases, providers); CallInfo::metrics points here.
  metrics::AgentCounters agent;
};

/// Everything a listener's calls share (immutable once serving): plain options, and the
/// observer that decides and follows what the socket does not (routing, recording, webhooks,
/// the events journal).
struct SessionConfig {
  std::string listener;
  SessionLimits limits;
  MediaOptions media;
  /// Once the call is up, read on the pacing tick instead of on every arrival (see above).
  bool read_on_tick = true;
  /// With read_on_tick: move the call's tick to just after the caller's frames arrive
  /// (playout::PhaseAligner), `tick_alignment_margin` before the tick.
  bool tick_alignment = false;
  std::chrono::microseconds tick_alignment_margin{4000};
  /// The listener's agent, for logs and /status (the observer may route a call to another).
  std::string agent_name;
  /// Makes the calls' agents and follows the calls (see call_observer.hpp); shared by every
  /// call of the listener, so it lives as long as the last of them. Null: no agent, nothing
  /// observed.
  std::shared_ptr<CallObserver> observer;
};

class CallSession;
using SessionHook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
/// The calls of one io thread (for shutdown); touched only from that thread.
using SessionList =
    boost::intrusive::list<CallSession, boost::intrusive::constant_time_size<false>>;

/// A live call, for `/status` (copied on the call's thread).
struct CallStatus {
  std::string uuid;  ///< empty before the UUID
  std::string peer;
  std::string listener;
  std::string codec;  ///< leg codec ("slin16", "ulaw"...), "?" before the first audio
  int rate_hz = 0;
  double seconds = 0;  ///< since the UUID (or since accepted, without one)
  std::string state;   ///< "handshake", "closing", or the agent's state ("listening"...)
  std::string agent;
};

class CallSession : public std::enable_shared_from_this<CallSession>,
                    public SessionHook,
                    private playout::PacingClock::Client,
                    private Mailbox::Owner {
 public:
  /// Frames (of the leg's 20 ms size) one pacing tick reads at most: Asterisk sends one per
  /// tick; the rest is room to catch up after a stall. More waits in the kernel.
  static constexpr std::size_t kTickReadFrames = 4;

  /// Starts serving an accepted socket. `clock` is the pacing clock of the socket's io thread;
  /// `list` (may be null) is that thread's call list; `mailbox` (may be null: one per call is
  /// made) its way back from other threads.
  static std::shared_ptr<CallSession> start(boost::asio::ip::tcp::socket socket,
                                            std::shared_ptr<const SessionConfig> config,
                                            playout::PacingClock& clock, SessionList* list,
                                            std::shared_ptr<Mailbox> mailbox = nullptr,
                                            SessionCounters* counters = nullptr,
                                            access::AdmissionTicket admission = {});

  /// `counters` (may be null) are the io thread's set for this listener; `admission` (may be
  /// empty) is the connection's place, released when the session is destroyed.
  CallSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<const SessionConfig> config,
              playout::PacingClock& clock, std::shared_ptr<Mailbox> mailbox = nullptr,
              SessionCounters* counters = nullptr, access::AdmissionTicket admission = {});
  ~CallSession();
  CallSession(const CallSession&) = delete;
  CallSession& operator=(const CallSession&) = delete;

  /// Server-initiated hangup (shutdown, admin): queued audio is dropped, 0x00 goes out now.
  /// Must be called on the session's io thread.
  void hangup(std::string_view reason);

  /// For a server whose io threads have stopped: drops the call without any I/O (closes the
  /// socket, lets go of the session). Must not be called while the io thread runs.
  void abandon();

  /// What the call is doing, for `/status`. On the session's io thread.
  CallStatus status(Clock::time_point now) const;

  /// The call's UUID (empty before it arrived). On the session's io thread.
  std::string_view uuid() const { return have_uuid_ ? std::string_view(uuid_.data()) : ""; }
  /// Transcript events from index `from` on (JSON objects, the lines of the recording's JSONL:
  /// start, user, interim, agent, dtmf, barge_in, action, end), appended to `out`; returns the
  /// index after the last. Kept by the observer (ObservedCall) when it follows the call's
  /// events (the HTTP API or a webhook is on). On the io thread.
  std::size_t events_from(std::size_t from, std::vector<std::string>& out) const;

  /// True while the session reads on its pacing tick (tests and diagnostics).
  bool reads_on_tick() const { return tick_.fd >= 0; }
  /// Times the tick was moved to follow the caller's frames (tests and diagnostics).
  std::uint32_t tick_moves() const { return tick_.aligner.moves(); }

 private:
  void run();
  void spawn_read_loop(std::shared_ptr<CallSession> self);
  /// Reads with Asio until the call can read on its tick; returns true if it handed over.
  boost::asio::awaitable<bool> read_loop();
  /// Parses `n` new bytes and handles the messages; false once the call is closing.
  bool consume(std::size_t n);
  /// Takes the socket out of Asio's reactor: from now on the pacing tick reads it.
  void read_on_tick();
  /// Gives the socket back to Asio and restarts the read coroutine (for the unusual paths).
  void read_with_asio();
  /// One tick's reading; false once the call is closing.
  bool poll_input(Clock::time_point now);
  /// One non-blocking read of the descriptor; while aligning, also takes the kernel's receive
  /// stamp into tick_.newest_rx.
  ssize_t receive(std::span<std::uint8_t> buf);
  /// After the tick's frame went out: moves the timeline if the aligner says so.
  void align_tick(Clock::time_point deadline, Clock::time_point now);
  /// The thread's pacing clock says this call's next frame is due.
  void on_pacing_tick(Clock::time_point now) override;
  /// The tick threw (the agent, the media path): this call ends, the thread's others go on.
  void on_pacing_error(std::exception_ptr error) noexcept override;
  /// A function posted for this call (a provider's message) threw: the same.
  void on_mailbox_error(std::exception_ptr error) noexcept override;
  /// Logs `error` (thrown by `where`) and ends the call with a hangup.
  void end_on_error(const char* where, const std::exception_ptr& error) noexcept;
  /// The agent started talking while the call played silence: its first frame goes now and the
  /// call's timeline continues from it, instead of waiting up to a period for the next tick.
  void start_talkspurt();
  void send_frame(std::span<const std::uint8_t> msg);
  void send_hangup();
  /// Closes the socket `close_grace` from now unless the peer closes first.
  void arm_close_grace();
  /// Bytes one tick may read: kTickReadFrames frames of the leg (one buffer before the first).
  std::size_t tick_read_budget();
  bool handle(const audiosocket::Message& m);
  void fail(EndCause cause, std::string reason);
  void finish();
  /// Counts bad input and closes the call with `reason`.
  void reject_input(InputError e, std::string reason);
  /// Moves the call's media counts since the last flush into the thread's counters.
  void flush_counts();
  enum class SocketState { none, handshaking, up, closing };
  void set_socket_state(SocketState s);
  /// One transcript event: to the recording and the observer.
  void note(const events::Event& e);
  /// The UUID arrived: the observer plans the call, then media and tick start. False if refused.
  bool start_call();

  // First, so destroyed last: the call's admission is released once all of it is gone.
  access::AdmissionTicket admission_;
  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<Mailbox> mailbox_;
  /// While the tick reads: the descriptor Asio let go of (else -1) and its family; tick
  /// alignment; talkspurts.
  struct TickRead {
    int fd = -1;
    bool v6 = false;
    // Tick alignment: what this tick's read found (whole frames, other lengths, the kernel's
    // receive stamp of the newest byte), and the aligner it goes to.
    bool aligning = false;
    int frames = 0;
    bool odd = false;
    Clock::time_point newest_rx{};
    playout::PhaseAligner aligner;
    // How far talkspurts moved the timeline earlier (at most one period); given back 1 ms per
    // silent frame after them, so the call never runs more than a frame ahead of real time.
    Clock::duration talkspurt_lead{};
  };
  /// A frame the kernel took only part of: its tail goes out asynchronously, and frames due
  /// meanwhile are dropped (counted), never queued: Asterisk is not reading.
  struct Outgoing {
    bool pending = false;
    bool hangup_after = false;
    std::size_t tail_len = 0;
    std::uint64_t drops = 0;
    std::unique_ptr<std::uint8_t[]> tail;
  };
  /// What this call has put into the thread's counters so far.
  struct Counted {
    SocketState socket_state = SocketState::none;
    MediaStats stats{};  // what flush_counts() has already counted
    std::uint64_t drops = 0;
    unsigned ticks = 0;  // since the last flush
  };

  TickRead tick_;
  // While the tick reads, the reference that keeps the session alive in place of the read
  // coroutine's.
  std::shared_ptr<CallSession> self_;
  boost::asio::steady_timer timer_;  // handshake deadline, then the hangup grace
  playout::PacingClock& clock_;
  std::shared_ptr<const SessionConfig> config_;
  audiosocket::FrameParser parser_;
  CallMedia media_;
  std::string peer_;
  std::array<char, 37> uuid_{};
  std::string agent_name_;                  // the listener's agent, or the one routing picked
  std::unique_ptr<ObservedCall> observed_;  // null: nobody follows the call's events
  bool have_uuid_ = false;
  Clock::time_point accepted_at_;
  Clock::time_point started_at_;
  Clock::time_point last_rx_;
  bool closing_ = false;  // no more audio; hangup goes out if `send_hangup_`
  bool send_hangup_ = false;
  EndCause cause_ = EndCause::caller_hangup;
  std::string reason_;
  Outgoing out_;
  SessionCounters* counters_;
  Counted counted_;
};

}  // namespace voxbridge::session
