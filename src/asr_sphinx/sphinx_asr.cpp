#include "voxbridge/asr_sphinx/sphinx_asr.hpp"

#include <pocketsphinx.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/net/io_pool.hpp"

namespace voxbridge::asr_sphinx {

namespace {
constexpr int kModelRate = 16000;
}

struct Decoder {
  cmd_ln_t* config = nullptr;
  ps_decoder_t* ps = nullptr;
  std::string default_search;  // the language model's search
  ~Decoder() {
    if (ps != nullptr) ps_free(ps);
    if (config != nullptr) cmd_ln_free_r(config);
  }
};

DecoderPool::DecoderPool(const SphinxOptions& o) {
  const std::string hmm = o.model_dir + "/en-us";
  const std::string lm = o.model_dir + "/en-us.lm.bin";
  const std::string dict = o.model_dir + "/cmudict-en-us.dict";
  for (std::size_t i = 0; i < std::max<std::size_t>(o.decoders, 1); ++i) {
    auto d = std::make_unique<Decoder>();
    d->config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", hmm.c_str(), "-lm", lm.c_str(),
                            "-dict", dict.c_str(), "-logfn", "/dev/null", nullptr);
    if (d->config != nullptr) d->ps = ps_init(d->config);
    if (d->ps == nullptr) {
      throw std::runtime_error("PocketSphinx: cannot load the model from " + o.model_dir +
                               " (apt-get install pocketsphinx-en-us)");
    }
    d->default_search = ps_get_search(d->ps);
    free_.push_back(d.get());
    all_.push_back(std::move(d));
  }
}

DecoderPool::~DecoderPool() = default;

Decoder* DecoderPool::acquire(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return !free_.empty(); })) return nullptr;
  Decoder* d = free_.back();
  free_.pop_back();
  return d;
}

void DecoderPool::release(Decoder* d) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(d);
  }
  cv_.notify_one();
}

