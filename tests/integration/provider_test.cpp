// The provider contract over real gRPC: channels, health checks and a streaming recognition
// against the scripted fake, with every event delivered on the caller's io thread.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "support/fake_providers.hpp"
#include "support/test_tls.hpp"
#include "voxbridge/providers/grpc_clients.hpp"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/providers/stream.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;

std::vector<std::uint8_t> frame_of(std::int16_t level) {
  std::vector<std::uint8_t> f(640);  // 20 ms of LINEAR16 at 16 kHz
  for (std::size_t i = 0; i < f.size(); i += 2) {
    const auto s = static_cast<std::int16_t>((i / 2) % 2 == 0 ? level : -level);
    f[i] = static_cast<std::uint8_t>(s & 0xFF);
    f[i + 1] = static_cast<std::uint8_t>((s >> 8) & 0xFF);
  }
  return f;
}

asr::v1::RecognitionConfig config_for(const std::string& call_id) {
  asr::v1::RecognitionConfig c;
  c.mutable_call()->set_call_id(call_id);
  c.mutable_format()->set_encoding(common::v1::LINEAR16);
  c.mutable_format()->set_sample_rate_hz(16000);
  c.set_interim_results(true);
  return c;
}

TEST(Providers, OneChannelPerTargetSharedByEveryCall) {
  providers::ChannelPool pool;
  providers::ProviderTarget a{"asr", "127.0.0.1:1", false, "", 0ms, {}, "", ""};
  providers::ProviderTarget b{"tts", "127.0.0.1:2", false, "", 0ms, {}, "", ""};
  EXPECT_EQ(pool.get(a), pool.get(a));
  EXPECT_NE(pool.get(a), pool.get(b));
  EXPECT_EQ(pool.size(), 2u);
  providers::ProviderTarget bad{"x", "127.0.0.1:3", true, "/nonexistent/ca.pem", 0ms, {}, "", ""};
  EXPECT_THROW(pool.get(bad), std::runtime_error);
}

