// Base64: RFC 4648's own vectors both ways, every length round trip, and the strict decoder
// refusing what is not canonical base64 without touching its output.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/base64/base64.hpp"

namespace voxbridge::base64 {
namespace {

struct Vector {
  std::string_view plain, encoded;
};

// RFC 4648 section 10.
constexpr Vector kRfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(Base64, EncodesTheRfc4648Vectors) {
  for (const auto& v : kRfc4648) {
    EXPECT_EQ(encode(v.plain), v.encoded) << v.plain;
    EXPECT_EQ(encoded_size(v.plain.size()), v.encoded.size()) << v.plain;
  }
}

TEST(Base64, DecodesTheRfc4648Vectors) {
  for (const auto& v : kRfc4648) {
    std::string s;
    ASSERT_TRUE(decode(v.encoded, s)) << v.encoded;
    EXPECT_EQ(s, v.plain);
    std::vector<std::uint8_t> bytes;
    ASSERT_TRUE(decode(v.encoded, bytes)) << v.encoded;
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), v.plain);
  }
}

TEST(Base64, AppendsToWhatTheBufferHolds) {
  std::string enc = "x:";
  encode("foo", enc);
  EXPECT_EQ(enc, "x:Zm9v");
  std::vector<std::uint8_t> span_enc_in = {0xff, 0xfe};
  std::string enc2 = "y";
  encode(std::span<const std::uint8_t>(span_enc_in), enc2);
  EXPECT_EQ(enc2, "y//4=");

  std::string dec = "ab";
  ASSERT_TRUE(decode("Zm9v", dec));
  EXPECT_EQ(dec, "abfoo");
  std::vector<std::uint8_t> bytes = {1, 2};
  ASSERT_TRUE(decode("//4=", bytes));
  EXPECT_EQ(bytes, (std::vector<std::uint8_t>{1, 2, 0xff, 0xfe}));
}

TEST(Base64, EncodesAllSixtyFourCharacters) {
  // 0x00 0x10 0x83 ... : the 48 bytes whose encoding is the alphabet in order.
  std::vector<std::uint8_t> bytes;
  for (std::uint32_t i = 0; i < 64; i += 4) {
    const std::uint32_t v = i << 18 | (i + 1) << 12 | (i + 2) << 6 | (i + 3);
    bytes.push_back(static_cast<std::uint8_t>(v >> 16));
    bytes.push_back(static_cast<std::uint8_t>(v >> 8));
    bytes.push_back(static_cast<std::uint8_t>(v));
  }
  std::string enc;
  encode(bytes, enc);
  EXPECT_EQ(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
  std::vector<std::uint8_t> back;
  ASSERT_TRUE(decode(enc, back));
  EXPECT_EQ(back, bytes);
}

TEST(Base64, RoundTripsRandomBytesOfEveryLengthUpTo300) {
  std::mt19937 rng(4648);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t n = 0; n <= 300; ++n) {
    std::vector<std::uint8_t> in(n);
    for (auto& b : in) b = static_cast<std::uint8_t>(byte(rng));
    std::string enc;
    encode(in, enc);
    ASSERT_EQ(enc.size(), encoded_size(n)) << n;
    ASSERT_EQ(enc.size() % 4, 0u) << n;
    std::vector<std::uint8_t> out;
    ASSERT_TRUE(decode(enc, out)) << n;
    ASSERT_EQ(out, in) << n;
    std::string out_s;
    ASSERT_TRUE(decode(enc, out_s)) << n;
    ASSERT_EQ(out_s, std::string(in.begin(), in.end())) << n;
  }
}

/// decode() refuses `in` and leaves both kinds of buffer as they were.
void expect_refused(std::string_view in) {
  std::string s = "kept";
  EXPECT_FALSE(decode(in, s)) << '"' << in << '"';
  EXPECT_EQ(s, "kept") << '"' << in << '"';
  std::vector<std::uint8_t> v = {7, 8, 9};
  EXPECT_FALSE(decode(in, v)) << '"' << in << '"';
  EXPECT_EQ(v, (std::vector<std::uint8_t>{7, 8, 9})) << '"' << in << '"';
}

TEST(Base64, RefusesCharactersOutsideTheAlphabet) {
  for (const std::string_view in : {"Zm9*", "Zm-v", "Zm_v", "Zm9v!AAA",
                                    "Z\x80"
                                    "9v",
                                    "Zm9\xff"}) {
    expect_refused(in);
  }
  expect_refused(std::string_view("Zm9v\0AAA", 8));  // a NUL inside
}

TEST(Base64, RefusesWhitespace) {
  for (const std::string_view in :
       {"Zm9v Zm9v", "Zm9v\nZm9v", "Zm9v\r\n", " Zm9v", "Zm9v\t", "Zm 9", "Zg= ", "Zm9v    "}) {
    expect_refused(in);
  }
}

TEST(Base64, RefusesALengthThatIsNotAMultipleOfFour) {
  for (const std::string_view in : {"Z", "Zm", "Zm9", "Zm9vY", "Zm9vYg", "Zm9vYg=", "Zg="}) {
    expect_refused(in);
  }
}

TEST(Base64, RefusesPaddingInTheMiddle) {
  for (const std::string_view in : {"Zg==Zm9v", "Zm8=Zm9v", "Z=9v", "=m9v", "Zm=v", "Z=g="}) {
    expect_refused(in);
  }
}

TEST(Base64, RefusesTooMuchPadding) {
  for (const std::string_view in : {"====", "Z===", "Zm9v====", "Zg===", "Zm9vZ==="}) {
    expect_refused(in);
  }
}

TEST(Base64, RefusesNonZeroBitsAfterTheLastCharacter) {
  // "QQ==" is "A"; "QR==" .. "QX==" carry bits that no byte has.
  for (const std::string_view in : {"QR==", "QX==", "Zh==", "Zm9=", "Zm+=", "Zm9vYh==", "QUJ="}) {
    expect_refused(in);
  }
  std::string s;
  ASSERT_TRUE(decode("QQ==", s));
  EXPECT_EQ(s, "A");
  s.clear();
  ASSERT_TRUE(decode("QUI=", s));
  EXPECT_EQ(s, "AB");
}

}  // namespace
}  // namespace voxbridge::base64
