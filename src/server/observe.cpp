// What the server shows of itself: totals, the Prometheus exposition, live calls, readiness.
#include <dirent.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <future>

#include "voxbridge/asr_deepgram/backend.hpp"
#include "voxbridge/asr_openai/backend.hpp"
#include "voxbridge/asr_vosk/backend.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/realtime_gemini/backend.hpp"
#include "voxbridge/realtime_openai/backend.hpp"
#include "voxbridge/riva/backend.hpp"
#include "voxbridge/server/server.hpp"
#include "voxbridge/tools/tools.hpp"
#include "voxbridge/tts_elevenlabs/backend.hpp"
#include "voxbridge/tts_openai/backend.hpp"

namespace voxbridge::server {

namespace asio = boost::asio;

namespace {

using metrics::Histogram;
using session::SessionCounters;

struct ProcessFacts {
  double resident_bytes = 0;
  double open_fds = 0;
};

ProcessFacts process_facts() {
  ProcessFacts f;
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (statm >> pages_total >> pages_resident) {
    f.resident_bytes =
        static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    long n = 0;
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    f.open_fds = static_cast<double>(n - 1);  // minus the directory being read
  }
  return f;
}

}  // namespace

Totals Server::totals() const {
  Totals t;
  for (const auto& tc : thread_counters_) {
    for (std::size_t l = 0; l < cfg_.listeners.size(); ++l) {
      const SessionCounters& c = tc->listeners[l];
      t.started += c.started.value();
      for (const auto& e : c.ended) t.ended += e.value();
      t.no_uuid += c.no_uuid.value();
      for (const auto& b : c.bad_input) t.bad_input += b.value();
      t.frames_in += c.frames_in.value();
      t.frames_out += c.frames_out.value();
      t.send_drops += c.send_drops.value();
      t.late_ticks += c.late_ticks.value();
      t.underruns += c.underruns.value();
      t.unregistered += c.unregistered.value();
    }
  }
  for (std::size_t r = 0; r < kRejections; ++r) t.rejected[r] = rejected_[r].value();
  return t;
}

std::string Server::not_ready() const {
  if (draining_.load()) return "draining";
  return health_.down();
}

std::string Server::metrics_text() const {
  metrics::Writer w;
  const std::size_t nl = cfg_.listeners.size();
  // Sums one counter of every thread for listener `l`.
  auto sum = [&](std::size_t l, auto get) {
    double v = 0;
    for (const auto& tc : thread_counters_) v += static_cast<double>(get(tc->listeners[l]));
    return v;
  };
  auto per_listener = [&](std::string_view name, std::string_view type, std::string_view help,
                          auto get) {
    w.family(name, type, help);
    for (std::size_t l = 0; l < nl; ++l) {
      w.sample(name, {{"listener", cfg_.listeners[l].name}}, sum(l, get));
    }
  };

  w.family("voxbridge_up", "gauge", "1 while the process serves.");
  w.sample("voxbridge_up", 1);
  w.family("voxbridge_ready", "gauge", "1 when ready for calls (the same as /readyz).");
  w.sample("voxbridge_ready", not_ready().empty() ? 1 : 0);
  w.family("voxbridge_uptime_seconds", "gauge", "Seconds since the server started.");
  w.sample("voxbridge_uptime_seconds",
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count());

  per_listener("voxbridge_calls_active", "gauge", "Calls whose UUID arrived and that still run.",
               [](const SessionCounters& c) { return c.up.value(); });
  per_listener("voxbridge_calls_started_total", "counter", "Calls whose UUID arrived.",
               [](const SessionCounters& c) { return c.started.value(); });
  w.family("voxbridge_calls_ended_total", "counter", "Calls ended, by who or what ended them.");
  for (std::size_t l = 0; l < nl; ++l) {
    for (std::size_t e = 0; e < session::kEndCauses; ++e) {
      w.sample("voxbridge_calls_ended_total",
               {{"listener", cfg_.listeners[l].name},
                {"reason", session::end_cause_name(static_cast<session::EndCause>(e))}},
               sum(l, [e](const SessionCounters& c) { return c.ended[e].value(); }));
    }
  }
  per_listener("voxbridge_connections_no_uuid_total", "counter",
               "Connections closed by the peer before sending a UUID.",
               [](const SessionCounters& c) { return c.no_uuid.value(); });
  w.family("voxbridge_input_errors_total", "counter",
           "Connections closed for bad input, by reason (malformed frames, no UUID in time, "
           "unusable audio).");
  for (std::size_t l = 0; l < nl; ++l) {
    for (std::size_t e = 1; e < session::kInputErrors; ++e) {
      w.sample("voxbridge_input_errors_total",
               {{"listener", cfg_.listeners[l].name},
                {"reason", session::input_error_name(static_cast<session::InputError>(e))}},
               sum(l, [e](const SessionCounters& c) { return c.bad_input[e].value(); }));
    }
  }
  w.family("voxbridge_connections_rejected_total", "counter",
           "Connections refused before a call started, by reason.");
  for (std::size_t r = 0; r < kRejections; ++r) {
    w.sample("voxbridge_connections_rejected_total",
             {{"reason", rejection_name(static_cast<Rejection>(r))}},
             static_cast<double>(rejected_[r].value()));
  }
  double unregistered = 0;
  for (std::size_t l = 0; l < nl; ++l) {
    unregistered += sum(l, [](const SessionCounters& c) { return c.unregistered.value(); });
  }
  w.sample("voxbridge_connections_rejected_total", {{"reason", "unregistered"}}, unregistered);
  w.family("voxbridge_accept_errors_total", "counter",
           "Accepts that failed (out of file descriptors...) and were retried after a pause, by "
           "listener (\"http\" = the HTTP API).");
  for (std::size_t l = 0; l < nl && l < listeners_.size(); ++l) {
    w.sample("voxbridge_accept_errors_total", {{"listener", cfg_.listeners[l].name}},
             static_cast<double>(listeners_[l]->accept_errors()));
  }
  if (http_) {
    w.sample("voxbridge_accept_errors_total", {{"listener", "http"}},
             static_cast<double>(http_->accept_errors()));
    w.family("voxbridge_http_connections_refused_total", "counter",
             "HTTP API connections refused: http_max_connections were open.");
    w.sample("voxbridge_http_connections_refused_total",
             static_cast<double>(http_->connections_refused()));
    w.family("voxbridge_http_connections_evicted_total", "counter",
             "Idle API connections closed at http_max_connections to serve a new one.");
    w.sample("voxbridge_http_connections_evicted_total",
             static_cast<double>(http_->connections_evicted()));
  }

  per_listener("voxbridge_frames_received_total", "counter", "Audio frames from Asterisk.",
               [](const SessionCounters& c) { return c.frames_in.value(); });
  per_listener("voxbridge_frames_sent_total", "counter", "Audio frames sent to Asterisk.",
               [](const SessionCounters& c) { return c.frames_out.value(); });
  per_listener("voxbridge_frames_dropped_total", "counter",
               "Frames due but not sent because Asterisk was not reading.",
               [](const SessionCounters& c) { return c.send_drops.value(); });
  per_listener("voxbridge_late_ticks_total", "counter",
               "Pacing ticks that came late (a frame sent later than its 20 ms slot).",
               [](const SessionCounters& c) { return c.late_ticks.value(); });
  per_listener("voxbridge_underruns_total", "counter",
               "Frames filled with silence because the agent's audio ran out mid-reply.",
               [](const SessionCounters& c) { return c.underruns.value(); });
  per_listener("voxbridge_dtmf_received_total", "counter", "DTMF digits from Asterisk.",
               [](const SessionCounters& c) { return c.dtmf_in.value(); });

  w.family("voxbridge_sockets", "gauge", "AudioSocket connections by state.");
  double hs = 0, up = 0, cl = 0;
  for (std::size_t l = 0; l < nl; ++l) {
    hs += sum(l, [](const SessionCounters& c) { return c.handshaking.value(); });
    up += sum(l, [](const SessionCounters& c) { return c.up.value(); });
    cl += sum(l, [](const SessionCounters& c) { return c.closing.value(); });
  }
  w.sample("voxbridge_sockets", {{"state", "handshake"}}, hs);
  w.sample("voxbridge_sockets", {{"state", "call"}}, up);
  w.sample("voxbridge_sockets", {{"state", "closing"}}, cl);

  // Agents: turn phases and providers, summed over threads and listeners.
  auto merged = [&](auto get) {
    Histogram::Snapshot h;
    for (const auto& tc : thread_counters_) {
      for (std::size_t l = 0; l < nl; ++l) h.merge(get(tc->listeners[l].agent));
    }
    return h;
  };
  auto agent_sum = [&](auto get) {
    double v = 0;
    for (const auto& tc : thread_counters_) {
      for (std::size_t l = 0; l < nl; ++l) v += static_cast<double>(get(tc->listeners[l].agent));
    }
    return v;
  };
  using metrics::AgentCounters;
  w.family("voxbridge_turns_total", "counter", "Agent turns (replies) completed or cut.");
  w.sample("voxbridge_turns_total",
           agent_sum([](const AgentCounters& a) { return a.turns.value(); }));
  w.family("voxbridge_barge_ins_total", "counter", "Replies cut by the caller speaking.");
  w.sample("voxbridge_barge_ins_total",
           agent_sum([](const AgentCounters& a) { return a.barge_ins.value(); }));
  w.family("voxbridge_fallbacks_total", "counter",
           "Calls that played the fallback prompt because providers failed.");
  w.sample("voxbridge_fallbacks_total",
           agent_sum([](const AgentCounters& a) { return a.fallbacks.value(); }));
  w.family("voxbridge_agent_tokens_total", "counter",
           "Model tokens speech-to-speech agents reported using, read (input) and written "
           "(output).");
  w.sample("voxbridge_agent_tokens_total", {{"direction", "input"}},
           agent_sum([](const AgentCounters& a) { return a.input_tokens.value(); }));
  w.sample("voxbridge_agent_tokens_total", {{"direction", "output"}},
           agent_sum([](const AgentCounters& a) { return a.output_tokens.value(); }));
  w.family("voxbridge_agent_audio_seconds_total", "counter",
           "Audio speech-to-speech agents reported: caller audio they took (input), audio they "
           "sent back (output).");
  w.sample("voxbridge_agent_audio_seconds_total", {{"direction", "input"}},
           agent_sum([](const AgentCounters& a) { return a.input_audio_ms.value(); }) / 1000);
  w.sample("voxbridge_agent_audio_seconds_total", {{"direction", "output"}},
           agent_sum([](const AgentCounters& a) { return a.output_audio_ms.value(); }) / 1000);
  w.family("voxbridge_turn_phase_seconds", "histogram",
           "One phase of a turn: speech end -> ASR final (asr), -> LLM first token (llm), -> "
           "TTS first audio (tts), -> first frame sent to the caller on its tick (playout).");
  w.histogram("voxbridge_turn_phase_seconds", {{"phase", "asr"}},
              merged([](const AgentCounters& a) -> const Histogram& { return a.asr_final; }));
  w.histogram("voxbridge_turn_phase_seconds", {{"phase", "llm"}},
              merged([](const AgentCounters& a) -> const Histogram& { return a.llm_first_token; }));
  w.histogram("voxbridge_turn_phase_seconds", {{"phase", "tts"}},
              merged([](const AgentCounters& a) -> const Histogram& { return a.tts_first_audio; }));
  w.histogram("voxbridge_turn_phase_seconds", {{"phase", "playout"}},
              merged([](const AgentCounters& a) -> const Histogram& { return a.first_frame; }));
  w.family("voxbridge_voice_to_voice_seconds", "histogram",
           "Caller's end of speech -> the agent's first reply frame.");
  w.histogram("voxbridge_voice_to_voice_seconds", {},
              merged([](const AgentCounters& a) -> const Histogram& { return a.voice_to_voice; }));
  w.family("voxbridge_first_agent_audio_seconds", "histogram",
           "Call start (UUID) -> the agent's first audio.");
  w.histogram(
      "voxbridge_first_agent_audio_seconds", {},
      merged([](const AgentCounters& a) -> const Histogram& { return a.first_agent_audio; }));
  w.family("voxbridge_barge_in_reaction_seconds", "histogram",
           "Caller starts speaking over the agent -> the agent's audio is cut.");
  w.histogram("voxbridge_barge_in_reaction_seconds", {},
              merged([](const AgentCounters& a) -> const Histogram& { return a.barge_in; }));

  const auto names = metrics::provider_slots().names();
  w.family("voxbridge_provider_streams_total", "counter", "gRPC streams opened, by provider.");
  for (std::size_t i = 0; i < names.size(); ++i) {
    w.sample("voxbridge_provider_streams_total", {{"provider", names[i]}},
             agent_sum([i](const AgentCounters& a) { return a.providers[i].streams.value(); }));
  }
  w.family("voxbridge_provider_errors_total", "counter",
           "gRPC streams that ended with an error, by provider.");
  for (std::size_t i = 0; i < names.size(); ++i) {
    w.sample("voxbridge_provider_errors_total", {{"provider", names[i]}},
             agent_sum([i](const AgentCounters& a) { return a.providers[i].errors.value(); }));
  }
  w.family("voxbridge_provider_latency_seconds", "histogram",
           "Time to the provider's first useful answer in a turn, by provider.");
  for (std::size_t i = 0; i < names.size(); ++i) {
    w.histogram(
        "voxbridge_provider_latency_seconds", {{"provider", names[i]}},
        merged([i](const AgentCounters& a) -> const Histogram& { return a.providers[i].latency; }));
  }

  {
    std::uint64_t ticks = 0, posted = 0;
    for (const auto& c : clocks_) ticks += c->tick_errors();
    for (const auto& m : mailboxes_) posted += m->errors();
    w.family("voxbridge_call_errors_total", "counter",
             "Calls ended because their tick or a provider callback threw, by where.");
    w.sample("voxbridge_call_errors_total", {{"where", "tick"}}, static_cast<double>(ticks));
    w.sample("voxbridge_call_errors_total", {{"where", "callback"}}, static_cast<double>(posted));
  }

  if (control_) {
    const auto& c = control_->counters();
    w.family("voxbridge_control_connected", "gauge", "1 while the AMI/ARI connection is up.");
    w.sample("voxbridge_control_connected", control_->connected() ? 1 : 0);
    w.family("voxbridge_control_actions_total", "counter",
             "Agent actions on calls (transfer, DTMF, variables, originate), by result.");
    w.sample("voxbridge_control_actions_total", {{"result", "ok"}},
             static_cast<double>(c.actions_ok.load()));
    w.sample("voxbridge_control_actions_total", {{"result", "denied"}},
             static_cast<double>(c.actions_denied.load()));
    w.sample("voxbridge_control_actions_total", {{"result", "failed"}},
             static_cast<double>(c.actions_failed.load()));
    w.family("voxbridge_control_reconnects_total", "counter", "AMI/ARI reconnections.");
    w.sample("voxbridge_control_reconnects_total", static_cast<double>(c.reconnects.load()));
  } else {
    // Without a control path the only action that reaches Asterisk is a noted transfer.
    w.family("voxbridge_control_actions_total", "counter",
             "Agent actions on calls (transfer, DTMF, variables, originate), by result.");
    w.sample("voxbridge_control_actions_total", {{"result", "denied"}},
             static_cast<double>(actions_.denied_without_control->load()));
  }

  if (builtin_ && builtin_->tts_engine() != nullptr) {
    const auto t = builtin_->tts_engine()->stats();
    w.family("voxbridge_builtin_tts_syntheses_total", "counter",
             "Texts the built-in TTS (Flite) synthesized.");
    w.sample("voxbridge_builtin_tts_syntheses_total", static_cast<double>(t.syntheses));
    w.family("voxbridge_builtin_tts_cache_hits_total", "counter",
             "Texts the built-in TTS answered from its cache of recent audio.");
    w.sample("voxbridge_builtin_tts_cache_hits_total", static_cast<double>(t.cache_hits));
    w.family("voxbridge_builtin_tts_cache_bytes", "gauge", "Audio held in that cache.");
    w.sample("voxbridge_builtin_tts_cache_bytes", static_cast<double>(t.cached_bytes));
  }
  if (!realtime_.empty()) {
    w.family("voxbridge_realtime_sessions", "gauge",
             "OpenAI Realtime sessions open now, by backend ([realtime-NAME]).");
    for (const auto& b : realtime_) {
      w.sample("voxbridge_realtime_sessions", {{"backend", b->options().name}},
               static_cast<double>(b->sessions()));
    }
    w.family("voxbridge_realtime_sessions_total", "counter",
             "OpenAI Realtime sessions by outcome: opened, refused (max_sessions), failed (the "
             "call got the fallback), reconnected (a broken socket reopened once).");
    for (const auto& b : realtime_) {
      const auto& c = b->counters();
      const std::string& n = b->options().name;
      w.sample("voxbridge_realtime_sessions_total", {{"backend", n}, {"outcome", "opened"}},
               static_cast<double>(c.sessions_opened.load()));
      w.sample("voxbridge_realtime_sessions_total", {{"backend", n}, {"outcome", "refused"}},
               static_cast<double>(c.sessions_refused.load()));
      w.sample("voxbridge_realtime_sessions_total", {{"backend", n}, {"outcome", "failed"}},
               static_cast<double>(c.sessions_failed.load()));
      w.sample("voxbridge_realtime_sessions_total", {{"backend", n}, {"outcome", "reconnected"}},
               static_cast<double>(c.reconnects.load()));
    }
    w.family("voxbridge_realtime_service_errors_total", "counter",
             "error events from the service that the session survived.");
    for (const auto& b : realtime_) {
      w.sample("voxbridge_realtime_service_errors_total", {{"backend", b->options().name}},
               static_cast<double>(b->counters().service_errors.load()));
    }
  }
  if (!gemini_.empty()) {
    w.family("voxbridge_gemini_sessions", "gauge",
             "Gemini Live sessions open now, by backend ([gemini-NAME]).");
    for (const auto& b : gemini_) {
      w.sample("voxbridge_gemini_sessions", {{"backend", b->options().name}},
               static_cast<double>(b->sessions()));
    }
    w.family("voxbridge_gemini_sessions_total", "counter",
             "Gemini Live sessions by outcome: opened, refused (max_sessions), failed (the call "
             "got the fallback), resumed (a new socket went on with the call after goAway or a "
             "break).");
    for (const auto& b : gemini_) {
      const auto& c = b->counters();
      const std::string& n = b->options().name;
      w.sample("voxbridge_gemini_sessions_total", {{"backend", n}, {"outcome", "opened"}},
               static_cast<double>(c.sessions_opened.load()));
      w.sample("voxbridge_gemini_sessions_total", {{"backend", n}, {"outcome", "refused"}},
               static_cast<double>(c.sessions_refused.load()));
      w.sample("voxbridge_gemini_sessions_total", {{"backend", n}, {"outcome", "failed"}},
               static_cast<double>(c.sessions_failed.load()));
      w.sample("voxbridge_gemini_sessions_total", {{"backend", n}, {"outcome", "resumed"}},
               static_cast<double>(c.resumptions.load()));
    }
  }
  if (!deepgram_.empty()) {
    w.family("voxbridge_deepgram_sockets", "gauge",
             "Deepgram sockets open now (one per call, kept between its utterances), by "
             "recognizer ([deepgram-NAME]).");
    for (const auto& b : deepgram_) {
      w.sample("voxbridge_deepgram_sockets", {{"recognizer", b->options().name}},
               static_cast<double>(b->sessions()));
    }
    w.family("voxbridge_deepgram_events_total", "counter",
             "Deepgram recognizers: sockets opened, refused (max_sessions) and failed; "
             "utterances, and those on a socket the call already had open; finalize timeouts "
             "(an utterance closed without Deepgram's last results); keepalives sent; malformed "
             "messages.");
    for (const auto& b : deepgram_) {
      const auto& c = b->counters();
      const std::string& n = b->options().name;
      const std::pair<const char*, std::uint64_t> events[] = {
          {"socket_opened", c.sessions_opened.load()},
          {"socket_refused", c.sessions_refused.load()},
          {"socket_failed", c.sessions_failed.load()},
          {"utterance", c.utterances.load()},
          {"utterance_reused_socket", c.sockets_reused.load()},
          {"finalize_timeout", c.finalize_timeouts.load()},
          {"keepalive", c.keepalives.load()},
          {"malformed", c.malformed.load()},
      };
      for (const auto& [event, value] : events) {
        w.sample("voxbridge_deepgram_events_total", {{"recognizer", n}, {"event", event}},
                 static_cast<double>(value));
      }
    }
    w.family("voxbridge_deepgram_audio_seconds_total", "counter",
             "Caller audio sent to Deepgram (what it bills), on sockets that have closed.");
    for (const auto& b : deepgram_) {
      w.sample("voxbridge_deepgram_audio_seconds_total", {{"recognizer", b->options().name}},
               static_cast<double>(b->counters().audio_ms.load()) / 1000.0);
    }
  }
  if (!elevenlabs_.empty()) {
    w.family("voxbridge_elevenlabs_sockets", "gauge",
             "ElevenLabs sockets open now (one per reply), by voice ([elevenlabs-NAME]).");
    for (const auto& b : elevenlabs_) {
      w.sample("voxbridge_elevenlabs_sockets", {{"voice", b->options().name}},
               static_cast<double>(b->sessions()));
    }
    w.family("voxbridge_elevenlabs_events_total", "counter",
             "ElevenLabs voices: sockets opened, refused (max_sessions) and failed; replies "
             "cancelled (barge-in, hangup); responses dropped while the call paused reads.");
    for (const auto& b : elevenlabs_) {
      const auto& c = b->counters();
      const std::string& n = b->options().name;
      const std::pair<const char*, std::uint64_t> events[] = {
          {"socket_opened", c.sessions_opened.load()},
          {"socket_refused", c.sessions_refused.load()},
          {"socket_failed", c.sessions_failed.load()},
          {"reply_cancelled", c.cancelled.load()},
          {"held_dropped", c.held_dropped.load()},
      };
      for (const auto& [event, value] : events) {
        w.sample("voxbridge_elevenlabs_events_total", {{"voice", n}, {"event", event}},
                 static_cast<double>(value));
      }
    }
    w.family("voxbridge_elevenlabs_characters_total", "counter",
             "Text sent to ElevenLabs (what it bills), in characters.");
    for (const auto& b : elevenlabs_) {
      w.sample("voxbridge_elevenlabs_characters_total", {{"voice", b->options().name}},
               static_cast<double>(b->counters().characters.load()));
    }
  }
  if (!transcription_.empty()) {
    w.family("voxbridge_transcription_events_total", "counter",
             "OpenAI-compatible recognizers ([transcription-NAME]): utterances, refused "
             "(max_sessions), requests sent and failed, utterances gated (too little speech), "
             "answers dropped (no words, a known hallucination), audio over max_utterance; "
             "connections opened and requests on a kept-alive one.");
    for (const auto& b : transcription_) {
      const auto& c = b->counters();
      const auto h = b->http_counters();
      const std::pair<const char*, std::uint64_t> events[] = {
          {"utterance", c.utterances.load()},
          {"refused", c.refused.load()},
          {"request", c.requests.load()},
          {"failed", c.failed.load()},
          {"gated", c.gated.load()},
          {"dropped_empty", c.dropped_empty.load()},
          {"dropped_phrase", c.dropped_phrases.load()},
          {"audio_dropped", c.dropped_audio.load()},
          {"connection", h.connections_opened},
          {"reused", h.reused},
      };
      for (const auto& [event, value] : events) {
        w.sample("voxbridge_transcription_events_total",
                 {{"recognizer", b->options().name}, {"event", event}}, static_cast<double>(value));
      }
    }
    w.family("voxbridge_transcription_audio_seconds_total", "counter",
             "Caller audio sent for transcription (what a hosted service bills).");
    for (const auto& b : transcription_) {
      w.sample("voxbridge_transcription_audio_seconds_total", {{"recognizer", b->options().name}},
               static_cast<double>(b->counters().audio_ms.load()) / 1000.0);
    }
  }
  if (!speech_.empty()) {
    w.family("voxbridge_speech_events_total", "counter",
             "OpenAI-compatible voices ([speech-NAME]): replies, refused (max_sessions), "
             "sentence requests, replies failed and cancelled (barge-in, hangup), sentences "
             "dropped (queue full), responses dropped while the call paused reads; connections "
             "opened and requests on a kept-alive one.");
    for (const auto& b : speech_) {
      const auto& c = b->counters();
      const auto h = b->http_counters();
      const std::pair<const char*, std::uint64_t> events[] = {
          {"reply", c.replies.load()},
          {"refused", c.refused.load()},
          {"request", c.requests.load()},
          {"failed", c.failed.load()},
          {"cancelled", c.cancelled.load()},
          {"text_dropped", c.dropped_text.load()},
          {"held_dropped", c.held_dropped.load()},
          {"connection", h.connections_opened},
          {"reused", h.reused},
      };
      for (const auto& [event, value] : events) {
        w.sample("voxbridge_speech_events_total", {{"voice", b->options().name}, {"event", event}},
                 static_cast<double>(value));
      }
    }
    w.family("voxbridge_speech_characters_total", "counter",
             "Text sent for synthesis (what a hosted service bills), in characters.");
    for (const auto& b : speech_) {
      w.sample("voxbridge_speech_characters_total", {{"voice", b->options().name}},
               static_cast<double>(b->counters().characters.load()));
    }
  }
  if (!vosk_.empty()) {
    w.family("voxbridge_vosk_events_total", "counter",
             "Vosk recognizers ([vosk-NAME]): utterances, refused (max_sessions), failed "
             "(an error other than a cancel), final results with words.");
    for (const auto& b : vosk_) {
      const auto& c = b->counters();
      const std::pair<const char*, std::uint64_t> events[] = {
          {"utterance", c.utterances.load()},
          {"refused", c.refused.load()},
          {"failed", c.failed.load()},
          {"final", c.finals.load()},
      };
      for (const auto& [event, value] : events) {
        w.sample("voxbridge_vosk_events_total",
                 {{"recognizer", b->options().name}, {"event", event}}, static_cast<double>(value));
      }
    }
  }
  if (!riva_.empty()) {
    w.family("voxbridge_riva_events_total", "counter",
             "Riva servers ([riva-NAME]): utterances, replies, sentence RPCs, refused "
             "(max_sessions), failed (an error other than a cancel).");
    for (const auto& b : riva_) {
      const auto& c = b->counters();
      const std::pair<const char*, std::uint64_t> events[] = {
          {"utterance", c.utterances.load()}, {"reply", c.replies.load()},
          {"sentence", c.sentences.load()},   {"refused", c.refused.load()},
          {"failed", c.failed.load()},
      };
      for (const auto& [event, value] : events) {
        w.sample("voxbridge_riva_events_total", {{"server", b->options().name}, {"event", event}},
                 static_cast<double>(value));
      }
    }
    w.family("voxbridge_riva_characters_total", "counter", "Text sent to Riva's voice.");
    for (const auto& b : riva_) {
      w.sample("voxbridge_riva_characters_total", {{"server", b->options().name}},
               static_cast<double>(b->counters().characters.load()));
    }
  }
  if (recorder_) {
    const auto& r = recorder_->stats();
    w.family("voxbridge_recordings_total", "counter", "Calls recorded (started).");
    w.sample("voxbridge_recordings_total", static_cast<double>(r.calls_recorded.load()));
    w.family("voxbridge_recordings_failed_total", "counter",
             "Recordings stopped by a disk error or a full write queue (the call went on).");
    w.sample("voxbridge_recordings_failed_total", static_cast<double>(r.calls_failed.load()));
    w.family("voxbridge_recording_bytes_written_total", "counter", "Bytes of WAV and JSONL.");
    w.sample("voxbridge_recording_bytes_written_total",
             static_cast<double>(r.bytes_written.load()));
    w.family("voxbridge_recording_files_removed_total", "counter", "Files removed by retention.");
    w.sample("voxbridge_recording_files_removed_total",
             static_cast<double>(r.files_removed.load()));
  }
  if (webhooks_) {
    const auto& h = webhooks_->stats();
    w.family("voxbridge_webhooks_total", "counter", "Webhook events, by outcome.");
    w.sample("voxbridge_webhooks_total", {{"outcome", "delivered"}},
             static_cast<double>(h.delivered.load()));
    w.sample("voxbridge_webhooks_total", {{"outcome", "failed"}},
             static_cast<double>(h.failed.load()));
    w.sample("voxbridge_webhooks_total", {{"outcome", "dropped"}},
             static_cast<double>(h.dropped.load()));
    w.family("voxbridge_webhook_retries_total", "counter", "Webhook delivery attempts retried.");
    w.sample("voxbridge_webhook_retries_total", static_cast<double>(h.retries.load()));
  }
  if (tools_) tools_->write_metrics(w);
  const ProcessFacts pf = process_facts();
  w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.sample("process_resident_memory_bytes", pf.resident_bytes);
  w.family("process_open_fds", "gauge", "Number of open file descriptors.");
  w.sample("process_open_fds", pf.open_fds);
  return w.take();
}

std::string Server::status_json(std::chrono::milliseconds timeout) {
  namespace json = boost::json;
  // Each io thread describes its own calls (no locks: the calls are only touched there).
  std::vector<std::future<std::vector<session::CallStatus>>> answers;
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    auto promise = std::make_shared<std::promise<std::vector<session::CallStatus>>>();
    answers.push_back(promise->get_future());
    asio::post(pool_.context(i), [this, i, promise] {
      std::vector<session::CallStatus> out;
      const auto now = std::chrono::steady_clock::now();
      for (const auto& s : calls_[i]) out.push_back(s.status(now));
      promise->set_value(std::move(out));
    });
  }
  json::array calls;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& f : answers) {
    if (f.wait_until(deadline) != std::future_status::ready) continue;
    for (const auto& c : f.get()) {
      calls.push_back(json::object{{"uuid", c.uuid},
                                   {"peer", c.peer},
                                   {"listener", c.listener},
                                   {"codec", c.codec},
                                   {"rate_hz", c.rate_hz},
                                   {"duration_ms", static_cast<std::int64_t>(c.seconds * 1000)},
                                   {"state", c.state},
                                   {"agent", c.agent}});
    }
  }
  return json::serialize(calls) + "\n";
}

