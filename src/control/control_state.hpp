// Private: what the control path keeps whatever its mode (Controller::State), and the interface
// of the two modes (ControlPath), each in a type of its own that owns its client and its state:
// AMI (ami_path.cpp) and ARI (ari_path.cpp).
//
// Threads: everything here runs on the control thread (State::io) except ChannelTable, which
// its own mutex guards (io threads read it when a call starts), and ControlPath::connected().
// Ownership: the Controller owns its State; the State owns its io, its policy, the channel
// table, the pending outbound calls and the path of its mode. A path refers to its State,
// which outlives it (the control thread has stopped before the State goes).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "voxbridge/control/controller.hpp"

namespace voxbridge::control {

/// What the control path learnt about one Asterisk channel.
struct ChannelFacts {
  std::string name;
  std::string caller_number;
  std::string caller_name;
  std::string exten;  ///< where it entered the dialplan (the DID on an inbound trunk)
  std::string uuid;   ///< the AudioSocket UUID that belongs to it
  std::map<std::string, std::string> variables;
};

/// The channels a path has learnt of, and which AudioSocket UUID belongs to which. Written on
/// the control thread, read from any thread; every member function locks `mu`, and code that
/// edits the maps directly (AMI's events) holds `mu` while it does.
struct ChannelTable {
  /// Channels tracked at most (a PBX this busy is beyond one voxbridge's calls anyway).
  static constexpr std::size_t kMaxChannels = 100000;

  mutable std::mutex mu;
  std::unordered_map<std::string, ChannelFacts> by_id;  // by Uniqueid / ARI channel id
  std::unordered_map<std::string, std::string> uuid_to_id;
  bool full_scan_useless = false;  // the table is full of calls' channels (AMI)

  /// Copies what is known of the call's channel into `info`; false if nothing yet.
  bool facts(const std::string& uuid, agent::CallInfo& info) const;
  /// The channel's id (Uniqueid / ARI id), its name; empty if unknown.
  std::string id_of(const std::string& uuid) const;
  std::string name_of(const std::string& uuid) const;
  bool knows(const std::string& uuid) const;
  /// Adds (or replaces) a channel tied to `f.uuid`.
  void put(const std::string& id, ChannelFacts f);
  /// Forgets a channel and the UUID tied to it.
  void forget(const std::string& id);
  /// Forgets the channels no call of ours is tied to (events were lost: they are learnt again).
  void forget_untied();
};

struct PendingOriginate {
  std::function<void(OriginateResult)> done;
  std::string to;
  std::string id;                                // AMI: the ActionID; ARI: the channel id
  std::map<std::string, std::string> variables;  // ARI: become the call's metadata
  std::shared_ptr<boost::asio::steady_timer> timer;
  bool finished = false;
};

/// One mode's link to Asterisk: its client, its state, its way of acting on a channel and of
/// placing a call. The State checks everything first (guard::, caps, max_outbound) and then
/// hands it to the path; describe() needs no path (the channel table answers it).
class ControlPath {
 public:
  virtual ~ControlPath() = default;
  /// Creates the client and asks the control thread to connect it (called before that thread
  /// runs; never fails: the client keeps retrying).
  virtual void start() = 0;
  /// Control thread: closes the client.
  virtual void stop() = 0;
  /// True while the link is up (any thread).
  virtual bool connected() const = 0;
  /// Control thread: carries out an action that passed guard:: on the call's channel
  /// (transfer, DTMF, variable; never originate); `done` gets "" or why it failed.
  virtual void run_action(const std::string& uuid, const agent::ActionRequest& r,
                          const std::string& context, std::function<void(std::string)> done) = 0;
  /// Control thread: places an outbound call that passed guard:: and max_outbound
  /// (State::begin_originate, then State::track_originate with its id).
  virtual void originate(OriginateRequest req, std::function<void(OriginateResult)> done) = 0;
};

struct Controller::State : std::enable_shared_from_this<Controller::State> {
  State(const ControlConfig& c, ControlCounters& k);

  // The io first: what holds its timers (the pending originates, the path) goes before it.
  boost::asio::io_context io{1};
  const ControlConfig& cfg;
  ControlCounters& counters;
  /// Allowlists, settable variables, caps: replaced whole on reload (any thread).
  guard::SharedPolicy shared_policy;
  ChannelTable channels;
  std::size_t outbound_active = 0;
  std::map<std::string, std::shared_ptr<PendingOriginate>> pending_originates;  // by id
  std::shared_ptr<ControlPath> path;  // the mode's; null for mode none
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::thread thread;

  /// One call's use of its caps (guard::Policy max_actions_per_call, max_originates_per_call);
  /// touched on the control thread only.
  struct CallUse {
    std::size_t actions = 0;
    std::size_t originates = 0;
  };
  void run_action(const std::string& uuid, const agent::ActionRequest& r, CallUse& use,
                  std::function<void(std::string)> done);
  /// Refuses an action (logged, counted) with "denied: why".
  void deny_action(const std::string& uuid, const agent::ActionRequest& r, const std::string& why,
                   const std::function<void(std::string)>& done);
  void finish_action(const std::string& uuid, const agent::ActionRequest& r,
                     const std::string& error, const std::function<void(std::string)>& done);
  void originate(OriginateRequest req, std::function<void(OriginateResult)> done);

  // For the paths' originate(): an outbound call is counted and tracked from begin_originate()
  // until finish_originate() (an answer, a failure, or no word within the originate timeout
  // plus 15 s: then it fails with `silence`).
  std::shared_ptr<PendingOriginate> begin_originate(const std::string& to,
                                                    std::function<void(OriginateResult)> done);
  void track_originate(const std::shared_ptr<PendingOriginate>& entry, std::string id,
                       std::string silence);
  /// The pending outbound call `id` names; null if none.
  std::shared_ptr<PendingOriginate> pending_originate(const std::string& id) const;
  void finish_originate(const std::shared_ptr<PendingOriginate>& entry, OriginateResult res);
};

std::shared_ptr<ControlPath> make_ami_path(Controller::State& state);
std::shared_ptr<ControlPath> make_ari_path(Controller::State& state);

}  // namespace voxbridge::control
