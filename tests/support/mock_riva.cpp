// The NVIDIA Riva mock (see mock_riva.hpp for the references and the behaviour). Marks:
// "reference" = Riva's protos, clients, server texts or NVCF's gateway (the header names them);
// "mock" = none says, the rule or the wording is the mock's own.
#include "support/mock_riva.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/method_handler.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <numbers>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "support/test_tls.hpp"

namespace voxbridge::testing {

namespace {

namespace asr = nvidia::riva::asr;
namespace tts = nvidia::riva::tts;
using nvidia::riva::AudioEncoding;
using RawStream = grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;
using Handler = std::function<grpc::Status(grpc::ServerContext*, RawStream*)>;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr const char* kAsrPath = "/nvidia.riva.asr.RivaSpeechRecognition/StreamingRecognize";
constexpr const char* kTtsPath = "/nvidia.riva.tts.RivaSpeechSynthesis/SynthesizeOnline";
// The mock's wording where Riva's is not published (mock).
constexpr const char* kParseMessage = "Error: the request could not be parsed";
constexpr const char* kEmptyTextMessage = "Error: text is empty";
constexpr const char* kRateMessage = "Error: sample_rate_hz must be greater than 0";

/// A service of raw (byte buffer) bidi methods on gRPC's sync server: the mock sees every
/// message's exact bytes, as the wire carried them.
class RawService final : public grpc::Service {
 public:
  void add(const char* path, Handler h) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        path, grpc::internal::RpcMethod::BIDI_STREAMING,
        new grpc::internal::BidiStreamingHandler<RawService, grpc::ByteBuffer, grpc::ByteBuffer>(
            [h = std::move(h)](RawService*, grpc::ServerContext* ctx, RawStream* s) {
              return h(ctx, s);
            },
            this)));
  }
};

std::string bytes_of(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  (void)b.Dump(&slices);
  std::string s;
  for (const auto& sl : slices) s.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  return s;
}

grpc::ByteBuffer buffer_of(const google::protobuf::Message& m) {
  const std::string s = m.SerializeAsString();
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> w;
  std::istringstream in(text);
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

std::string join_words(const std::vector<std::string>& w, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n && i < w.size(); ++i) {
    if (i) s += ' ';
    s += w[i];
  }
  return s;
}

std::multimap<std::string, std::string> metadata_of(const grpc::ServerContext* ctx) {
  std::multimap<std::string, std::string> m;
  for (const auto& [k, v] : ctx->client_metadata())
    m.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  return m;
}

std::string first_value(const std::multimap<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? std::string() : it->second;
}

/// Punctuation (mock): the first letter upper-cased, a full stop unless one ends the text.
std::string punctuate(std::string text) {
  if (text.empty()) return text;
  text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  const char last = text.back();
  if (last != '.' && last != '?' && last != '!') text += '.';
  return text;
}

/// A little-endian integer from a WAV header.
std::uint32_t le(const std::string& s, std::size_t at, int n) {
  std::uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(s[at + i]);
  return v;
}

}  // namespace

struct MockRiva::Impl {
  Options opt;
  std::unique_ptr<grpc::Server> server;
  RawService service;
  int port = 0;
  std::string ca_file;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool stopping = false;
  std::deque<AsrText> texts;
  std::deque<AsrScript> asr_scripts;
  std::deque<TtsScript> tts_scripts;
  std::vector<AsrStream> asr_streams;
  std::vector<TtsStream> tts_streams;

  template <class S, class F>
  void with(std::vector<S>& v, std::size_t i, F&& f) {
    {
      std::lock_guard lk(mu);
      f(v[i]);
    }
    cv.notify_all();
  }

  bool gone(grpc::ServerContext* ctx) const { return stopping || ctx->IsCancelled(); }

