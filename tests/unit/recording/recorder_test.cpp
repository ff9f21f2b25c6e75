// Per-call recordings: exact stereo samples on the call's clock, WAV headers, transcripts, disk
// and queue failures that stop one call only, retention, many calls at once. 8 kHz, 20 ms frames
// (160 samples), 100 ms blocks (5 frames) so that every script crosses block boundaries.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "support/alloc_counter.hpp"
#include "voxbridge/audio/wav.hpp"
#include "voxbridge/recording/recorder.hpp"

namespace voxbridge::recording {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kRate = 8000;
constexpr std::size_t kF = 160;  // samples per 20 ms frame

/// Frame `v` of the caller: every sample tells which frame (and which sample) it is.
std::vector<std::int16_t> caller_frame(int v) {
  std::vector<std::int16_t> f(kF);
  for (std::size_t j = 0; j < kF; ++j)
    f[j] = static_cast<std::int16_t>(v * 16 + static_cast<int>(j % 16));
  return f;
}
std::vector<std::int16_t> agent_frame(int v) {
  std::vector<std::int16_t> f(kF);
  for (std::size_t j = 0; j < kF; ++j)
    f[j] = static_cast<std::int16_t>(-(v * 16 + static_cast<int>(j % 16)));
  return f;
}

/// What a channel should hold, built frame by frame.
struct Expected {
  std::vector<std::int16_t> s;
  Expected& caller(int v) { return add(caller_frame(v)); }
  Expected& agent(int v) { return add(agent_frame(v)); }
  Expected& silence(std::size_t frames) {
    s.insert(s.end(), frames * kF, 0);
    return *this;
  }
  Expected& add(const std::vector<std::int16_t>& f) {
    s.insert(s.end(), f.begin(), f.end());
    return *this;
  }
};

std::uint32_t le32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}
std::uint16_t le16(const unsigned char* p) {
  return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}

/// A stereo WAV read back byte by byte (the writer's canonical 44-byte header).
struct Wav {
  std::uintmax_t file_size = 0;
  std::string riff, wave, fmt, data_id;
  std::uint32_t riff_size = 0, fmt_size = 0, rate = 0, byte_rate = 0, data_size = 0;
  std::uint16_t format = 0, channels = 0, align = 0, bits = 0;
  std::vector<std::int16_t> left, right;
};

Wav read_stereo(const fs::path& path) {
  Wav w;
  std::ifstream f(path, std::ios::binary);
  std::vector<unsigned char> d((std::istreambuf_iterator<char>(f)), {});
  w.file_size = d.size();
  if (d.size() < 44) return w;
  const auto* p = d.data();
  w.riff.assign(p, p + 4);
  w.riff_size = le32(p + 4);
  w.wave.assign(p + 8, p + 12);
  w.fmt.assign(p + 12, p + 16);
  w.fmt_size = le32(p + 16);
  w.format = le16(p + 20);
  w.channels = le16(p + 22);
  w.rate = le32(p + 24);
  w.byte_rate = le32(p + 28);
  w.align = le16(p + 32);
  w.bits = le16(p + 34);
  w.data_id.assign(p + 36, p + 40);
  w.data_size = le32(p + 40);
  for (std::size_t i = 44; i + 4 <= d.size(); i += 4) {
    w.left.push_back(static_cast<std::int16_t>(le16(p + i)));
    w.right.push_back(static_cast<std::int16_t>(le16(p + i + 2)));
  }
  return w;
}

/// Checks every header field and that the sizes match `frames` stereo frames on disk.
void expect_header(const Wav& w, std::size_t frames) {
  EXPECT_EQ(w.riff, "RIFF");
  EXPECT_EQ(w.wave, "WAVE");
  EXPECT_EQ(w.fmt, "fmt ");
  EXPECT_EQ(w.fmt_size, 16u);
  EXPECT_EQ(w.format, 1);
  EXPECT_EQ(w.channels, 2);
  EXPECT_EQ(w.rate, std::uint32_t{kRate});
  EXPECT_EQ(w.byte_rate, std::uint32_t{kRate} * 4);
  EXPECT_EQ(w.align, 4);
  EXPECT_EQ(w.bits, 16);
  EXPECT_EQ(w.data_id, "data");
  EXPECT_EQ(w.data_size, frames * 4);
  EXPECT_EQ(w.riff_size, 36 + frames * 4);
  EXPECT_EQ(w.file_size, 44 + frames * 4);
}

