// The vosk-server mock (see mock_vosk.hpp for the references and the behaviour). Marks:
// "reference" = what vosk-server's stt_server.py, vosk-api or python grpc do (the header names
// the files); "mock" = neither says, the rule is the mock's own.
#include "support/mock_vosk.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/method_handler.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "support/test_tls.hpp"

namespace voxbridge::testing {

namespace {

namespace v = vosk::stt::v1;
using RawStream = grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;
using Handler = std::function<grpc::Status(grpc::ServerContext*, RawStream*)>;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr const char* kPath = "/vosk.stt.v1.SttService/StreamingRecognize";

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

/// A number as vosk-api's json.h writes it (std::to_string: "%f") and Python reads it back.
double json_number(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%f", x);
  return std::strtod(b, nullptr);
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

struct Utterance {
  std::string text;
  float conf = 1.0f;
};

/// The mock's recognizer (mock): energy blocks, Kaldi's endpoint rules on them, scripted words.
struct Recognizer {
  int rate = 8000;
  std::size_t block = 160;
  double threshold = 500;
  std::vector<std::int16_t> pending;  // a block's start, carried to the next message
  std::int64_t samples = 0;           // fed through blocks since the stream began
  std::int64_t utt_start = 0;         // the utterance's first sample (after the last endpoint)
  bool speech = false;
  std::int64_t speech_start = 0, speech_end = 0, speech_samples = 0;
  std::vector<std::string> words;
  float conf = 1.0f;
  std::function<Utterance()> take;  // the next scripted text

  void consume(const std::int16_t* s, std::size_t n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(s[i]) * s[i];
    if (n > 0 && std::sqrt(sum / static_cast<double>(n)) > threshold) {
      if (!speech) {
        speech = true;
        speech_start = samples;
        Utterance u = take();
        words = split_words(u.text);
        conf = u.conf;
      }
      speech_end = samples + static_cast<std::int64_t>(n);
      speech_samples += static_cast<std::int64_t>(n);
    }
    samples += static_cast<std::int64_t>(n);
  }

  void feed(const std::int16_t* s, std::size_t n) {
    pending.insert(pending.end(), s, s + n);
    std::size_t off = 0;
    while (pending.size() - off >= block) {
      consume(pending.data() + off, block);
      off += block;
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(off));
  }

  /// The input's end (FinalResult: Kaldi's InputFinished takes the remainder too).
  void flush() {
    if (!pending.empty()) consume(pending.data(), pending.size());
    pending.clear();
  }

  bool over(std::int64_t n, double seconds) const {
    return static_cast<double>(n) >= seconds * rate - 1e-9;
  }

  /// Kaldi's rules as the vosk models configure them (reference), on the mock's blocks.
  bool endpoint() const {
    if (speech && over(samples - speech_end, MockVosk::kRule2Silence)) return true;  // rule2
    if (!speech && over(samples - utt_start, MockVosk::kRule1Silence)) return true;  // rule1
    return over(samples - utt_start, MockVosk::kRule5Length);                        // rule5
  }

  std::string partial() const {
    if (!speech) return "";
    const std::int64_t ms = speech_samples * 1000 / rate;
    const auto k = static_cast<std::size_t>((ms + MockVosk::kMsPerWord - 1) / MockVosk::kMsPerWord);
    return join_words(words, std::min(k, words.size()));
  }

  void reset() {
    utt_start = samples;
    speech = false;
    speech_samples = 0;
    words.clear();
  }
};

/// A time rounded to Kaldi's 0.03 s frame (mock placement of the word bounds).
double frame_time(double t) {
  return std::round(t / MockVosk::kFrameSeconds) * MockVosk::kFrameSeconds;
}

/// The final chunk vosk-server builds from Result()/FinalResult() (reference), for the
/// utterance the recognizer holds.
v::StreamingRecognitionResponse final_response(const Recognizer& r, const v::RecognitionSpec& spec,
                                               float nbest_likelihood) {
  const std::vector<std::string> words = r.speech ? r.words : std::vector<std::string>{};
  struct Word {
    std::string word;
    double start, end;
  };
  std::vector<Word> kaldi;
  if (!words.empty()) {
    const double s = static_cast<double>(r.speech_start) / r.rate;
    const double e = static_cast<double>(r.speech_end) / r.rate;
    const auto n = static_cast<double>(words.size());
    for (std::size_t i = 0; i < words.size(); ++i) {
      const double b0 = s + (e - s) * static_cast<double>(i) / n;
      const double b1 = s + (e - s) * static_cast<double>(i + 1) / n;
      kaldi.push_back({words[i], json_number(frame_time(b0)), json_number(frame_time(b1))});
    }
  }
  v::StreamingRecognitionResponse resp;
  auto* chunk = resp.add_chunks();
  chunk->set_final(true);
  auto* alt = chunk->add_alternatives();
  alt->set_text(join_words(words, words.size()));
  const bool with_words = spec.enable_word_time_offsets();
  if (spec.max_alternatives() == 0) {
    // MbrResult: {"result": [{word, start, end, conf}] (SetWords), "text"}.
    double sum = 0;
    if (with_words) {
      for (const auto& k : kaldi) {
        auto* w = alt->add_words();
        *w->mutable_start_time() = MockVosk::vosk_duration(k.start);
        *w->mutable_end_time() = MockVosk::vosk_duration(k.end);
        w->set_word(k.word);
        w->set_confidence(static_cast<float>(json_number(r.conf)));
        sum += static_cast<double>(w->confidence());
      }
    }
    alt->set_confidence(alt->words_size() > 0
                            ? static_cast<float>(sum / static_cast<double>(alt->words_size()))
                            : 1.0f);
  } else {
    // NbestResult: {"alternatives": [{"result": [{word, start, end}], "text", "confidence"}]};
    // a word without "conf" is 1.0 (x.get('conf', 1.0)). One alternative (mock).
    if (with_words) {
      for (const auto& k : kaldi) {
        auto* w = alt->add_words();
        *w->mutable_start_time() = MockVosk::vosk_duration(k.start);
        *w->mutable_end_time() = MockVosk::vosk_duration(k.end);
        w->set_word(k.word);
        w->set_confidence(1.0f);
      }
    }
    alt->set_confidence(words.empty() ? 1.0f : static_cast<float>(json_number(nbest_likelihood)));
  }
  return resp;
}

v::StreamingRecognitionResponse partial_response(const Recognizer& r) {
  v::StreamingRecognitionResponse resp;
  auto* chunk = resp.add_chunks();
  chunk->set_final(false);
  chunk->add_alternatives()->set_text(r.partial());
  return resp;
}

}  // namespace

struct MockVosk::Impl {
  Options opt;
  std::unique_ptr<grpc::Server> server;
  RawService service;
  int port = 0;
  std::string ca_file;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool stopping = false;
  int active = 0;
  std::deque<Utterance> texts;
  std::deque<StreamScript> scripts;
  std::vector<Stream> streams;

