#include "voxbridge/tts_elevenlabs/stream_input.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "voxbridge/base64/base64.hpp"
#include "voxbridge/net/url.hpp"

namespace voxbridge::tts_elevenlabs {

namespace json = boost::json;

OutputFormat output_format(const ElevenLabsOptions& o, int rate_hz) {
  if (rate_hz == 8000 && o.ulaw_8000) return {"ulaw_8000", true, 8000};
  for (int r : {8000, 16000, 22050, 24000, 44100, 48000}) {
    if (r == rate_hz) return {"pcm_" + std::to_string(r), false, r};
  }
  return {};
}

std::string socket_url(const ElevenLabsOptions& o, std::string_view voice_id,
                       const OutputFormat& f) {
  return o.url + "/" + net::percent_encode(voice_id) +
         "/stream-input?model_id=" + net::percent_encode(o.model_id) +
         "&output_format=" + net::percent_encode(f.name) +
         // A reply's socket idles while the caller listens to audio already sent.
         "&inactivity_timeout=60"
         // Alignment with every audio message (else all of a generation's with its first): the
         // characters spoken so far mark each sentence's end.
         "&sync_alignment=true";
}

std::string initialize_message(const ElevenLabsOptions& o) {
  json::object m;
  m["text"] = " ";
  json::object vs;
  if (o.stability > 0) vs["stability"] = o.stability;
  if (o.similarity_boost > 0) vs["similarity_boost"] = o.similarity_boost;
  if (o.speed > 0) vs["speed"] = o.speed;
  if (!vs.empty()) m["voice_settings"] = std::move(vs);
  const int first = o.first_chunk_chars;
  m["generation_config"] = {{"chunk_length_schedule", json::array{first, 120, 160, 250}}};
  return json::serialize(m);
}

std::string text_message(std::string_view text) {
  std::string t(text.substr(0, kMaxTextBytes));
  if (t.empty() || t.back() != ' ') t += ' ';
  json::object m;
  m["text"] = t;
  m["flush"] = true;
  return json::serialize(m);
}

namespace {
ServerMessage malformed(std::string why) {
  ServerMessage m;
  m.type = ServerMessage::Type::malformed;
  m.why = std::move(why);
  return m;
}
}  // namespace

ServerMessage parse_server_message(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return malformed("not a JSON object");
  const auto& o = v.as_object();
  ServerMessage m;
  const auto* fin = o.if_contains("isFinal");
  if (fin != nullptr && !fin->is_null() && !fin->is_bool()) return malformed("isFinal");
  m.is_final = fin != nullptr && fin->is_bool() && fin->as_bool();
  const auto* audio = o.if_contains("audio");
  if (audio != nullptr && !audio->is_null()) {
    if (!audio->is_string()) return malformed("audio that is not a string");
    const auto& a = audio->as_string();
    if (a.size() > base64::encoded_size(kMaxAudioBytes)) return malformed("audio over 1 MiB");
    if (!base64::decode(std::string_view(a.data(), a.size()), m.audio)) {
      return malformed("audio that is not base64");
    }
    m.type = ServerMessage::Type::audio;
    if (const auto* al = o.if_contains("alignment"); al != nullptr && !al->is_null()) {
      const auto* chars = al->is_object() ? al->as_object().if_contains("chars") : nullptr;
      if (chars == nullptr || !chars->is_array()) return malformed("alignment without chars");
      m.chars = chars->as_array().size();
    }
    return m;
  }
  if (m.is_final) {
    m.type = ServerMessage::Type::final;
    return m;
  }
  // The service reports a failure on the socket as {"message", "error", "code"} (then closes
  // it with 1008).
  const auto* err = o.if_contains("error");
  const auto* msg = o.if_contains("message");
  auto text_of = [](const json::value* field) {
    return field != nullptr && field->is_string()
               ? std::string(field->as_string().data(),
                             std::min<std::size_t>(field->as_string().size(), 300))
               : std::string();
  };
  if ((err != nullptr && err->is_string()) || (msg != nullptr && msg->is_string())) {
    m.type = ServerMessage::Type::error;
    m.why = text_of(err);
    if (const std::string said = text_of(msg); !said.empty()) {
      m.why += m.why.empty() ? said : ": " + said;
    }
    return m;
  }
  return m;  // other: nothing voxbridge needs (e.g. an audio message without audio)
}

}  // namespace voxbridge::tts_elevenlabs
