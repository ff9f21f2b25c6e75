#include "voxbridge/providers/asr_client.hpp"

#include <boost/asio/post.hpp>

namespace voxbridge::providers {

std::shared_ptr<AsrStream> AsrStream::start(const std::shared_ptr<grpc::Channel>& channel,
                                            const ProviderTarget& target,
                                            const asr::v1::RecognitionConfig& config,
                                            boost::asio::any_io_executor executor, AsrEvents events,
                                            std::size_t max_queued) {
  auto s = std::make_shared<AsrStream>(channel, std::move(executor), std::move(events), max_queued);
  prepare(s->ctx_, target);
  s->self_ = s;
  *s->in_flight_.mutable_config() = config;
  s->writing_ = true;
  s->stub_->async()->StreamingRecognize(&s->ctx_, s.get());
  s->StartWrite(&s->in_flight_);
  s->StartRead(&s->response_);
  s->StartCall();
  return s;
}

AsrStream::AsrStream(std::shared_ptr<grpc::Channel> channel, boost::asio::any_io_executor executor,
                     AsrEvents events, std::size_t max_queued)
    : stub_(asr::v1::Recognizer::NewStub(channel)),
      executor_(std::move(executor)),
      events_(std::move(events)),
      max_queued_(max_queued) {}

bool AsrStream::send_audio(std::span<const std::uint8_t> bytes) {
  {
    std::lock_guard lock(mu_);
    if (done_ || finish_requested_) return false;
    if (queue_.size() >= max_queued_) {
      ++dropped_;
      return false;
    }
    queue_.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (!next_write_locked()) return true;
  }
  StartWrite(&in_flight_);
  return true;
}

bool AsrStream::next_write_locked() {
  if (writing_ || done_ || queue_.empty()) return false;
  in_flight_.set_audio(std::move(queue_.front()));
  queue_.pop_front();
  writing_ = true;
  return true;
}

void AsrStream::finish() {
  {
    std::lock_guard lock(mu_);
    if (finish_requested_) return;
    finish_requested_ = true;
    if (writing_ || !queue_.empty() || done_) return;  // OnWriteDone half-closes
    writes_done_ = true;
  }
  StartWritesDone();
}

void AsrStream::cancel() {
  ctx_.TryCancel();
}

std::uint64_t AsrStream::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void AsrStream::OnWriteDone(bool ok) {
  bool write = false;
  bool close = false;
  {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {
      done_ = true;  // the stream is broken; OnDone tells why
      queue_.clear();
      return;
    }
    write = next_write_locked();
    if (!write && finish_requested_ && !writes_done_ && queue_.empty()) {
      writes_done_ = true;
      close = true;
    }
  }
  if (write) StartWrite(&in_flight_);
  if (close) StartWritesDone();
}

void AsrStream::OnWritesDoneDone(bool) {}

void AsrStream::OnReadDone(bool ok) {
  if (!ok) return;  // the provider ended its side; OnDone follows
  deliver(response_);
  StartRead(&response_);
}

void AsrStream::deliver(const asr::v1::RecognizeResponse& r) {
  auto self = shared_from_this();
  switch (r.event_case()) {
    case asr::v1::RecognizeResponse::kSpeechStarted: {
      const auto at = r.speech_started().offset_ms();
      boost::asio::post(executor_, [self, at] {
        if (self->events_.speech_started) self->events_.speech_started(at);
      });
      break;
    }
    case asr::v1::RecognizeResponse::kResult: {
      const auto& p = r.result();
      AsrResult res{p.transcript(), p.is_final(), p.stability(),
                    p.confidence(), p.start_ms(), p.end_ms()};
      boost::asio::post(executor_, [self, res = std::move(res)] {
        if (self->events_.result) self->events_.result(res);
      });
      break;
    }
    case asr::v1::RecognizeResponse::kEndOfUtterance: {
      const auto at = r.end_of_utterance().offset_ms();
      boost::asio::post(executor_, [self, at] {
        if (self->events_.end_of_utterance) self->events_.end_of_utterance(at);
      });
      break;
    }
    default:
      break;  // a newer provider's event this version does not know
  }
}

void AsrStream::OnDone(const grpc::Status& status) {
  {
    std::lock_guard lock(mu_);
    done_ = true;
    queue_.clear();
  }
  auto self = std::move(self_);
  boost::asio::post(executor_, [self, status] {
    if (self->events_.closed) self->events_.closed(status);
  });
}

}  // namespace voxbridge::providers