  template <class F>
  void with(std::size_t i, F&& f) {
    {
      std::lock_guard lk(mu);
      f(streams[i]);
    }
    cv.notify_all();
  }

  bool gone(grpc::ServerContext* ctx) const { return stopping || ctx->IsCancelled(); }

  /// Waits `ms` unless the client goes away first (false then).
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

  grpc::Status finish(std::size_t i, grpc::ServerContext* ctx, grpc::Status st) {
    with(i, [&](Stream& s) {
      if (ctx->IsCancelled()) s.cancelled = true;
      s.status = st;
      s.done = true;
    });
    return st;
  }

  grpc::Status cancelled(std::size_t i, grpc::ServerContext* ctx) {
    with(i, [](Stream& s) { s.cancelled = true; });
    return finish(i, ctx, grpc::Status::CANCELLED);
  }

  bool send(std::size_t i, grpc::ServerContext* ctx, RawStream* rw,
            const v::StreamingRecognitionResponse& r, int delay_ms) {
    if (!pause(ctx, delay_ms)) return false;
    if (!rw->Write(buffer_of(r))) return false;
    with(i, [&](Stream& s) { s.responses.push_back(r); });
    return true;
  }

  grpc::Status handle(grpc::ServerContext* ctx, RawStream* rw);
};

grpc::Status MockVosk::Impl::handle(grpc::ServerContext* ctx, RawStream* rw) {
  std::size_t idx = 0;
  StreamScript script;
  // grpc.server(ThreadPoolExecutor(threads)[, maximum_concurrent_rpcs=threads]) (reference):
  // decided (and the thread taken) as the RPC is recorded.
  bool counted = false;
  const bool busy = [&] {
    std::lock_guard lk(mu);
    Stream s;
    for (const auto& [k, val] : ctx->client_metadata())
      s.metadata.emplace(std::string(k.data(), k.size()), std::string(val.data(), val.size()));
    s.peer = ctx->peer();
    const bool full = opt.threads > 0 && active >= opt.threads;
    s.queued = full && !opt.no_queue;
    if (opt.threads > 0 && !full) {
      ++active;
      counted = true;
    }
    streams.push_back(std::move(s));
    idx = streams.size() - 1;
    if (!scripts.empty()) {
      script = std::move(scripts.front());
      scripts.pop_front();
    }
    return full;
  }();
  cv.notify_all();
  if (busy && opt.no_queue) {
    return finish(idx, ctx, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, kConcurrencyError));
  }
  if (busy) {
    std::unique_lock lk(mu);
    while (active >= opt.threads && !gone(ctx)) cv.wait_for(lk, milliseconds(10));
    if (gone(ctx)) {
      lk.unlock();
      return cancelled(idx, ctx);
    }
    ++active;
    counted = true;
  }
  struct Release {
    Impl* m;
    bool on;
    ~Release() {
      if (!on) return;
      {
        std::lock_guard lk(m->mu);
        --m->active;
      }
      m->cv.notify_all();
    }
  } release{this, counted};