std::optional<std::string> Server::events_json(const std::string& uuid, std::size_t from,
                                               std::chrono::milliseconds timeout) {
  struct Found {
    bool live = false;
    std::size_t next = 0;
    std::vector<std::string> events;
  };
  // The call lives on one io thread: each looks among its own calls (no locks).
  std::vector<std::future<Found>> answers;
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    auto promise = std::make_shared<std::promise<Found>>();
    answers.push_back(promise->get_future());
    asio::post(pool_.context(i), [this, i, promise, uuid, from] {
      Found f;
      for (const auto& s : calls_[i]) {
        if (s.uuid() != uuid) continue;
        f.live = true;
        f.next = s.events_from(from, f.events);
        break;
      }
      promise->set_value(std::move(f));
    });
  }
  // The events are JSON objects already: spliced in as they are.
  auto answer = [&](const Found& f, bool ended) {
    return events::events_response(uuid, ended, f.next, f.events);
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& fut : answers) {
    if (fut.wait_until(deadline) != std::future_status::ready) continue;
    Found f = fut.get();
    if (f.live) return answer(f, false);
  }
  // Ended in the last minute: the whole transcript, end included.
  Found f;
  if (auto next = ended_.events_from(uuid, from, f.events)) {
    f.next = *next;
    return answer(f, true);
  }
  return std::nullopt;
}

}  // namespace voxbridge::server
