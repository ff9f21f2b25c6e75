// A call's files on the writer thread: where they go (<directory>/YYYY-MM-DD/<uuid>), creating
// them without ever truncating an existing recording or following a symlink (a replayed UUID
// takes <uuid>-2, -3... for both files alike), closing them, and stopping the call's recording
// on a write error. The contents are wav_file.cpp's and transcript_file.cpp's.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

#include "recorder_core.hpp"

namespace voxbridge::recording::detail {
namespace {

/// Names tried for one call's files: <uuid>, then <uuid>-2 ... <uuid>-kMaxNames.
constexpr int kMaxNames = 100;

}  // namespace

int write_all(int fd, const void* data, std::size_t n, std::size_t& written) {
  written = 0;
  const auto* p = static_cast<const unsigned char*>(data);
  while (written < n) {
    const ssize_t r = ::write(fd, p + written, n - written);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EIO;
    written += static_cast<std::size_t>(r);
  }
  return 0;
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

std::string date_dir(std::chrono::system_clock::time_point t) {
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
  char buf[24];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

bool is_date_dir(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return false;
  }
  return true;
}

std::string file_name(std::string_view uuid) {
  std::string s(uuid.substr(0, 128));
  for (char& c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) c = '_';
  }
  if (s.empty()) s = "unknown";
  if (s[0] == '.') s[0] = '_';  // no hidden files, no "." or ".."
  return s;
}

int default_open(const std::filesystem::path& path) {
  // A new file or nothing: an existing recording is never truncated, and a symlink planted
  // under the name is not followed (O_EXCL alone refuses it; O_NOFOLLOW says so twice).
  return ::open(path.c_str(), O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0640);
}

void Core::open_files(CallState& c) {
  namespace fs = std::filesystem;
  const fs::path asked = c.audio ? c.wav_path : c.jsonl_path;
  const auto dir = asked.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec && fs::is_symlink(fs::symlink_status(dir, ec))) {
    fail(c, "cannot record into " + dir.string() + ": it is a symlink");
    return;
  }
  if (ec) {
    fail(c, "cannot create " + dir.string() + ": " + ec.message());
    return;
  }
  // A UUID seen before (a replay, a second call the same day) keeps the first call's files:
  // this call takes the first free name, the same for both of its files.
  const std::string base = asked.stem().string();
  fs::path wav, jsonl;
  for (int n = 1;; ++n) {
    if (n > kMaxNames) {
      fail(c, "cannot open " + asked.string() + ": it and " + std::to_string(kMaxNames - 1) +
                  " more names of this UUID exist already");
      return;
    }
    const std::string name = n == 1 ? base : base + "-" + std::to_string(n);
    if (c.audio) {
      wav = dir / (name + ".wav");
      c.wav_fd = opts.open_file(wav);
      if (c.wav_fd < 0) {
        const int err = errno;
        if (err == EEXIST) continue;
        fail(c, "cannot open " + wav.string() + ": " + errno_text(err));
        return;
      }
    }
    if (c.transcript) {
      jsonl = dir / (name + ".jsonl");
      c.jsonl_fd = opts.open_file(jsonl);
      if (c.jsonl_fd < 0) {
        const int err = errno;
        if (c.wav_fd >= 0) {
          ::close(c.wav_fd);  // created just now, empty: give the name back
          c.wav_fd = -1;
          ::unlink(wav.c_str());
        }
        if (err == EEXIST) continue;
        fail(c, "cannot open " + jsonl.string() + ": " + errno_text(err));
        return;
      }
    }
    break;
  }
  if (wav != c.wav_path || jsonl != c.jsonl_path) {
    spdlog::warn("call uuid={}: {} exists already; recording to {}", c.uuid, asked.string(),
                 (c.audio ? wav : jsonl).string());
    std::lock_guard lock(mu);
    c.wav_path = wav;
    c.jsonl_path = jsonl;
  }
  if (c.audio) start_wav(c);
}

void Core::write_failed(CallState& c, const std::filesystem::path& path, int err) {
  fail(c, "cannot write " + path.string() + ": " + errno_text(err));
  close_files(c);
}

void Core::close_files(CallState& c) {
  finish_wav(c);
  if (c.jsonl_fd >= 0) {
    ::close(c.jsonl_fd);
    c.jsonl_fd = -1;
  }
}

}  // namespace voxbridge::recording::detail
