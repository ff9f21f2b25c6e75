#include "voxbridge/audio/wav.hpp"

#include <cstring>
#include <fstream>
#include <iterator>

#include "voxbridge/audio/g711.hpp"

namespace voxbridge::audio {
namespace {
std::uint32_t le32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}
std::uint16_t le16(const unsigned char* p) {
  return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}
void put32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>(v >> 8));
}
}  // namespace

WavData read_wav(const std::filesystem::path& path, std::string& error) {
  WavData out;
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = "cannot open " + path.string();
    return out;
  }
  std::vector<unsigned char> d((std::istreambuf_iterator<char>(f)), {});
  if (d.size() < 12 || std::memcmp(d.data(), "RIFF", 4) != 0 ||
      std::memcmp(d.data() + 8, "WAVE", 4) != 0) {
    error = path.string() + ": not a RIFF/WAVE file";
    return out;
  }
  std::uint16_t format = 0, channels = 0, bits = 0;
  std::uint32_t rate = 0;
  bool have_fmt = false;
  std::size_t pos = 12;
  while (pos + 8 <= d.size()) {
    const std::uint32_t size = le32(&d[pos + 4]);
    const std::size_t body = pos + 8;
    const std::size_t avail = std::min<std::size_t>(size, d.size() - body);
    if (std::memcmp(&d[pos], "fmt ", 4) == 0 && avail >= 16) {
      format = le16(&d[body]);
      channels = le16(&d[body + 2]);
      rate = le32(&d[body + 4]);
      bits = le16(&d[body + 14]);
      if (format == 0xFFFE && avail >= 26) format = le16(&d[body + 24]);  // WAVE_FORMAT_EXTENSIBLE
      have_fmt = true;
    } else if (std::memcmp(&d[pos], "data", 4) == 0) {
      if (!have_fmt || channels == 0) {
        error = path.string() + ": data chunk before fmt chunk";
        return out;
      }
      const bool pcm16 = format == 1 && bits == 16;
      const bool ulaw = format == 7 && bits == 8;
      const bool alaw = format == 6 && bits == 8;
      if (!pcm16 && !ulaw && !alaw) {
        error = path.string() + ": only 16-bit PCM, mu-law and A-law WAV files are supported";
        return out;
      }
      const std::size_t bytes_per = pcm16 ? 2 : 1;
      const std::size_t frames = avail / (bytes_per * channels);
      out.samples.resize(frames);
      for (std::size_t i = 0; i < frames; ++i) {
        int sum = 0;
        for (std::size_t c = 0; c < channels; ++c) {
          const unsigned char* p = &d[body + (i * channels + c) * bytes_per];
          if (pcm16) {
            sum += static_cast<std::int16_t>(le16(p));
          } else {
            sum += ulaw ? ulaw_to_linear(*p) : alaw_to_linear(*p);
          }
        }
        out.samples[i] = static_cast<std::int16_t>(sum / static_cast<int>(channels));
      }
      out.rate_hz = static_cast<int>(rate);
      return out;
    }
    pos = body + size + (size & 1);
  }
  error = path.string() + ": no data chunk";
  return out;
}

bool write_wav(const std::filesystem::path& path, int rate_hz,
               const std::vector<std::int16_t>& samples, std::string& error) {
  std::string h;
  const auto data_bytes = static_cast<std::uint32_t>(samples.size() * 2);
  h += "RIFF";
  put32(h, 36 + data_bytes);
  h += "WAVEfmt ";
  put32(h, 16);
  put16(h, 1);
  put16(h, 1);
  put32(h, static_cast<std::uint32_t>(rate_hz));
  put32(h, static_cast<std::uint32_t>(rate_hz) * 2);
  put16(h, 2);
  put16(h, 16);
  h += "data";
  put32(h, data_bytes);
  for (std::int16_t s : samples) put16(h, static_cast<std::uint16_t>(s));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));
  if (!f) {
    error = "cannot write " + path.string();
    return false;
  }
  return true;
}

}  // namespace voxbridge::audio