std::string read_text(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

/// Routes spdlog's default logger into a ring for the test's lifetime. Create it before the
/// Recorder and let it outlive it (the writer thread logs through the default logger).
class LogCapture {
 public:
  LogCapture()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256)),
        previous_(spdlog::default_logger()) {
    sink_->set_pattern("%l %v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::vector<std::string> warnings() {
    std::vector<std::string> out;
    for (auto& line : sink_->last_formatted()) {
      if (line.rfind("warning ", 0) == 0) out.push_back(line);
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

int open_normally(const fs::path& p) {
  return ::open(p.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0640);
}

/// Holds the writer inside open_file until released (a disk that does not answer).
class Gate {
 public:
  void enter() {
    std::unique_lock lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
  }
  void wait_entered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("vb_recording_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  RecorderOptions options() const {
    RecorderOptions o;
    o.directory = dir_;
    o.sample_rate_hz = kRate;
    o.block = 100ms;  // 5 frames
    o.queue_blocks = 16;
    o.sweep_interval = 3600s;
    return o;
  }

  fs::path dir_;
};

TEST_F(RecorderTest, GapsOnEitherSideBecomeSilenceAtTheirOwnTime) {
  Recorder r(options());
  auto rec = r.start_call("gap-call", true, false);
  ASSERT_TRUE(rec);
  // 20 ticks. Caller: frames 1-4, nothing for ticks 5-11, frames 12-20. Agent: frames 1-6,
  // nothing for ticks 7-12, frames 13-20. Both gaps outlast the slack (3 frames).
  for (int t = 1; t <= 20; ++t) {
    if (t <= 4 || t >= 12) rec->caller(caller_frame(t));
    if (t <= 6 || t >= 13) rec->agent(agent_frame(t));
    rec->tick();
  }
  EXPECT_TRUE(rec->active());
  const auto path = rec->wav_path();
  rec.reset();
  r.flush();

  Expected left, right;
  for (int t = 1; t <= 4; ++t) left.caller(t);
  left.silence(7);
  for (int t = 12; t <= 20; ++t) left.caller(t);
  for (int t = 1; t <= 6; ++t) right.agent(t);
  right.silence(6);
  for (int t = 13; t <= 20; ++t) right.agent(t);

  const Wav w = read_stereo(path);
  expect_header(w, 20 * kF);
  EXPECT_EQ(w.left, left.s);
  EXPECT_EQ(w.right, right.s);
  // The project's own reader agrees it is a valid 8 kHz WAV of that length.
  std::string err;
  const auto mono = audio::read_wav(path, err);
  EXPECT_TRUE(err.empty()) << err;
  EXPECT_EQ(mono.rate_hz, kRate);
  EXPECT_EQ(mono.samples.size(), 20 * kF);
  EXPECT_EQ(r.stats().calls_recorded.load(), 1u);
  EXPECT_EQ(r.stats().calls_failed.load(), 0u);
  EXPECT_EQ(r.stats().bytes_written.load(), 44 + 20 * kF * 4);
}

TEST_F(RecorderTest, JitterWithinTheSlackInsertsNoSilence) {
  Recorder r(options());
  auto rec = r.start_call("jitter-call", true, false);
  // Caller frames per tick: 2,0,2,0,2,0 then 0,0,0 (three frames behind: the slack, not more),
  // then 4 at once, then one per tick. 15 ticks, 15 frames.
  const int per_tick[15] = {2, 0, 2, 0, 2, 0, 0, 0, 0, 4, 1, 1, 1, 1, 1};
  int next = 1;
  for (int t = 1; t <= 15; ++t) {
    for (int k = 0; k < per_tick[t - 1]; ++k) rec->caller(caller_frame(next++));
    rec->agent(agent_frame(t));
    rec->tick();
  }
  ASSERT_EQ(next, 16);
  const auto path = rec->wav_path();
  rec.reset();
  r.flush();

  Expected left, right;
  for (int t = 1; t <= 15; ++t) {
    left.caller(t);
    right.agent(t);
  }
  const Wav w = read_stereo(path);
  expect_header(w, 15 * kF);
  EXPECT_EQ(w.left, left.s);
  EXPECT_EQ(w.right, right.s);
}

TEST_F(RecorderTest, ACallerAheadOfTheClockIsTrimmedToTheSlack) {
  Recorder r(options());
  auto rec = r.start_call("ahead-call", true, false);
  // Two caller frames every tick: the caller may lead the clock by three frames, no more.
  int next = 1;
  for (int t = 1; t <= 10; ++t) {
    rec->caller(caller_frame(next++));
    rec->caller(caller_frame(next++));
    rec->agent(agent_frame(t));
    rec->tick();
  }
  const auto path = rec->wav_path();
  rec.reset();
  r.flush();

  // Ticks 1-2 take both frames (3 frames ahead after tick 2); from then on one of each pair
  // fits. At the end the agent side is padded to the caller's last sample.
  Expected left, right;
  for (int v : {1, 2, 3, 4, 5, 7, 9, 11, 13, 15, 17, 19}) left.caller(v);
  for (int t = 1; t <= 10; ++t) right.agent(t);
  right.silence(2);
  const Wav w = read_stereo(path);
  expect_header(w, 12 * kF);
  EXPECT_EQ(w.left, left.s);
  EXPECT_EQ(w.right, right.s);
}

TEST_F(RecorderTest, ShortCallsAndPartialFramesKeepEverySample) {
  Recorder r(options());
  auto rec = r.start_call("short-call", true, false);
  // 7 caller samples, 3 agent samples, one tick: the call is one frame long.
  const std::vector<std::int16_t> c{1, 2, 3, 4, 5, 6, 7}, a{-1, -2, -3};
  rec->caller(c);
  rec->agent(a);
  rec->tick();
  const auto path = rec->wav_path();
  rec.reset();
  auto empty = r.start_call("empty-call", true, false);
  const auto empty_path = empty->wav_path();
  empty.reset();
  r.flush();

  std::vector<std::int16_t> left(kF, 0), right(kF, 0);
  std::copy(c.begin(), c.end(), left.begin());
  std::copy(a.begin(), a.end(), right.begin());
  const Wav w = read_stereo(path);
  expect_header(w, kF);
  EXPECT_EQ(w.left, left);
  EXPECT_EQ(w.right, right);
  expect_header(read_stereo(empty_path), 0);
}

TEST_F(RecorderTest, TranscriptLinesAreWrittenExactlyAndInOrder) {
  Recorder r(options());
  const std::vector<std::string> lines{
      R"({"t_ms":0,"type":"start","uuid":"tr-call"})",
      R"({"t_ms":1200,"type":"asr","final":false,"text":"I'd like"})",
      R"({"t_ms":1900,"type":"asr","final":true,"text":"I'd like to pay a bill"})",
      R"({"t_ms":2500,"type":"agent","text":"Sure \"of course\""})",
      R"({"t_ms":3100,"type":"barge_in"})",
      R"({"t_ms":4000,"type":"dtmf","digit":"5"})",
      R"({"t_ms":5000,"type":"action","action":"transfer","target":"1001"})"};
  auto both = r.start_call("tr-call", true, true);
  auto text_only = r.start_call("text-only", false, true);
  auto audio_only = r.start_call("audio-only", true, false);
  EXPECT_FALSE(r.start_call("nothing", false, false));
  EXPECT_TRUE(text_only->wav_path().empty());
  EXPECT_TRUE(audio_only->transcript_path().empty());
  for (const auto& l : lines) {
    both->event(l);
    text_only->event(l);
    audio_only->event(l);  // ignored
    both->caller(caller_frame(1));
    both->agent(agent_frame(1));
    both->tick();
  }
  text_only->event("{\"multi\":\nline}");  // a stray newline must not split the line
  const auto both_jsonl = both->transcript_path();
  const auto text_jsonl = text_only->transcript_path();
  const auto text_dir = text_jsonl.parent_path();
  both.reset();
  text_only.reset();
  audio_only.reset();
  r.flush();

  std::string expected;
  for (const auto& l : lines) expected += l + "\n";
  EXPECT_EQ(read_text(both_jsonl), expected);
  EXPECT_EQ(read_text(text_jsonl), expected + "{\"multi\": line}\n");
  EXPECT_FALSE(fs::exists(text_dir / "text-only.wav"));
  EXPECT_FALSE(fs::exists(text_dir / "audio-only.jsonl"));
  EXPECT_EQ(read_stereo(text_dir / "tr-call.wav").data_size, lines.size() * kF * 4);
}

TEST_F(RecorderTest, FilesAreNamedByTheUtcDateOfTheStartAndTheUuid) {
  Recorder r(options());
  using namespace std::chrono;
  const auto late = sys_days{2021y / March / 4} + 23h + 59min + 59s;  // UTC
  auto a = r.start_call("3f1c2a9e-0000-4000-8000-00000000abcd", true, true, late);
  EXPECT_EQ(a->wav_path(), dir_ / "2021-03-04" / "3f1c2a9e-0000-4000-8000-00000000abcd.wav");
  EXPECT_EQ(a->transcript_path(),
            dir_ / "2021-03-04" / "3f1c2a9e-0000-4000-8000-00000000abcd.jsonl");
  // Whatever the UUID holds, the file stays in its date directory.
  auto b = r.start_call("../../etc/x y", true, false, late + 1s);
  EXPECT_EQ(b->wav_path(), dir_ / "2021-03-05" / "_._.._etc_x_y.wav");
  auto c = r.start_call("..", true, false, late);
  EXPECT_EQ(c->wav_path(), dir_ / "2021-03-04" / "_..wav");
  a.reset();
  b.reset();
  c.reset();
  r.flush();
  EXPECT_TRUE(fs::exists(dir_ / "2021-03-04" / "3f1c2a9e-0000-4000-8000-00000000abcd.wav"));
  EXPECT_TRUE(fs::exists(dir_ / "2021-03-04" / "3f1c2a9e-0000-4000-8000-00000000abcd.jsonl"));
  EXPECT_TRUE(fs::exists(dir_ / "2021-03-05" / "_._.._etc_x_y.wav"));
  EXPECT_TRUE(fs::exists(dir_ / "2021-03-04" / "_..wav"));
}

/// Records `frames` ticks of caller frames starting at `first` under `uuid` on `day`; returns
/// the recording's files once written.
std::pair<fs::path, fs::path> record_call(Recorder& r, const std::string& uuid,
                                          std::chrono::system_clock::time_point day, int first,
                                          int frames) {
  auto rec = r.start_call(uuid, true, true, day);
  for (int t = first; t < first + frames; ++t) {
    rec->caller(caller_frame(t));
    rec->tick();
  }
  rec->event("{\"type\":\"end\",\"first\":" + std::to_string(first) + "}");
  r.flush();  // the writer has opened the files: the names are final
  auto paths = std::make_pair(rec->wav_path(), rec->transcript_path());
  rec.reset();
  r.flush();
  return paths;
}

TEST_F(RecorderTest, AReplayedUuidKeepsTheFirstRecordingAndGetsANameOfItsOwn) {
  Recorder r(options());
  using namespace std::chrono;
  const auto day = sys_days{2021y / March / 4} + 10h;
  const std::string uuid = "3f1c2a9e-0000-4000-8000-00000000abcd";
  const fs::path d = dir_ / "2021-03-04";
  // A file already under the name (another call's recording, or anything else) is kept intact.
  fs::create_directories(d);
  std::ofstream(d / (uuid + ".jsonl")) << "precious\n";

  const auto [wav1, jsonl1] = record_call(r, uuid, day, 1, 10);
  const auto [wav2, jsonl2] = record_call(r, uuid, day + 1h, 100, 5);  // the UUID replayed
  EXPECT_EQ(wav1, d / (uuid + "-2.wav"));  // the .jsonl name was taken: both files move on
  EXPECT_EQ(jsonl1, d / (uuid + "-2.jsonl"));
  EXPECT_EQ(wav2, d / (uuid + "-3.wav"));
  EXPECT_EQ(jsonl2, d / (uuid + "-3.jsonl"));
  EXPECT_EQ(read_text(d / (uuid + ".jsonl")), "precious\n");
  EXPECT_FALSE(fs::exists(d / (uuid + ".wav")));  // given back when its .jsonl was taken

  Expected first, second;
  for (int t = 1; t <= 10; ++t) first.caller(t);
  for (int t = 100; t < 105; ++t) second.caller(t);
  const Wav w1 = read_stereo(wav1);
  expect_header(w1, 10 * kF);
  EXPECT_EQ(w1.left, first.s);
  const Wav w2 = read_stereo(wav2);
  expect_header(w2, 5 * kF);
  EXPECT_EQ(w2.left, second.s);
  EXPECT_NE(read_text(jsonl1).find("\"first\":1}"), std::string::npos);
  EXPECT_NE(read_text(jsonl2).find("\"first\":100}"), std::string::npos);
}

TEST_F(RecorderTest, ASymlinkPlantedInTheRecordingsDirectoryIsNotFollowed) {
  LogCapture log;
  const fs::path outside = dir_.string() + "_outside";
  fs::remove_all(outside);
  fs::create_directories(outside);
  std::ofstream(outside / "victim") << "not yours\n";
  {
    Recorder r(options());
    using namespace std::chrono;
    const auto day = sys_days{2021y / March / 4} + 10h;
    const fs::path d = dir_ / "2021-03-04";
    fs::create_directories(d);
    fs::create_symlink(outside / "victim", d / "planted.wav");
    fs::create_symlink(outside / "victim", d / "planted.jsonl");
    const auto [wav, jsonl] = record_call(r, "planted", day, 1, 5);
    EXPECT_EQ(wav, d / "planted-2.wav");
    EXPECT_EQ(jsonl, d / "planted-2.jsonl");
    EXPECT_TRUE(fs::is_symlink(d / "planted.wav"));
    Expected left;
    for (int t = 1; t <= 5; ++t) left.caller(t);
    EXPECT_EQ(read_stereo(wav).left, left.s);

    // A date directory that is a symlink: that call is not recorded (one warning).
    fs::create_directory_symlink(outside, dir_ / "2021-03-05");
    auto rec = r.start_call("elsewhere", true, true, day + 24h);
    rec->caller(caller_frame(1));
    rec->tick();
    rec.reset();
    r.flush();
    EXPECT_EQ(r.stats().calls_failed.load(), 1u);
  }
  EXPECT_EQ(read_text(outside / "victim"), "not yours\n");
  EXPECT_FALSE(fs::exists(outside / "elsewhere.wav"));
  EXPECT_FALSE(fs::exists(outside / "elsewhere.jsonl"));
  const auto warnings = log.warnings();
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings.back().find("it is a symlink"), std::string::npos) << warnings.back();
  fs::remove_all(outside);
}

