#include "fake_providers.hpp"

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/opus.hpp"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <span>
#include <sstream>
#include <thread>

namespace voxbridge::testing {

grpc::Status FakeRecognizer::StreamingRecognize(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* stream) {
  ++streams;
  asr::v1::RecognizeRequest req;
  if (!stream->Read(&req) || !req.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  saw_config = true;
  last_call_id = req.config().call().call_id();
  int left = failing_streams.load();
  while (left > 0 && !failing_streams.compare_exchange_weak(left, left - 1)) {
  }
  const bool breaks = left > 0;
  const int rate = static_cast<int>(req.config().format().sample_rate_hz());
  encoding = req.config().format().encoding();
  std::unique_ptr<audio::OpusDecoderStream> opus;
  if (encoding == common::v1::OPUS) opus = std::make_unique<audio::OpusDecoderStream>(rate);
  const bool mulaw = encoding == common::v1::MULAW;
  std::vector<std::int16_t> decoded;
  std::string pcm_bytes;
  int blocks = 0, voiced = 0, quiet_run = 0;  // in 20 ms frames
  const std::size_t block = static_cast<std::size_t>(std::max(rate / 50, 1));
  std::vector<std::int16_t> carry;
  bool finished = false;
  auto done = [&](grpc::Status st) {
    std::lock_guard lock(mu_);
    voiced_per_stream_.push_back(voiced);
    return st;
  };
  std::istringstream words(transcript);
  std::string first_word;
  words >> first_word;
  while (stream->Read(&req)) {
    if (!req.has_audio() && req.request_case() != asr::v1::RecognizeRequest::kAudio) continue;
    ++audio_messages;
    const std::string* audio = &req.audio();
    if (opus) {
      decoded.clear();
      if (!opus->decode(
              {reinterpret_cast<const std::uint8_t*>(req.audio().data()), req.audio().size()},
              decoded)) {
        return {grpc::StatusCode::INVALID_ARGUMENT, "not an Opus packet"};
      }
      pcm_bytes.assign(reinterpret_cast<const char*>(decoded.data()), decoded.size() * 2);
      audio = &pcm_bytes;
    } else if (mulaw) {
      decoded.resize(req.audio().size());
      audio::ulaw_decode(
          {reinterpret_cast<const std::uint8_t*>(req.audio().data()), req.audio().size()}, decoded);
      pcm_bytes.assign(reinterpret_cast<const char*>(decoded.data()), decoded.size() * 2);
      audio = &pcm_bytes;
    }
    // Judge the stream in 20 ms frames from its start, wherever the messages cut it
    // (voxbridge sends several frames per message, and a flush may hold part of one): an
    // endpointer counts time, not messages.
    const std::string& a = *audio;
    const std::size_t have = carry.size();
    carry.resize(have + a.size() / 2);
    std::memcpy(carry.data() + have, a.data(), (a.size() / 2) * 2);
    std::size_t used = 0;
    for (; used + block <= carry.size() && !finished; used += block) {
      long sum = 0;
      for (std::size_t i = 0; i < block; ++i) sum += std::labs(carry[used + i]);
      const bool is_voiced = sum / static_cast<long>(block) > voice_level;
      const auto at = static_cast<std::uint32_t>(blocks * 20);
      if (breaks && blocks >= fail_after_frames) {
        return done({grpc::StatusCode::UNAVAILABLE, "recognizer restarting"});
      }
      ++blocks;
      asr::v1::RecognizeResponse r;
      if (!is_voiced) {
        if (voiced < voiced_frames || ++quiet_run < silence_frames) continue;
      } else {
        quiet_run = 0;
        if (voiced == 0) {
          r.mutable_speech_started()->set_offset_ms(at);
          stream->Write(r);
        }
        ++voiced;
        if (voiced == voiced_frames / 2) {
          r.Clear();
          r.mutable_result()->set_transcript(first_word);
          r.mutable_result()->set_stability(0.5f);
          stream->Write(r);
        }
        if (silence_frames > 0 || voiced < voiced_frames) continue;
      }
      r.Clear();
      auto* res = r.mutable_result();
      res->set_transcript(transcript);
      res->set_is_final(true);
      res->set_confidence(0.9f);
      res->set_end_ms(at + 20);
      stream->Write(r);
      r.Clear();
      r.mutable_end_of_utterance()->set_offset_ms(at + 20);
      stream->Write(r);
      finished = true;
    }
    carry.erase(carry.begin(), carry.begin() + static_cast<std::ptrdiff_t>(used));
  }
  return done(grpc::Status::OK);
}

std::vector<int> FakeRecognizer::voiced_per_stream() const {
  std::lock_guard lock(mu_);
  return voiced_per_stream_;
}

grpc::Status FakeSynthesizer::StreamingSynthesize(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<tts::v1::SynthesizeResponse, tts::v1::SynthesizeRequest>* stream) {
  ++streams;
  tts::v1::SynthesizeRequest req;
  if (!stream->Read(&req) || !req.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  const int rate = static_cast<int>(req.config().format().sample_rate_hz());
  if (rate <= 0 || req.config().format().encoding() != common::v1::LINEAR16) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "LINEAR16 at a positive rate, please"};
  }
  const int per_msg = rate / 50;
  std::uint64_t sample = 0;
  std::uint32_t sent_ms = 0;
  bool first = true;
  const int fail_after = failing_streams.fetch_sub(1) > 0 ? fail_after_ms : -1;
  while (stream->Read(&req)) {
    if (!req.has_text()) continue;
    {
      std::lock_guard lock(mu_);
      texts_.push_back(req.text().text());
    }
    std::istringstream in(req.text().text());
    std::string word;
    int words = 0;
    while (in >> word) ++words;
    if (first && first_audio_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(first_audio_delay_ms));
    }
    first = false;
    const int msgs = words * word_ms / 20;
    tts::v1::SynthesizeResponse r;
    std::string pcm(static_cast<std::size_t>(per_msg) * 2, '\0');
    for (int m = 0; m < msgs; ++m) {
      if (ctx->IsCancelled()) {
        ++cancelled;
        return grpc::Status::CANCELLED;
      }
      for (int i = 0; i < per_msg; ++i, ++sample) {
        const auto v = static_cast<std::int16_t>(
            level * std::sin(2 * std::numbers::pi * 440.0 * static_cast<double>(sample) / rate));
        std::memcpy(pcm.data() + 2 * i, &v, 2);
      }
      if (fail_after >= 0 && sent_ms >= static_cast<std::uint32_t>(fail_after)) {
        return {grpc::StatusCode::UNAVAILABLE, "synthesizer restarted"};
      }
      r.set_audio(pcm);
      if (!stream->Write(r)) {
        ++cancelled;
        return grpc::Status::CANCELLED;
      }
      ++audio_written;
      sent_ms += 20;
      if (pace_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pace_ms));
    }
    r.Clear();
    r.mutable_chunk_done()->set_chunk_id(req.text().chunk_id());
    r.mutable_chunk_done()->set_audio_ms(sent_ms);
    stream->Write(r);
  }
  return grpc::Status::OK;
}