namespace {
/// The pool's decoder for one scope.
class Lease {
 public:
  Lease(DecoderPool& pool, Decoder* d) : pool_(pool), d_(d) {}
  ~Lease() {
    if (d_ != nullptr) pool_.release(d_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Decoder* get() const { return d_; }

 private:
  DecoderPool& pool_;
  Decoder* d_;
};

/// Small words a caller wraps keywords in ("i would like to talk to sales please").
constexpr const char* kFillers[] = {"i",     "to",     "the",  "want", "would", "like", "talk",
                                    "speak", "please", "what", "is",   "yes",   "no",   "thanks"};

/// A JSGF grammar of the hint words the dictionary knows, plus fillers: any sequence of them.
/// Empty if no hint word is known.
std::string hints_grammar(ps_decoder_t* ps,
                          const google::protobuf::RepeatedPtrField<std::string>& hints) {
  std::vector<std::string> words;
  auto add = [&](std::string w) {
    for (auto& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (w.empty() || std::find(words.begin(), words.end(), w) != words.end()) return;
    char* phones = ps_lookup_word(ps, w.c_str());
    if (phones == nullptr) return;
    std::free(phones);
    words.push_back(std::move(w));
  };
  std::size_t keywords = 0;
  for (const auto& h : hints) {
    std::string w;
    for (const char c : h + " ") {
      if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '\'') {
        w.push_back(c);
      } else if (!w.empty()) {
        add(std::exchange(w, {}));
      }
    }
  }
  keywords = words.size();
  if (keywords == 0) return {};
  for (const char* f : kFillers) add(f);
  std::string g = "#JSGF V1.0;\ngrammar hints;\npublic <utt> = <w>+;\n<w> = ";
  for (std::size_t i = 0; i < words.size(); ++i) g += (i == 0 ? "" : " | ") + words[i];
  g += ";\n";
  return g;
}

std::string hypothesis(ps_decoder_t* ps) {
  std::int32_t score = 0;
  const char* h = ps_get_hyp(ps, &score);
  return h == nullptr ? std::string() : std::string(h);
}
}  // namespace

std::string recognize(DecoderPool& pool, const std::vector<std::int16_t>& pcm16k) {
  Lease lease(pool, pool.acquire(std::chrono::seconds(30)));
  if (lease.get() == nullptr) return {};
  ps_decoder_t* ps = lease.get()->ps;
  ps_start_utt(ps);
  ps_process_raw(ps, pcm16k.data(), pcm16k.size(), FALSE, TRUE);
  ps_end_utt(ps);
  return hypothesis(ps);
}

grpc::Status SphinxRecognizer::StreamingRecognize(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* stream) {
  asr::v1::RecognizeRequest req;
  if (!stream->Read(&req) || !req.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  const auto& fmt = req.config().format();
  const int rate = fmt.sample_rate_hz() == 0 ? kModelRate : static_cast<int>(fmt.sample_rate_hz());
  const auto enc = fmt.encoding();
  if (enc != common::v1::LINEAR16 && enc != common::v1::MULAW &&
      enc != common::v1::AUDIO_ENCODING_UNSPECIFIED) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the built-in ASR takes LINEAR16 or MULAW"};
  }
  if (rate < 8000 || rate > 48000) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "sample_rate_hz must be 8000 to 48000"};
  }
  const bool interim = req.config().interim_results();
  net::yield_to_io_threads();  // decoding is the heaviest work in the process
  Lease lease(pool_, pool_.acquire(o_.acquire_timeout));
  if (lease.get() == nullptr) {
    return {grpc::StatusCode::RESOURCE_EXHAUSTED, "all speech decoders are busy"};
  }
  ps_decoder_t* ps = lease.get()->ps;
  // Telephone-band audio through the wideband model: listen for the hints only (see header).
  struct SearchGuard {
    Decoder* d = nullptr;
    ~SearchGuard() {
      if (d != nullptr) ps_set_search(d->ps, d->default_search.c_str());
    }
  } restore;
  if (o_.narrowband_grammar && rate < kModelRate && req.config().phrase_hints_size() > 0) {
    const std::string g = hints_grammar(ps, req.config().phrase_hints());
    if (!g.empty() && ps_set_jsgf_string(ps, "hints", g.c_str()) == 0 &&
        ps_set_search(ps, "hints") == 0) {
      restore.d = lease.get();
    }
  }
  audio::Resampler to_model(rate, kModelRate, 5);
  std::vector<std::int16_t> pcm, model;
  std::vector<std::int16_t> utterance;  // model-rate audio for the second pass (grammar mode)
  constexpr std::size_t kMaxSecondPass = 30 * kModelRate;
  std::uint64_t samples = 0;  // at the model rate, since the start
  std::uint64_t next_interim = 0;
  const auto interim_samples =
      static_cast<std::uint64_t>(o_.interim_every.count() * kModelRate / 1000);
  bool in_speech = false, ended = false;
  std::string last;
  asr::v1::RecognizeResponse r;
  const auto ms_at = [](std::uint64_t s) {
    return static_cast<std::uint32_t>(s * 1000 / kModelRate);
  };
  ps_start_utt(ps);
  while (!ended && stream->Read(&req)) {
    if (ctx->IsCancelled()) break;
    if (req.request_case() != asr::v1::RecognizeRequest::kAudio) continue;
    const std::string& a = req.audio();
    if (enc == common::v1::MULAW) {
      pcm.resize(a.size());
      audio::ulaw_decode({reinterpret_cast<const std::uint8_t*>(a.data()), a.size()}, pcm);
    } else {
      pcm.resize(a.size() / 2);
      std::memcpy(pcm.data(), a.data(), pcm.size() * 2);
    }
    model.resize(to_model.max_output(pcm.size()));
    model.resize(to_model.process(pcm, model));
    ps_process_raw(ps, model.data(), model.size(), FALSE, FALSE);
    samples += model.size();
    if (restore.d != nullptr && utterance.size() + model.size() <= kMaxSecondPass) {
      utterance.insert(utterance.end(), model.begin(), model.end());
    }
    const bool now = ps_get_in_speech(ps) != 0;
    if (now && !in_speech) {
      r.Clear();
      r.mutable_speech_started()->set_offset_ms(ms_at(samples));
      stream->Write(r);
    }
    if (!now && in_speech) {
      ended = true;  // the decoder heard the speech end
      r.Clear();
      r.mutable_end_of_utterance()->set_offset_ms(ms_at(samples));
      stream->Write(r);
      break;
    }
    in_speech = now;
    if (interim && in_speech && samples >= next_interim) {
      next_interim = samples + interim_samples;
      std::string h = hypothesis(ps);
      if (!h.empty() && h != last) {
        r.Clear();
        auto* res = r.mutable_result();
        res->set_transcript(h);
        res->set_is_final(false);
        res->set_stability(0.5f);
        res->set_end_ms(ms_at(samples));
        stream->Write(r);
        last = std::move(h);
      }
    }
  }
  ps_end_utt(ps);
  if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
  if (restore.d != nullptr && !utterance.empty()) {
    // Telephone audio: the live pass normalizes with cepstral means still tuned to wideband
    // speech; a second pass over the whole utterance uses its own (batch) means. Measured on a
    // cold decoder: "i would like i what want what" live, "... to sales" in the second pass.
    ps_start_utt(ps);
    ps_process_raw(ps, utterance.data(), utterance.size(), FALSE, TRUE);
    ps_end_utt(ps);
  }
  r.Clear();
  auto* res = r.mutable_result();
  res->set_transcript(hypothesis(ps));
  res->set_is_final(true);
  res->set_stability(1.0f);
  res->set_end_ms(ms_at(samples));
  stream->Write(r);
  // Drain what the client still sends until it half-closes.
  while (ended && stream->Read(&req)) {
  }
  return grpc::Status::OK;
}

}  // namespace voxbridge::asr_sphinx