  grpc::ByteBuffer buf;
  // `request = next(request_iterator)`: nothing at all ends the generator (reference).
  if (!rw->Read(&buf)) {
    if (ctx->IsCancelled()) return cancelled(idx, ctx);
    with(idx, [](Stream& s) { s.half_closed = true; });
    return finish(idx, ctx, grpc::Status(grpc::StatusCode::UNKNOWN, kNoMessageError));
  }
  v::StreamingRecognitionRequest first;
  {
    const std::string raw = bytes_of(buf);
    const bool ok = first.ParseFromString(raw);
    with(idx, [&](Stream& s) {
      s.got_first = true;
      s.first_message = raw;
      s.first = first;
      s.spec = first.config().specification();
    });
    if (!ok) return finish(idx, ctx, grpc::Status(grpc::StatusCode::INTERNAL, kDeserializeError));
  }
  const v::RecognitionSpec spec = first.config().specification();
  const std::int64_t rate = spec.sample_rate_hertz();
  auto fail = [&] { return finish(idx, ctx, grpc::Status(script.fail_code, script.fail_message)); };
  if (script.fail_after_audio == 0) return fail();

  Recognizer rec;
  rec.rate = static_cast<int>(std::clamp<std::int64_t>(rate, 1, 1 << 30));
  rec.block = static_cast<std::size_t>(std::max<std::int64_t>(1, rec.rate * kBlockMs / 1000));
  rec.threshold = opt.speech_rms;
  rec.take = [this, idx] {
    Utterance u{kDefaultText, 1.0f};
    {
      std::lock_guard lk(mu);
      if (!texts.empty()) {
        u = std::move(texts.front());
        texts.pop_front();
      }
      ++streams[idx].utterances;
    }
    cv.notify_all();
    return u;
  };

