#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "voxbridge/audio/wav.hpp"

namespace voxbridge::audio {
namespace {

TEST(Wav, WritesAndReadsBackExactly) {
  const auto path = std::filesystem::temp_directory_path() / "vb_wav_test.wav";
  const std::vector<std::int16_t> s{0, 1, -1, 32767, -32768, 1234};
  std::string err;
  ASSERT_TRUE(write_wav(path, 16000, s, err)) << err;
  const auto w = read_wav(path, err);
  EXPECT_TRUE(err.empty()) << err;
  EXPECT_EQ(w.rate_hz, 16000);
  EXPECT_EQ(w.samples, s);
  EXPECT_EQ(std::filesystem::file_size(path), 44u + 12u);
  std::filesystem::remove(path);
}

TEST(Wav, ReportsAMissingFile) {
  std::string err;
  const auto w = read_wav("/nonexistent/x.wav", err);
  EXPECT_TRUE(w.samples.empty());
  EXPECT_NE(err.find("cannot open"), std::string::npos);
}

TEST(Wav, RejectsANonWavFile) {
  const auto path = std::filesystem::temp_directory_path() / "vb_not_wav.wav";
  std::ofstream(path) << "hello world, not a wav file";
  std::string err;
  read_wav(path, err);
  EXPECT_NE(err.find("not a RIFF/WAVE"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace voxbridge::audio