  bool pause(grpc::ServerContext* ctx, int ms) {
    if (ms <= 0) return true;
    const auto until = steady_clock::now() + milliseconds(ms);
    std::unique_lock lk(mu);
    while (steady_clock::now() < until) {
      if (gone(ctx)) return false;
      cv.wait_for(lk,
                  std::min<steady_clock::duration>(milliseconds(10), until - steady_clock::now()));
    }
    return true;
  }

  /// NVCF's gateway (reference: director.go), when the mock has an api_key.
  std::optional<grpc::Status> nvcf(const std::multimap<std::string, std::string>& md,
                                   const std::string& function_id) const {
    if (opt.api_key.empty()) return std::nullopt;
    const std::string header = first_value(md, "authorization");
    const std::string bearer = "Bearer ";
    const bool prefixed = header.compare(0, bearer.size(), bearer) == 0;
    const std::string key = prefixed ? header.substr(bearer.size()) : header;
    if (key.empty() || !prefixed)
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kNoAuthMessage);
    const std::string fid = first_value(md, "function-id");
    if (fid.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kNoFunctionMessage);
    if (key != opt.api_key)
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, kBadKeyMessage);  // (mock text)
    if (fid != function_id)
      return grpc::Status(grpc::StatusCode::NOT_FOUND, kUnknownFunctionMessage);  // (mock)
    return std::nullopt;
  }

  grpc::Status asr(grpc::ServerContext* ctx, RawStream* rw);
  grpc::Status tts(grpc::ServerContext* ctx, RawStream* rw);
};

// ---- ASR ----

namespace {

/// The mock's recognizer (mock): energy blocks, Riva's stop_history endpointing on them,
/// scripted words.
struct AsrRecognizer {
  int rate = 16000;
  std::size_t block = 320;
  double threshold = 500;
  std::vector<std::int16_t> pending;
  std::int64_t samples = 0;   // fed through blocks since the stream began
  std::int64_t received = 0;  // decoded, blocks or not
  bool speech = false;
  std::int64_t speech_start = 0, speech_end = 0, speech_samples = 0;
  bool eou_sent = false;
  std::vector<std::string> words;
  float confidence = 1.0f;
  std::function<MockRiva::AsrText()> take;

  void consume(const std::int16_t* s, std::size_t n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(s[i]) * s[i];
    if (n > 0 && std::sqrt(sum / static_cast<double>(n)) > threshold) {
      if (!speech) {
        speech = true;
        speech_start = samples;
        MockRiva::AsrText t = take();
        words = split_words(t.text);
        confidence = t.confidence;
      }
      speech_end = samples + static_cast<std::int64_t>(n);
      speech_samples += static_cast<std::int64_t>(n);
    }
    samples += static_cast<std::int64_t>(n);
  }

  void feed(const std::vector<std::int16_t>& s) {
    received += static_cast<std::int64_t>(s.size());
    pending.insert(pending.end(), s.begin(), s.end());
    std::size_t off = 0;
    while (pending.size() - off >= block) {
      consume(pending.data() + off, block);
      off += block;
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(off));
  }

  void flush() {
    if (!pending.empty()) consume(pending.data(), pending.size());
    pending.clear();
  }

  std::int64_t trailing_ms() const { return (samples - speech_end) * 1000 / rate; }
  float processed_seconds() const {
    return static_cast<float>(static_cast<double>(received) / rate);
  }

  std::string interim() const {
    const std::int64_t ms = speech_samples * 1000 / rate;
    const auto k = static_cast<std::size_t>((ms + MockRiva::kMsPerWord - 1) / MockRiva::kMsPerWord);
    return join_words(words, std::min(k, words.size()));
  }

