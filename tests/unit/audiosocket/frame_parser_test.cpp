#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "voxbridge/audiosocket/protocol.hpp"

namespace voxbridge::audiosocket {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes message(std::uint8_t kind, const Bytes& payload) {
  Bytes m(3 + payload.size());
  m[0] = kind;
  m[1] = static_cast<std::uint8_t>(payload.size() >> 8);
  m[2] = static_cast<std::uint8_t>(payload.size() & 0xFF);
  std::copy(payload.begin(), payload.end(), m.begin() + 3);
  return m;
}

const Bytes kUuidBytes{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                       0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

struct Parsed {
  std::uint8_t kind;
  Bytes payload;
  bool operator==(const Parsed&) const = default;
};

/// Feeds `stream` to a parser in pieces cut at `cuts`, collecting messages and the first error.
std::vector<Parsed> feed(FrameParser& p, const Bytes& stream, const std::vector<std::size_t>& cuts,
                         std::error_code& err) {
  std::vector<Parsed> out;
  std::size_t pos = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(stream.size());
  for (std::size_t end : ends) {
    while (pos < end) {
      auto w = p.writable();
      if (w.empty()) return out;
      const std::size_t n = std::min(w.size(), end - pos);
      std::memcpy(w.data(), stream.data() + pos, n);
      p.commit(n);
      pos += n;
      std::error_code ec;
      while (auto m = p.next(ec)) {
        out.push_back(
            {static_cast<std::uint8_t>(m->kind), Bytes(m->payload.begin(), m->payload.end())});
      }
      if (ec) {
        err = ec;
        return out;
      }
    }
  }
  return out;
}

Bytes audio_payload(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return b;
}

TEST(FrameParser, ParsesEveryKindAsteriskDefines) {
  Bytes stream = message(0x01, kUuidBytes);
  std::vector<Parsed> expected{{0x01, kUuidBytes}};
  auto add = [&](std::uint8_t kind, Bytes payload) {
    Bytes m = message(kind, payload);
    stream.insert(stream.end(), m.begin(), m.end());
    expected.push_back({kind, payload});
  };
  add(0x03, {'5'});
  for (std::uint8_t k = 0x10; k <= 0x18; ++k)
    add(k, audio_payload(rate_hz(static_cast<Kind>(k)) / 50 * 2 % 4000 + 2, k));
  add(0xFF, {0x02});
  add(0xFF, {});
  add(0x00, {});
  FrameParser p(8192);
  std::error_code ec;
  EXPECT_EQ(feed(p, stream, {}, ec), expected);
  EXPECT_FALSE(ec);
  EXPECT_EQ(p.pending_bytes(), 0u);
}

TEST(FrameParser, HandlesEverySplitPointOfAMultiMessageStream) {
  Bytes stream = message(0x01, kUuidBytes);
  for (const Bytes& m : {message(0x10, audio_payload(320, 1)), message(0x03, {'#'}),
                         message(0x12, audio_payload(640, 9)), message(0x10, audio_payload(224, 3)),
                         message(0x00, {})}) {
    stream.insert(stream.end(), m.begin(), m.end());
  }
  FrameParser whole(8192);
  std::error_code ec;
  const auto reference = feed(whole, stream, {}, ec);
  ASSERT_EQ(reference.size(), 6u);
  for (std::size_t cut = 1; cut < stream.size(); ++cut) {
    FrameParser p(8192);
    ASSERT_EQ(feed(p, stream, {cut}, ec), reference) << "cut at byte " << cut;
    ASSERT_FALSE(ec);
  }
  // Two cuts, at every pair of points in the first 60 bytes (header/payload/UUID edges).
  for (std::size_t a = 1; a < 60; ++a) {
    for (std::size_t b = a + 1; b < 60; ++b) {
      FrameParser p(8192);
      ASSERT_EQ(feed(p, stream, {a, b}, ec), reference) << a << "," << b;
    }
  }
  // One byte at a time.
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  FrameParser p(8192);
  EXPECT_EQ(feed(p, stream, every, ec), reference);
}

TEST(FrameParser, ManyMessagesInOneRead) {
  Bytes stream = message(0x01, kUuidBytes);
  for (int i = 0; i < 12; ++i) {
    Bytes m = message(0x10, audio_payload(320, static_cast<std::uint8_t>(i)));
    stream.insert(stream.end(), m.begin(), m.end());
  }
  FrameParser p(8192);
  auto w = p.writable();
  ASSERT_GE(w.size(), stream.size());
  std::memcpy(w.data(), stream.data(), stream.size());
  p.commit(stream.size());
  std::error_code ec;
  int n = 0;
  while (auto m = p.next(ec)) {
    if (n > 0) {
      EXPECT_EQ(m->payload[0], static_cast<std::uint8_t>(n - 1));
    }
    ++n;
  }
  EXPECT_EQ(n, 13);
}

TEST(FrameParser, MessagesPointIntoTheBufferWithoutCopying) {
  Bytes stream = message(0x01, kUuidBytes);
  FrameParser p(8192);
  auto w = p.writable();
  std::memcpy(w.data(), stream.data(), stream.size());
  p.commit(stream.size());
  std::error_code ec;
  auto m = p.next(ec);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload.data(), w.data() + kHeaderBytes);
}

struct BadCase {
  const char* name;
  Bytes stream;
  ParseError error;
};

class FrameParserRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(FrameParserRejects, WithTheRightReason) {
  FrameParser p(4096);
  std::error_code ec;
  feed(p, GetParam().stream, {}, ec);
  EXPECT_EQ(ec, make_error_code(GetParam().error)) << ec.message();
  // A failed parser stays failed: nothing after the bad message is accepted.
  EXPECT_TRUE(p.writable().empty());
}

Bytes after_uuid(const Bytes& tail) {
  Bytes b = message(0x01, kUuidBytes);
  b.insert(b.end(), tail.begin(), tail.end());
  return b;
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, FrameParserRejects,
    ::testing::Values(
        BadCase{"ZeroLengthAudio", after_uuid({0x10, 0x00, 0x00}), ParseError::zero_length_payload},
        BadCase{"ZeroLengthUuid", {0x01, 0x00, 0x00}, ParseError::zero_length_payload},
        BadCase{"ZeroLengthDtmf", after_uuid({0x03, 0x00, 0x00}), ParseError::zero_length_payload},
        BadCase{"UnknownKind", after_uuid({0x02, 0x00, 0x01, 0x00}), ParseError::unknown_kind},
        BadCase{"UnknownKindJustAboveAudio", after_uuid({0x19}), ParseError::unknown_kind},
        BadCase{"PayloadOverCap", after_uuid({0x10, 0x10, 0x01}), ParseError::payload_too_large},
        BadCase{"AudioBeforeUuid", message(0x10, audio_payload(320, 0)),
                ParseError::expected_uuid_first},
        BadCase{"DtmfBeforeUuid", message(0x03, {'1'}), ParseError::expected_uuid_first},
        BadCase{"HangupBeforeUuid", {0x00, 0x00, 0x00}, ParseError::expected_uuid_first},
        BadCase{"SecondUuid", after_uuid(message(0x01, kUuidBytes)), ParseError::duplicate_uuid},
        BadCase{"ShortUuid", message(0x01, Bytes(15, 1)), ParseError::bad_uuid_length},
        BadCase{"DtmfNotADigit", after_uuid(message(0x03, {'x'})), ParseError::bad_dtmf},
        BadCase{"DtmfTwoBytes", after_uuid(message(0x03, {'1', '2'})), ParseError::bad_dtmf},
        BadCase{"HttpRequest", {'G', 'E', 'T', ' ', '/'}, ParseError::unknown_kind}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(FrameParser, RejectsAnUnknownKindBeforeItsLengthArrives) {
  FrameParser p(4096);
  std::error_code ec;
  feed(p, after_uuid({0x42}), {}, ec);
  EXPECT_EQ(ec, make_error_code(ParseError::unknown_kind));
}

TEST(FrameParser, AcceptsAPayloadExactlyAtTheCap) {
  FrameParser p(1000);
  std::error_code ec;
  auto out = feed(p, after_uuid(message(0x10, audio_payload(1000, 5))), {}, ec);
  EXPECT_FALSE(ec);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].payload.size(), 1000u);
}

TEST(FrameParser, LargestProtocolPayloadParsesWithTheMaximumCap) {
  FrameParser p(65535);
  std::error_code ec;
  auto out = feed(p, after_uuid(message(0x16, audio_payload(65535, 1))), {100, 40000}, ec);
  EXPECT_FALSE(ec);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].payload.size(), 65535u);
}

