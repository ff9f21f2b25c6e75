#include "report.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace voxbridge::loadgen {
namespace {

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

double per_call(double value, std::uint64_t calls) {
  return calls == 0 ? 0.0 : value / static_cast<double>(calls);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_ms(const Histogram& h) {
  std::ostringstream o;
  o << "{\"count\": " << h.count() << ", \"p50\": " << fixed(ms(h.percentile(50)), 3)
    << ", \"p99\": " << fixed(ms(h.percentile(99)), 3) << ", \"max\": " << fixed(ms(h.max()), 3)
    << "}";
  return o.str();
}

std::string table_ms(const Histogram& h) {
  return "p50 " + fixed(ms(h.percentile(50)), 3) + " ms   p99 " + fixed(ms(h.percentile(99)), 3) +
         " ms   max " + fixed(ms(h.max()), 3) + " ms   (n=" + std::to_string(h.count()) + ")";
}

/// What server CPU and RSS are divided by: the calls that were up (with churn, the concurrent
/// calls, not every call placed).
std::uint64_t calls_up(const RunResult& r) {
  return r.options.call_seconds > 0 ? r.options.calls : r.totals.calls_connected;
}

std::string per_call_stats(const PerCall& p) {
  if (p.calls == 0) return "none";
  return "mean " + fixed(p.mean(), 1) + " (min " + std::to_string(p.min) + ", max " +
         std::to_string(p.max) + ")";
}

std::string json_per_call(const PerCall& p) {
  std::ostringstream o;
  o << "{\"calls\": " << p.calls << ", \"mean\": " << fixed(p.mean(), 2)
    << ", \"min\": " << (p.calls ? p.min : 0) << ", \"max\": " << p.max << "}";
  return o.str();
}

}  // namespace

void print_table(std::ostream& out, const RunResult& r) {
  const Totals& t = r.totals;
  const Options& o = r.options;
  const std::uint64_t calls = calls_up(r);
  out << "voxbridge-load: " << o.calls << " calls to " << o.host << ":" << o.port << ", "
      << o.threads << " thread(s), ramp " << fixed(o.ramp_calls_per_s, 0) << " calls/s, warmup "
      << fixed(o.warmup_s, 1) << " s, steady window " << fixed(r.window_s, 1) << " s\n";
  out << "  machine            " << r.machine << "; load average " << fixed(r.load_before, 2)
      << " before, " << fixed(r.load_after, 2) << " after\n";
  out << "  machine CPU        " << fixed(r.machine_busy_percent, 1)
      << " % of one core busy over the window (softirq " << fixed(r.softirq_percent, 1)
      << " % of it), of which not server or us " << fixed(r.other_percent, 1)
      << " %; other processes " << fixed(r.disturbance_percent, 1) << " %";
  for (const auto& [name, percent] : r.top_others) out << ", " << name << " " << fixed(percent, 1);
  out << "; kernel threads " << fixed(r.kernel_threads_percent, 1) << " %; steal "
      << fixed(r.steal_percent, 1) << " %\n";
  out << "  calls              " << t.calls_connected << " connected, " << t.total_failures()
      << " failed";
  if (t.total_failures() > 0) {
    out << " (";
    for (std::size_t i = 0; i < kFailureKinds; ++i) {
      out << (i ? ", " : "") << failure_name(static_cast<Failure>(i)) << " " << t.failures[i];
    }
    out << ")";
  }
  out << "\n";
  for (const auto& e : t.first_errors) out << "    e.g. " << e << "\n";
  if (o.call_seconds > 0) {
    out << "  churn              calls of " << fixed(o.call_seconds, 1)
        << " s +-20 %: " << t.calls_completed << " completed (hung up by us), connects failed "
        << t.failures[static_cast<std::size_t>(Failure::connect)] << " (refused "
        << t.connects_refused << ")\n";
    out << "  per completed call sent " << per_call_stats(t.completed_sent) << " frames, received "
        << per_call_stats(t.completed_received) << "\n";
    out << "  calls with drops   " << t.calls_with_drops << " (most in one call "
        << t.max_dropped_in_call << ")\n";
  }
  out << "  frames             sent " << t.frames_sent << ", received " << t.frames_received
      << ", expected " << t.frames_expected << ", dropped " << t.frames_dropped << " ("
      << t.frames_dropped_inside << " inside calls, the rest at the window's edges)";
  if (t.frames_skipped > 0) out << ", send skipped " << t.frames_skipped;
  if (t.odd_frames > 0) out << ", not 320 B slin8 " << t.odd_frames;
  out << "\n";
  out << "  underruns          " << t.underrun_frames << " silent frames during speech\n";
  out << "  |gap - 20 ms|      " << table_ms(t.jitter) << "   (kernel receive stamps)\n";
  out << "    read after       " << table_ms(t.read_delay) << "   (load generator)\n";
  if (t.reply.count() > 0 || t.replies_missed > 0) {
    out << "  reply after speech " << table_ms(t.reply) << "\n";
    out << "                     replies missed " << t.replies_missed
        << ", speech ended over the agent's voice (not timed) " << t.replies_over_agent << "\n";
  }
  out << "  echo latency       " << table_ms(t.latency) << "\n";
  out << "    at marker onset  " << table_ms(t.onset_latency) << "\n";
  out << "                     markers sent " << t.markers_sent << ", returned "
      << t.markers_returned << ", lost " << t.markers_lost << "\n";
  out << "  send lateness      " << table_ms(t.send_lateness) << "   (load generator)\n";
  if (r.server) {
    const ServerUsage& s = *r.server;
    out << "  server CPU         " << fixed(s.cpu_percent, 1) << " % of one core (user "
        << fixed(s.user_percent, 1) << ", system " << fixed(s.system_percent, 1)
        << ") = " << fixed(per_call(s.cpu_percent, calls), 4) << " % per call   [pid " << s.pid
        << "]\n";
    out << "  server RSS         " << s.rss_before_kib << " KiB before, " << s.rss_end_kib
        << " at window end, " << s.rss_max_kib << " max = "
        << fixed(per_call(static_cast<double>(s.rss_max_kib - s.rss_before_kib), calls), 1)
        << " KiB per call\n";
  }
  out << "  load generator CPU " << fixed(r.own_cpu_percent, 1)
      << " % of one core = " << fixed(per_call(r.own_cpu_percent, calls), 4) << " % per call\n";
}

bool write_json(const std::string& path, const RunResult& r, std::string& error) {
  const Totals& t = r.totals;
  const Options& o = r.options;
  const std::uint64_t calls = calls_up(r);
  std::ostringstream j;
  j << "{\n";
  j << "  \"tool\": \"voxbridge-load\",\n";
  j << "  \"target\": " << json_string(o.host + ":" + std::to_string(o.port)) << ",\n";
  j << "  \"calls\": " << o.calls << ",\n";
  j << "  \"threads\": " << o.threads << ",\n";
  j << "  \"ramp_calls_per_s\": " << o.ramp_calls_per_s << ",\n";
  j << "  \"warmup_s\": " << o.warmup_s << ",\n";
  j << "  \"window_s\": " << fixed(r.window_s, 3) << ",\n";
  j << "  \"machine\": " << json_string(r.machine) << ",\n";
  j << "  \"load_average_1m\": {\"before\": " << fixed(r.load_before, 2)
    << ", \"after\": " << fixed(r.load_after, 2) << "},\n";
  j << "  \"machine_cpu_percent\": {\"busy\": " << fixed(r.machine_busy_percent, 2)
    << ", \"not_server_or_loadgen\": " << fixed(r.other_percent, 2)
    << ", \"kernel_threads\": " << fixed(r.kernel_threads_percent, 2)
    << ", \"disturbance\": " << fixed(r.disturbance_percent, 2) << ", \"top_others\": {";
  for (std::size_t i = 0; i < r.top_others.size(); ++i) {
    j << (i ? ", " : "") << json_string(r.top_others[i].first) << ": "
      << fixed(r.top_others[i].second, 2);
  }
  j << "}"
    << ", \"softirq\": " << fixed(r.softirq_percent, 2)
    << ", \"steal\": " << fixed(r.steal_percent, 2) << "},\n";
  j << "  \"calls_connected\": " << t.calls_connected << ",\n";
  if (o.call_seconds > 0) {
    j << "  \"churn\": {\"call_seconds\": " << o.call_seconds
      << ", \"calls_completed\": " << t.calls_completed
      << ", \"connects_failed\": " << t.failures[static_cast<std::size_t>(Failure::connect)]
      << ", \"connects_refused\": " << t.connects_refused
      << ", \"calls_with_drops\": " << t.calls_with_drops
      << ", \"max_dropped_in_call\": " << t.max_dropped_in_call
      << ", \"frames_sent_per_completed_call\": " << json_per_call(t.completed_sent)
      << ", \"frames_received_per_completed_call\": " << json_per_call(t.completed_received)
      << "},\n";
  }
  j << "  \"failures\": {\"total\": " << t.total_failures();
  for (std::size_t i = 0; i < kFailureKinds; ++i) {
    j << ", " << json_string(failure_name(static_cast<Failure>(i))) << ": " << t.failures[i];
  }
  j << "},\n";
  j << "  \"errors\": [";
  for (std::size_t i = 0; i < t.first_errors.size(); ++i) {
    j << (i ? ", " : "") << json_string(t.first_errors[i]);
  }
  j << "],\n";
  j << "  \"frames\": {\"sent\": " << t.frames_sent << ", \"received\": " << t.frames_received
    << ", \"expected\": " << t.frames_expected << ", \"dropped\": " << t.frames_dropped
    << ", \"dropped_inside\": " << t.frames_dropped_inside
    << ", \"send_skipped\": " << t.frames_skipped << ", \"not_slin8_320\": " << t.odd_frames
    << "},\n";
  j << "  \"underrun_frames\": " << t.underrun_frames << ",\n";
  j << "  \"jitter_ms\": " << json_ms(t.jitter) << ",\n";
  j << "  \"read_delay_ms\": " << json_ms(t.read_delay) << ",\n";
  j << "  \"latency_ms\": " << json_ms(t.latency) << ",\n";
  j << "  \"reply_ms\": " << json_ms(t.reply) << ",\n";
  j << "  \"replies_missed\": " << t.replies_missed << ",\n";
  j << "  \"replies_over_agent\": " << t.replies_over_agent << ",\n";
  j << "  \"onset_latency_ms\": " << json_ms(t.onset_latency) << ",\n";
  j << "  \"markers\": {\"sent\": " << t.markers_sent << ", \"returned\": " << t.markers_returned
    << ", \"lost\": " << t.markers_lost << "},\n";
  j << "  \"send_lateness_ms\": " << json_ms(t.send_lateness) << ",\n";
  if (r.server) {
    const ServerUsage& s = *r.server;
    j << "  \"server\": {\"pid\": " << s.pid << ", \"cpu_percent\": " << fixed(s.cpu_percent, 2)
      << ", \"user_percent\": " << fixed(s.user_percent, 2)
      << ", \"system_percent\": " << fixed(s.system_percent, 2)
      << ", \"cpu_percent_per_call\": " << fixed(per_call(s.cpu_percent, calls), 5)
      << ", \"rss_kib_before\": " << s.rss_before_kib << ", \"rss_kib_end\": " << s.rss_end_kib
      << ", \"rss_kib_max\": " << s.rss_max_kib << ", \"rss_kib_per_call\": "
      << fixed(per_call(static_cast<double>(s.rss_max_kib - s.rss_before_kib), calls), 2) << "},\n";
  } else {
    j << "  \"server\": null,\n";
  }
  j << "  \"load_generator\": {\"cpu_percent\": " << fixed(r.own_cpu_percent, 2)
    << ", \"cpu_percent_per_call\": " << fixed(per_call(r.own_cpu_percent, calls), 5) << "}\n";
  j << "}\n";
  std::ofstream f(path);
  f << j.str();
  f.close();
  if (!f) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

bool write_stamps(const std::string& path, const RunResult& r, std::string& error) {
  std::ofstream f(path);
  if (!f) {
    error = "cannot write " + path;
    return false;
  }
  const auto ns = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  };
  f << "{\"window_start_ns\": " << ns(r.window_start) << ", \"window_end_ns\": " << ns(r.window_end)
    << ",\n \"calls\": [";
  bool first = true;
  for (const auto& c : r.totals.stamps) {
    f << (first ? "\n" : ",\n") << "  {\"uuid\": \"" << c.uuid << "\", \"voice\": [";
    for (std::size_t i = 0; i < c.voice.size(); ++i) f << (i ? "," : "") << c.voice[i];
    f << "], \"reply\": [";
    for (std::size_t i = 0; i < c.reply.size(); ++i) f << (i ? "," : "") << c.reply[i];
    f << "]}";
    first = false;
  }
  f << "\n ]}\n";
  if (!f) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace voxbridge::loadgen
