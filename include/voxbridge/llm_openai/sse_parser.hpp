// An incremental reader of a `text/event-stream` body (server-sent events), as Chat Completions
// streams its deltas: fed the body in pieces of any size, it hands on the value of every `data:`
// line the moment the line is complete.
//
// Wire facts (WHATWG HTML, "Server-sent events", section 9.2.6 "Interpreting an event stream";
// https://platform.openai.com/docs/api-reference/chat-streaming): lines end with CRLF, LF or a
// lone CR; a line starting with ':' is a comment; "NAME: VALUE" sets a field, one space after
// the colon is dropped, a line without a colon is a field with an empty value; a blank line ends
// an event. OpenAI-compatible servers send one JSON object per `data:` line (and `data: [DONE]`
// last), so each data line is handed on alone, never joined with the next; `event`, `id` and
// `retry` are ignored.
//
// No I/O, no threads: the owner (one turn of the OpenAI-compatible LLM) feeds it on its own
// thread. Each byte is looked at once (a chunk is scanned from where the last one ended). A
// partial line is held in one buffer of at most `max_line_bytes`; a longer line is an error and
// the parser stops there (every later feed returns the same error).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

namespace voxbridge::llm_openai {

/// Why a stream was rejected.
enum class SseError {
  line_too_long = 1,  ///< a line (without its end) longer than max_line_bytes
};
const std::error_category& sse_category();
std::error_code make_error_code(SseError e);

class SseParser {
 public:
  /// One line of an event stream, the longest any provider needs (a data line carries one
  /// small JSON delta, a few hundred bytes).
  static constexpr std::size_t kMaxLineBytes = 64 * 1024;

  /// The payload of one `data:` line; valid only during the call.
  using OnData = std::function<void(std::string_view payload)>;

  explicit SseParser(std::size_t max_line_bytes = kMaxLineBytes)
      : max_line_bytes_(max_line_bytes) {}

  /// Reads `chunk`, calling `on_data` for each data line it completes. Returns the error that
  /// stopped the parser (now or on an earlier call), or none.
  std::error_code feed(std::string_view chunk, const OnData& on_data);

  /// Bytes held of the line not yet complete.
  std::size_t pending_bytes() const { return line_.size(); }

 private:
  void line(std::string_view l, const OnData& on_data) const;

  std::size_t max_line_bytes_;
  std::string line_;      // the incomplete line so far
  bool skip_lf_ = false;  // the last chunk ended with CR: a LF first in the next one is its end
  std::error_code failed_;
};

}  // namespace voxbridge::llm_openai

template <>
struct std::is_error_code_enum<voxbridge::llm_openai::SseError> : std::true_type {};
