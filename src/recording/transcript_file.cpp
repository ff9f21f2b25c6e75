// The JSONL transcript of a call, on the writer thread: each event a CallRecording queued,
// written as one line (the line and its newline in one writev, the rest of a short write byte
// for byte). A write error stops the call's recording and closes its files.
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "recorder_core.hpp"

namespace voxbridge::recording::detail {

void Core::write_event(CallState& c, Item& event) {
  std::string& line = event.line;
  if (c.jsonl_fd < 0) return;
  char newline = '\n';
  iovec iov[2] = {{line.data(), line.size()}, {&newline, 1}};
  const std::size_t total = line.size() + 1;
  ssize_t r;
  do {
    r = ::writev(c.jsonl_fd, iov, 2);
  } while (r < 0 && errno == EINTR);
  std::size_t written = r < 0 ? 0 : static_cast<std::size_t>(r);
  int err = r < 0 ? errno : 0;
  if (err == 0 && written < total) {
    // Short write: the rest, byte for byte, as far as it goes.
    std::string rest = line + '\n';
    std::size_t more = 0;
    err = write_all(c.jsonl_fd, rest.data() + written, total - written, more);
    written += more;
  }
  stats.bytes_written.fetch_add(written, std::memory_order_relaxed);
  if (err != 0) write_failed(c, c.jsonl_path, err);
}

}  // namespace voxbridge::recording::detail
