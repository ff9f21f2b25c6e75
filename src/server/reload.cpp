// What a reload may change, and applying it (Server::reload). A running process cannot change
// where it listens, its threads, the in-process providers' existence, the recorder, the
// webhook sender, the control path or the HTTP API; everything else read once at start must be
// unchanged too, so that a reload never says "reloaded" while an old value stays in force.
// Runs on the caller's thread (the HTTP API's or a signal handler's).
#include "voxbridge/server/routing.hpp"
#include "voxbridge/server/server.hpp"

namespace voxbridge::server {

namespace {

/// Why `next` cannot replace `now` without a restart; empty if it can.
std::string reload_refusal(const config::Config& now, const config::Config& next,
                           bool builtin_running) {
  auto differs = [](const char* what) {
    return std::string(what) + " cannot change without a restart";
  };
  if (next.listeners.size() != now.listeners.size()) return differs("the listeners");
  for (std::size_t i = 0; i < now.listeners.size(); ++i) {
    const auto& a = now.listeners[i];
    const auto& b = next.listeners[i];
    if (a.name != b.name || a.host != b.host || a.port != b.port) {
      return differs("the listeners (names and addresses)");
    }
  }
  if (uses_builtin_providers(next) && !builtin_running)
    return differs("starting the built-in providers");
  if (next.recording.enabled != now.recording.enabled ||
      next.recording.directory != now.recording.directory) {
    return differs("[recording] directory");
  }
  if (next.webhook.url != now.webhook.url || next.webhook.secret != now.webhook.secret) {
    return differs("[webhook] url and secret");
  }
  if (next.control.mode != now.control.mode) return differs("[control] mode");
  if (next.realtime != now.realtime) return differs("[realtime-*] (the backends' sessions)");
  // The tool runner's TLS contexts, filler audio and rate windows are made once at start.
  if (next.tools != now.tools) return differs("[tool-*]");
  if (next.gemini != now.gemini) return differs("[gemini-*] (the backends' sessions)");
  if (next.deepgram != now.deepgram) return differs("[deepgram-*] (the recognizers' sockets)");
  if (next.elevenlabs != now.elevenlabs) return differs("[elevenlabs-*] (the voices' sockets)");
  if (next.transcription != now.transcription) {
    return differs("[transcription-*] (the recognizers' connections)");
  }
  if (next.speech != now.speech) return differs("[speech-*] (the voices' connections)");
  if (next.vosk != now.vosk) return differs("[vosk-*] (the recognizers' channels)");
  if (next.riva != now.riva) return differs("[riva-*] (the servers' channels)");
  if (next.general.http_listen != now.general.http_listen) return differs("http_listen");
  // Everything else that was read once at start must be unchanged too.
  {
    control::ControlConfig a = now.control;
    control::ControlConfig b = next.control;
    a.allow = b.allow = {};  // the policy is applied at once (below)
    if (a.ami != b.ami) return differs("[ami]");
    if (a.ari != b.ari) return differs("[ari]");
    if (!(a == b)) return differs("[control] (other than the allow_* lists and the caps)");
  }
  const auto& gn = next.general;
  const auto& go = now.general;
  if (gn.threads != go.threads || gn.realtime_priority != go.realtime_priority) {
    return differs("threads and realtime_priority");
  }
  if (gn.internal_rate_hz != go.internal_rate_hz) return differs("internal_rate_hz");
  if (gn.http_max_connections != go.http_max_connections) return differs("http_max_connections");
  if (gn.provider_check_interval != go.provider_check_interval) {
    return differs("provider_check_interval_s");
  }
  if (builtin_running && (gn.builtin_asr_decoders != go.builtin_asr_decoders ||
                          gn.builtin_tts_cache_mb != go.builtin_tts_cache_mb ||
                          next.rules != now.rules || next.openai != now.openai)) {
    return differs(
        "the built-in providers' settings ([rules-*], [intent-*], [openai-*], builtin_*)");
  }
  if (!(next.recording == now.recording)) {
    // Whether a call is recorded (record, audio, transcript) is per call; the recorder's own
    // settings are not.
    auto a = now.recording;
    auto b = next.recording;
    a.record = b.record;
    a.audio = b.audio;
    a.transcript = b.transcript;
    if (!(a == b)) return differs("[recording] (other than record, audio, transcript)");
  }
  if (!(next.webhook == now.webhook)) return differs("[webhook]");
  return {};
}

}  // namespace

bool Server::reload(const config::Config& next, std::string& error) {
  if (std::string why = reload_refusal(cfg_, next, builtin_ != nullptr); !why.empty()) {
    error = std::move(why);
    return false;
  }
  auto snap = std::make_shared<Snapshot>();
  snap->cfg = next;
  try {
    snap->sessions = build_sessions(snap->cfg);
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  for (std::size_t i = 0; i < next.listeners.size(); ++i) {
    admission_.set_limits(i, next.listeners[i].peer_limits);
  }
  // The policy and the token take effect at once, for calls in progress too.
  actions_.policy->set(next.control.allow);
  if (control_) control_->set_policy(next.control.allow);
  actions_.transfers->retain_if([p = actions_.policy->get(),
                                 &ctx = cfg_.control.transfer_context](const std::string& target) {
    return p->check_transfer(target, ctx).empty();  // noted before, no longer allowed: gone
  });
  if (http_) http_->set_token(next.general.http_token);
  {
    std::lock_guard lock(live_mu_);
    live_ = std::move(snap);  // calls in progress keep the configuration they started with
  }
  health_.recheck();  // check the (maybe new) providers now
  return true;
}

}  // namespace voxbridge::server
