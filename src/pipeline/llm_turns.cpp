#include "voxbridge/pipeline/llm_turns.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "voxbridge/logtext/log_text.hpp"

namespace voxbridge::pipeline {

namespace {
constexpr int kTickMs = 20;
/// Call ids remembered to keep them unique in the call.
constexpr std::size_t kMaxIds = 256;
/// What a TOOL message says until the action's result comes.
constexpr const char* kPending = "no result yet";

/// The tool call an action with a tool_call_id answered: its name and arguments as the
/// providers offer the actions.
common::v1::ToolCall action_call(const common::v1::Action& a) {
  namespace json = boost::json;
  common::v1::ToolCall c;
  c.set_id(a.tool_call_id());
  json::object args;
  switch (a.kind_case()) {
    case common::v1::Action::kTransfer:
      c.set_name("transfer");
      args["target"] = a.transfer().target();
      if (!a.transfer().context().empty()) args["context"] = a.transfer().context();
      break;
    case common::v1::Action::kHangup:
      c.set_name("hang_up");
      if (!a.hangup().final_words().empty()) args["final_words"] = a.hangup().final_words();
      if (!a.hangup().reason().empty()) args["reason"] = a.hangup().reason();
      break;
    case common::v1::Action::kSendDtmf:
      c.set_name("send_dtmf");
      args["digits"] = a.send_dtmf().digits();
      break;
    case common::v1::Action::kSetVariable:
      c.set_name("set_variable");
      args["name"] = a.set_variable().name();
      args["value"] = a.set_variable().value();
      break;
    default:
      c.set_name("action");
      break;
  }
  c.set_arguments_json(json::serialize(args));
  return c;
}
}  // namespace

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

void LlmTurns::build(unsigned turn, const std::string& user_text) {
  request_ = llm::v1::TurnRequest();
  *request_.mutable_call() = call_;
  request_.set_session_id(call_.call_id());
  // The replies the caller interrupted go after the conversation, but before a tool round
  // being continued: a follow-up's history ends with the round's calls and their answers.
  const auto& h = history_.messages();
  std::size_t round_at = h.size();
  if (user_text.empty()) {
    for (std::size_t i = h.size(); i > 0 && h[i - 1].role() == llm::v1::TOOL; --i) round_at = i - 2;
    if (round_at >= h.size() || h[round_at].tool_calls_size() == 0) round_at = h.size();
  }
  for (std::size_t i = 0; i < round_at; ++i) *request_.add_history() = h[i];
  for (const auto& m : interrupted_) *request_.add_history() = m;
  for (std::size_t i = round_at; i < h.size(); ++i) *request_.add_history() = h[i];
  request_.set_user_text(user_text);
  request_.set_turn(turn);
  for (const auto& t : tools_) *request_.add_tools() = t;
}

void LlmTurns::ask(unsigned turn, const std::string& user_text) {
  cancel();
  build(turn, user_text);
  for (auto& e : events_) *request_.add_events() = std::move(e);
  events_.clear();
  if (!user_text.empty()) history_.add(llm::v1::USER, user_text);
  retries_ = 0;
  open();
}

void LlmTurns::offer(std::vector<common::v1::ToolDefinition> tools) {
  tools_ = std::move(tools);
}

void LlmTurns::said(const std::string& text) {
  if (round_.empty()) {
    if (!text.empty()) history_.add(llm::v1::ASSISTANT, text);
  } else {
    std::vector<std::string> answers;
    for (const auto& c : round_) {
      const auto e = std::find_if(early_.begin(), early_.end(),
                                  [&](const auto& r) { return r.first == c.id(); });
      answers.push_back(e != early_.end() ? e->second : kPending);
    }
    history_.add_tool_round(text, round_, answers, kPending);
  }
  round_.clear();
  business_.clear();
  early_.clear();
}

void LlmTurns::continue_with(unsigned turn, const std::string& text,
                             const std::vector<common::v1::ToolResult>& results) {
  // (the round's turn has ended: no stream to cancel)
  std::vector<std::string> answers;
  for (const auto& c : round_) {
    const auto r = std::find_if(results.begin(), results.end(),
                                [&](const common::v1::ToolResult& x) { return x.id() == c.id(); });
    const auto e = std::find_if(early_.begin(), early_.end(),
                                [&](const auto& x) { return x.first == c.id(); });
    if (r != results.end()) {
      answers.push_back(r->ok() ? r->output() : "error: " + r->output());
    } else if (e != early_.end()) {
      answers.push_back(e->second);
    } else {
      answers.push_back(std::find_if(business_.begin(), business_.end(),
                                     [&](const auto& b) { return b.id() == c.id(); }) !=
                                business_.end()
                            ? "error: no result"
                            : kPending);
    }
  }
  history_.add_tool_round(text, round_, answers, kPending);
  round_.clear();
  business_.clear();
  early_.clear();
  build(turn, "");
  retries_ = 0;
  open();
}

bool LlmTurns::action_result(const std::string& id, const std::string& text) {
  if (id.empty()) return false;
  if (history_.answer(id, text)) return true;
  if (std::none_of(round_.begin(), round_.end(), [&](const auto& c) { return c.id() == id; })) {
    return false;
  }
  early_.emplace_back(id, text);
  return true;
}

bool LlmTurns::take_call(common::v1::ToolCall& c) {
  if (round_.size() == kMaxToolCallsPerRound || c.name().empty() ||
      c.name().size() > kMaxToolNameBytes || c.arguments_json().size() > kMaxToolArgumentsBytes) {
    spdlog::warn(
        "call uuid={}: turn {}: a tool call dropped (over {} calls a turn, or its name or "
        "arguments too long)",
        uuid_, request_.turn(), kMaxToolCallsPerRound);
    return false;
  }
  // The id is the model's: bounded and unique in the call, or one of ours.
  if (c.id().empty() || c.id().size() > kMaxToolCallIdBytes ||
      std::find(ids_.begin(), ids_.end(), c.id()) != ids_.end()) {
    c.set_id("vb_call_" + std::to_string(++made_ids_));
  }
  if (ids_.size() == kMaxIds) ids_.erase(ids_.begin());
  ids_.push_back(c.id());
  round_.push_back(c);
  return true;
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
  round_.clear();  // a retry starts the round afresh
  business_.clear();
  early_.clear();
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
        if (!r.action().tool_call_id().empty()) {
          // Its result answers the call in the history; a call not kept gets the old note.
          auto c = action_call(r.action());
          if (take_call(c)) {
            r.mutable_action()->set_tool_call_id(c.id());
          } else {
            r.mutable_action()->clear_tool_call_id();
          }
        }
        if (ev_.action) ev_.action(r.action());
        break;
      case llm::v1::TurnResponse::kToolCall:
        got_text_ = true;  // the call is the model's answer: no retry that could repeat it
        if (take_call(*r.mutable_tool_call())) business_.push_back(r.tool_call());
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
  ++turns_opened_;
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
  // A round cut short is not recorded: its calls would have no answers.
  round_.clear();
  business_.clear();
  early_.clear();
}

void LlmTurns::stop() {
  alive_.reset();
  cancel();
}

}  // namespace voxbridge::pipeline
