// Private: the control thread's state, shared by the AMI side (controller.cpp) and the ARI side
// (ari_calls.cpp). Everything here runs on the control thread except what `mu` guards (the
// channel facts, read by io threads when a call starts).
#pragma once

#include <atomic>
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

struct PendingOriginate {
  std::function<void(OriginateResult)> done;
  std::string to;
  std::string action_id;                         // AMI
  std::string channel_id;                        // ARI
  std::map<std::string, std::string> variables;  // ARI: become the call's metadata
  std::shared_ptr<boost::asio::steady_timer> timer;
  bool finished = false;
};

/// ARI mode: one caller in Stasis, its AudioSocket leg and the bridge between them.
struct AriCall {
  std::string caller;  ///< channel id of the caller
  std::string media;   ///< channel id of the externalMedia leg (empty until created)
  std::string bridge;  ///< bridge id (empty until created)
  std::string uuid;
  bool transferred = false;      ///< left Stasis on purpose: do not hang the caller up
  bool media_in_stasis = false;  ///< the leg's StasisStart came: it may join the bridge
  bool bridged = false;
  bool ending = false;
};

struct Controller::State : std::enable_shared_from_this<Controller::State> {
  /// Channels tracked at most (a PBX this busy is beyond one voxbridge's calls anyway).
  static constexpr std::size_t kMaxChannels = 100000;

  State(const ControlConfig& c, ControlCounters& k);

  const ControlConfig& cfg;
  ControlCounters& counters;
  /// Allowlists, settable variables, caps: replaced whole on reload (any thread).
  guard::SharedPolicy shared_policy;
  boost::asio::io_context io{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::thread thread;
  std::shared_ptr<AmiClient> ami;
  std::shared_ptr<AriClient> ari;

  mutable std::mutex mu;                                   // guards channels and uuid_to_id
  std::unordered_map<std::string, ChannelFacts> channels;  // by Uniqueid / ARI channel id
  std::unordered_map<std::string, std::string> uuid_to_id;
  bool full_scan_useless = false;  // guarded by mu: the table is full of calls' channels

  std::size_t outbound_active = 0;
  std::map<std::string, std::shared_ptr<PendingOriginate>> pending_originates;  // by id

  // ARI mode
  std::map<std::string, std::shared_ptr<AriCall>> ari_calls;     // by caller channel id
  std::map<std::string, std::shared_ptr<AriCall>> ari_by_media;  // by media channel id
  std::map<std::string, std::shared_ptr<AriCall>> ari_by_uuid;   // by AudioSocket UUID
  std::atomic<bool> ari_up{false};

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
  std::string channel_of(const std::string& uuid) const;
  /// Copies what is known of the call's channel into `info`; false if nothing yet.
  bool facts(const std::string& uuid, agent::CallInfo& info) const;
  void originate(OriginateRequest req, std::function<void(OriginateResult)> done);
  void finish_originate(const std::shared_ptr<PendingOriginate>& entry, OriginateResult res);

  // AMI
  void ami_action(const std::string& uuid, const agent::ActionRequest& r,
                  const std::string& context, std::function<void(std::string)> done);
  void ami_dtmf(std::string channel, std::string digits, std::size_t index, int digit_ms,
                std::function<void(std::string)> done);
  void on_ami_event(const AmiMessage& m);
  void on_originate_response(const AmiMessage& m);

  // ARI (ari_calls.cpp)
  void start_ari();
  void stop_ari();
  bool ari_connected() const { return ari_up; }
  void ari_action(const std::string& uuid, const agent::ActionRequest& r,
                  const std::string& context, std::function<void(std::string)> done);
  void ari_originate(OriginateRequest req, std::function<void(OriginateResult)> done);
  void on_ari_event(const boost::json::object& e);
  void ari_stasis_start(const boost::json::object& channel, const boost::json::value* args);
  void ari_channel_gone(const std::string& id, int cause);
  void ari_try_bridge(const std::shared_ptr<AriCall>& call);
  void ari_teardown(const std::shared_ptr<AriCall>& call, const std::string& why);
};

}  // namespace voxbridge::control
