// What the speech backends' integration tests share (tests/integration/*_test.cpp that place
// calls against a vendor's mock): the caller's audio, a call's plan, the call's events and the
// server's metrics as the HTTP API gives them, and what the caller heard.
// Thread: the test's. Header-only.
#pragma once

#include <algorithm>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/http_client.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge::testing {

/// The caller at 8 kHz: `lead_s` of silence, then for each turn `voice_s` of voice and `gap_s`
/// of silence.
inline std::vector<std::int16_t> caller(double lead_s,
                                        std::vector<std::pair<double, double>> turns) {
  auto a = silence(8000, lead_s);
  for (const auto& [voice_s, gap_s] : turns) {
    append(a, voice(8000, voice_s));
    append(a, silence(8000, gap_s));
  }
  return a;
}

/// A G.711 mu-law call of `audio` to `port`, hung up at its end.
inline sim::CallPlan ulaw_call(unsigned short port, std::vector<std::int16_t> audio) {
  using namespace std::chrono_literals;
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse("ulaw");
  p.audio = std::move(audio);
  p.tail = 0ms;
  p.hangup_at_end = true;
  p.max_duration = 30s;
  p.uuid = sim::random_uuid();
  return p;
}

/// The call's events (GET /v1/calls/UUID/events), once it has ended (3 s at most).
inline std::string events_of(const RunningServer& s, const sim::CallPlan& p) {
  using namespace std::chrono_literals;
  namespace http = boost::beast::http;
  std::string body;
  for (int i = 0; i < 100 && body.find("\"ended\":true") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(30ms);
    body = http_request(s.server.http_port(), http::verb::get,
                        "/v1/calls/" + std::string(p.uuid->text().data()) + "/events")
               .second;
  }
  return body;
}

inline std::string metrics_of(const RunningServer& s) {
  return http_request(s.server.http_port(), boost::beast::http::verb::get, "/metrics").second;
}

inline bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

inline std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

/// Milliseconds of the reply whose 20 ms blocks are loud (RMS over 1000): a mock's tone.
inline double tone_ms(const sim::CallResult& r) {
  const int rate = r.reply_rate_hz();
  const std::size_t block = static_cast<std::size_t>(rate / 50);
  double ms = 0;
  for (std::size_t i = 0; i + block <= r.received.size(); i += block) {
    double e = 0;
    for (std::size_t k = i; k < i + block; ++k) e += double(r.received[k]) * r.received[k];
    if (std::sqrt(e / double(block)) > 1000) ms += 20;
  }
  return ms;
}

/// The caller's audio as a mu-law leg carried it: each sample through mu-law and back.
inline std::vector<std::int16_t> as_carried(const std::vector<std::int16_t>& audio) {
  std::vector<std::int16_t> out(audio.size());
  for (std::size_t i = 0; i < audio.size(); ++i) {
    out[i] = audio::ulaw_to_linear(audio::linear_to_ulaw(audio[i]));
  }
  return out;
}

/// True if `part` is a non-empty contiguous run of `whole`.
template <class T>
bool is_run_of(const std::vector<T>& part, const std::vector<T>& whole) {
  return !part.empty() &&
         std::search(whole.begin(), whole.end(), part.begin(), part.end()) != whole.end();
}

}  // namespace voxbridge::testing
