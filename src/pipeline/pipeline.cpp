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

void ConversationHistory::add(llm::v1::Role role, std::string text) {
  bytes_ += text.size();
  messages_.emplace_back(role, std::move(text));
  while (messages_.size() > max_messages_ || bytes_ > max_bytes_) {
    const auto oldest = std::find_if(messages_.begin(), messages_.end(),
                                     [](const Entry& m) { return m.first != llm::v1::SYSTEM; });
    if (oldest == messages_.end() || std::next(oldest) == messages_.end()) break;  // the newest
    bytes_ -= oldest->second.size();
    messages_.erase(oldest);
  }
}

bool ConversationHistory::drop_last_if(llm::v1::Role role, const std::string& text) {
  if (messages_.empty() || messages_.back().first != role || messages_.back().second != text) {
    return false;
  }
  bytes_ -= text.size();
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
