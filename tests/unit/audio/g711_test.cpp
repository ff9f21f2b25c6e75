#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "voxbridge/audio/g711.hpp"

namespace voxbridge::audio {
namespace {

std::vector<std::uint8_t> golden(const char* name) {
  std::ifstream f(std::string(VB_TEST_DATA) + "/g711/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

std::vector<std::int16_t> golden_pcm(const char* name) {
  const auto b = golden(name);
  std::vector<std::int16_t> v(b.size() / 2);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<std::int16_t>(b[2 * i] | b[2 * i + 1] << 8);
  }
  return v;
}

TEST(G711, UlawDecodeMatchesGoldenTable) {
  const auto table = golden_pcm("ulaw_decode.golden");
  ASSERT_EQ(table.size(), 256u);
  for (int c = 0; c < 256; ++c) {
    EXPECT_EQ(ulaw_to_linear(static_cast<std::uint8_t>(c)), table[c]) << "code " << c;
  }
}

TEST(G711, AlawDecodeMatchesGoldenTable) {
  const auto table = golden_pcm("alaw_decode.golden");
  ASSERT_EQ(table.size(), 256u);
  for (int c = 0; c < 256; ++c) {
    EXPECT_EQ(alaw_to_linear(static_cast<std::uint8_t>(c)), table[c]) << "code " << c;
  }
}

TEST(G711, UlawEncodeMatchesGoldenForEvery14BitInput) {
  const auto table = golden("ulaw_encode_14bit.golden");
  ASSERT_EQ(table.size(), 16384u);
  for (int x = -8192; x < 8192; ++x) {
    ASSERT_EQ(linear_to_ulaw(static_cast<std::int16_t>(x * 4)), table[x + 8192]) << "input " << x;
  }
}

TEST(G711, AlawEncodeMatchesGoldenForEvery13BitInput) {
  const auto table = golden("alaw_encode_13bit.golden");
  ASSERT_EQ(table.size(), 8192u);
  for (int x = -4096; x < 4096; ++x) {
    ASSERT_EQ(linear_to_alaw(static_cast<std::int16_t>(x * 8)), table[x + 4096]) << "input " << x;
  }
}

// Points straight from ITU-T G.711 tables 2a/2b and their character-signal conventions.
TEST(G711, KnownCodePoints) {
  EXPECT_EQ(linear_to_ulaw(0), 0xFF);  // mu-law zero is all ones
  EXPECT_EQ(ulaw_to_linear(0xFF), 0);
  EXPECT_EQ(ulaw_to_linear(0x7F), 0);      // "negative zero"
  EXPECT_EQ(ulaw_to_linear(0x80), 32124);  // largest positive
  EXPECT_EQ(ulaw_to_linear(0x00), -32124);
  EXPECT_EQ(linear_to_ulaw(32767), 0x80);  // clipped
  EXPECT_EQ(linear_to_ulaw(-32768), 0x00);
  EXPECT_EQ(linear_to_alaw(0), 0xD5);  // A-law even bits inverted
  EXPECT_EQ(alaw_to_linear(0xD5), 8);
  EXPECT_EQ(alaw_to_linear(0x55), -8);
  EXPECT_EQ(alaw_to_linear(0xAA), 32256);  // largest positive
  EXPECT_EQ(alaw_to_linear(0x2A), -32256);
  EXPECT_EQ(linear_to_alaw(32767), 0xAA);
  EXPECT_EQ(linear_to_alaw(-32768), 0x2A);
}

TEST(G711, DecodeThenEncodeIsIdentityForEveryCode) {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    if (code != 0x7F) {
      EXPECT_EQ(linear_to_ulaw(ulaw_to_linear(code)), code) << c;
    }
    EXPECT_EQ(linear_to_alaw(alaw_to_linear(code)), code) << c;
  }
}

TEST(G711, SpanFunctionsMatchScalarOnes) {
  std::vector<std::int16_t> pcm(160);
  for (std::size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<std::int16_t>(i * 409 - 32000);
  std::vector<std::uint8_t> u(160), a(160);
  std::vector<std::int16_t> du(160), da(160);
  ulaw_encode(pcm, u);
  alaw_encode(pcm, a);
  ulaw_decode(u, du);
  alaw_decode(a, da);
  for (std::size_t i = 0; i < pcm.size(); ++i) {
    EXPECT_EQ(u[i], linear_to_ulaw(pcm[i]));
    EXPECT_EQ(a[i], linear_to_alaw(pcm[i]));
    EXPECT_EQ(du[i], ulaw_to_linear(u[i]));
    EXPECT_EQ(da[i], alaw_to_linear(a[i]));
  }
}

}  // namespace
}  // namespace voxbridge::audio