TEST_F(RecorderTest, AFullDiskStopsThatCallOnlyWithOneWarning) {
  LogCapture log;
  auto opts = options();
  opts.open_file = [](const fs::path& p) {
    if (p.filename().string().rfind("full-", 0) == 0) {
      return ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    }
    return open_normally(p);
  };
  Recorder r(opts);
  auto full = r.start_call("full-1", true, true);
  auto ok = r.start_call("ok-1", true, true);
  r.flush();  // the writer has met ENOSPC on full-1's header
  EXPECT_FALSE(full->active());
  EXPECT_TRUE(ok->active());
  EXPECT_EQ(r.stats().calls_failed.load(), 1u);

  // A second one that fails while it is being fed.
  auto full2 = r.start_call("full-2", true, false);
  for (int t = 1; t <= 12; ++t) {
    for (auto* rec : {full.get(), ok.get(), full2.get()}) {
      rec->caller(caller_frame(t));
      rec->agent(agent_frame(t));
      rec->tick();
    }
    full->event(R"({"type":"lost"})");
    ok->event(R"({"n":)" + std::to_string(t) + "}");
  }
  r.flush();
  EXPECT_FALSE(full2->active());
  EXPECT_TRUE(ok->active());
  const auto ok_wav = ok->wav_path();
  const auto ok_jsonl = ok->transcript_path();
  full.reset();
  full2.reset();
  ok.reset();
  r.flush();

  const auto warnings = log.warnings();
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("uuid=full-1"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("No space left on device"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("uuid=full-2"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[1].find("No space left on device"), std::string::npos) << warnings[1];
  EXPECT_EQ(r.stats().calls_failed.load(), 2u);
  EXPECT_EQ(r.stats().calls_recorded.load(), 3u);

  Expected left, right;
  std::string text;
  for (int t = 1; t <= 12; ++t) {
    left.caller(t);
    right.agent(t);
    text += R"({"n":)" + std::to_string(t) + "}\n";
  }
  const Wav w = read_stereo(ok_wav);
  expect_header(w, 12 * kF);
  EXPECT_EQ(w.left, left.s);
  EXPECT_EQ(w.right, right.s);
  EXPECT_EQ(read_text(ok_jsonl), text);
}

/// The child of the disk-filling test: records 20 frames under a file size limit; returns 0 if
/// the recording stopped with one warning, else a code saying what went wrong.
int record_until_the_limit(RecorderOptions opts, rlim_t limit) {
  std::signal(SIGXFSZ, SIG_IGN);
  const rlimit lim{limit, limit};
  if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 10;
  LogCapture log;
  int code = 0;
  {
    Recorder r(std::move(opts));
    using namespace std::chrono;
    auto rec = r.start_call("efbig", true, false, sys_days{2022y / January / 1});
    for (int t = 1; t <= 20; ++t) {
      rec->caller(caller_frame(t));
      rec->agent(agent_frame(t));
      rec->tick();
    }
    r.flush();
    if (rec->active()) code = 11;
    rec.reset();
    r.flush();
    if (r.stats().calls_failed.load() != 1) code = 12;
  }
  const auto w = log.warnings();
  if (w.size() != 1 || w[0].find("uuid=efbig") == std::string::npos ||
      w[0].find("File too large") == std::string::npos) {
    code = 13;
  }
  return code;
}

TEST_F(RecorderTest, ADiskFillingUpMidCallKeepsWhatWasWrittenWithAValidHeader) {
  // The file size limit stands in for a disk that fills up: writes past it fail (EFBIG, as
  // ENOSPC would), the third block only in part. In a child process: the limit is per process.
  constexpr std::size_t kBlockBytes = 5 * kF * 4;
  constexpr rlim_t kLimit = 44 + 2 * kBlockBytes + 1002;
  const auto path = dir_ / "2022-01-01" / "efbig.wav";
  EXPECT_EXIT(std::_Exit(record_until_the_limit(options(), kLimit)), ::testing::ExitedWithCode(0),
              "");

  // 2 blocks and 1002 bytes made it; the header counts whole stereo frames (1000 bytes) and
  // the file is cut to match.
  const std::size_t frames = (2 * kBlockBytes + 1000) / 4;
  Expected left, right;
  for (int t = 1; t <= 20; ++t) {
    left.caller(t);
    right.agent(t);
  }
  left.s.resize(frames);
  right.s.resize(frames);
  const Wav w = read_stereo(path);
  expect_header(w, frames);
  EXPECT_EQ(w.left, left.s);
  EXPECT_EQ(w.right, right.s);
}

TEST_F(RecorderTest, AFullQueueStopsTheCallThatFilledItOthersGoOn) {
  LogCapture log;
  Gate gate;
  auto opts = options();
  opts.queue_blocks = 4;
  opts.open_file = [&gate](const fs::path& p) {
    if (p.filename() == "slow-1.wav") gate.enter();  // the disk stalls
    return open_normally(p);
  };
  Recorder r(opts);
  struct Release {  // never leave the writer stuck, whatever fails
    Gate& g;
    ~Release() { g.release(); }
  } release{gate};

  auto slow = r.start_call("slow-1", true, false);
  gate.wait_entered();
  auto other = r.start_call("other-1", true, true);
  // 4 blocks: one each being filled, two free. slow-1 hands off 3: the third finds none free.
  for (int t = 1; t <= 15; ++t) {
    slow->caller(caller_frame(t));
    slow->agent(agent_frame(t));
    slow->tick();
    if (t < 15) {
      EXPECT_TRUE(slow->active()) << t;
    }
  }
  EXPECT_FALSE(slow->active());
  EXPECT_EQ(r.stats().calls_failed.load(), 1u);
  for (int t = 1; t <= 4; ++t) {
    other->caller(caller_frame(t));
    other->agent(agent_frame(t));
    other->tick();
  }
  other->event(R"({"still":"here"})");
  EXPECT_TRUE(other->active());

  gate.release();
  r.flush();
  for (int t = 5; t <= 20; ++t) {
    other->caller(caller_frame(t));
    other->agent(agent_frame(t));
    other->tick();
    slow->caller(caller_frame(t));  // ignored
    slow->tick();
    if (t % 5 == 0) r.flush();  // the writer keeps pace with the small pool
  }
  EXPECT_TRUE(other->active());
  const auto slow_wav = slow->wav_path();
  const auto other_wav = other->wav_path();
  slow.reset();
  other.reset();
  r.flush();

  const auto warnings = log.warnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("uuid=slow-1"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("queue full"), std::string::npos) << warnings[0];
  EXPECT_EQ(r.stats().calls_failed.load(), 1u);
  EXPECT_EQ(r.stats().blocks_dropped.load(), 0u);

  // What slow-1 had queued (15 frames) is on disk, header right.
  Expected sl, sr;
  for (int t = 1; t <= 15; ++t) {
    sl.caller(t);
    sr.agent(t);
  }
  const Wav s = read_stereo(slow_wav);
  expect_header(s, 15 * kF);
  EXPECT_EQ(s.left, sl.s);
  EXPECT_EQ(s.right, sr.s);
  // other-1 lost nothing.
  Expected ol, orr;
  for (int t = 1; t <= 20; ++t) {
    ol.caller(t);
    orr.agent(t);
  }
  const Wav o = read_stereo(other_wav);
  expect_header(o, 20 * kF);
  EXPECT_EQ(o.left, ol.s);
  EXPECT_EQ(o.right, orr.s);
}

TEST_F(RecorderTest, NoFreeBlockAtTheStartStopsOnlyThatCall) {
  LogCapture log;
  auto opts = options();
  opts.queue_blocks = 1;
  Recorder r(opts);
  auto first = r.start_call("first", true, false);
  auto second = r.start_call("second", true, true);
  auto text = r.start_call("text", false, true);  // needs no block
  EXPECT_TRUE(first->active());
  EXPECT_FALSE(second->active());
  EXPECT_TRUE(text->active());
  second->caller(caller_frame(1));
  second->tick();
  second->event("{}");
  text->event("{}");
  const auto text_path = text->transcript_path();
  first.reset();
  second.reset();
  text.reset();
  r.flush();
  const auto warnings = log.warnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("uuid=second"), std::string::npos) << warnings[0];
  EXPECT_EQ(r.stats().calls_failed.load(), 1u);
  EXPECT_EQ(r.stats().calls_recorded.load(), 2u);
  EXPECT_EQ(read_text(text_path), "{}\n");
  EXPECT_FALSE(fs::exists(text_path.parent_path() / "second.jsonl"));
}

TEST_F(RecorderTest, AFullTranscriptQueueStopsThatCall) {
  LogCapture log;
  Gate gate;
  auto opts = options();
  opts.queue_events = 2;
  opts.open_file = [&gate](const fs::path& p) {
    if (p.filename() == "stall.jsonl") gate.enter();
    return open_normally(p);
  };
  Recorder r(opts);
  struct Release {
    Gate& g;
    ~Release() { g.release(); }
  } release{gate};
  auto rec = r.start_call("stall", false, true);
  gate.wait_entered();
  rec->event("{\"n\":1}");
  rec->event("{\"n\":2}");
  EXPECT_TRUE(rec->active());
  rec->event("{\"n\":3}");
  EXPECT_FALSE(rec->active());
  gate.release();
  const auto path = rec->transcript_path();
  rec.reset();
  r.flush();
  EXPECT_EQ(read_text(path), "{\"n\":1}\n{\"n\":2}\n");
  const auto warnings = log.warnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("uuid=stall"), std::string::npos) << warnings[0];
  EXPECT_EQ(r.stats().calls_failed.load(), 1u);
}