TEST(Providers, HealthCheckTellsServingNotServingAndUnreachable) {
  testing::FakeRecognizer rec;
  testing::FakeProviderServer srv(&rec);
  providers::ChannelPool pool;
  auto ch = pool.get({"asr", srv.address(), false, "", 0ms, {}, "", ""});
  EXPECT_EQ(providers::check_health(ch, "", 2000ms), providers::Health::serving);
  srv.set_not_serving("voxbridge.asr.v1.Recognizer");
  EXPECT_EQ(providers::check_health(ch, "voxbridge.asr.v1.Recognizer", 2000ms),
            providers::Health::not_serving);
  EXPECT_EQ(providers::check_health(ch, "no.such.Service", 2000ms),
            providers::Health::unknown_service);
  // Nothing listens on port 1: unreachable, within the timeout.
  auto dead = pool.get({"dead", "127.0.0.1:1", false, "", 0ms, {}, "", ""});
  const auto t0 = std::chrono::steady_clock::now();
  std::string why;
  EXPECT_EQ(providers::check_health(dead, "", 300ms, &why), providers::Health::unreachable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_FALSE(why.empty());
}

/// Writes `text` to a temporary file; returns its path.
std::string temp_file(const std::string& text) {
  char path[] = "/tmp/vb-provider-tls-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  return path;
}

TEST(Providers, MutualTlsWithAClientCertificate) {
  // One throwaway identity for "localhost" is the server's certificate, the CA both sides
  // trust, and the client's certificate.
  const auto [cert, key] = testing::self_signed_localhost();
  testing::FakeRecognizer rec;
  const testing::FakeTls tls{cert, key, cert};
  testing::FakeProviderServer srv({&rec}, &tls);
  const std::string ca_file = temp_file(cert);
  const std::string key_file = temp_file(key);
  const std::string address = "localhost:" + srv.address().substr(srv.address().rfind(':') + 1);
  providers::ChannelPool pool;
  std::string why;
  auto with_cert = pool.get({"asr", address, true, ca_file, 0ms, {}, ca_file /* cert */, key_file});
  EXPECT_EQ(providers::check_health(with_cert, "", 3000ms, &why), providers::Health::serving)
      << why;
  // Without the client certificate the server refuses the handshake.
  auto without = pool.get({"asr", address, true, ca_file, 0ms, {}, "", ""});
  EXPECT_NE(providers::check_health(without, "", 1000ms, &why), providers::Health::serving);
  // Without TLS at all, neither.
  auto plain = pool.get({"asr", address, false, "", 0ms, {}, "", ""});
  EXPECT_NE(providers::check_health(plain, "", 1000ms, &why), providers::Health::serving);
  std::remove(ca_file.c_str());
  std::remove(key_file.c_str());
}

/// An ASR stream through the gRPC clients on `pool` (which the test owns).
std::shared_ptr<providers::AsrStream> open_asr(providers::ChannelPool& pool,
                                               const providers::ProviderTarget& target,
                                               const asr::v1::RecognitionConfig& config,
                                               providers::Poster post, providers::AsrEvents ev) {
  auto clients = providers::grpc_clients(
      std::shared_ptr<providers::ChannelPool>(&pool, [](providers::ChannelPool*) {}));
  return clients->open_asr(target, config, std::move(post), std::move(ev), 50);
}

TEST(Providers, StreamingRecognitionDeliversEventsInOrderOnTheCallsThread) {
  testing::FakeRecognizer rec;
  rec.voiced_frames = 10;
  rec.silence_frames = 5;  // final after the 5th silent frame in a row
  testing::FakeProviderServer srv(&rec);
  providers::ChannelPool pool;
  providers::ProviderTarget target{"asr",  srv.address(),        false, "",
                                   5000ms, {{"x-api-key", "k"}}, "",    ""};

  boost::asio::io_context io;
  auto busy = boost::asio::make_work_guard(io);  // events arrive from gRPC's threads
  const auto io_thread = std::this_thread::get_id();
  std::vector<std::string> log;
  bool on_io_thread = true;
  providers::StreamStatus closed_with{providers::StreamStatus::kUnknown, "not closed"};
  bool closed = false;
  providers::AsrEvents ev;
  ev.speech_started = [&](std::uint32_t at) {
    on_io_thread &= std::this_thread::get_id() == io_thread;
    log.push_back("speech@" + std::to_string(at));
  };
  ev.result = [&](const providers::AsrResult& r) {
    on_io_thread &= std::this_thread::get_id() == io_thread;
    log.push_back((r.is_final ? "final:" : "interim:") + r.transcript);
  };
  ev.end_of_utterance = [&](std::uint32_t at) {
    on_io_thread &= std::this_thread::get_id() == io_thread;
    log.push_back("eou@" + std::to_string(at));
  };
  ev.closed = [&](const providers::StreamStatus& st) {
    on_io_thread &= std::this_thread::get_id() == io_thread;
    closed_with = st;
    closed = true;
  };
  auto stream = open_asr(
      pool, target, config_for("call-1"),
      [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); }, ev);
  // 10 silent frames, 12 voiced, 5 silent: sent as fast as the stream takes them.
  const auto quiet = frame_of(0), loud = frame_of(3000);
  int sent = 0;
  for (int i = 0; i < 27; ++i) {
    const auto& f = (i >= 10 && i < 22) ? loud : quiet;
    while (!stream->send_audio(f)) std::this_thread::sleep_for(1ms);  // queue full: wait
    ++sent;
  }
  stream->finish();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!closed && std::chrono::steady_clock::now() < until) io.run_for(10ms);

  ASSERT_TRUE(closed);
  EXPECT_TRUE(closed_with.ok()) << closed_with.message;
  EXPECT_TRUE(on_io_thread);
  EXPECT_EQ(log, (std::vector<std::string>{"speech@200", "interim:hello", "final:hello world",
                                           "eou@540"}));
  EXPECT_EQ(rec.audio_messages.load(), sent);
  EXPECT_EQ(rec.last_call_id, "call-1");
}