  std::size_t processed_bytes = 0, messages = 0;
  std::vector<std::int16_t> samples;
  while (rw->Read(&buf)) {
    const std::string raw = bytes_of(buf);
    v::StreamingRecognitionRequest req;
    const bool ok = req.ParseFromString(raw);
    ++messages;
    with(idx, [&](Stream& s) {
      ++s.audio_messages;
      if (!req.has_audio_content()) ++s.non_audio_messages;
      s.audio_bytes += req.audio_content().size();
      if (opt.keep_audio) s.audio += req.audio_content();
    });
    if (!ok) return finish(idx, ctx, grpc::Status(grpc::StatusCode::INTERNAL, kDeserializeError));
    const std::string& audio = req.audio_content();
    processed_bytes += audio.size();
    const std::size_t n = audio.size() / 2;  // an odd byte is dropped (reference)
    if (n > 0) {
      // recognizer.AcceptWaveform (reference: vosk-api recognizer.cc, Kaldi's resampler).
      if (rate <= -5) {
        // Kaldi asserts on the negative step and the process aborts (mock: this RPC only).
        return finish(idx, ctx, grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed"));
      }
      if (rate < 5) {
        // int(rate * 0.2) == 0: the loop never advances (reference); the mock waits for the
        // client to give up.
        with(idx, [](Stream& s) { s.stalled = true; });
        std::unique_lock lk(mu);
        while (!gone(ctx)) cv.wait_for(lk, milliseconds(10));
        lk.unlock();
        return cancelled(idx, ctx);
      }
      if (static_cast<double>(rate) < static_cast<double>(opt.model_rate)) {
        return finish(idx, ctx, grpc::Status(grpc::StatusCode::UNKNOWN, kWaveformError));
      }
      samples.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const auto lo = static_cast<std::uint8_t>(audio[2 * i]);
        const auto hi = static_cast<std::uint8_t>(audio[2 * i + 1]);
        samples[i] = static_cast<std::int16_t>(static_cast<std::uint16_t>(lo | (hi << 8)));
      }
      rec.feed(samples.data(), n);
    }
    // max_chunk_rtf: chunk_time / (len / (2 * sample_rate)) (reference).
    if (audio.empty()) {
      return finish(idx, ctx,
                    grpc::Status(grpc::StatusCode::UNKNOWN,
                                 rate == 0 ? kIntDivisionError : kFloatDivisionError));
    }
    if (rec.endpoint()) {
      const auto r = final_response(rec, spec, opt.nbest_likelihood);
      rec.reset();
      if (!send(idx, ctx, rw, r, script.response_delay_ms)) return cancelled(idx, ctx);
    } else if (spec.partial_results()) {
      if (!send(idx, ctx, rw, partial_response(rec), script.response_delay_ms))
        return cancelled(idx, ctx);
    }
    if (script.fail_after_audio > 0 &&
        messages == static_cast<std::size_t>(script.fail_after_audio))
      return fail();
  }
  if (ctx->IsCancelled()) return cancelled(idx, ctx);
  with(idx, [](Stream& s) { s.half_closed = true; });
  rec.flush();
  if (!send(idx, ctx, rw, final_response(rec, spec, opt.nbest_likelihood),
            script.response_delay_ms))
    return cancelled(idx, ctx);
  // rtf = execution_time / (processed_bytes / (2 * sample_rate)), after the last yield
  // (reference).
  if (processed_bytes == 0) {
    return finish(idx, ctx,
                  grpc::Status(grpc::StatusCode::UNKNOWN,
                               rate == 0 ? kIntDivisionError : kFloatDivisionError));
  }
  return finish(idx, ctx, grpc::Status::OK);
}

MockVosk::MockVosk(Options o) : impl_(std::make_shared<Impl>()) {
  Impl& m = *impl_;
  m.opt = std::move(o);
  m.service.add(kPath, [&m](grpc::ServerContext* ctx, RawStream* rw) { return m.handle(ctx, rw); });
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
  if (!m.server || m.port == 0) throw std::runtime_error("MockVosk: cannot listen");
  if (m.opt.tls) {
    m.ca_file = (std::filesystem::temp_directory_path() /
                 ("vb_mock_vosk_ca_" + std::to_string(m.port) + ".pem"))
                    .string();
    std::ofstream(m.ca_file) << cert;
  }
}

MockVosk::~MockVosk() {
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

std::string MockVosk::address() const {
  return "127.0.0.1:" + std::to_string(impl_->port);
}

std::uint16_t MockVosk::port() const {
  return static_cast<std::uint16_t>(impl_->port);
}

std::string MockVosk::ca_file() const {
  return impl_->ca_file;
}

void MockVosk::script_text(std::string text, float word_confidence) {
  std::lock_guard lk(impl_->mu);
  impl_->texts.push_back({std::move(text), word_confidence});
}

void MockVosk::script_stream(StreamScript s) {
  std::lock_guard lk(impl_->mu);
  impl_->scripts.push_back(std::move(s));
}

std::size_t MockVosk::scripted_texts_left() const {
  std::lock_guard lk(impl_->mu);
  return impl_->texts.size();
}

std::vector<MockVosk::Stream> MockVosk::streams() const {
  std::lock_guard lk(impl_->mu);
  return impl_->streams;
}

MockVosk::Stream MockVosk::stream(std::size_t i) const {
  std::lock_guard lk(impl_->mu);
  return impl_->streams.at(i);
}

std::size_t MockVosk::stream_count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->streams.size();
}

namespace {
template <class Pred>
bool wait_for(std::mutex& mu, std::condition_variable& cv, std::chrono::milliseconds timeout,
              Pred pred) {
  std::unique_lock lk(mu);
  return cv.wait_for(lk, timeout, pred);
}
}  // namespace

bool MockVosk::wait_streams(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] { return impl_->streams.size() >= n; });
}

bool MockVosk::wait_done(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] {
    return static_cast<std::size_t>(std::count_if(impl_->streams.begin(), impl_->streams.end(),
                                                  [](const Stream& s) { return s.done; })) >= n;
  });
}

bool MockVosk::wait_audio_messages(std::size_t i, std::size_t n,
                                   std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] {
    return impl_->streams.size() > i && impl_->streams[i].audio_messages >= n;
  });
}

bool MockVosk::wait_responses(std::size_t i, std::size_t n,
                              std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout, [&] {
    return impl_->streams.size() > i && impl_->streams[i].responses.size() >= n;
  });
}

bool MockVosk::wait_stalled(std::size_t i, std::chrono::milliseconds timeout) const {
  return wait_for(impl_->mu, impl_->cv, timeout,
                  [&] { return impl_->streams.size() > i && impl_->streams[i].stalled; });
}

google::protobuf::Duration MockVosk::vosk_duration(double seconds) {
  // get_duration(): seconds = int(x); nanos = (int(x * 1000) % 1000) * 1000000 (reference).
  google::protobuf::Duration d;
  d.set_seconds(static_cast<std::int64_t>(seconds));
  const auto ms = static_cast<std::int64_t>(seconds * 1000);
  std::int64_t rem = ms % 1000;
  if (rem < 0) rem += 1000;  // Python's % takes the divisor's sign
  d.set_nanos(static_cast<std::int32_t>(rem * 1000000));
  return d;
}

}  // namespace voxbridge::testing