void write_file(const fs::path& p, std::size_t bytes, fs::file_time_type mtime) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << std::string(bytes, 'x');
  fs::last_write_time(p, mtime);
}

TEST_F(RecorderTest, RetentionDeletesByAgeNeverOpenFilesAndEmptiesDateDirectories) {
  const auto now = fs::file_time_type::clock::now();
  write_file(dir_ / "2020-01-01" / "old.wav", 100, now - 3h);
  write_file(dir_ / "2020-01-01" / "old.jsonl", 50, now - 3h);
  write_file(dir_ / "2020-01-02" / "new.wav", 100, now - 10min);
  write_file(dir_ / "2020-01-02" / "notes.txt", 10, now - 30h);  // not a recording
  write_file(dir_ / "misc" / "x.wav", 10, now - 30h);            // not a date directory
  auto opts = options();
  opts.max_age = 1h;
  Recorder r(opts);  // sweeps at start
  r.sweep_now();
  EXPECT_EQ(r.stats().files_removed.load(), 2u);
  EXPECT_FALSE(fs::exists(dir_ / "2020-01-01"));
  EXPECT_TRUE(fs::exists(dir_ / "2020-01-02" / "new.wav"));
  EXPECT_TRUE(fs::exists(dir_ / "2020-01-02" / "notes.txt"));
  EXPECT_TRUE(fs::exists(dir_ / "misc" / "x.wav"));

  // A call still being written is never deleted, however old its files look.
  using namespace std::chrono;
  auto rec = r.start_call("live", true, true, sys_days{2020y / January / 3});
  rec->event("{}");
  r.flush();
  fs::last_write_time(rec->wav_path(), now - 5h);
  fs::last_write_time(rec->transcript_path(), now - 5h);
  r.sweep_now();
  EXPECT_TRUE(fs::exists(rec->wav_path()));
  EXPECT_TRUE(fs::exists(rec->transcript_path()));
  EXPECT_EQ(r.stats().files_removed.load(), 2u);

  const auto wav = rec->wav_path();
  const auto jsonl = rec->transcript_path();
  rec.reset();
  r.flush();
  fs::last_write_time(wav, now - 5h);
  fs::last_write_time(jsonl, now - 5h);
  r.sweep_now();
  EXPECT_FALSE(fs::exists(wav));
  EXPECT_FALSE(fs::exists(jsonl));
  EXPECT_FALSE(fs::exists(dir_ / "2020-01-03"));
  EXPECT_EQ(r.stats().files_removed.load(), 4u);
}

