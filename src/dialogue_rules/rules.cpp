#include "voxbridge/dialogue_rules/rules.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

namespace voxbridge::dialogue_rules {

namespace {
/// Lower case words separated by single spaces, framed by spaces: " i want sales ".
std::string normalized(const std::string& s) {
  std::string out = " ";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '\'') {
      out.push_back(static_cast<char>(std::tolower(u)));
    } else if (out.back() != ' ') {
      out.push_back(' ');
    }
  }
  if (out.back() != ' ') out.push_back(' ');
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}
}  // namespace

const Intent* match(const RuleSet& rules, const std::string& user_text, const std::string& digits) {
  if (!digits.empty()) {
    for (const auto& i : rules.intents) {
      if (!i.dtmf.empty() && i.dtmf == digits) return &i;
    }
  }
  const std::string words = normalized(user_text);
  if (words.size() <= 1) return nullptr;
  for (const auto& i : rules.intents) {
    for (const auto& k : i.keywords) {
      const std::string key = normalized(k);
      if (key.size() > 1 && words.find(key) != std::string::npos) return &i;
    }
  }
  return nullptr;
}

std::string fill_slots(const std::string& text, const common::v1::CallInfo& call, std::tm now) {
  std::string s = text;
  if (s.find('{') == std::string::npos) return s;
  std::string caller = call.caller_number();
  // Digits read one by one ("5 5 5 1 2 3 4"), not as a number in the millions.
  std::string spaced;
  for (const char c : caller) {
    if (!spaced.empty()) spaced.push_back(' ');
    spaced.push_back(c);
  }
  replace_all(s, "{caller_id}", spaced.empty() ? "unknown" : spaced);
  replace_all(s, "{caller_name}", call.caller_name().empty() ? "caller" : call.caller_name());
  replace_all(s, "{called}", call.called_number());
  char buf[64];
  const int hour12 = now.tm_hour % 12 == 0 ? 12 : now.tm_hour % 12;
  std::snprintf(buf, sizeof buf, "%d:%02d %s", hour12, now.tm_min, now.tm_hour < 12 ? "AM" : "PM");
  replace_all(s, "{time}", buf);
  std::strftime(buf, sizeof buf, "%A, %B %e", &now);
  std::string date = buf;
  replace_all(date, "  ", " ");
  replace_all(s, "{date}", date);
  return s;
}

grpc::Status RulesDialogue::Turn(grpc::ServerContext* ctx, const llm::v1::TurnRequest* req,
                                 grpc::ServerWriter<llm::v1::TurnResponse>* writer) {
  const RuleSet* rules = nullptr;
  const auto md = ctx->client_metadata().find("vb-rules");
  if (md != ctx->client_metadata().end()) {
    const auto it = sets_.find(std::string(md->second.data(), md->second.size()));
    if (it == sets_.end()) {
      return {grpc::StatusCode::NOT_FOUND,
              "no rule set '" + std::string(md->second.data(), md->second.size()) + "'"};
    }
    rules = &it->second;
  } else if (sets_.size() == 1) {
    rules = &sets_.begin()->second;
  } else {
    return {grpc::StatusCode::INVALID_ARGUMENT, "name a rule set in the vb-rules metadata"};
  }
  std::string digits;
  bool no_input = false;
  for (const auto& e : req->events()) {
    if (e.has_dtmf()) digits += e.dtmf().digits();
    if (e.has_no_input()) no_input = true;
  }
  const Intent* intent = match(*rules, req->user_text(), digits);
  std::string reply = intent != nullptr                                        ? intent->reply
                      : no_input && req->user_text().empty() && digits.empty() ? rules->no_input
                                                                               : rules->fallback;
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm now{};
  localtime_r(&t, &now);
  reply = fill_slots(reply, req->call(), now);

  llm::v1::TurnResponse r;
  if (intent != nullptr && intent->action == Intent::Action::hangup) {
    // The reply is the hangup's final words: spoken, then the call ends.
    r.mutable_action()->mutable_hangup()->set_final_words(reply);
    r.mutable_action()->mutable_hangup()->set_reason("rules: " + intent->name);
    writer->Write(r);
    return grpc::Status::OK;
  }
  if (!reply.empty()) {
    r.set_text_delta(reply);
    writer->Write(r);
  }
  if (intent != nullptr && intent->action == Intent::Action::transfer) {
    r.Clear();
    r.mutable_action()->mutable_transfer()->set_target(intent->target);
    r.mutable_action()->mutable_transfer()->set_context(intent->context);
    writer->Write(r);
  } else if (intent != nullptr && intent->action == Intent::Action::send_dtmf) {
    r.Clear();
    r.mutable_action()->mutable_send_dtmf()->set_digits(intent->target);
    writer->Write(r);
  } else if (intent != nullptr && intent->action == Intent::Action::set_variable) {
    r.Clear();
    r.mutable_action()->mutable_set_variable()->set_name(intent->target);
    r.mutable_action()->mutable_set_variable()->set_value(intent->context);
    writer->Write(r);
  }
  r.Clear();
  r.mutable_end_of_turn();
  writer->Write(r);
  return grpc::Status::OK;
}

}  // namespace voxbridge::dialogue_rules
