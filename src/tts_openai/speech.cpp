#include "voxbridge/tts_openai/speech.hpp"

#include <boost/json.hpp>

namespace voxbridge::tts_openai {

std::string speech_body(const SpeechOptions& o, std::string_view voice, double speed,
                        std::string_view text) {
  if (text.size() > kMaxInputBytes) {
    std::size_t n = kMaxInputBytes;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // not mid-char
    text = text.substr(0, n);
  }
  boost::json::object b;
  b["model"] = o.model;
  b["input"] = text;
  b["voice"] = voice.empty() ? std::string_view(o.voice) : voice;
  b["response_format"] = "pcm";
  const double s = o.speed > 0 ? o.speed : speed;
  if (s > 0 && s != 1.0) b["speed"] = s < 0.25 ? 0.25 : s > 4.0 ? 4.0 : s;
  if (!o.instructions.empty()) b["instructions"] = o.instructions;
  return boost::json::serialize(b);
}

}  // namespace voxbridge::tts_openai