TEST_F(RecorderTest, RetentionDeletesTheOldestBeyondTheTotalSize) {
  const auto now = fs::file_time_type::clock::now();
  write_file(dir_ / "2020-05-01" / "a.wav", 1000, now - 4h);
  write_file(dir_ / "2020-05-02" / "b.jsonl", 1000, now - 3h);
  write_file(dir_ / "2020-05-02" / "c.wav", 1000, now - 2h);
  write_file(dir_ / "2020-05-03" / "d.wav", 1000, now - 1h);
  auto opts = options();
  opts.max_total_bytes = 2500;
  Recorder r(opts);
  r.sweep_now();
  EXPECT_EQ(r.stats().files_removed.load(), 2u);
  EXPECT_FALSE(fs::exists(dir_ / "2020-05-01"));
  EXPECT_FALSE(fs::exists(dir_ / "2020-05-02" / "b.jsonl"));
  EXPECT_TRUE(fs::exists(dir_ / "2020-05-02" / "c.wav"));
  EXPECT_TRUE(fs::exists(dir_ / "2020-05-03" / "d.wav"));
  r.sweep_now();  // within the limit now: nothing more
  EXPECT_EQ(r.stats().files_removed.load(), 2u);
}

TEST_F(RecorderTest, ManyCallsOnManyThreadsEachGetTheirOwnExactRecording) {
  constexpr int kThreads = 8, kCallsPerThread = 4, kTicks = 30;
  auto opts = options();
  opts.queue_blocks = 256;  // enough that a busy writer never stops a call here
  Recorder r(opts);
  std::vector<std::thread> threads;
  std::vector<fs::path> wavs(kThreads * kCallsPerThread), jsonls(kThreads * kCallsPerThread);
  std::atomic<int> inactive{0};
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::vector<std::unique_ptr<CallRecording>> calls;
      for (int k = 0; k < kCallsPerThread; ++k) {
        const int id = th * kCallsPerThread + k;
        calls.push_back(r.start_call("call-" + std::to_string(id), true, true));
        wavs[id] = calls.back()->wav_path();
        jsonls[id] = calls.back()->transcript_path();
      }
      for (int t = 1; t <= kTicks; ++t) {
        for (int k = 0; k < kCallsPerThread; ++k) {
          const int id = th * kCallsPerThread + k;
          calls[k]->caller(caller_frame(id * 40 + t));
          calls[k]->agent(agent_frame(id * 40 + t));
          calls[k]->tick();
          if (t % 10 == 0) calls[k]->event("{\"id\":" + std::to_string(id) + "}");
        }
      }
      for (auto& c : calls) inactive += c->active() ? 0 : 1;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(inactive.load(), 0);
  r.flush();  // the recordings are gone with their threads
  for (int id = 0; id < kThreads * kCallsPerThread; ++id) {
    Expected left, right;
    for (int t = 1; t <= kTicks; ++t) {
      left.caller(id * 40 + t);
      right.agent(id * 40 + t);
    }
    const Wav w = read_stereo(wavs[id]);
    expect_header(w, kTicks * kF);
    EXPECT_EQ(w.left, left.s) << id;
    EXPECT_EQ(w.right, right.s) << id;
    const std::string line = "{\"id\":" + std::to_string(id) + "}\n";
    EXPECT_EQ(read_text(jsonls[id]), line + line + line) << id;
  }
  EXPECT_EQ(r.stats().calls_recorded.load(), 32u);
  EXPECT_EQ(r.stats().calls_failed.load(), 0u);
  EXPECT_EQ(r.stats().blocks_dropped.load(), 0u);
}

