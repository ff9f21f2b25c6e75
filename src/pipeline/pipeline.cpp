#include "voxbridge/pipeline/pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace voxbridge::pipeline {

providers::ProviderTarget bounded(const providers::ProviderTarget& t,
                                  std::chrono::milliseconds deadline) {
  providers::ProviderTarget b = t;
  if (b.deadline.count() == 0) b.deadline = deadline;
  return b;
}

std::size_t ConversationHistory::size_of(const Entry& m) {
  std::size_t n = m.text().size();
  for (const auto& c : m.tool_calls()) n += c.arguments_json().size();
  return n;
}

void ConversationHistory::add(llm::v1::Role role, std::string text) {
  Entry m;
  m.set_role(role);
  m.set_text(std::move(text));
  push(std::move(m));
}

void ConversationHistory::add_tool_round(std::string text,
                                         const std::vector<common::v1::ToolCall>& calls,
                                         const std::vector<std::string>& answers,
                                         const std::string& pending) {
  Entry a;
  a.set_role(llm::v1::ASSISTANT);
  a.set_text(std::move(text));
  for (const auto& c : calls) *a.add_tool_calls() = c;
  if (calls.empty()) return push(std::move(a));
  bytes_ += size_of(a);
  messages_.push_back(std::move(a));
  for (std::size_t i = 0; i < calls.size(); ++i) {
    Entry t;
    t.set_role(llm::v1::TOOL);
    t.set_tool_call_id(calls[i].id());
    t.set_text(i < answers.size() ? answers[i] : pending);
    if (i + 1 < calls.size()) {
      bytes_ += size_of(t);
      messages_.push_back(std::move(t));
    } else {
      push(std::move(t));  // the caps are applied once the round is whole
    }
  }
}

bool ConversationHistory::answer(const std::string& id, std::string text) {
  for (auto& m : messages_) {
    if (m.role() != llm::v1::TOOL || m.tool_call_id() != id) continue;
    bytes_ = bytes_ - m.text().size() + text.size();
    m.set_text(std::move(text));
    return true;
  }
  return false;
}

void ConversationHistory::push(Entry m) {
  bytes_ += size_of(m);
  messages_.push_back(std::move(m));
  while (messages_.size() > max_messages_ || bytes_ > max_bytes_) {
    auto oldest = std::find_if(messages_.begin(), messages_.end(),
                               [](const Entry& e) { return e.role() != llm::v1::SYSTEM; });
    // An assistant message with tool calls goes with the TOOL messages after it.
    auto last = oldest == messages_.end() ? oldest : std::next(oldest);
    while (last != messages_.end() && last->role() == llm::v1::TOOL) ++last;
    if (oldest == messages_.end() || last == messages_.end()) break;  // the newest stays
    for (auto i = oldest; i != last; ++i) bytes_ -= size_of(*i);
    messages_.erase(oldest, last);
  }
}

bool ConversationHistory::drop_last_if(llm::v1::Role role, const std::string& text) {
  if (messages_.empty() || messages_.back().role() != role || messages_.back().text() != text ||
      messages_.back().tool_calls_size() > 0) {
    return false;
  }
  bytes_ -= size_of(messages_.back());
  messages_.pop_back();
  return true;
}

std::vector<std::string> SentenceSplitter::add(std::string_view delta) {
  std::vector<std::string> out;
  while (!delta.empty()) {
    // Never more than max_bytes_ held: take what fits, split, cut a piece if still full.
    const std::size_t room = max_bytes_ > buf_.size() ? max_bytes_ - buf_.size() : 0;
    buf_.append(delta.substr(0, room));
    delta.remove_prefix(std::min(room, delta.size()));
    std::size_t start = 0;
    for (std::size_t i = 0; i + 1 < buf_.size(); ++i) {
      const char c = buf_[i];
      const bool end = c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == ',';
      if (!end || buf_[i + 1] != ' ') continue;
      const bool sentence = c != ',';
      if (i + 1 - start < (sentence ? min_chars_ : 2 * min_chars_)) continue;
      out.push_back(buf_.substr(start, i + 1 - start));
      start = i + 2;
    }
    buf_.erase(0, start);
    if (buf_.size() < max_bytes_) continue;
    // No end within max_bytes_: cut at the last space (dropping it), else at the end but
    // before a UTF-8 character the end would split.
    std::size_t cut = buf_.rfind(' ');
    std::size_t drop = 1;
    if (cut == std::string::npos || cut == 0) {
      cut = buf_.size();
      drop = 0;
      const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(buf_[i]); };
      std::size_t lead = cut;
      while (lead > 0 && cut - lead < 4 && (byte(lead - 1) & 0xC0) == 0x80) --lead;
      if (lead > 0 && byte(lead - 1) >= 0xC0) {
        --lead;
        const std::size_t len = byte(lead) >= 0xF0 ? 4 : byte(lead) >= 0xE0 ? 3 : 2;
        if (cut - lead < len && lead > 0) cut = lead;
      }
    }
    out.push_back(buf_.substr(0, cut));
    buf_.erase(0, cut + drop);
  }
  return out;
}

std::string SentenceSplitter::flush() {
  std::string rest = std::move(buf_);
  buf_.clear();
  const auto b = rest.find_first_not_of(' ');
  return b == std::string::npos ? std::string() : rest.substr(b);
}

std::vector<std::int16_t> default_fallback_prompt(int rate_hz) {
  const auto beep = static_cast<std::size_t>(rate_hz * 150 / 1000);
  std::vector<std::int16_t> v(beep * 6, 0);
  for (int b = 0; b < 3; ++b) {
    for (std::size_t i = 0; i < beep; ++i) {
      v[2 * static_cast<std::size_t>(b) * beep + i] = static_cast<std::int16_t>(
          8000 * std::sin(2 * std::numbers::pi * 480.0 * static_cast<double>(i) / rate_hz));
    }
  }
  return v;
}

}  // namespace voxbridge::pipeline