  void reset() {
    speech = false;
    speech_samples = 0;
    eou_sent = false;
    words.clear();
  }
};

asr::StreamingRecognizeResponse interim_response(const AsrRecognizer& r, float stability) {
  asr::StreamingRecognizeResponse resp;
  auto* res = resp.add_results();
  res->add_alternatives()->set_transcript(r.interim());
  res->set_is_final(false);
  res->set_stability(stability);
  res->set_channel_tag(1);
  res->set_audio_processed(r.processed_seconds());
  return resp;
}

asr::StreamingRecognizeResponse final_response(const AsrRecognizer& r,
                                               const asr::RecognitionConfig& cfg) {
  std::string text = join_words(r.words, r.words.size());
  if (cfg.enable_automatic_punctuation()) text = punctuate(text);
  asr::StreamingRecognizeResponse resp;
  auto* res = resp.add_results();
  auto* alt = res->add_alternatives();
  // A final transcript ends with a space (reference: Riva's sample output).
  alt->set_transcript(text.empty() ? text : text + " ");
  alt->set_confidence(r.confidence);
  if (cfg.enable_word_time_offsets()) {
    const std::vector<std::string> tokens = split_words(text);
    const std::int64_t s = r.speech_start * 1000 / r.rate;
    const std::int64_t e = r.speech_end * 1000 / r.rate;
    const auto n = static_cast<std::int64_t>(tokens.size());
    for (std::int64_t i = 0; i < n; ++i) {
      auto* w = alt->add_words();
      w->set_start_time(static_cast<std::int32_t>(s + (e - s) * i / n));
      w->set_end_time(static_cast<std::int32_t>(s + (e - s) * (i + 1) / n));
      w->set_word(tokens[static_cast<std::size_t>(i)]);
      w->set_confidence(r.confidence);
    }
  }
  res->set_is_final(true);
  res->set_channel_tag(1);
  res->set_audio_processed(r.processed_seconds());
  return resp;
}

}  // namespace

