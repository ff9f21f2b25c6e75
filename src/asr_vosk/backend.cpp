#include "voxbridge/asr_vosk/backend.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "vendor/vosk/stt_service.grpc.pb.h"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/providers/stream.hpp"
#include "voxbridge/providers/vendor_grpc.hpp"

namespace voxbridge::asr_vosk {

namespace v = vosk::stt::v1;

namespace {
constexpr std::size_t kMaxTextBytes = 4096;
constexpr std::uint32_t kMaxOffsetMs = 24u * 3600u * 1000u;

std::uint32_t ms_of(const google::protobuf::Duration& d) {
  if (d.seconds() < 0 || d.nanos() < 0) return 0;
  const std::int64_t ms = d.seconds() * 1000 + d.nanos() / 1000000;
  return static_cast<std::uint32_t>(std::min<std::int64_t>(ms, kMaxOffsetMs));
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}
}  // namespace

struct VoskBackend::State {
  VoskOptions options;
  std::string log_name;
  providers::ProviderTarget target;
  providers::ChannelPool channels;
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<std::atomic<std::size_t>> open = std::make_shared<std::atomic<std::size_t>>(0);
  VoskCounters counters;
};

namespace {

using Stream =
    providers::BidiStream<v::StreamingRecognitionRequest, v::StreamingRecognitionResponse>;

/// One utterance's responses, mapped on the call's thread.
struct Mapper {
  providers::AsrEvents events;
  bool end_on_final = true;
  bool ended = false;
  VoskCounters* counters = nullptr;

  void on_response(const v::StreamingRecognitionResponse& r) {
    for (const auto& c : r.chunks()) {
      if (c.alternatives_size() == 0) continue;
      const auto& a = c.alternatives(0);
      providers::AsrResult res;
      res.transcript = trimmed(a.text());
      if (res.transcript.empty()) continue;  // Kaldi's endpoint on silence, the closing result
      providers::cap_text(res.transcript, kMaxTextBytes);
      res.is_final = c.final();
      res.stability = c.final() ? 1.0f : 0.0f;
      res.confidence = c.final() ? std::clamp(a.confidence(), 0.0f, 1.0f) : 0.0f;
      if (a.words_size() > 0) {
        res.start_ms = ms_of(a.words(0).start_time());
        res.end_ms = std::max(res.start_ms, ms_of(a.words(a.words_size() - 1).end_time()));
      }
      if (res.is_final) counters->finals.fetch_add(1, std::memory_order_relaxed);
      if (events.result) events.result(res);
      if (res.is_final && (end_on_final || c.end_of_utterance()) && !ended) {
        ended = true;
        if (events.end_of_utterance) events.end_of_utterance(res.end_ms);
      }
    }
  }
};

class VoskStream final : public providers::AsrStream {
 public:
  VoskStream(std::shared_ptr<Stream> stream, audio::G711Law law, bool g711, int rate,
             VoskCounters& counters)
      : stream_(std::move(stream)), law_(law), g711_(g711), rate_(rate), counters_(counters) {}

  bool send_audio(std::span<const std::uint8_t> bytes) override {
    // An empty message is no audio (vosk-server fails the RPC on one: a division by its length).
    if (bytes.empty()) return true;
    v::StreamingRecognitionRequest m;
    std::size_t samples = bytes.size() / 2;
    if (g711_) {
      // Vosk takes 16-bit PCM only: decode the leg's G.711 once, straight into the message.
      samples = bytes.size();
      std::string& pcm = *m.mutable_audio_content();
      pcm.resize(samples * 2);
      auto* out = reinterpret_cast<std::int16_t*>(pcm.data());
      if (law_ == audio::G711Law::ulaw) {
        audio::ulaw_decode(bytes, {out, samples});
      } else {
        audio::alaw_decode(bytes, {out, samples});
      }
    } else {
      m.set_audio_content(bytes.data(), bytes.size());
    }
    if (!stream_->send(std::move(m))) return false;
    counters_.audio_ms.fetch_add(samples * 1000 / static_cast<unsigned>(rate_),
                                 std::memory_order_relaxed);
    return true;
  }
  void finish() override { stream_->finish(); }
  void cancel() override { stream_->cancel(); }
  std::uint64_t dropped() const override { return stream_->dropped(); }

