#include "voxbridge/sim/sim_call.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/net/error_text.hpp"

namespace voxbridge::sim {

namespace asio = boost::asio;
using asio::ip::tcp;
using audiosocket::Kind;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

std::optional<LegFormat> LegFormat::parse(const std::string& name) {
  LegFormat f;
  if (name == "ulaw" || name == "alaw") {
    f.kind = Kind::slin8;
    f.codec = name == "ulaw" ? Codec::ulaw : Codec::alaw;
    return f;
  }
  static const std::pair<const char*, int> kNames[] = {
      {"slin", 8000},    {"slin8", 8000},    {"slin12", 12000}, {"slin16", 16000},
      {"slin24", 24000}, {"slin32", 32000},  {"slin44", 44100}, {"slin48", 48000},
      {"slin96", 96000}, {"slin192", 192000}};
  for (const auto& [n, rate] : kNames) {
    if (name == n) {
      f.kind = *audiosocket::audio_kind_for_rate(rate);
      return f;
    }
  }
  return std::nullopt;
}

std::string LegFormat::name() const {
  if (codec == Codec::ulaw) return "ulaw";
  if (codec == Codec::alaw) return "alaw";
  return std::string(audiosocket::kind_name(kind));
}

audiosocket::Uuid random_uuid() {
  std::random_device rd;
  audiosocket::Uuid u;
  for (auto& b : u.bytes) b = static_cast<std::uint8_t>(rd());
  u.bytes[6] = static_cast<std::uint8_t>((u.bytes[6] & 0x0F) | 0x40);  // version 4
  u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3F) | 0x80);
  return u;
}

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Shared {
  bool done = false;  // stop sending
  bool reading = true;
};

asio::awaitable<void> reader(tcp::socket& sock, CallResult& r, Clock::time_point t0, Shared& sh,
                             asio::steady_timer& wake) {
  std::vector<std::uint8_t> payload(65535);
  for (;;) {
    std::uint8_t h[3];
    auto [ec, n] = co_await asio::async_read(sock, asio::buffer(h, 3), nothrow);
    if (ec) {
      if (!sh.done) r.server_closed = true;
      break;
    }
    const std::size_t len = static_cast<std::size_t>(h[1]) << 8 | h[2];
    if (len > 0) {
      auto [ec2, n2] = co_await asio::async_read(sock, asio::buffer(payload.data(), len), nothrow);
      if (ec2) {
        if (!sh.done) r.server_closed = true;
        break;
      }
    }
    const auto kind = static_cast<Kind>(h[0]);
    if (kind == Kind::hangup) {
      r.server_sent_hangup = true;
      sh.done = true;
      wake.cancel();
      continue;  // the server closes next
    }
    if (!audiosocket::is_audio(kind)) {
      ++r.non_audio_messages;
      continue;
    }
    if (r.reply_kind && *r.reply_kind != kind) r.reply_kind_changed = true;
    r.reply_kind = kind;
    const double t = ms_since(t0);
    if (r.first_frame_ms < 0) r.first_frame_ms = t;
    r.arrival_ms.push_back(t);
    for (std::size_t i = 0; i + 1 < len; i += 2) {
      r.received.push_back(static_cast<std::int16_t>(payload[i] | payload[i + 1] << 8));
    }
  }
  sh.reading = false;
  sh.done = true;
  wake.cancel();
}

}  // namespace