grpc::Status MockRiva::Impl::asr(grpc::ServerContext* ctx, RawStream* rw) {
  std::size_t idx = 0;
  AsrScript script;
  const auto md = metadata_of(ctx);
  {
    std::lock_guard lk(mu);
    AsrStream s;
    s.metadata = md;
    s.peer = ctx->peer();
    asr_streams.push_back(std::move(s));
    idx = asr_streams.size() - 1;
    if (!asr_scripts.empty()) {
      script = std::move(asr_scripts.front());
      asr_scripts.pop_front();
    }
  }
  cv.notify_all();
  auto finish = [&](grpc::Status st) {
    with(asr_streams, idx, [&](AsrStream& s) {
      if (ctx->IsCancelled()) s.cancelled = true;
      s.status = st;
      s.done = true;
    });
    return st;
  };
  auto cancelled = [&] {
    with(asr_streams, idx, [](AsrStream& s) { s.cancelled = true; });
    return finish(grpc::Status::CANCELLED);
  };
  auto invalid = [&](const std::string& m) {
    return finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, m));
  };
  auto fail = [&] { return finish(grpc::Status(script.fail_code, script.fail_message)); };

  if (auto st = nvcf(md, opt.asr_function_id)) return finish(*st);
  if (script.fail_at_start) return fail();

  grpc::ByteBuffer buf;
  if (!rw->Read(&buf)) {
    if (ctx->IsCancelled()) return cancelled();
    with(asr_streams, idx, [](AsrStream& s) { s.half_closed = true; });
    return invalid(kNoConfigMessage);  // (mock)
  }
  asr::StreamingRecognizeRequest first;
  {
    const std::string raw = bytes_of(buf);
    const bool ok = first.ParseFromString(raw);
    with(asr_streams, idx, [&](AsrStream& s) {
      s.got_first = true;
      s.first_message = raw;
      s.first = first;
      s.config = first.streaming_config();
      s.speech_contexts.assign(first.streaming_config().config().speech_contexts().begin(),
                               first.streaming_config().config().speech_contexts().end());
    });
    if (!ok) return invalid(kParseMessage);  // (mock)
  }
  // "The first message sent must include only a StreamingRecognitionConfig" (reference).
  if (!first.has_streaming_config()) return invalid(kNoConfigMessage);  // (mock wording)
  const asr::StreamingRecognitionConfig scfg = first.streaming_config();
  const asr::RecognitionConfig& cfg = scfg.config();
  // The model: language, rate and type (reference wording, Riva 2.24).
  const bool deployed =
      cfg.sample_rate_hertz() > 0 &&
      std::any_of(opt.asr_models.begin(), opt.asr_models.end(), [&](const AsrModel& m) {
        return m.language_code == cfg.language_code() &&
               (cfg.model().empty() || m.name == cfg.model());
      });
  if (!deployed)
    return invalid(unavailable_model(cfg.language_code(), cfg.sample_rate_hertz(), cfg.model()));
  const AudioEncoding enc = cfg.encoding();
  if (enc != nvidia::riva::LINEAR_PCM && enc != nvidia::riva::MULAW && enc != nvidia::riva::ALAW) {
    // FLAC and OGGOPUS are Riva's too; the mock decodes neither (mock).
    return invalid("Error: unsupported encoding " + nvidia::riva::AudioEncoding_Name(enc));
  }
  if (script.fail_after_audio == 0) return fail();

  const int stop_ms =
      cfg.endpointing_config().has_stop_history() && cfg.endpointing_config().stop_history() > 0
          ? cfg.endpointing_config().stop_history()
          : opt.stop_history_ms;
  const int eou_ms = cfg.endpointing_config().has_stop_history_eou() &&
                             cfg.endpointing_config().stop_history_eou() > 0
                         ? cfg.endpointing_config().stop_history_eou()
                         : -1;
  AsrRecognizer rec;
  rec.rate = cfg.sample_rate_hertz();
  rec.block = static_cast<std::size_t>(std::max(1, rec.rate * kBlockMs / 1000));
  rec.threshold = opt.speech_rms;
  rec.take = [this, idx] {
    AsrText t{kDefaultText, 1.0f};
    {
      std::lock_guard lk(mu);
      if (!texts.empty()) {
        t = std::move(texts.front());
        texts.pop_front();
      }
      ++asr_streams[idx].utterances;
    }
    cv.notify_all();
    return t;
  };
  auto send = [&](asr::StreamingRecognizeResponse r) {
    if (first.has_id()) *r.mutable_id() = first.id();  // reference: the id comes back
    if (!pause(ctx, script.response_delay_ms)) return false;
    if (!rw->Write(buffer_of(r))) return false;
    with(asr_streams, idx, [&](AsrStream& s) { s.responses.push_back(std::move(r)); });
    return true;
  };

  std::string carry;  // an odd byte of LINEAR_PCM, for the next message
  bool header_checked = false;
  std::size_t messages = 0;
  std::vector<std::int16_t> samples;
  while (rw->Read(&buf)) {
    const std::string raw = bytes_of(buf);
    asr::StreamingRecognizeRequest req;
    const bool ok = req.ParseFromString(raw);
    ++messages;
    with(asr_streams, idx, [&](AsrStream& s) {
      ++s.audio_messages;
      s.audio_bytes += req.audio_content().size();
      if (opt.keep_audio) s.audio += req.audio_content();
    });
    if (!ok) return invalid(kParseMessage);                              // (mock)
    if (req.has_streaming_config()) return invalid(kLateConfigMessage);  // (mock wording)
    std::string audio = req.audio_content();
    if (!header_checked && !audio.empty()) {
      header_checked = true;
      // A WAV file's header in the first audio (python-clients send files whole): checked
      // against the config (reference: "config format doesn't match with header format").
      if (audio.size() >= 12 && audio.compare(0, 4, "RIFF") == 0 &&
          audio.compare(8, 4, "WAVE") == 0) {
        std::size_t at = 12, data = audio.size();
        std::uint32_t format = 0, channels = 0, hz = 0;
        while (at + 8 <= audio.size()) {
          const std::string id = audio.substr(at, 4);
          const std::uint32_t len = le(audio, at + 4, 4);
          if (id == "fmt " && at + 16 <= audio.size()) {
            format = le(audio, at + 8, 2);
            channels = le(audio, at + 10, 2);
            hz = le(audio, at + 12, 4);
          }
          if (id == "data") {
            data = at + 8;
            break;
          }
          at += 8 + len + (len & 1);
        }
        const std::uint32_t want_format = enc == nvidia::riva::MULAW  ? 7
                                          : enc == nvidia::riva::ALAW ? 6
                                                                      : 1;
        const std::uint32_t want_channels =
            cfg.audio_channel_count() > 0 ? static_cast<std::uint32_t>(cfg.audio_channel_count())
                                          : 1;
        if (format != want_format || channels != want_channels ||
            hz != static_cast<std::uint32_t>(cfg.sample_rate_hertz()))
          return invalid(kHeaderMismatchMessage);
        audio.erase(0, std::min(data, audio.size()));
      }
    }
    samples.clear();
    if (enc == nvidia::riva::LINEAR_PCM) {
      const std::string bytes = carry + audio;
      const std::size_t n = bytes.size() / 2;
      for (std::size_t i = 0; i < n; ++i) {
        const auto lo = static_cast<std::uint8_t>(bytes[2 * i]);
        const auto hi = static_cast<std::uint8_t>(bytes[2 * i + 1]);
        samples.push_back(static_cast<std::int16_t>(static_cast<std::uint16_t>(lo | (hi << 8))));
      }
      carry = bytes.substr(2 * n);
    } else {
      for (const char c : audio) {
        const auto b = static_cast<std::uint8_t>(c);
        samples.push_back(enc == nvidia::riva::MULAW ? mulaw_decode(b) : alaw_decode(b));
      }
    }
    rec.feed(samples);
    if (rec.speech && rec.trailing_ms() >= stop_ms) {
      const auto r = final_response(rec, cfg);
      rec.reset();
      if (!send(r)) return cancelled();
    } else if (scfg.interim_results() && rec.speech && !rec.eou_sent) {
      float stability = opt.interim_stability;
      if (eou_ms > 0 && rec.trailing_ms() >= eou_ms) {
        rec.eou_sent = true;  // the 2-pass EOU's first pass: stability 1 (reference)
        stability = 1.0f;
      }
      if (!send(interim_response(rec, stability))) return cancelled();
    }
    if (script.fail_after_audio > 0 &&
        messages == static_cast<std::size_t>(script.fail_after_audio))
      return fail();
  }
  if (ctx->IsCancelled()) return cancelled();
  with(asr_streams, idx, [](AsrStream& s) { s.half_closed = true; });
  rec.flush();
  if (rec.speech && !send(final_response(rec, cfg))) return cancelled();
  return finish(grpc::Status::OK);
}

