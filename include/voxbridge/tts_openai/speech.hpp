// OpenAI's speech request (POST /audio/speech), the part voxbridge writes: the JSON body for one
// sentence. Pure, no I/O: the backend (backend.hpp) sends it, the unit tests check it.
//
// Reference: https://platform.openai.com/docs/api-reference/audio/createSpeech (model, input of
// at most 4096 characters, voice, instructions, response_format mp3 | opus | aac | flac | wav |
// pcm, speed 0.25 .. 4.0; `pcm` is raw 24 kHz 16-bit signed little-endian samples, without a
// header).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "voxbridge/tts_openai/options.hpp"

namespace voxbridge::tts_openai {

/// The most `input` one request may carry, in bytes (the service counts 4096 characters; a
/// sentence is far shorter).
inline constexpr std::size_t kMaxInputBytes = 4096;

/// {"model","input","voice","response_format":"pcm"[,"speed"][,"instructions"]}: `voice` and
/// `speed` as the call asks (empty / 0: the options'), `text` cut to kMaxInputBytes at a UTF-8
/// character boundary.
std::string speech_body(const SpeechOptions& o, std::string_view voice, double speed,
                        std::string_view text);

}  // namespace voxbridge::tts_openai
