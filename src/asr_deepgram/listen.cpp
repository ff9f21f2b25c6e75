#include "voxbridge/asr_deepgram/listen.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "voxbridge/net/url.hpp"

namespace voxbridge::asr_deepgram {

namespace json = boost::json;

std::string listen_url(const DeepgramOptions& o, const AudioFormat& f, std::string_view language,
                       std::span<const std::string> hints) {
  std::string u = o.url;
  auto add = [&u, first = true](std::string_view key, std::string_view value) mutable {
    u += first ? '?' : '&';
    first = false;
    u += key;
    u += '=';
    u += net::percent_encode(value);
  };
  add("model", o.model);
  add("encoding", f.encoding == AudioFormat::Encoding::mulaw ? "mulaw" : "linear16");
  add("sample_rate", std::to_string(f.sample_rate_hz));
  add("channels", "1");
  // Interim results: barge-in on the first words, and UtteranceEnd needs them.
  add("interim_results", "true");
  add("endpointing",
      o.endpointing.count() > 0 ? std::to_string(o.endpointing.count()) : std::string("false"));
  if (o.utterance_end.count() > 0) add("utterance_end_ms", std::to_string(o.utterance_end.count()));
  add("vad_events", o.vad_events ? "true" : "false");
  add("smart_format", o.smart_format ? "true" : "false");
  const std::string_view lang = o.language.empty() ? language : std::string_view(o.language);
  if (!lang.empty()) add("language", lang);
  // Keyterm prompting is Nova-3's (and Flux's); older models take keywords.
  const bool keyterm = o.model.rfind("nova-3", 0) == 0 || o.model.rfind("flux", 0) == 0;
  std::size_t n = 0;
  for (const auto& h : hints) {
    if (h.empty() || h.size() > kMaxHintBytes) continue;
    if (++n > kMaxHints) break;
    add(keyterm ? "keyterm" : "keywords", h);
  }
  return u;
}

namespace {

bool number(const json::object& o, std::string_view key, double& out) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return true;  // absent: 0
  if (!v->is_number()) return false;
  const double d = v->to_number<double>();
  if (!std::isfinite(d) || d < 0 || d > 1e7) return false;
  out = d;
  return true;
}

bool boolean(const json::object& o, std::string_view key, bool& out) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_bool()) return false;
  out = v->as_bool();
  return true;
}

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
  const auto* type = o.if_contains("type");
  if (type == nullptr || !type->is_string()) return malformed("no \"type\"");
  const std::string_view t = type->as_string();
  ServerMessage m;
  if (t == "Results") {
    m.type = ServerMessage::Type::results;
    if (!number(o, "start", m.start) || !number(o, "duration", m.duration) ||
        !boolean(o, "is_final", m.is_final) || !boolean(o, "speech_final", m.speech_final) ||
        !boolean(o, "from_finalize", m.from_finalize)) {
      return malformed("Results with a field of the wrong type");
    }
    const auto* ch = o.if_contains("channel");
    if (ch == nullptr || !ch->is_object()) return malformed("Results without a channel");
    const auto* alts = ch->as_object().if_contains("alternatives");
    if (alts == nullptr || !alts->is_array()) return malformed("Results without alternatives");
    if (!alts->as_array().empty()) {
      const auto& a = alts->as_array().front();
      if (!a.is_object()) return malformed("an alternative that is not an object");
      const auto* tr = a.as_object().if_contains("transcript");
      if (tr == nullptr || !tr->is_string()) return malformed("an alternative without transcript");
      const auto& s = tr->as_string();
      if (s.size() > kMaxTranscriptBytes) return malformed("a transcript over 16 KiB");
      m.transcript.assign(s.data(), s.size());
      if (!number(a.as_object(), "confidence", m.confidence) || m.confidence > 1) {
        return malformed("a confidence that is not 0 to 1");
      }
    }
  } else if (t == "UtteranceEnd") {
    m.type = ServerMessage::Type::utterance_end;
    if (!number(o, "last_word_end", m.time)) return malformed("UtteranceEnd's last_word_end");
  } else if (t == "SpeechStarted") {
    m.type = ServerMessage::Type::speech_started;
    if (!number(o, "timestamp", m.time)) return malformed("SpeechStarted's timestamp");
  } else if (t == "Metadata") {
    m.type = ServerMessage::Type::metadata;
    if (!number(o, "duration", m.time)) return malformed("Metadata's duration");
    if (const auto* id = o.if_contains("request_id"); id != nullptr && id->is_string()) {
      m.request_id.assign(id->as_string().data(),
                          std::min<std::size_t>(id->as_string().size(), 64));
    }
  }
  return m;
}

}  // namespace voxbridge::asr_deepgram