TEST_F(RecorderTest, TheRecorderFinishesOpenFilesWhenItGoesFirst) {
  auto r = std::make_unique<Recorder>(options());
  auto rec = r->start_call("outlived", true, false);
  for (int t = 1; t <= 7; ++t) {
    rec->caller(caller_frame(t));
    rec->agent(agent_frame(t));
    rec->tick();
  }
  const auto path = rec->wav_path();
  r.reset();  // the first block (5 frames) was handed off; the header is fixed at shutdown
  EXPECT_FALSE(rec->active());
  rec->caller(caller_frame(8));
  rec->tick();
  rec.reset();  // safe after the Recorder is gone
  Expected left, right;
  for (int t = 1; t <= 5; ++t) {
    left.caller(t);
    right.agent(t);
  }
  const Wav w = read_stereo(path);
  expect_header(w, 5 * kF);
  EXPECT_EQ(w.left, left.s);
  EXPECT_EQ(w.right, right.s);
}

TEST_F(RecorderTest, ThePerFramePathNeitherAllocatesNorStops) {
  auto opts = options();
  opts.sample_rate_hz = 16000;
  opts.block = 1000ms;
  opts.queue_blocks = 8;
  Recorder r(opts);
  auto rec = r.start_call("steady", true, true);
  std::vector<std::int16_t> c(320, 1000), a(320, -1000);
  for (int t = 0; t < 50; ++t) {  // warm-up
    rec->caller(c);
    rec->agent(a);
    rec->tick();
  }
  testing::AllocationCounter allocations;
  for (int t = 0; t < 1000; ++t) {  // 20 s: 20 block hand-offs, jitter included
    if (t % 2 == 0) {
      rec->caller(c);
      rec->caller(c);
    }
    rec->agent(a);
    rec->tick();
    if (t % 50 == 0) r.flush();  // writer keeps pace (flush() itself allocates nothing)
  }
  EXPECT_EQ(allocations.stop(), 0u);
  EXPECT_TRUE(rec->active());
  const auto path = rec->wav_path();
  rec.reset();
  r.flush();
  std::string err;
  EXPECT_EQ(audio::read_wav(path, err).samples.size(), 1050u * 320);
}

}  // namespace
}  // namespace voxbridge::recording