asio::awaitable<CallResult> run_call(CallPlan plan) {
  CallResult r;
  auto ex = co_await asio::this_coro::executor;
  tcp::socket sock(ex);
  boost::system::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(plan.host, ec), plan.port);
  if (ec) {
    r.error = "bad address " + plan.host;
    co_return r;
  }
  auto [cec] = co_await sock.async_connect(ep, nothrow);
  if (cec) {
    r.error = "connect " + plan.host + ":" + std::to_string(plan.port) + ": " + cec.message();
    co_return r;
  }
  r.connected = true;
  sock.set_option(tcp::no_delay(true), ec);
  const auto t_uuid = Clock::now();
  std::vector<std::uint8_t> msg(3 + 65535);
  auto send = [&](Kind kind, std::span<const std::uint8_t> payload) -> asio::awaitable<bool> {
    const std::size_t n = audiosocket::encode(kind, payload, msg);
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(msg.data(), n), nothrow);
    if (!wec) r.bytes_sent += n;
    co_return !wec;
  };
  if (plan.send_uuid) {
    const audiosocket::Uuid u = plan.uuid ? *plan.uuid : random_uuid();
    co_await send(Kind::uuid, u.bytes);
  }
  Shared sh;
  asio::steady_timer timer(ex);
  asio::co_spawn(ex, reader(sock, r, t_uuid, sh, timer), asio::detached);
  const auto t0 = t_uuid + plan.phase;  // first audio frame

  const int rate = plan.format.rate_hz();
  const auto frame_samples =
      static_cast<std::size_t>(rate) * static_cast<std::size_t>(plan.frame.count()) / 1000;
  const std::size_t total_frames =
      (plan.audio.size() + frame_samples - 1) / frame_samples +
      static_cast<std::size_t>(plan.tail.count() / std::max<long>(1, plan.frame.count()));
  std::vector<std::uint8_t> payload(frame_samples * 2);
  std::vector<std::int16_t> pcm(frame_samples);
  std::size_t next_dtmf = 0;
  auto dtmf = plan.dtmf;
  std::sort(dtmf.begin(), dtmf.end());
  const auto deadline = t0 + plan.max_duration;
  for (std::size_t n = 0; !sh.done; ++n) {
    const auto due = t0 + plan.frame * static_cast<long>(n);
    if (due > deadline) break;
    if (n >= total_frames) {
      if (plan.hangup_at_end) break;
      // Keep streaming silence until the server hangs up, like Asterisk does.
    }
    timer.expires_at(due);
    co_await timer.async_wait(nothrow);
    if (sh.done) break;
    while (next_dtmf < dtmf.size() && t0 + dtmf[next_dtmf].first <= Clock::now()) {
      const auto d = static_cast<std::uint8_t>(dtmf[next_dtmf].second);
      if (!co_await send(Kind::dtmf, {&d, 1})) sh.done = true;
      ++next_dtmf;
    }
    const std::size_t off = n * frame_samples;
    for (std::size_t i = 0; i < frame_samples; ++i) {
      pcm[i] = off + i < plan.audio.size() ? plan.audio[off + i] : std::int16_t{0};
    }
    std::size_t bytes = 0;
    switch (plan.format.codec) {
      case LegFormat::Codec::ulaw:
        audio::ulaw_encode(pcm, payload);
        bytes = frame_samples;
        break;
      case LegFormat::Codec::alaw:
        audio::alaw_encode(pcm, payload);
        bytes = frame_samples;
        break;
      case LegFormat::Codec::slin:
        for (std::size_t i = 0; i < frame_samples; ++i) {
          const auto s = static_cast<std::uint16_t>(pcm[i]);
          payload[2 * i] = static_cast<std::uint8_t>(s & 0xFF);
          payload[2 * i + 1] = static_cast<std::uint8_t>(s >> 8);
        }
        bytes = frame_samples * 2;
        break;
    }
    if (!co_await send(plan.format.kind, {payload.data(), bytes})) break;
    ++r.frames_sent;
  }
  // Hang up like Asterisk: close the socket (FIN). Wait for the reader to see the end.
  if (!sh.done || !r.server_sent_hangup) {
    sh.done = true;
    sock.shutdown(tcp::socket::shutdown_send, ec);
  } else {
    // The server hung up: Asterisk closes right after.
    sock.shutdown(tcp::socket::shutdown_send, ec);
  }
  const auto give_up = Clock::now() + std::chrono::seconds(3);
  while (sh.reading && Clock::now() < give_up) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(nothrow);
  }
  sock.close(ec);
  while (sh.reading) {  // let the reader coroutine observe the close before r goes away
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(nothrow);
  }
  r.duration_ms = ms_since(t_uuid);
  co_return r;
}

CallResult place_call(CallPlan plan) {
  asio::io_context io(1);
  CallResult out;
  asio::co_spawn(io, run_call(std::move(plan)), [&](std::exception_ptr e, CallResult r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        out.error = net::error_text(ex);
      }
      return;
    }
    out = std::move(r);
  });
  io.run();
  return out;
}

GapStats gap_stats(const std::vector<double>& arrival_ms, std::size_t skip_first) {
  GapStats g;
  std::vector<double> gaps;
  for (std::size_t i = skip_first + 1; i < arrival_ms.size(); ++i) {
    gaps.push_back(arrival_ms[i] - arrival_ms[i - 1]);
  }
  if (gaps.empty()) return g;
  std::sort(gaps.begin(), gaps.end());
  auto pct = [&](double p) {
    return gaps[std::min(gaps.size() - 1,
                         static_cast<std::size_t>(p * static_cast<double>(gaps.size())))];
  };
  g.count = gaps.size();
  g.min = gaps.front();
  g.p50 = pct(0.5);
  g.p99 = pct(0.99);
  g.max = gaps.back();
  return g;
}

std::string summary(const CallPlan& plan, const CallResult& r) {
  std::ostringstream o;
  char buf[256];
  if (!r.connected) return "call failed: " + r.error + "\n";
  const GapStats g = gap_stats(r.arrival_ms);
  std::snprintf(buf, sizeof buf, "sent      %llu frames (%s, %lld ms each)\n",
                static_cast<unsigned long long>(r.frames_sent), plan.format.name().c_str(),
                static_cast<long long>(plan.frame.count()));
  o << buf;
  std::snprintf(buf, sizeof buf, "received  %zu frames (%s), %zu samples, first after %.1f ms\n",
                r.arrival_ms.size(),
                r.reply_kind ? std::string(audiosocket::kind_name(*r.reply_kind)).c_str() : "none",
                r.received.size(), r.first_frame_ms);
  o << buf;
  std::snprintf(buf, sizeof buf, "gaps      p50 %.2f ms  p99 %.2f ms  min %.2f ms  max %.2f ms\n",
                g.p50, g.p99, g.min, g.max);
  o << buf;
  const double secs = r.duration_ms / 1000.0;
  std::snprintf(buf, sizeof buf, "rate      %.2f frames/s over %.2f s\n",
                secs > 0 ? static_cast<double>(r.arrival_ms.size()) / secs : 0.0, secs);
  o << buf;
  o << "ended     "
    << (r.server_sent_hangup ? "server sent hangup (0x00)"
        : r.server_closed    ? "server closed the connection"
                             : "caller hung up")
    << "\n";
  if (r.non_audio_messages > 0)
    o << "WARNING   server sent " << r.non_audio_messages << " non-audio message(s)\n";
  if (!r.error.empty()) o << "error     " << r.error << "\n";
  return o.str();
}

}  // namespace voxbridge::sim