std::vector<std::string> FakeSynthesizer::texts() const {
  std::lock_guard lock(mu_);
  return texts_;
}

grpc::Status FakeDialogue::Turn(grpc::ServerContext* ctx, const llm::v1::TurnRequest* req,
                                grpc::ServerWriter<llm::v1::TurnResponse>* writer) {
  {
    std::lock_guard lock(mu_);
    requests_.push_back(*req);
  }
  std::string reply = default_reply;
  for (const auto& [key, text] : replies) {
    if (req->user_text().find(key) != std::string::npos) {
      reply = text;
      break;
    }
  }
  if (const auto at = reply.find("{user}"); at != std::string::npos) {
    reply.replace(at, 6, req->user_text());
  }
  std::string action;
  if (const auto at = reply.find('['); at != std::string::npos) {
    action = reply.substr(at + 1, reply.find(']', at) - at - 1);
    reply = reply.substr(0, at);
  }
  if (fail_first.exchange(false)) {
    return {grpc::StatusCode::UNAVAILABLE, "scripted failure"};
  }
  // A stalled model: wait, but notice a cancelled or expired call. The wait runs to a
  // deadline, so the 10 ms naps' oversleeping does not add up (the benchmark subtracts the
  // configured delay from the reply time and blames the rest on voxbridge).
  const auto first_token_at =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(first_token_delay_ms);
  for (auto now = std::chrono::steady_clock::now(); now < first_token_at;
       now = std::chrono::steady_clock::now()) {
    if (ctx->IsCancelled()) {
      ++cancelled;
      return grpc::Status::CANCELLED;
    }
    std::this_thread::sleep_until(std::min(now + std::chrono::milliseconds(10), first_token_at));
  }
  llm::v1::TurnResponse r;
  if (action == "hangup") {
    r.mutable_action()->mutable_hangup()->set_final_words(reply);
    r.mutable_action()->mutable_hangup()->set_reason("caller is done");
    writer->Write(r);
  } else {
    std::istringstream in(reply);
    std::string word;
    bool first = true;
    while (in >> word) {
      if (ctx->IsCancelled()) {
        ++cancelled;
        return grpc::Status::CANCELLED;
      }
      r.Clear();
      r.set_text_delta((first ? "" : " ") + word);
      first = false;
      if (!writer->Write(r)) {
        ++cancelled;
        return grpc::Status::CANCELLED;
      }
      if (delta_delay_ms > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(delta_delay_ms));
    }
    if (action.rfind("transfer:", 0) == 0) {
      r.Clear();
      std::string target = action.substr(9);
      if (const auto at = target.find('@'); at != std::string::npos) {
        r.mutable_action()->mutable_transfer()->set_context(target.substr(at + 1));
        target.resize(at);
      }
      r.mutable_action()->mutable_transfer()->set_target(target);
      writer->Write(r);
    } else if (action.rfind("call:", 0) == 0) {
      r.Clear();
      r.mutable_action()->mutable_originate()->set_number(action.substr(5));
      r.mutable_action()->mutable_originate()->set_agent("bot");
      (*r.mutable_action()->mutable_originate()->mutable_variables())["VB_REASON"] = "callback";
      writer->Write(r);
    } else if (action.rfind("dtmf:", 0) == 0) {
      r.Clear();
      r.mutable_action()->mutable_send_dtmf()->set_digits(action.substr(5));
      writer->Write(r);
    } else if (action.rfind("setvar:", 0) == 0) {
      r.Clear();
      const std::string kv = action.substr(7);
      const auto eq = kv.find('=');
      r.mutable_action()->mutable_set_variable()->set_name(kv.substr(0, eq));
      r.mutable_action()->mutable_set_variable()->set_value(
          eq == std::string::npos ? std::string() : kv.substr(eq + 1));
      writer->Write(r);
    }
  }
  std::vector<common::v1::Action> scripted;
  {
    std::lock_guard lock(mu_);
    scripted.swap(scripted_);
  }
  for (const auto& a : scripted) {
    r.Clear();
    *r.mutable_action() = a;
    writer->Write(r);
  }
  r.Clear();
  r.mutable_end_of_turn();
  writer->Write(r);
  return grpc::Status::OK;
}

