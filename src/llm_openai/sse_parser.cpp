#include "voxbridge/llm_openai/sse_parser.hpp"

namespace voxbridge::llm_openai {

namespace {
class SseCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sse"; }
  std::string message(int ev) const override {
    switch (static_cast<SseError>(ev)) {
      case SseError::line_too_long:
        return "event-stream line longer than the limit";
    }
    return "unknown event-stream error";
  }
};
}  // namespace

const std::error_category& sse_category() {
  static const SseCategory cat;
  return cat;
}

std::error_code make_error_code(SseError e) {
  return {static_cast<int>(e), sse_category()};
}

std::error_code SseParser::feed(std::string_view chunk, const OnData& on_data) {
  if (failed_) return failed_;
  std::size_t pos = 0;
  if (skip_lf_ && !chunk.empty()) {
    skip_lf_ = false;
    if (chunk.front() == '\n') pos = 1;
  }
  while (pos < chunk.size()) {
    const std::size_t end = chunk.find_first_of("\r\n", pos);
    const std::string_view piece =
        chunk.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (line_.size() + piece.size() > max_line_bytes_) {
      line_.clear();
      line_.shrink_to_fit();
      failed_ = SseError::line_too_long;
      return failed_;
    }
    if (end == std::string_view::npos) {
      line_.append(piece);
      break;
    }
    if (line_.empty()) {
      line(piece, on_data);  // the common case: the whole line is in this chunk, no copy
    } else {
      line_.append(piece);
      line(line_, on_data);
      line_.clear();
    }
    pos = end + 1;
    if (chunk[end] == '\r') {
      if (pos == chunk.size()) {
        skip_lf_ = true;
      } else if (chunk[pos] == '\n') {
        ++pos;
      }
    }
  }
  return {};
}

void SseParser::line(std::string_view l, const OnData& on_data) const {
  if (l.empty() || l.front() == ':') return;  // end of an event, or a comment
  const std::size_t colon = l.find(':');
  if (l.substr(0, colon) != "data") return;
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  on_data(value);
}

}  // namespace voxbridge::llm_openai
