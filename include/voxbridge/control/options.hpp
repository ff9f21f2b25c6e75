// The control path as configured ([control], [ami], [ari]), as plain data: config fills it, the
// Controller and the AMI and ARI clients use it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "voxbridge/guard/guard.hpp"

namespace voxbridge::control {

struct AmiOptions {
  std::string host = "127.0.0.1";
  std::string port = "5038";
  std::string username;
  std::string secret;
  /// MD5 challenge login (the secret never crosses the wire) or plain.
  bool md5 = true;
  /// TLS (manager.conf tlsenable, port 5039 by default); ca_file empty = the system's CAs.
  bool tls = false;
  std::string ca_file;
  /// The Login's event mask: VarSet and Newexten are class dialplan; Newchannel, Hangup and
  /// OriginateResponse class call;
  /// "off" for none.
  std::string events = "call,dialplan";
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds action_timeout{5000};
  std::chrono::milliseconds ping_interval{20000};
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};

  bool operator==(const AmiOptions&) const = default;
};

struct AriOptions {
  /// Asterisk's HTTP server (http.conf): http://host[:port], or https://host[:port] for its TLS
  /// server (tlsenable, usually port 8089); IPv6 as [addr].
  std::string url = "http://127.0.0.1:8088";
  std::string username;
  std::string password;
  std::string app = "voxbridge";  ///< the Stasis application name
  /// https only: PEM CAs to trust; empty = the system's.
  std::string ca_file;
  /// https only: check Asterisk's certificate and that it names the url's host. Off = no
  /// protection against a man in the middle (logged at start).
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};

  bool operator==(const AriOptions&) const = default;
};

struct ControlConfig {
  enum class Mode { none, ami, ari };
  Mode mode = Mode::none;
  AmiOptions ami;
  AriOptions ari;
  /// Allowlists, settable variables and per-call caps (replaced at run time by set_policy).
  guard::Policy allow;
  /// Where a transfer that names no context goes (also where numbers are dialled from).
  std::string transfer_context = "voxbridge-transfer";
  /// AMI mode: the channel variable that carries the AudioSocket UUID (AUDIOSOCKET_UUID, set
  /// by the channel driver, is always watched too).
  std::string uuid_variable = "VB_UUID";
  /// Outbound calls: the channel to dial, ${NUMBER} replaced by the number, e.g.
  /// "PJSIP/${NUMBER}@trunk" or "Local/${NUMBER}@from-internal".
  std::string originate_channel = "Local/${NUMBER}@voxbridge-transfer";
  /// Where the answered outbound call goes: the dialplan that connects it to voxbridge.
  std::string originate_context = "voxbridge-outbound";
  std::string originate_exten = "s";
  std::string originate_caller_id;
  std::chrono::milliseconds originate_timeout{30000};  ///< ringing time
  std::size_t max_outbound = 10;                       ///< outbound calls at once
  /// ARI mode: where Asterisk connects the externalMedia AudioSocket leg ("host:port" of a
  /// voxbridge listener; empty = the first listener), and its format (slin16 = wideband).
  std::string media_address;
  std::string media_format = "slin16";

  bool operator==(const ControlConfig&) const = default;
};

}  // namespace voxbridge::control