void FakeDialogue::script_actions(std::vector<common::v1::Action> actions) {
  std::lock_guard lock(mu_);
  scripted_ = std::move(actions);
}

namespace {
/// 20 ms LINEAR16 messages of a 440 Hz tone, `ms` long, continuing from `*sample`.
template <class Write>
bool write_tone(int rate, int ms, int level, std::uint64_t* sample, Write write) {
  const int per_msg = rate / 50;
  std::string pcm(static_cast<std::size_t>(per_msg) * 2, '\0');
  for (int m = 0; m < ms / 20; ++m) {
    for (int i = 0; i < per_msg; ++i, ++*sample) {
      const auto v = static_cast<std::int16_t>(
          level * std::sin(2 * std::numbers::pi * 440.0 * static_cast<double>(*sample) / rate));
      std::memcpy(pcm.data() + 2 * i, &v, 2);
    }
    if (!write(pcm)) return false;
  }
  return true;
}

/// LINEAR16 to the stream's encoding (the fake agent answers in what the config asked for).
std::string encode_as(const std::string& pcm, common::v1::AudioEncoding e) {
  if (e != common::v1::MULAW && e != common::v1::ALAW) return pcm;
  std::vector<std::int16_t> x(pcm.size() / 2);
  std::memcpy(x.data(), pcm.data(), x.size() * 2);
  std::string out(x.size(), '\0');
  std::span<std::uint8_t> o{reinterpret_cast<std::uint8_t*>(out.data()), out.size()};
  if (e == common::v1::MULAW) {
    audio::ulaw_encode(x, o);
  } else {
    audio::alaw_encode(x, o);
  }
  return out;
}

/// The stream's encoding to LINEAR16.
std::string decode_from(const std::string& bytes, common::v1::AudioEncoding e) {
  if (e != common::v1::MULAW && e != common::v1::ALAW) return bytes;
  std::vector<std::int16_t> x(bytes.size());
  std::span<const std::uint8_t> b{reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                  bytes.size()};
  if (e == common::v1::MULAW) {
    audio::ulaw_decode(b, x);
  } else {
    audio::alaw_decode(b, x);
  }
  std::string out(x.size() * 2, '\0');
  std::memcpy(out.data(), x.data(), out.size());
  return out;
}

bool voiced_pcm(const std::string& a, int level) {
  long sum = 0;
  const std::size_t n = a.size() / 2;
  for (std::size_t i = 0; i < n; ++i) {
    std::int16_t s;
    std::memcpy(&s, a.data() + 2 * i, 2);
    sum += std::labs(s);
  }
  return n > 0 && sum / static_cast<long>(n) > level;
}
}  // namespace

