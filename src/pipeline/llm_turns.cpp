#include "voxbridge/pipeline/llm_turns.hpp"

#include <spdlog/spdlog.h>

#include "voxbridge/logtext/log_text.hpp"

namespace voxbridge::pipeline {

namespace {
constexpr int kTickMs = 20;
}

LlmTurns::LlmTurns(const PipelineSpec& spec, std::shared_ptr<providers::ProviderClients> clients,
                   const common::v1::CallInfo& call)
    : spec_(spec), clients_(std::move(clients)), call_(call) {}

LlmTurns::~LlmTurns() {
  if (turn_) turn_->cancel();  // see AsrFeed::~AsrFeed
}

void LlmTurns::start(providers::Poster post, std::string uuid, Events events,
                     metrics::ProviderCounters* counters) {
  post_ = std::move(post);
  uuid_ = std::move(uuid);
  ev_ = std::move(events);
  counters_ = counters;
}

void LlmTurns::add_event(llm::v1::Event e) {
  events_.push_back(std::move(e));
}

void LlmTurns::ask(unsigned turn, const std::string& user_text) {
  cancel();
  request_ = llm::v1::TurnRequest();
  *request_.mutable_call() = call_;
  request_.set_session_id(call_.call_id());
  for (const auto& [role, text] : history_.messages()) {
    auto* m = request_.add_history();
    m->set_role(role);
    m->set_text(text);
  }
  for (const auto& m : interrupted_) *request_.add_history() = m;
  request_.set_user_text(user_text);
  for (auto& e : events_) *request_.add_events() = std::move(e);
  events_.clear();
  request_.set_turn(turn);
  if (!user_text.empty()) history_.add(llm::v1::USER, user_text);
  retries_ = 0;
  open();
}

void LlmTurns::said(const std::string& text) {
  history_.add(llm::v1::ASSISTANT, text);
}

void LlmTurns::interrupted(const std::string& text, const std::string& heard) {
  // The reply as the caller heard it goes into the history, marked interrupted.
  history_.drop_last_if(llm::v1::ASSISTANT, text);
  llm::v1::Message m;
  m.set_role(llm::v1::ASSISTANT);
  m.set_text(heard);
  m.set_interrupted(true);
  interrupted_.push_back(std::move(m));
  if (interrupted_.size() > kMaxInterruptedMessages) interrupted_.erase(interrupted_.begin());
}

void LlmTurns::open() {
  got_text_ = false;
  const std::uint64_t gen = ++gen_;
  const std::weak_ptr<int> alive = alive_;
  auto live = [this, gen, alive] { return !alive.expired() && gen == gen_; };
  providers::LlmEvents ev;
  ev.response = [this, live](llm::v1::TurnResponse& r) {
    if (!live()) return;
    switch (r.response_case()) {
      case llm::v1::TurnResponse::kTextDelta:
        if (r.text_delta().empty()) break;
        got_text_ = true;
        if (ev_.text) ev_.text(r.text_delta());
        break;
      case llm::v1::TurnResponse::kAction:
        // Final words are spoken as part of the reply: no retry after them either.
        if (r.action().has_hangup() && !r.action().hangup().final_words().empty()) {
          got_text_ = true;
        }
        if (ev_.action) ev_.action(r.action());
        break;
      default:
        break;  // end_of_turn: the stream's end says the same
    }
  };
  ev.closed = [this, live](const providers::StreamStatus& st) {
    if (live()) on_closed(st);
  };
  try {
    turn_ =
        clients_->open_llm(bounded(spec_.llm, spec_.rpc_timeout), request_, post_, std::move(ev));
  } catch (const std::exception& e) {
    if (ev_.failed) ev_.failed(std::string("LLM: ") + e.what());
    return;
  }
  if (counters_ != nullptr) counters_->streams.add();
}

void LlmTurns::on_closed(const providers::StreamStatus& st) {
  turn_.reset();
  if (st.ok()) {
    if (ev_.done) ev_.done();
    return;
  }
  if (counters_ != nullptr) counters_->errors.add();
  spdlog::warn("call uuid={}: LLM turn failed: {} ({})", uuid_, logtext::log_text(st.message),
               st.code);
  if (!got_text_ && retries_ == 0) {
    ++retries_;  // once more, after a short backoff (tick)
    retry_at_ = tick_ + static_cast<std::uint64_t>(spec_.retry_backoff.count() / kTickMs);
    return;
  }
  if (ev_.failed) ev_.failed("LLM failed: " + st.message);
}

void LlmTurns::tick() {
  ++tick_;
  if (retry_at_ != kNever && tick_ >= retry_at_) {
    retry_at_ = kNever;
    open();
  }
}

void LlmTurns::cancel() {
  ++gen_;
  retry_at_ = kNever;
  if (turn_) turn_->cancel();
  turn_.reset();
}

void LlmTurns::stop() {
  alive_.reset();
  cancel();
}

}  // namespace voxbridge::pipeline