// ---- TTS ----

grpc::Status MockRiva::Impl::tts(grpc::ServerContext* ctx, RawStream* rw) {
  std::size_t idx = 0;
  TtsScript script;
  const auto md = metadata_of(ctx);
  {
    std::lock_guard lk(mu);
    TtsStream s;
    s.metadata = md;
    s.peer = ctx->peer();
    tts_streams.push_back(std::move(s));
    idx = tts_streams.size() - 1;
    if (!tts_scripts.empty()) {
      script = std::move(tts_scripts.front());
      tts_scripts.pop_front();
    }
  }
  cv.notify_all();
  auto finish = [&](grpc::Status st) {
    with(tts_streams, idx, [&](TtsStream& s) {
      if (ctx->IsCancelled()) s.cancelled = true;
      s.status = st;
      s.done = true;
    });
    return st;
  };
  auto cancelled = [&] {
    with(tts_streams, idx, [](TtsStream& s) { s.cancelled = true; });
    return finish(grpc::Status::CANCELLED);
  };
  auto invalid = [&](const std::string& m) {
    return finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, m));
  };
  auto fail = [&] { return finish(grpc::Status(script.fail_code, script.fail_message)); };

  if (auto st = nvcf(md, opt.tts_function_id)) return finish(*st);
  if (script.fail_at_start) return fail();

  const std::size_t chunk = std::max<std::size_t>(1, script.chunk_bytes);
  std::size_t sent_total = 0;
  grpc::ByteBuffer buf;
  while (rw->Read(&buf)) {
    const std::string raw = bytes_of(buf);
    tts::SynthesizeSpeechRequest req;
    const bool ok = req.ParseFromString(raw);
    std::size_t ri = 0;
    with(tts_streams, idx, [&](TtsStream& s) {
      s.requests.push_back({raw, req, 0, false});
      ri = s.requests.size() - 1;
    });
    if (!ok) return invalid(kParseMessage);  // (mock)
    // The voice: an exact name of the language's deployed voices; none named: the language's
    // first (reference wording for what is not found).
    const std::string& lang = req.language_code();
    const std::string& name = req.voice_name();
    bool found = false, same_model = false;
    for (const auto& voice : opt.voices) {
      if (voice.language_code != lang) continue;
      if (name.empty() || voice.name == name) found = true;
      const auto dot = name.find('.');
      if (dot != std::string::npos && voice.name.compare(0, dot + 1, name, 0, dot + 1) == 0)
        same_model = true;
    }
    if (!found) return invalid(same_model ? kSubvoiceMessage : voice_not_found(name, lang));
    if (req.text().empty()) return invalid(kEmptyTextMessage);  // (mock)
    const AudioEncoding enc = req.encoding();
    if (enc != nvidia::riva::LINEAR_PCM && enc != nvidia::riva::MULAW &&
        enc != nvidia::riva::ALAW) {
      // OGGOPUS is Riva's too; the mock does not encode Opus (mock).
      return invalid("Error: unsupported encoding " + nvidia::riva::AudioEncoding_Name(enc));
    }
    if (req.sample_rate_hz() <= 0) return invalid(kRateMessage);  // (mock)

    const std::string audio = tts_audio(req.text(), req.sample_rate_hz(), enc);
    for (std::size_t off = 0; off < audio.size();) {
      std::size_t n = std::min(chunk, audio.size() - off);
      if (script.fail_after_bytes >= 0) {
        const auto limit = static_cast<std::size_t>(script.fail_after_bytes);
        if (sent_total >= limit) return fail();
        n = std::min(n, limit - sent_total);
      }
      if (!pause(ctx, off == 0 ? script.first_delay_ms : script.chunk_delay_ms)) return cancelled();
      tts::SynthesizeSpeechResponse r;
      r.set_audio(audio.substr(off, n));
      if (req.has_id()) *r.mutable_id() = req.id();  // reference: the id comes back
      if (!rw->Write(buffer_of(r))) return cancelled();
      off += n;
      sent_total += n;
      with(tts_streams, idx, [&](TtsStream& s) {
        s.requests[ri].audio_bytes += n;
        s.audio_bytes_sent += n;
        ++s.responses;
      });
      if (ctx->IsCancelled()) return cancelled();
    }
    with(tts_streams, idx, [&](TtsStream& s) { s.requests[ri].completed = true; });
  }
  if (ctx->IsCancelled()) return cancelled();
  with(tts_streams, idx, [](TtsStream& s) {
    s.half_closed = true;
    s.completed = true;
  });
  return finish(grpc::Status::OK);
}