TEST(Providers, CancelledStreamClosesWithCancelled) {
  testing::FakeRecognizer rec;
  testing::FakeProviderServer srv(&rec);
  providers::ChannelPool pool;
  providers::ProviderTarget target{"asr", srv.address(), false, "", 5000ms, {}, "", ""};
  boost::asio::io_context io;
  auto busy = boost::asio::make_work_guard(io);  // events arrive from gRPC's threads
  bool closed = false;
  providers::StreamStatus st;
  providers::AsrEvents ev;
  ev.closed = [&](const providers::StreamStatus& s) {
    st = s;
    closed = true;
  };
  auto stream = open_asr(
      pool, target, config_for("call-2"),
      [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); }, ev);
  EXPECT_TRUE(stream->send_audio(frame_of(0)));
  stream->cancel();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!closed && std::chrono::steady_clock::now() < until) io.run_for(10ms);
  ASSERT_TRUE(closed);
  EXPECT_EQ(st.code, providers::StreamStatus::kCancelled);
  EXPECT_FALSE(stream->send_audio(frame_of(0)));  // nothing more goes out
}

/// An agent stream over real gRPC to the fake speech agent, its events on `io`.
struct AgentRig {
  explicit AgentRig(testing::FakeSpeechAgent* agent) : srv(agent) {
    providers::AgentEvents ev;
    ev.closed = [this](const providers::StreamStatus& s) {
      status = s;
      closed_at = std::chrono::steady_clock::now();
      closed = true;
    };
    agent::v1::AgentConfig cfg;
    cfg.mutable_call()->set_call_id("call-4");
    cfg.mutable_output_format()->set_sample_rate_hz(16000);
    stream = clients->open_agent(
        target, cfg, [this](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); },
        std::move(ev), 50);
  }
  bool wait_closed(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!closed && std::chrono::steady_clock::now() < until) io.run_for(10ms);
    return closed;
  }
  static agent::v1::AgentRequest mark(std::uint64_t id) {
    agent::v1::AgentRequest m;
    m.mutable_event()->set_mark_played(id);
    return m;
  }

  testing::FakeProviderServer srv;
  std::shared_ptr<providers::ChannelPool> pool = std::make_shared<providers::ChannelPool>();
  std::shared_ptr<providers::ProviderClients> clients = providers::grpc_clients(pool);
  providers::ProviderTarget target{"agent", srv.address(), false, "", 0ms, {}, "", ""};
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> busy =
      boost::asio::make_work_guard(io);
  std::shared_ptr<providers::AgentStream> stream;
  bool closed = false;
  providers::StreamStatus status;
  std::chrono::steady_clock::time_point closed_at;
};

TEST(Providers, AClosedAgentStreamStillDeliversWhatWasQueuedThenEndsCleanly) {
  testing::FakeSpeechAgent agent;
  agent.greeting_ms = 20;
  AgentRig rig(&agent);
  for (std::uint64_t id = 1; id <= 20; ++id) ASSERT_TRUE(rig.stream->send(AgentRig::mark(id)));
  rig.stream->close(5000ms);
  EXPECT_FALSE(rig.stream->send(AgentRig::mark(21)));  // nothing after the close
  ASSERT_TRUE(rig.wait_closed(5s));
  EXPECT_TRUE(rig.status.ok()) << rig.status.message;
  std::vector<std::uint64_t> want(20);
  for (std::uint64_t i = 0; i < 20; ++i) want[i] = i + 1;
  EXPECT_EQ(agent.marks_played(), want);
}

TEST(Providers, AnAgentThatOverstaysItsGraceIsCancelled) {
  testing::FakeSpeechAgent agent;
  agent.greeting_ms = 20;
  agent.linger = true;
  AgentRig rig(&agent);
  ASSERT_TRUE(rig.stream->send(AgentRig::mark(1)));
  const auto t0 = std::chrono::steady_clock::now();
  rig.stream->close(200ms);
  ASSERT_TRUE(rig.wait_closed(5s));
  EXPECT_EQ(rig.status.code, providers::StreamStatus::kCancelled);
  EXPECT_GE(rig.closed_at - t0, 200ms);
  EXPECT_EQ(agent.marks_played(), (std::vector<std::uint64_t>{1}));
}

