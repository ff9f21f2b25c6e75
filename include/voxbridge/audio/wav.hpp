// WAV files for the playback agent, the call simulator and the tests: 16-bit PCM in and out,
// 8-bit mu-law/A-law in. Whole-file, allocating, never on the per-frame path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace voxbridge::audio {

struct WavData {
  int rate_hz = 0;
  std::vector<std::int16_t> samples;  ///< mono (multi-channel files are averaged)
};

/// Reads a WAV file; on failure returns empty samples and sets `error` to a readable reason.
WavData read_wav(const std::filesystem::path& path, std::string& error);
/// Writes mono 16-bit PCM. Returns false (and sets `error`) if the file cannot be written.
bool write_wav(const std::filesystem::path& path, int rate_hz,
               const std::vector<std::int16_t>& samples, std::string& error);

}  // namespace voxbridge::audio