// ---- the server ----

MockRiva::MockRiva(Options o) : impl_(std::make_shared<Impl>()) {
  Impl& m = *impl_;
  m.opt = std::move(o);
  m.service.add(kAsrPath, [&m](grpc::ServerContext* ctx, RawStream* rw) { return m.asr(ctx, rw); });
  m.service.add(kTtsPath, [&m](grpc::ServerContext* ctx, RawStream* rw) { return m.tts(ctx, rw); });
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  std::string cert;
  if (m.opt.tls) {
    auto [c, key] = self_signed(m.opt.cert_host);
    cert = c;
    grpc::SslServerCredentialsOptions so(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    so.pem_key_cert_pairs.push_back({key, c});
    creds = grpc::SslServerCredentials(so);
  }
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:" + std::to_string(m.opt.port), creds, &m.port);
  b.RegisterService(&m.service);
  m.server = b.BuildAndStart();
  if (!m.server || m.port == 0) throw std::runtime_error("MockRiva: cannot listen");
  if (m.opt.tls) {
    m.ca_file = (std::filesystem::temp_directory_path() /
                 ("vb_mock_riva_ca_" + std::to_string(m.port) + ".pem"))
                    .string();
    std::ofstream(m.ca_file) << cert;
  }
}

MockRiva::~MockRiva() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->server->Shutdown(std::chrono::system_clock::now());
  impl_->server->Wait();
  if (!impl_->ca_file.empty()) {
    std::error_code ec;
    std::filesystem::remove(impl_->ca_file, ec);
  }
}

