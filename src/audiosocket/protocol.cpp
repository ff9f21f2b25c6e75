#include "voxbridge/audiosocket/protocol.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace voxbridge::audiosocket {

bool is_known_kind(std::uint8_t raw) {
  return raw == 0x00 || raw == 0x01 || raw == 0x03 || (raw >= 0x10 && raw <= 0x18) || raw == 0xFF;
}

int rate_hz(Kind k) {
  switch (k) {
    case Kind::slin8:
      return 8000;
    case Kind::slin12:
      return 12000;
    case Kind::slin16:
      return 16000;
    case Kind::slin24:
      return 24000;
    case Kind::slin32:
      return 32000;
    case Kind::slin44:
      return 44100;
    case Kind::slin48:
      return 48000;
    case Kind::slin96:
      return 96000;
    case Kind::slin192:
      return 192000;
    default:
      return 0;
  }
}

std::optional<Kind> audio_kind_for_rate(int rate) {
  switch (rate) {
    case 8000:
      return Kind::slin8;
    case 12000:
      return Kind::slin12;
    case 16000:
      return Kind::slin16;
    case 24000:
      return Kind::slin24;
    case 32000:
      return Kind::slin32;
    case 44100:
      return Kind::slin44;
    case 48000:
      return Kind::slin48;
    case 96000:
      return Kind::slin96;
    case 192000:
      return Kind::slin192;
    default:
      return std::nullopt;
  }
}

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::hangup:
      return "hangup";
    case Kind::uuid:
      return "uuid";
    case Kind::dtmf:
      return "dtmf";
    case Kind::slin8:
      return "slin8";
    case Kind::slin12:
      return "slin12";
    case Kind::slin16:
      return "slin16";
    case Kind::slin24:
      return "slin24";
    case Kind::slin32:
      return "slin32";
    case Kind::slin44:
      return "slin44";
    case Kind::slin48:
      return "slin48";
    case Kind::slin96:
      return "slin96";
    case Kind::slin192:
      return "slin192";
    case Kind::error:
      return "error";
  }
  return "unknown";
}

namespace {
class ParseCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "audiosocket"; }
  std::string message(int ev) const override {
    switch (static_cast<ParseError>(ev)) {
      case ParseError::zero_length_payload:
        return "zero-length payload";
      case ParseError::unknown_kind:
        return "unknown message kind";
      case ParseError::payload_too_large:
        return "payload larger than max_payload_bytes";
      case ParseError::expected_uuid_first:
        return "message before the UUID";
      case ParseError::duplicate_uuid:
        return "second UUID on the same call";
      case ParseError::bad_uuid_length:
        return "UUID payload is not 16 bytes";
      case ParseError::bad_dtmf:
        return "DTMF payload is not one digit 0-9*#A-D";
    }
    return "unknown audiosocket error";
  }
};
}  // namespace

const std::error_category& parse_category() {
  static const ParseCategory cat;
  return cat;
}

std::error_code make_error_code(ParseError e) {
  return {static_cast<int>(e), parse_category()};
}

std::array<char, 37> Uuid::text() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::array<char, 37> out{};
  std::size_t o = 0;
  for (std::size_t i = 0; i < kUuidBytes; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = kHex[bytes[i] >> 4];
    out[o++] = kHex[bytes[i] & 0x0F];
  }
  out[o] = '\0';
  return out;
}

std::optional<Uuid> Uuid::parse(std::string_view text) {
  Uuid u;
  std::size_t n = 0;
  int half = -1;
  for (char c : text) {
    if (c == '-') continue;
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (half < 0) {
      half = v;
    } else {
      if (n == kUuidBytes) return std::nullopt;
      u.bytes[n++] = static_cast<std::uint8_t>(half << 4 | v);
      half = -1;
    }
  }
  if (n != kUuidBytes || half >= 0) return std::nullopt;
  return u;
}

FrameParser::FrameParser(std::size_t max_payload_bytes)
    : capacity_(std::max<std::size_t>(
          4096, std::min(max_payload_bytes, kProtocolMaxPayloadBytes) + kHeaderBytes)),
      max_payload_(std::min(max_payload_bytes, kProtocolMaxPayloadBytes)) {
  buf_.reset(new std::uint8_t[capacity_]);
}

std::span<std::uint8_t> FrameParser::writable() {
  if (failed_) return {};
  if (begin_ == end_) {
    // Everything consumed: restart at the front so a steady stream of small frames keeps touching
    // only the first page of the buffer.
    begin_ = end_ = 0;
  } else if (end_ == capacity_ || capacity_ - begin_ < max_payload_ + kHeaderBytes) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return {buf_.get() + end_, capacity_ - end_};
}

void FrameParser::commit(std::size_t bytes) {
  end_ = std::min(end_ + bytes, capacity_);
}

std::optional<Message> FrameParser::next(std::error_code& ec) {
  ec.clear();
  if (failed_) {
    ec = ParseError::unknown_kind;
    return std::nullopt;
  }
  const std::size_t avail = end_ - begin_;
  if (avail < 1) return std::nullopt;
  const std::uint8_t* p = buf_.get() + begin_;
  const std::uint8_t raw = p[0];
  auto fail = [&](ParseError e) -> std::optional<Message> {
    failed_ = true;
    ec = e;
    return std::nullopt;
  };
  // Judge the kind as soon as its byte arrives: garbage is refused without waiting for a length.
  if (!is_known_kind(raw)) return fail(ParseError::unknown_kind);
  const auto kind = static_cast<Kind>(raw);
  if (!uuid_seen_ && kind != Kind::uuid) return fail(ParseError::expected_uuid_first);
  if (uuid_seen_ && kind == Kind::uuid) return fail(ParseError::duplicate_uuid);
  if (avail < kHeaderBytes) return std::nullopt;
  const std::size_t len = static_cast<std::size_t>(p[1]) << 8 | p[2];
  if (len > max_payload_) return fail(ParseError::payload_too_large);
  if (len == 0 && kind != Kind::hangup && kind != Kind::error) {
    return fail(ParseError::zero_length_payload);
  }
  if (kind == Kind::uuid && len != kUuidBytes) return fail(ParseError::bad_uuid_length);
  if (kind == Kind::dtmf && len != 1) return fail(ParseError::bad_dtmf);
  if (avail < kHeaderBytes + len) return std::nullopt;
  Message m{kind, {p + kHeaderBytes, len}};
  if (kind == Kind::dtmf && !is_dtmf_digit(static_cast<char>(m.payload[0]))) {
    return fail(ParseError::bad_dtmf);
  }
  if (kind == Kind::uuid) uuid_seen_ = true;
  begin_ += kHeaderBytes + len;
  return m;
}

void encode_header(Kind kind, std::size_t payload_bytes,
                   std::span<std::uint8_t, kHeaderBytes> out) {
  out[0] = static_cast<std::uint8_t>(kind);
  out[1] = static_cast<std::uint8_t>(payload_bytes >> 8);
  out[2] = static_cast<std::uint8_t>(payload_bytes & 0xFF);
}

std::size_t encode(Kind kind, std::span<const std::uint8_t> payload, std::span<std::uint8_t> out) {
  if (payload.size() > kProtocolMaxPayloadBytes || out.size() < kHeaderBytes + payload.size()) {
    return 0;
  }
  encode_header(kind, payload.size(), out.first<kHeaderBytes>());
  if (!payload.empty()) std::memcpy(out.data() + kHeaderBytes, payload.data(), payload.size());
  return kHeaderBytes + payload.size();
}

}  // namespace voxbridge::audiosocket
