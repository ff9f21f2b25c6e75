// Text from outside (a model's reply, a transcript, a tool's arguments, a provider's error) made
// safe to put in a log line: one log line stays one line, and a quoted field stays one field.
//
// Pure function, any thread. Escapes, C-style: backslash and double quote (\\ \"), CR LF TAB
// (\r \n \t), every other C0 control and DEL (\xHH), and the Unicode line breakers a log viewer
// may honour: the C1 controls U+0080-U+009F (NEL among them) and U+2028/U+2029 (\u0085,
// \u2028). Other bytes, UTF-8 or not, pass unchanged.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace voxbridge::logtext {

/// The longest text log_text() copies by default; the rest is summarised as "...(+N bytes)".
inline constexpr std::size_t kMaxLogTextBytes = 2048;

/// `text` escaped for a log line, cut after `max_bytes` of input.
std::string log_text(std::string_view text, std::size_t max_bytes = kMaxLogTextBytes);

}  // namespace voxbridge::logtext