std::string MockRiva::address() const {
  return "127.0.0.1:" + std::to_string(impl_->port);
}

std::uint16_t MockRiva::port() const {
  return static_cast<std::uint16_t>(impl_->port);
}

std::string MockRiva::ca_file() const {
  return impl_->ca_file;
}

void MockRiva::script_text(AsrText t) {
  std::lock_guard lk(impl_->mu);
  impl_->texts.push_back(std::move(t));
}

void MockRiva::script_asr(AsrScript s) {
  std::lock_guard lk(impl_->mu);
  impl_->asr_scripts.push_back(std::move(s));
}

void MockRiva::script_tts(TtsScript s) {
  std::lock_guard lk(impl_->mu);
  impl_->tts_scripts.push_back(std::move(s));
}

std::vector<MockRiva::AsrStream> MockRiva::asr_streams() const {
  std::lock_guard lk(impl_->mu);
  return impl_->asr_streams;
}

MockRiva::AsrStream MockRiva::asr_stream(std::size_t i) const {
  std::lock_guard lk(impl_->mu);
  return impl_->asr_streams.at(i);
}

std::vector<MockRiva::TtsStream> MockRiva::tts_streams() const {
  std::lock_guard lk(impl_->mu);
  return impl_->tts_streams;
}

MockRiva::TtsStream MockRiva::tts_stream(std::size_t i) const {
  std::lock_guard lk(impl_->mu);
  return impl_->tts_streams.at(i);
}

namespace {
template <class Pred>
bool wait_for(std::mutex& mu, std::condition_variable& cv, std::chrono::milliseconds timeout,
              Pred pred) {
  std::unique_lock lk(mu);
  return cv.wait_for(lk, timeout, pred);
}

template <class V>
std::size_t done_count(const V& v) {
  return static_cast<std::size_t>(
      std::count_if(v.begin(), v.end(), [](const auto& s) { return s.done; }));
}
}  // namespace

bool MockRiva::wait_asr_streams(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] { return impl_->asr_streams.size() >= n; });
}

bool MockRiva::wait_asr_done(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout,
                  [&] { return done_count(impl_->asr_streams) >= n; });
}

bool MockRiva::wait_asr_responses(std::size_t i, std::size_t n,
                                  std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] {
    return impl_->asr_streams.size() > i && impl_->asr_streams[i].responses.size() >= n;
  });
}

bool MockRiva::wait_tts_streams(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] { return impl_->tts_streams.size() >= n; });
}

bool MockRiva::wait_tts_done(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout,
                  [&] { return done_count(impl_->tts_streams) >= n; });
}

bool MockRiva::wait_tts_bytes(std::size_t i, std::size_t bytes,
                              std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] {
    return impl_->tts_streams.size() > i && impl_->tts_streams[i].audio_bytes_sent >= bytes;
  });
}

// ---- statics ----

