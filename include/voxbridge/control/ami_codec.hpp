// The Asterisk Manager Interface wire format, without I/O: CRLF-terminated "Key: Value" lines,
// a message ends with an empty line. Asterisk sends one banner line first
// ("Asterisk Call Manager/X.Y.Z"), then responses ("Response: Success", correlated by ActionID)
// and events ("Event: VarSet").
//
// Values that reach Asterisk are checked here: a CR or LF inside a value would end the line and
// let the text after it become a new header (an agent talked into transferring to
// "100\r\nAction: Originate ..." must not get to originate anything), so encode() refuses it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace voxbridge::control {

/// One AMI message: its header lines in order (keys as sent; lookups ignore case).
struct AmiMessage {
  std::vector<std::pair<std::string, std::string>> fields;

  /// The first value of `key` (case-insensitive), or empty.
  std::string_view get(std::string_view key) const;
  bool has(std::string_view key) const;
  /// All values of `key` (Asterisk repeats some keys, e.g. ChanVariable, Variable).
  std::vector<std::string_view> get_all(std::string_view key) const;
  bool is_event() const { return has("Event"); }
  /// A response to an action ("Response:" without "Event:"; OriginateResponse events have both).
  bool is_response() const { return has("Response") && !has("Event"); }
  std::string_view event() const { return get("Event"); }
  std::string_view action_id() const { return get("ActionID"); }
};

using AmiFields = std::vector<std::pair<std::string, std::string>>;

/// An action's bytes: "Action: NAME", "ActionID: ID", the fields, and the empty line. Returns
/// nullopt (and says why in `error`) if a key or value holds CR or LF, or a key is empty or
/// holds ':'.
std::optional<std::string> encode_action(std::string_view action, std::string_view action_id,
                                         const AmiFields& fields, std::string* error = nullptr);

/// Reads messages from a byte stream in pieces of any size. A line longer than max_line_bytes
/// or a message of more than max_fields lines is an error (the connection should be dropped):
/// a manager that misbehaves must not make voxbridge grow without bound.
class AmiParser {
 public:
  struct Limits {
    std::size_t max_line_bytes = 8192;
    std::size_t max_fields = 512;
  };
  AmiParser() = default;
  explicit AmiParser(Limits limits) : limits_(limits) {}

  /// Appends bytes; complete messages go to `out`. With `expect_banner` set (a new
  /// connection), the first line is the banner, kept in banner(). Returns false on a protocol
  /// error, described by error(); the parser is then unusable.
  bool feed(std::string_view bytes, std::vector<AmiMessage>& out);
  void expect_banner() { banner_pending_ = true; }
  const std::string& banner() const { return banner_; }
  const std::string& error() const { return error_; }
  /// Starts over (for a new connection).
  void reset();

 private:
  bool line(std::string_view l, std::vector<AmiMessage>& out);

  Limits limits_;
  std::string partial_;
  AmiMessage current_;
  std::string banner_;
  std::string error_;
  bool banner_pending_ = false;
  bool failed_ = false;
};

/// The response to a Challenge/Login with AuthType MD5: hex MD5 of challenge + secret.
std::string ami_md5_key(std::string_view challenge, std::string_view secret);

}  // namespace voxbridge::control