 private:
  std::shared_ptr<Stream> stream_;
  audio::G711Law law_;
  bool g711_;
  int rate_;
  VoskCounters& counters_;
};

}  // namespace

VoskBackend::VoskBackend(VoskOptions options)
    : PartialClients("vosk-" + options.name, "speech recognition"),
      state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  const auto& o = state_->options;
  state_->log_name = "vosk-" + o.name;
  state_->target.name = o.name;
  state_->target.address = o.address;
  state_->target.tls = o.tls;
  state_->target.ca_file = o.ca_file;
  state_->channel = state_->channels.get(state_->target);  // throws for an unreadable CA file
}

VoskBackend::~VoskBackend() {
  state_->channel.reset();
  // A stream's stub holds the channel; the channel must not go last on one of gRPC's threads.
  state_->channels.wait_unused(std::chrono::seconds(2));
}

std::shared_ptr<providers::AsrStream> VoskBackend::open_asr(
    const providers::ProviderTarget& target, const asr::v1::RecognitionConfig& config,
    providers::Poster post, providers::AsrEvents events, std::size_t max_queued) {
  const auto enc = config.format().encoding();
  if (enc != common::v1::LINEAR16 && enc != common::v1::MULAW && enc != common::v1::ALAW) {
    throw std::runtime_error(state_->log_name +
                             " takes LINEAR16 (or G.711, decoded here): set asr_encoding = "
                             "linear16 or mulaw");
  }
  const int rate = static_cast<int>(config.format().sample_rate_hz());
  if (rate < 8000 || rate > 48000) {
    throw std::runtime_error(state_->log_name + ": a sample rate of 8000 to 48000 Hz");
  }
  const auto& o = state_->options;
  auto slot = providers::SessionSlot::admit(state_->open, o.max_sessions, state_->log_name);
  state_->counters.utterances.fetch_add(1, std::memory_order_relaxed);

  v::StreamingRecognitionRequest first;
  auto* spec = first.mutable_config()->mutable_specification();
  spec->set_audio_encoding(v::RecognitionSpec::LINEAR16_PCM);
  spec->set_sample_rate_hertz(rate);
  spec->set_language_code(o.language.empty() ? config.language() : o.language);
  spec->set_model(o.model);
  spec->set_partial_results(o.partial_results && config.interim_results());
  spec->set_single_utterance(config.single_utterance());
  spec->set_enable_word_time_offsets(true);

  auto mapper = std::make_shared<Mapper>();
  mapper->events = std::move(events);
  mapper->end_on_final = o.end_on_final;
  mapper->counters = &state_->counters;
  auto stub = std::shared_ptr<v::SttService::Stub>(v::SttService::NewStub(state_->channel));
  // The stream holds the stub, the slot and the backend's state until gRPC is done with it.
  auto keep = std::make_shared<std::tuple<decltype(stub), decltype(slot), std::shared_ptr<State>>>(
      stub, std::move(slot), state_);
  auto stream = Stream::start(
      [stub](grpc::ClientContext* c, Stream::Reactor* r) {
        stub->async()->StreamingRecognize(c, r);
      },
      keep, providers::rpc_target(state_->target, target), std::move(first), std::move(post),
      [mapper](v::StreamingRecognitionResponse& r) { mapper->on_response(r); },
      [mapper, counters = &state_->counters](const grpc::Status& st) {
        if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
          counters->failed.fetch_add(1, std::memory_order_relaxed);
        }
        if (mapper->events.closed) mapper->events.closed(providers::status_of(st));
      },
      max_queued);
  const bool g711 = enc != common::v1::LINEAR16;
  return std::make_shared<VoskStream>(
      std::move(stream), enc == common::v1::ALAW ? audio::G711Law::alaw : audio::G711Law::ulaw,
      g711, rate, state_->counters);
}

const VoskOptions& VoskBackend::options() const {
  return state_->options;
}
const VoskCounters& VoskBackend::counters() const {
  return state_->counters;
}
std::size_t VoskBackend::sessions() const {
  return state_->open->load();
}

}  // namespace voxbridge::asr_vosk
