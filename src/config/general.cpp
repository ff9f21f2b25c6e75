// [general], [listener-NAME], [recording] and [webhook]: their options, one table each.
#include <algorithm>
#include <iterator>
#include <sstream>

#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;

const int kRates[] = {8000, 12000, 16000, 24000, 32000, 44100, 48000};

void set_log_level(GeneralConfig& g, W w, V v) {
  static const char* levels[] = {"trace", "debug", "info", "warning", "error", "off"};
  if (std::find(std::begin(levels), std::end(levels), lower(v)) == std::end(levels)) {
    w.fail("'" + v + "' is not one of trace, debug, info, warning, error, off");
  }
  g.log_level = lower(v);
}

void set_internal_rate(GeneralConfig& g, W w, V v) {
  const auto r = parse_small(w, v, 8000, 48000);
  if (std::find(std::begin(kRates), std::end(kRates), r) == std::end(kRates)) {
    w.fail("'" + v + "' is not one of 8000, 12000, 16000, 24000, 32000, 44100, 48000");
  }
  g.internal_rate_hz = r;
}

const Key<GeneralConfig> kGeneral[] = {
    {"threads", [](GeneralConfig& g, W w, V v) { g.threads = parse_size(w, v, 0, 256); }},
    {"realtime_priority",
     [](GeneralConfig& g, W w, V v) { g.realtime_priority = parse_small(w, v, 0, 99); }},
    {"log_level", set_log_level},
    {"log_format",
     [](GeneralConfig& g, W w, V v) {
       if (lower(v) != "text" && lower(v) != "json") w.fail("'" + v + "' is not text or json");
       g.log_format = lower(v);
     }},
    {"internal_rate", set_internal_rate},
    {"resampler_quality",
     [](GeneralConfig& g, W w, V v) { g.resampler_quality = parse_small(w, v, 0, 10); }},
    {"max_calls", [](GeneralConfig& g, W w, V v) { g.max_calls = parse_size(w, v, 1, 1000000); }},
    {"max_payload_bytes",
     [](GeneralConfig& g, W w, V v) { g.limits.max_payload_bytes = parse_size(w, v, 160, 65535); }},
    {"handshake_timeout_ms",
     [](GeneralConfig& g, W w, V v) { g.limits.handshake_timeout = parse_ms(w, v, 100, 600000); }},
    {"idle_timeout_ms",
     [](GeneralConfig& g, W w, V v) { g.limits.idle_timeout = parse_ms(w, v, 0, 86400000); }},
    {"max_call_duration_s",
     [](GeneralConfig& g, W w, V v) {
       g.limits.max_call_duration = std::chrono::seconds(parse_int(w, v, 0, 7 * 86400));
     }},
    {"send_buffer_bytes",
     [](GeneralConfig& g, W w, V v) {
       g.limits.send_buffer_bytes = parse_size(w, v, 0, 16 * 1024 * 1024);
     }},
    {"hangup_grace_ms",
     [](GeneralConfig& g, W w, V v) { g.limits.close_grace = parse_ms(w, v, 0, 60000); }},
    {"drain_timeout_s",
     [](GeneralConfig& g, W w, V v) { g.drain_timeout = parse_s(w, v, 0, 86400); }},
    {"playout_buffer_ms",
     [](GeneralConfig& g, W w, V v) { g.playout_buffer = parse_ms(w, v, 100, 60000); }},
    {"playout_low_watermark_ms",
     [](GeneralConfig& g, W w, V v) { g.playout_low_watermark = parse_ms(w, v, 0, 60000); }},
    {"playout_high_watermark_ms",
     [](GeneralConfig& g, W w, V v) { g.playout_high_watermark = parse_ms(w, v, 20, 60000); }},
    {"early_silence", [](GeneralConfig& g, W w, V v) { g.early_silence = parse_bool(w, v); }},
    {"read_on_tick", [](GeneralConfig& g, W w, V v) { g.read_on_tick = parse_bool(w, v); }},
    {"tick_alignment", [](GeneralConfig& g, W w, V v) { g.tick_alignment = parse_bool(w, v); }},
    {"tick_alignment_margin_ms",
     [](GeneralConfig& g, W w, V v) { g.tick_alignment_margin = parse_ms(w, v, 0, 15); }},
    {"http_listen",
     [](GeneralConfig& g, W w, V v) {
       std::string host;
       unsigned short port = 0;
       parse_host_port(w, v, host, port);
       g.http_listen = v;
     }},
    {"http_token",
     [](GeneralConfig& g, W w, V v) {
       g.http_token = expand_env(w, v);
       if (g.http_token.size() < 16) w.fail("too short: use at least 16 characters");
     }},
    {"http_max_connections",
     [](GeneralConfig& g, W w, V v) { g.http_max_connections = parse_size(w, v, 1, 10000); }},
    {"provider_check_interval_s",
     [](GeneralConfig& g, W w, V v) { g.provider_check_interval = parse_s(w, v, 0, 3600); }},
    {"builtin_asr_decoders",
     [](GeneralConfig& g, W w, V v) { g.builtin_asr_decoders = parse_size(w, v, 1, 256); }},
    {"builtin_tts_cache_mb",
     [](GeneralConfig& g, W w, V v) { g.builtin_tts_cache_mb = parse_size(w, v, 0, 4096); }},
};

