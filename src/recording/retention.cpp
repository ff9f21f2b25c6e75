// Retention, on the writer thread (at start, every sweep_interval and on sweep_now): the
// .wav and .jsonl files in the date directories of the recordings directory, oldest first,
// deleted while older than max_age, then while all of them together are over max_total_bytes
// (the files of calls still recording count in the total but are never deleted); date
// directories left empty go too. Other files and directories are never touched.
#include <algorithm>
#include <unordered_set>

#include "recorder_core.hpp"

namespace voxbridge::recording::detail {

void Core::sweep() {
  namespace fs = std::filesystem;
  struct File {
    fs::path path;
    fs::file_time_type mtime;
    std::uint64_t size;
  };
  std::unordered_set<std::string> open;
  for (const auto& [c, owner] : open_calls) {
    if (c->wav_fd >= 0) open.insert(c->wav_path.lexically_normal().string());
    if (c->jsonl_fd >= 0) open.insert(c->jsonl_path.lexically_normal().string());
  }
  std::vector<File> files;
  std::vector<fs::path> dirs;
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator d(opts.directory, ec), end; !ec && d != end; d.increment(ec)) {
    std::error_code e;
    if (!d->is_directory(e) || !is_date_dir(d->path().filename().string())) continue;
    dirs.push_back(d->path());
    for (fs::directory_iterator f(d->path(), e), fend; !e && f != fend; f.increment(e)) {
      std::error_code fe;
      const auto ext = f->path().extension();
      if (!f->is_regular_file(fe) || (ext != ".wav" && ext != ".jsonl")) continue;
      const std::uint64_t size = f->file_size(fe);
      if (fe) continue;
      const auto mtime = f->last_write_time(fe);
      if (fe) continue;
      total += size;
      if (open.count(f->path().lexically_normal().string()) != 0) continue;  // still written
      files.push_back({f->path(), mtime, size});
    }
  }
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.mtime < b.mtime; });
  auto remove = [&](const File& f) {
    std::error_code e;
    if (fs::remove(f.path, e)) {
      stats.files_removed.fetch_add(1, std::memory_order_relaxed);
      total -= f.size;
    }
  };
  std::size_t next = 0;
  if (opts.max_age.count() > 0) {
    const auto cutoff = fs::file_time_type::clock::now() - opts.max_age;
    for (; next < files.size() && files[next].mtime < cutoff; ++next) remove(files[next]);
  }
  if (opts.max_total_bytes > 0) {
    for (; next < files.size() && total > opts.max_total_bytes; ++next) remove(files[next]);
  }
  for (const auto& d : dirs) {
    std::error_code e;
    if (fs::is_empty(d, e) && !e) fs::remove(d, e);
  }
}

}  // namespace voxbridge::recording::detail