std::size_t MockRiva::characters(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 1;
    if (c >= 0xF0 && c < 0xF8)
      len = 4;
    else if (c >= 0xE0)
      len = c < 0xF0 ? 3 : 1;
    else if (c >= 0xC0)
      len = 2;
    if (i + len > text.size()) len = 1;
    for (std::size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) len = 1;
    i += len;
    ++n;
  }
  return n;
}

std::string MockRiva::tts_audio(std::string_view text, int rate, AudioEncoding encoding) {
  const auto n = static_cast<std::size_t>(static_cast<std::int64_t>(characters(text)) *
                                          kMsPerCharacter * rate / 1000);
  std::string out;
  out.reserve(encoding == nvidia::riva::LINEAR_PCM ? 2 * n : n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x =
        kToneAmplitude * std::sin(2 * std::numbers::pi * kToneHz * static_cast<double>(i) / rate);
    const auto s = static_cast<std::int16_t>(std::lround(x));
    if (encoding == nvidia::riva::MULAW) {
      out += static_cast<char>(mulaw_encode(s));
    } else if (encoding == nvidia::riva::ALAW) {
      out += static_cast<char>(alaw_encode(s));
    } else {
      const auto u = static_cast<std::uint16_t>(s);
      out += static_cast<char>(u & 0xFF);
      out += static_cast<char>(u >> 8);
    }
  }
  return out;
}

std::string MockRiva::unavailable_model(const std::string& language, int rate,
                                        const std::string& model) {
  // Riva 2.24 prints the language's primary subtag (es-US, es-ES and es all print "es").
  const std::string primary = language.substr(0, language.find('-'));
  std::string m =
      "Error: Unavailable model requested given these parameters: language_code=" + primary +
      "; sample_rate=" + std::to_string(rate) + "; ";
  if (!model.empty()) m += "model=" + model + "; ";  // (mock placement)
  return m + "type=online; ";
}

std::string MockRiva::voice_not_found(const std::string& voice, const std::string& language) {
  return "Model is not available on server: Voice " + voice + " for language " + language +
         " not found. Please specify the voice name in your SynthesizeSpeechRequest.";
}

std::int16_t MockRiva::mulaw_decode(std::uint8_t u) {
  u = static_cast<std::uint8_t>(~u);
  int t = ((u & 0x0F) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return static_cast<std::int16_t>((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

std::int16_t MockRiva::alaw_decode(std::uint8_t a) {
  a ^= 0x55;
  int t = (a & 0x0F) << 4;
  const int seg = (a & 0x70) >> 4;
  if (seg == 0) {
    t += 8;
  } else {
    t += 0x108;
    if (seg > 1) t <<= seg - 1;
  }
  return static_cast<std::int16_t>((a & 0x80) ? t : -t);
}

std::uint8_t MockRiva::mulaw_encode(std::int16_t s) {
  int pcm = s;
  const int sign = pcm < 0 ? 0x80 : 0;
  if (pcm < 0) pcm = -pcm;
  pcm = std::min(pcm, 32635) + 0x84;
  int exponent = 7;
  for (int mask = 0x4000; (pcm & mask) == 0 && exponent > 0; --exponent, mask >>= 1) {
  }
  const int mantissa = (pcm >> (exponent + 3)) & 0x0F;
  return static_cast<std::uint8_t>(~(sign | (exponent << 4) | mantissa));
}

std::uint8_t MockRiva::alaw_encode(std::int16_t s) {
  int pcm = s >> 3;
  int mask = 0xD5;
  if (pcm < 0) {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  static constexpr int kSegEnd[8] = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};
  int seg = 0;
  while (seg < 8 && pcm > kSegEnd[seg]) ++seg;
  if (seg >= 8) return static_cast<std::uint8_t>(0x7F ^ mask);
  int aval = seg << 4;
  aval |= seg < 2 ? (pcm >> 1) & 0x0F : (pcm >> seg) & 0x0F;
  return static_cast<std::uint8_t>(aval ^ mask);
}

}  // namespace voxbridge::testing