const Key<ListenerConfig> kListener[] = {
    {"bind", [](ListenerConfig& l, W w, V v) { parse_host_port(w, v, l.host, l.port); }},
    {"codec", [](ListenerConfig& l, W w, V v) { l.codec = parse_codec(w, v); }},
    {"g711",
     [](ListenerConfig& l, W w, V v) {
       const std::string x = lower(v);
       if (x == "ulaw") {
         l.g711 = audio::G711Law::ulaw;
       } else if (x == "alaw") {
         l.g711 = audio::G711Law::alaw;
       } else {
         w.fail("'" + v + "' is not ulaw or alaw");
       }
     }},
    {"agent", [](ListenerConfig& l, W, V v) { l.agent = v; }},
    {"allow",
     [](ListenerConfig& l, W w, V v) {
       try {
         l.allow = access::CidrSet::parse(v);
       } catch (const std::invalid_argument& e) {
         w.fail(e.what());
       }
     }},
    {"max_calls_per_peer",
     [](ListenerConfig& l, W w, V v) { l.peer_limits.max_calls = parse_size(w, v, 0, 1000000); }},
    {"connect_rate",
     [](ListenerConfig& l, W w, V v) {
       l.peer_limits.rate_per_second = static_cast<double>(parse_int(w, v, 0, 100000));
     }},
    {"connect_burst",
     [](ListenerConfig& l, W w, V v) {
       l.peer_limits.burst = static_cast<double>(parse_int(w, v, 1, 100000));
     }},
    {"require_registration",
     [](ListenerConfig& l, W w, V v) { l.require_registration = parse_bool(w, v); }},
};

const Key<RecordingConfig> kRecording[] = {
    {"directory", [](RecordingConfig& r, W, V v) { r.directory = v; }},
    {"record", [](RecordingConfig& r, W w, V v) { r.record = parse_bool(w, v); }},
    {"audio", [](RecordingConfig& r, W w, V v) { r.audio = parse_bool(w, v); }},
    {"transcript", [](RecordingConfig& r, W w, V v) { r.transcript = parse_bool(w, v); }},
    {"max_age_days", [](RecordingConfig& r, W w,
                        V v) { r.max_age = std::chrono::hours(24 * parse_int(w, v, 0, 36500)); }},
    {"max_total_mb",
     [](RecordingConfig& r, W w, V v) {
       r.max_total_bytes = static_cast<std::uint64_t>(parse_int(w, v, 0, 100000000)) << 20;
     }},
    {"queue_blocks",
     [](RecordingConfig& r, W w, V v) { r.queue_blocks = parse_size(w, v, 4, 1000000); }},
};

using webhooks::WebhookOptions;

void set_webhook_events(WebhookOptions& o, W w, V v) {
  o.events.clear();
  std::stringstream in(v);
  std::string e;
  while (std::getline(in, e, ',')) {
    e = trim(e);
    if (e != "call_started" && e != "call_ended" && e != "action") {
      w.fail("'" + e + "' is not one of call_started, call_ended, action");
    }
    o.events.insert(e);
  }
}

const Key<WebhookOptions> kWebhook[] = {
    {"url",
     [](WebhookOptions& o, W w, V v) {
       o.url = expand_env(w, v);
       check_http_url(w, o.url);
     }},
    {"secret", [](WebhookOptions& o, W w, V v) { o.secret = expand_env(w, v); }},
    {"events", set_webhook_events},
    {"timeout_ms", [](WebhookOptions& o, W w, V v) { o.timeout = parse_ms(w, v, 100, 600000); }},
    {"max_attempts",
     [](WebhookOptions& o, W w, V v) { o.max_attempts = parse_small(w, v, 1, 100); }},
    {"backoff_ms", [](WebhookOptions& o, W w, V v) { o.backoff = parse_ms(w, v, 10, 600000); }},
    {"queue", [](WebhookOptions& o, W w, V v) { o.queue_limit = parse_size(w, v, 1, 1000000); }},
    {"ca_file", [](WebhookOptions& o, W, V v) { o.ca_file = v; }},
    {"verify_tls", [](WebhookOptions& o, W w, V v) { o.verify_tls = parse_bool(w, v); }},
};

}  // namespace

void set_general(GeneralConfig& g, const Where& w, const std::string& v) {
  if (!set_key(kGeneral, g, w, v)) w.fail("unknown option");
}

void set_listener(ListenerConfig& l, const Where& w, const std::string& v) {
  if (!set_key(kListener, l, w, v)) w.fail("unknown option");
}

void set_recording(RecordingConfig& r, const Where& w, const std::string& v) {
  if (!set_key(kRecording, r, w, v)) w.fail("unknown option");
}

void set_webhook(webhooks::WebhookOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kWebhook, o, w, v)) w.fail("unknown option");
}

}  // namespace voxbridge::config::detail