TEST(Providers, ThePoolWaitsUntilEveryStreamOnItsChannelsHasLetGo) {
  testing::FakeRecognizer rec;
  testing::FakeProviderServer srv(&rec);
  providers::ChannelPool pool;
  providers::ProviderTarget target{"asr", srv.address(), false, "", 5000ms, {}, "", ""};
  pool.get(target);
  EXPECT_TRUE(pool.wait_unused(0ms));  // nothing but the pool holds it
  boost::asio::io_context io;
  auto busy = boost::asio::make_work_guard(io);
  bool closed = false;
  providers::AsrEvents ev;
  ev.closed = [&](const providers::StreamStatus&) { closed = true; };
  auto stream = open_asr(
      pool, target, config_for("call-3"),
      [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); }, ev);
  ASSERT_TRUE(stream->send_audio(frame_of(0)));
  // A live stream holds the channel: the wait gives up after its timeout.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(pool.wait_unused(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  // Cancelled, its closing posted and run, and the last handle gone: the channel is free.
  stream->cancel();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!closed && std::chrono::steady_clock::now() < until) io.run_for(10ms);
  ASSERT_TRUE(closed);
  EXPECT_FALSE(pool.wait_unused(0ms));  // our handle still holds the stream
  stream.reset();
  EXPECT_TRUE(pool.wait_unused(2000ms));
}

TEST(Providers, PausedReadsHoldTheProviderBackAndLoseNothing) {
  // 100 s of synthesized audio (5,000 messages of 20 ms, 3.2 MB) asked for while reads are
  // paused: the provider gets no further than HTTP/2 flow control lets it; once reads resume,
  // every message arrives in order and the final status comes after the last one.
  testing::FakeSynthesizer tts;
  tts.word_ms = 200;
  testing::FakeProviderServer srv(&tts);
  providers::ChannelPool pool;
  providers::ProviderTarget target{"tts", srv.address(), false, "", 20000ms, {}, "", ""};
  using Tts = providers::BidiStream<tts::v1::SynthesizeRequest, tts::v1::SynthesizeResponse>;
  boost::asio::io_context io;
  auto busy = boost::asio::make_work_guard(io);
  tts::v1::SynthesizeRequest first;
  first.mutable_config()->mutable_format()->set_encoding(common::v1::LINEAR16);
  first.mutable_config()->mutable_format()->set_sample_rate_hz(16000);
  auto stub =
      std::shared_ptr<tts::v1::Synthesizer::Stub>(tts::v1::Synthesizer::NewStub(pool.get(target)));
  int audio = 0, done_ms = -1;
  bool closed = false, audio_after_close = false;
  grpc::Status st;
  auto stream = Tts::start(
      [stub](grpc::ClientContext* c, Tts::Reactor* r) { stub->async()->StreamingSynthesize(c, r); },
      stub, target, std::move(first),
      [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); },
      [&](tts::v1::SynthesizeResponse& r) {
        if (closed) audio_after_close = true;
        if (r.has_chunk_done()) done_ms = static_cast<int>(r.chunk_done().audio_ms());
        if (!r.audio().empty()) {
          EXPECT_EQ(r.audio().size(), 640u);
          ++audio;
        }
      },
      [&](const grpc::Status& s) {
        st = s;
        closed = true;
      },
      8);
  stream->pause_reads();
  tts::v1::SynthesizeRequest text;
  text.mutable_text()->set_chunk_id(1);
  std::string words;
  for (int i = 0; i < 500; ++i) words += "word ";
  text.mutable_text()->set_text(words);
  ASSERT_TRUE(stream->send(std::move(text)));
  stream->finish();
  io.run_for(1500ms);
  EXPECT_LE(audio, 2);  // at most the read that was under way
  EXPECT_FALSE(closed);
  // The provider is held back by the 256 KiB stream window (400 messages), plus what its own
  // transport buffers.
  EXPECT_LT(tts.audio_written.load(), 1000);
  const int written_while_paused = tts.audio_written.load();
  stream->resume_reads();
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!closed && std::chrono::steady_clock::now() < until) io.run_for(10ms);
  ASSERT_TRUE(closed);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(audio_after_close);
  EXPECT_EQ(audio, 5000);
  EXPECT_EQ(done_ms, 100000);
  std::printf("provider wrote %d of 5000 messages while reads were paused\n", written_while_paused);
}

}  // namespace
}  // namespace voxbridge
