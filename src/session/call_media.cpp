#include "voxbridge/session/call_media.hpp"

#include <algorithm>
#include <cstring>

namespace voxbridge::session {

using audiosocket::Kind;

std::string_view codec_mode_name(CodecMode m) {
  switch (m) {
    case CodecMode::auto_detect:
      return "auto";
    case CodecMode::slin:
      return "slin";
    case CodecMode::ulaw:
      return "ulaw";
    case CodecMode::alaw:
      return "alaw";
  }
  return "?";
}

std::string_view leg_codec_name(LegCodec c) {
  switch (c) {
    case LegCodec::unknown:
      return "none";
    case LegCodec::slin:
      return "slin";
    case LegCodec::ulaw:
      return "ulaw";
    case LegCodec::alaw:
      return "alaw";
  }
  return "?";
}

namespace {
playout::Playout::Options playout_options(const MediaOptions& o) {
  playout::Playout::Options p;
  p.rate_hz = o.internal_rate_hz;
  p.capacity = o.playout_capacity;
  p.low_watermark = o.playout_low_watermark;
  p.high_watermark = o.playout_high_watermark;
  return p;
}
}  // namespace

CallMedia::CallMedia(const MediaOptions& options, std::unique_ptr<agent::Agent> agent)
    : options_(options), agent_(std::move(agent)), playout_(playout_options(options)) {
  leg_.out_rs.emplace(options_.internal_rate_hz, leg_.rate, options_.resampler_quality, false);
  size_buffers(leg_.rate);
}

void CallMedia::size_buffers(int leg_rate_hz) {
  const std::size_t leg = static_cast<std::size_t>(leg_rate_hz) / 50;
  const std::size_t internal = static_cast<std::size_t>(options_.internal_rate_hz) / 50;
  // Resamplers may hand out a couple of samples more than the exact ratio on a given call.
  const std::size_t slack = 8;
  const std::size_t tx_words = (audiosocket::kHeaderBytes + 2 * (leg + slack) + 1) / 2;
  const std::size_t total = leg + (internal + slack) + internal + (leg + slack) + tx_words;
  buf_.block.reset(new std::int16_t[total]);
  std::int16_t* p = buf_.block.get();
  buf_.leg_chunk = {p, leg};
  p += leg;
  buf_.internal_chunk = {p, internal + slack};
  p += internal + slack;
  buf_.out_internal = {p, internal};
  p += internal;
  buf_.out_leg = {p, leg + slack};
  p += leg + slack;
  // Bytes may alias int16 storage (unsigned char access is always allowed).
  buf_.tx = {reinterpret_cast<std::uint8_t*>(p), audiosocket::kHeaderBytes + 2 * (leg + slack)};
}

CallMedia::~CallMedia() {
  end("call destroyed");
}

void CallMedia::start(Clock::time_point now, const agent::CallInfo& info) {
  started_ = true;
  playout_.start(now);
  if (agent_) agent_->on_start(*this, info);
}

bool CallMedia::set_format(Kind kind, std::size_t payload_bytes, std::string& why) {
  LegCodec codec = LegCodec::slin;
  int rate = audiosocket::rate_hz(kind);
  if (kind == Kind::slin8) {
    switch (options_.codec) {
      case CodecMode::slin:
        break;
      case CodecMode::ulaw:
        codec = LegCodec::ulaw;
        break;
      case CodecMode::alaw:
        codec = LegCodec::alaw;
        break;
      case CodecMode::auto_detect:
        // 20 ms of G.711 is 160 bytes (30 ms: 240); 20 ms of slin8 is 320 (30 ms: 480).
        if (payload_bytes == 160 || payload_bytes == 240) {
          codec = options_.auto_law == audio::G711Law::ulaw ? LegCodec::ulaw : LegCodec::alaw;
        } else if (payload_bytes != 320 && payload_bytes != 480) {
          format_note_ = "codec=auto: first 0x10 frame has " + std::to_string(payload_bytes) +
                         " bytes, neither 20/30 ms of G.711 (160/240) nor of slin8 (320/480); "
                         "treating the call as slin8. Set codec= on the listener if that is "
                         "wrong (Opus and other codecs cannot be decoded: dial with c(slin16))";
        }
        break;
    }
  }
  if (codec != LegCodec::slin) rate = 8000;
  if (rate == 0) {
    why = "unsupported audio kind";
    return false;
  }
  const bool changed = leg_.codec != LegCodec::unknown;
  if (changed) ++stats_.format_changes;
  leg_.codec = codec;
  leg_.in_kind = kind;
  // Replies are slin, in the kind the caller's audio uses; a G.711 leg gets slin8 as 0x10
  // (Asterisk reads 0x10 as slin whatever the leg's codec is).
  leg_.reply_kind = codec == LegCodec::slin ? kind : Kind::slin8;
  const int reply_rate = audiosocket::rate_hz(leg_.reply_kind);
  leg_.in_rate = rate;
  leg_.in_rs.emplace(rate, options_.internal_rate_hz, options_.resampler_quality, true);
  if (reply_rate != leg_.rate || !leg_.out_rs) {
    leg_.rate = reply_rate;
    leg_.out_rs.emplace(options_.internal_rate_hz, leg_.rate, options_.resampler_quality, false);
  }
  // The inbound chunk is 20 ms of the inbound rate, which may differ from the reply rate only
  // on G.711 legs (both 8 kHz then).
  if (static_cast<std::size_t>(std::max(rate, leg_.rate)) / 50 != buf_.leg_chunk.size()) {
    size_buffers(std::max(rate, leg_.rate));
  }
  return true;
}

bool CallMedia::on_audio(Kind kind, std::span<const std::uint8_t> payload, std::string& why) {
  if (ended_) return true;
  if (leg_.codec == LegCodec::unknown || kind != leg_.in_kind) {
    if (!set_format(kind, payload.size(), why)) return false;
  }
  ++stats_.frames_in;
  const bool g711 = leg_.codec == LegCodec::ulaw || leg_.codec == LegCodec::alaw;
  const std::size_t bytes_per_sample = g711 ? 1 : 2;
  if (!g711 && (payload.size() & 1) != 0) ++stats_.odd_payloads;
  const std::size_t total = payload.size() / bytes_per_sample;
  // 20 ms of the leg at a time: the resampled chunk always fits buf_.internal_chunk.
  const std::size_t max_chunk = buf_.leg_chunk.size();
  for (std::size_t done = 0; done < total;) {
    const std::size_t n = std::min(total - done, max_chunk);
    std::span<std::int16_t> chunk = buf_.leg_chunk.first(n);
    if (leg_.codec == LegCodec::ulaw) {
      audio::ulaw_decode(payload.subspan(done, n), chunk);
    } else if (leg_.codec == LegCodec::alaw) {
      audio::alaw_decode(payload.subspan(done, n), chunk);
    } else {
      const std::uint8_t* p = payload.data() + done * 2;
      for (std::size_t i = 0; i < n; ++i) {
        chunk[i] = static_cast<std::int16_t>(p[2 * i] | p[2 * i + 1] << 8);  // little-endian
      }
    }
    if (agent_) agent_->on_leg_audio(chunk, leg_.in_rate);
    const std::size_t m = leg_.in_rs->process(chunk, buf_.internal_chunk);
    if (rec_ && m > 0) rec_->caller({buf_.internal_chunk.data(), m});
    if (agent_ && m > 0) agent_->on_audio({buf_.internal_chunk.data(), m});
    done += n;
  }
  return true;
}

std::size_t CallMedia::leg_bytes_for(std::chrono::milliseconds frame) const {
  const auto ms = static_cast<std::size_t>(frame.count());
  switch (leg_.codec) {
    case LegCodec::unknown:
      return 0;
    case LegCodec::ulaw:
    case LegCodec::alaw:
      return 8 * ms;
    case LegCodec::slin:
      break;
  }
  return static_cast<std::size_t>(audiosocket::rate_hz(leg_.in_kind)) * ms / 1000 * 2;
}

void CallMedia::on_dtmf(char digit) {
  ++stats_.dtmf_in;
  if (agent_ && !ended_) agent_->on_dtmf(digit);
}

std::span<const std::uint8_t> CallMedia::on_tick(Clock::time_point now) {
  in_tick_ = true;
  const auto msg = next_frame(now);
  in_tick_ = false;
  return msg;
}

std::span<const std::uint8_t> CallMedia::next_frame(Clock::time_point now) {
  if (!started_) return {};
  std::span<std::int16_t> frame = buf_.out_internal.first(playout_.frame_samples());
  const bool audio = playout_.queue().size() > 0;
  if (!playout_.tick(now, frame)) return {};
  played_ = true;
  last_frame_audio_ = audio;
  talkspurt_waiting_ = false;
  if (rec_) {
    rec_->agent(frame);
    rec_->tick();
  }
  if (agent_ && !ended_) agent_->on_tick();
  if (leg_.codec == LegCodec::unknown && !options_.early_silence && playout_.queue().size() == 0) {
    // Nothing heard and nothing to say: the caller's leg format is unknown, so keep quiet.
    return {};
  }
  const std::size_t n = leg_.out_rs->process(frame, buf_.out_leg);
  std::uint8_t* p = buf_.tx.data() + audiosocket::kHeaderBytes;
  for (std::size_t i = 0; i < n; ++i) {
    const auto s = static_cast<std::uint16_t>(buf_.out_leg[i]);
    p[2 * i] = static_cast<std::uint8_t>(s & 0xFF);
    p[2 * i + 1] = static_cast<std::uint8_t>(s >> 8);
  }
  if (n == 0) return {};
  audiosocket::encode_header(leg_.reply_kind, 2 * n,
                             std::span<std::uint8_t, audiosocket::kHeaderBytes>(buf_.tx.data(), 3));
  ++stats_.frames_out;
  return {buf_.tx.data(), audiosocket::kHeaderBytes + 2 * n};
}

void CallMedia::end(std::string_view reason) {
  if (ended_) return;
  ended_ = true;
  if (agent_ && started_) agent_->on_end(reason);
}

bool CallMedia::hangup_due() const {
  return hangup_req_.requested && (!hangup_req_.after_playout || playout_.queue().size() == 0);
}

std::string_view CallMedia::agent_state() const {
  if (agent_) {
    if (auto st = agent_->state(); !st.empty()) return st;
  }
  return playout_.queue().size() > 0 ? "speaking" : "listening";
}

MediaStats CallMedia::stats() const {
  MediaStats s = stats_;
  s.late_ticks = playout_.pacer().late_ticks();
  s.underruns = playout_.underruns();
  return s;
}

std::size_t CallMedia::play(std::span<const std::int16_t> samples) {
  const bool silent = played_ && !in_tick_ && !last_frame_audio_ && playout_.queue().size() == 0;
  const std::size_t n = playout_.push(samples);
  if (silent && n > 0 && !talkspurt_waiting_ && on_talkspurt_) {
    talkspurt_waiting_ = true;
    on_talkspurt_();
  }
  return n;
}

void CallMedia::flush() {
  playout_.flush();
}

void CallMedia::hangup(std::string_view reason, bool after_playout) {
  if (hangup_req_.requested) return;
  hangup_req_.requested = true;
  hangup_req_.after_playout = after_playout;
  hangup_req_.reason = reason;
}

}  // namespace voxbridge::session