TEST(FrameWriter, EmitsHeaderAndPayloadInOneBuffer) {
  std::uint8_t out[16];
  const std::uint8_t payload[] = {0x01, 0x02, 0x03, 0x04};
  ASSERT_EQ(encode(Kind::slin16, payload, out), 7u);
  const std::uint8_t expected[] = {0x12, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04};
  EXPECT_EQ(std::memcmp(out, expected, 7), 0);
}

TEST(FrameWriter, LengthIsBigEndian) {
  std::vector<std::uint8_t> out(3 + 1920);
  std::vector<std::uint8_t> payload(1920, 0);
  ASSERT_EQ(encode(Kind::slin48, payload, out), 1923u);
  EXPECT_EQ(out[0], 0x16);
  EXPECT_EQ(out[1], 0x07);
  EXPECT_EQ(out[2], 0x80);
}

TEST(FrameWriter, RefusesAnOutputBufferThatIsTooSmall) {
  std::uint8_t out[5];
  const std::uint8_t payload[4] = {};
  EXPECT_EQ(encode(Kind::slin8, payload, out), 0u);
}

TEST(FrameWriter, HangupIsThreeZeroBytes) {
  EXPECT_EQ(kHangupMessage, (std::array<std::uint8_t, 3>{0, 0, 0}));
}

TEST(Uuid, FormatsAndParsesTheCanonicalText) {
  Uuid u;
  std::copy(kUuidBytes.begin(), kUuidBytes.end(), u.bytes.begin());
  EXPECT_STREQ(u.text().data(), "12345678-9abc-def0-0123-456789abcdef");
  auto back = Uuid::parse("12345678-9ABC-def0-0123-456789abcdef");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->bytes, u.bytes);
  EXPECT_FALSE(Uuid::parse("12345678-9abc-def0-0123-456789abcde"));
  EXPECT_FALSE(Uuid::parse("12345678-9abc-def0-0123-456789abcdefg"));
}

TEST(Kinds, RatesMatchAsterisk) {
  EXPECT_EQ(rate_hz(Kind::slin8), 8000);
  EXPECT_EQ(rate_hz(Kind::slin12), 12000);
  EXPECT_EQ(rate_hz(Kind::slin16), 16000);
  EXPECT_EQ(rate_hz(Kind::slin44), 44100);
  EXPECT_EQ(rate_hz(Kind::slin192), 192000);
  EXPECT_EQ(rate_hz(Kind::dtmf), 0);
  EXPECT_EQ(audio_kind_for_rate(16000), Kind::slin16);
  EXPECT_FALSE(audio_kind_for_rate(22050));
}

}  // namespace
}  // namespace voxbridge::audiosocket
