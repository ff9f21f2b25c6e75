// AudioSocket wire codec: message kinds, the incremental frame parser and the writer.
//
// Pure functions and value types, no I/O and no threads: a session feeds the parser the bytes it
// read and gets messages back that point into the parser's own buffer (valid until the next
// read). Wire facts come from Asterisk's res/res_audiosocket.c and ../shared/docs/audiosocket.md:
// kind (1 byte), length (2 bytes, big-endian), payload; audio is signed 16-bit little-endian PCM.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace voxbridge::audiosocket {

/// Message kinds Asterisk defines (include/asterisk/res_audiosocket.h).
enum class Kind : std::uint8_t {
  hangup = 0x00,
  uuid = 0x01,
  dtmf = 0x03,
  slin8 = 0x10,  ///< also carries G.711 bytes on a c(ulaw)/c(alaw) channel leg
  slin12 = 0x11,
  slin16 = 0x12,
  slin24 = 0x13,
  slin32 = 0x14,
  slin44 = 0x15,
  slin48 = 0x16,
  slin96 = 0x17,
  slin192 = 0x18,
  error = 0xFF,
};

inline constexpr std::size_t kHeaderBytes = 3;
inline constexpr std::size_t kUuidBytes = 16;
/// The length field is 16 bits, so no payload can be larger.
inline constexpr std::size_t kProtocolMaxPayloadBytes = 65535;

constexpr bool is_audio(Kind k) {
  return static_cast<std::uint8_t>(k) >= 0x10 && static_cast<std::uint8_t>(k) <= 0x18;
}
/// True for every kind Asterisk defines.
bool is_known_kind(std::uint8_t raw);
/// Sample rate of an audio kind (0x10 -> 8000 ... 0x18 -> 192000); 0 for non-audio kinds.
int rate_hz(Kind k);
/// The audio kind for a sample rate, or nullopt when AudioSocket has none for it.
std::optional<Kind> audio_kind_for_rate(int rate_hz);
std::string_view kind_name(Kind k);

/// Why a stream was rejected. Each value closes the call it came from and nothing else.
enum class ParseError {
  zero_length_payload = 1,  ///< audio, UUID or DTMF with an empty payload
  unknown_kind,             ///< a kind byte Asterisk does not define
  payload_too_large,        ///< length above the configured cap
  expected_uuid_first,      ///< any message other than a UUID before the UUID
  duplicate_uuid,           ///< a second UUID on the same call
  bad_uuid_length,          ///< UUID payload not 16 bytes
  bad_dtmf,                 ///< DTMF payload not exactly one of 0-9 * # A-D
};
const std::error_category& parse_category();
std::error_code make_error_code(ParseError e);

/// One parsed message. `payload` points into the parser's buffer and stays valid until the
/// parser's buffer is next written (writable()/commit()).
struct Message {
  Kind kind;
  std::span<const std::uint8_t> payload;
};

/// A 16-byte call UUID as Asterisk sends it, with its canonical text form.
struct Uuid {
  std::array<std::uint8_t, kUuidBytes> bytes{};
  /// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (36 characters, lower case).
  std::array<char, 37> text() const;
  static std::optional<Uuid> parse(std::string_view text);
};

/// Incremental, in-place parser for one connection.
///
/// The caller reads socket bytes straight into writable(), reports them with commit(), then calls
/// next() until it returns nothing. Messages may be split at any byte or batched many per read.
/// One buffer of max(4096, cap + 3) bytes is allocated at construction; nothing after.
/// A complete message never moves while it is being looked at; the partial tail is moved to the
/// front (memmove) only when the free space runs out.
class FrameParser {
 public:
  explicit FrameParser(std::size_t max_payload_bytes);

  /// Free space at the tail of the buffer; never empty while no error occurred.
  std::span<std::uint8_t> writable();
  void commit(std::size_t bytes);

  /// The next complete message, or nullopt when more bytes are needed or the stream is bad
  /// (then `ec` is set and the parser refuses everything after).
  std::optional<Message> next(std::error_code& ec);

  /// Bytes of an incomplete message held back for the next read.
  std::size_t pending_bytes() const { return end_ - begin_; }
  bool uuid_seen() const { return uuid_seen_; }
  std::size_t max_payload_bytes() const { return max_payload_; }

 private:
  std::unique_ptr<std::uint8_t[]> buf_;  // uninitialized: pages become resident only when used
  std::size_t capacity_;
  std::size_t begin_ = 0;  // first unparsed byte
  std::size_t end_ = 0;    // one past the last received byte
  std::size_t max_payload_;
  bool uuid_seen_ = false;
  bool failed_ = false;
};

/// Writes header + payload into `out` so the message goes out in one write (Asterisk fails a call
/// whose payload trails its header by ~5 ms). Returns the bytes used, or 0 if `out` is too small
/// or the payload is larger than the protocol allows.
std::size_t encode(Kind kind, std::span<const std::uint8_t> payload, std::span<std::uint8_t> out);
/// Writes only the 3-byte header for a payload the caller places right after it.
void encode_header(Kind kind, std::size_t payload_bytes, std::span<std::uint8_t, kHeaderBytes> out);

/// The hangup message, kind 0x00 with no payload.
inline constexpr std::array<std::uint8_t, 3> kHangupMessage{0x00, 0x00, 0x00};

/// True for the DTMF digits Asterisk sends: 0-9 * # A-D.
constexpr bool is_dtmf_digit(char c) {
  return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
}

}  // namespace voxbridge::audiosocket

template <>
struct std::is_error_code_enum<voxbridge::audiosocket::ParseError> : std::true_type {};