grpc::Status FakeSpeechAgent::Converse(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<agent::v1::AgentResponse, agent::v1::AgentRequest>* stream) {
  agent::v1::AgentRequest req;
  if (!stream->Read(&req) || !req.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  const int rate = static_cast<int>(req.config().output_format().sample_rate_hz());
  input_rate = static_cast<int>(req.config().input_format().sample_rate_hz());
  const auto in_encoding = req.config().input_format().encoding();
  const auto out_encoding = req.config().output_format().encoding();
  {
    std::lock_guard lock(mu_);
    config_ = req.config();
  }
  std::uint64_t sample = 0;
  agent::v1::AgentResponse r;
  auto audio = [&](const std::string& pcm) {
    r.Clear();
    r.set_audio(encode_as(pcm, out_encoding));
    return stream->Write(r);
  };
  r.mutable_transcript()->set_speaker(agent::v1::Transcript::AGENT);
  r.mutable_transcript()->set_text("Hello from the agent");
  r.mutable_transcript()->set_is_final(true);
  stream->Write(r);
  write_tone(rate, greeting_ms, level, &sample, audio);
  r.Clear();
  r.mutable_mark()->set_id(1);
  stream->Write(r);
  if (usage) {
    r.Clear();
    *r.mutable_usage() = *usage;
    stream->Write(r);
  }
  for (const auto& c : tool_calls) {
    r.Clear();
    *r.mutable_tool_call() = c;
    stream->Write(r);
  }
  std::size_t next_action = 0;
  auto ask = [&] {
    if (next_action >= actions.size()) return;
    r.Clear();
    *r.mutable_action() = actions[next_action++];
    stream->Write(r);
  };
  ask();
  int voiced = 0, quiet = 0;
  bool cleared = false, answered = false;
  while (stream->Read(&req)) {
    if (req.has_event()) {
      bool result = false;
      {
        std::lock_guard lock(mu_);
        if (!req.event().dtmf().empty()) {
          dtmf_ += req.event().dtmf();
          events_.push_back("dtmf " + req.event().dtmf());
        }
        if (req.event().kind_case() == agent::v1::CallEvent::kMarkPlayed) {
          marks_.push_back(req.event().mark_played());
          events_.push_back("mark_played " + std::to_string(req.event().mark_played()));
        }
        if (req.event().has_playback_cleared()) {
          const auto& pc = req.event().playback_cleared();
          cleared_.push_back(pc);
          events_.push_back("playback_cleared " + std::to_string(pc.mark_id()) + " " +
                            std::to_string(pc.played_ms()));
        }
        if (req.event().has_tool_result()) {
          tool_results_.push_back(req.event().tool_result());
          tool_result_times_.push_back(std::chrono::steady_clock::now());
          events_.push_back("tool_result");
        }
        if (req.event().has_action_result()) {
          results_.push_back(req.event().action_result());
          events_.push_back("action_result");
          result = true;
        }
      }
      if (result) ask();
      continue;
    }
    if (req.request_case() == agent::v1::AgentRequest::kAudio) {
      std::lock_guard lock(mu_);
      audio_in_ += req.audio();
    }
    if (answered || req.request_case() != agent::v1::AgentRequest::kAudio) continue;
    if (voiced_pcm(decode_from(req.audio(), in_encoding), 500)) {
      ++voiced;
      quiet = 0;
    } else if (voiced >= voiced_frames) {
      ++quiet;
    }
    if (!cleared && voiced >= voiced_frames) {
      cleared = true;
      r.Clear();
      r.mutable_clear();
      stream->Write(r);
    }
    if (cleared && quiet >= silence_frames) {
      answered = true;
      write_tone(rate, 200, level, &sample, audio);
      r.Clear();
      r.mutable_end()->set_reason("conversation over");
      if (end_usage) *r.mutable_end()->mutable_usage() = *end_usage;
      stream->Write(r);
    }
  }
  while (linger && !ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return grpc::Status::OK;
}

std::string FakeSpeechAgent::dtmf() const {
  std::lock_guard lock(mu_);
  return dtmf_;
}

std::vector<std::uint64_t> FakeSpeechAgent::marks_played() const {
  std::lock_guard lock(mu_);
  return marks_;
}

agent::v1::AgentConfig FakeSpeechAgent::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

std::string FakeSpeechAgent::audio_in() const {
  std::lock_guard lock(mu_);
  return audio_in_;
}

std::vector<agent::v1::PlaybackCleared> FakeSpeechAgent::cleared() const {
  std::lock_guard lock(mu_);
  return cleared_;
}

std::vector<common::v1::ToolResult> FakeSpeechAgent::tool_results() const {
  std::lock_guard lock(mu_);
  return tool_results_;
}

std::vector<std::chrono::steady_clock::time_point> FakeSpeechAgent::tool_result_times() const {
  std::lock_guard lock(mu_);
  return tool_result_times_;
}

std::vector<common::v1::ActionResult> FakeSpeechAgent::action_results() const {
  std::lock_guard lock(mu_);
  return results_;
}

std::vector<std::string> FakeSpeechAgent::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::vector<llm::v1::TurnRequest> FakeDialogue::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

FakeProviderServer::FakeProviderServer(std::vector<grpc::Service*> services, const FakeTls* tls) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (tls != nullptr) {
    grpc::SslServerCredentialsOptions o(
        tls->client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                               : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    o.pem_root_certs = tls->client_ca;
    o.pem_key_cert_pairs.push_back({tls->key, tls->cert});
    creds = grpc::SslServerCredentials(o);
  }
  b.AddListeningPort("127.0.0.1:0", creds, &port_);
  for (auto* service : services) b.RegisterService(service);
  server_ = b.BuildAndStart();
}

FakeProviderServer::~FakeProviderServer() {
  server_->Shutdown();
}

void FakeProviderServer::set_not_serving(const std::string& service) {
  server_->GetHealthCheckService()->SetServingStatus(service, false);
}

}  // namespace voxbridge::testing
