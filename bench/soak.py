#!/usr/bin/env python3
"""Soak test: many concurrent echo calls with call churn for a long time.

Starts voxbridge (echo agent, HTTP API on for /metrics), records the server's baseline file
descriptors and RSS, runs voxbridge-load with --call-seconds (every call hangs up after about
that long and a new one replaces it, so --calls stay up), and samples the server every
--sample-every seconds from /proc and GET /metrics into OUT/samples.csv. After the run it waits
for the calls to drain and checks the descriptors are back to the baseline. Writes
OUT/summary.txt and exits 1 if a target is missed:

  - no failed call (connect errors, refusals, server hangups, I/O errors);
  - no lost frame: voxbridge-load's dropped frames (frames the server owed by elapsed time but
    did not send, per call) and the server's voxbridge_frames_dropped_total are both 0;
  - RSS flat after warm-up: growth from the end of warm-up to the end of the run (means of 3
    samples each) within --max-rss-growth-mb, and the least-squares slope over that part within
    --max-rss-slope (judged only when that part spans 10 minutes or more);
  - every call drained (voxbridge_calls_active 0) and the file descriptors back to baseline.

The 30-minute target (500 calls, 60 s calls):
  bench/soak.py --build build-soak --out /tmp/vb-soak
A short check:
  bench/soak.py --build build-soak --calls 100 --call-seconds 20 --duration 120 \\
      --rss-warmup 30 --out /tmp/vb-soak-short
"""

import argparse
import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
TICKS = os.sysconf("SC_CLK_TCK")

# Prometheus families sampled, summed over their labels: CSV column -> metric name.
METRICS = {
    "calls_active": "voxbridge_calls_active",
    "calls_started": "voxbridge_calls_started_total",
    "calls_ended": "voxbridge_calls_ended_total",
    "rejected": "voxbridge_connections_rejected_total",
    "input_errors": "voxbridge_input_errors_total",
    "frames_received": "voxbridge_frames_received_total",
    "frames_sent": "voxbridge_frames_sent_total",
    "frames_dropped": "voxbridge_frames_dropped_total",
    "late_ticks": "voxbridge_late_ticks_total",
    "underruns": "voxbridge_underruns_total",
    "sockets": "voxbridge_sockets",
    "metrics_rss_bytes": "process_resident_memory_bytes",
    "metrics_open_fds": "process_open_fds",
}
# Below this span after warm-up the RSS slope is shown but not judged (too noisy).
MIN_SLOPE_SPAN_S = 600
COUNTERS = ["calls_started", "calls_ended", "rejected", "input_errors", "frames_received",
            "frames_sent", "frames_dropped", "late_ticks", "underruns"]


def listening(port):
    """True once something listens on 127.0.0.1:port (from /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                return True
    return False


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KIB


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def scrape(http_port):
    """GET /metrics; the families of METRICS summed over their labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    wanted = {name: col for col, name in METRICS.items()}
    out = {col: 0.0 for col in METRICS}
    seen = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name in wanted:
            out[wanted[name]] += float(value)
            seen.add(name)
    missing = set(wanted) - seen
    if missing:
        raise RuntimeError(f"/metrics lacks {', '.join(sorted(missing))}")
    return out


def start_server(args, out):
    conf = out / "soak.conf"
    conf.write_text(
        "[general]\n"
        "log_level = warning\n"
        f"max_calls = {max(4096, 2 * args.calls)}\n"
        f"http_listen = 127.0.0.1:{args.http_port}\n")
    binary = args.server_bin or str(pathlib.Path(args.build) / "src/app/voxbridge")
    cmd = [binary, "--config", str(conf), "--listen", f"127.0.0.1:{args.port}", "--agent", "echo",
           "--threads", str(args.server_threads)]
    log = open(out / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"server exited at start (see {out / 'server.log'})")
        if listening(args.port) and listening(args.http_port):
            return proc, cmd
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"server did not listen on ports {args.port} and {args.http_port}")


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def linear_slope(points):
    """Least-squares slope of (x, y) points; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default="build", help="CMake build directory (default: build)")
    p.add_argument("--server-bin", help="server binary (default: BUILD/src/app/voxbridge)")
    p.add_argument("--calls", type=int, default=500, help="concurrent calls (default 500)")
    p.add_argument("--call-seconds", type=float, default=60,
                   help="mean call length; each call +-20 %% (default 60)")
    p.add_argument("--duration", type=float, default=1800,
                   help="steady window of voxbridge-load, seconds (default 1800)")
    p.add_argument("--ramp", type=float, default=50, help="calls per second at the start")
    p.add_argument("--server-threads", type=int, default=2)
    p.add_argument("--load-threads", type=int, default=1)
    p.add_argument("--port", type=int, default=17101)
    p.add_argument("--http-port", type=int, default=17180)
    p.add_argument("--sample-every", type=float, default=10, help="seconds (default 10)")
    p.add_argument("--rss-warmup", type=float, default=300,
                   help="seconds from the first call after which RSS must stay flat "
                        "(default 300)")
    p.add_argument("--max-rss-growth-mb", type=float, default=4.0,
                   help="allowed RSS growth from warm-up end to the end, MB (default 4)")
    p.add_argument("--max-rss-slope", type=float, default=4.0,
                   help="allowed RSS slope after warm-up, MB/hour (default 4)")
    p.add_argument("--drain-timeout", type=float, default=30,
                   help="seconds to wait for calls and descriptors to go after the run")
    p.add_argument("--out", required=True, help="directory for the CSV, logs and summary")
    args = p.parse_args()

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_bin = pathlib.Path(args.build) / "bench/load/voxbridge-load"
    server, server_cmd = start_server(args, out)
    pid = server.pid
    try:
        # Baseline: after one scrape (the HTTP API's lazily made state exists), nothing in flight.
        scrape(args.http_port)
        time.sleep(1.0)
        base_fds = fd_count(pid)
        base_rss = rss_kib(pid)
        base = scrape(args.http_port)
        print(f"server pid {pid}: {base_fds} fds, RSS {base_rss} KiB at baseline "
              f"(/metrics: {base['metrics_open_fds']:.0f} fds with the scrape's socket)",
              flush=True)

        load_cmd = [str(load_bin), "--to", f"127.0.0.1:{args.port}", "--calls", str(args.calls),
                    "--ramp", str(args.ramp), "--duration", str(args.duration),
                    "--call-seconds", str(args.call_seconds), "--threads", str(args.load_threads),
                    "--server-pid", str(pid), "--json", str(out / "load.json")]
        print("$ " + " ".join(server_cmd), flush=True)
        print("$ " + " ".join(load_cmd), flush=True)
        t0 = time.monotonic()
        with open(out / "load.txt", "w") as table, open(out / "load.progress", "w") as prog:
            load = subprocess.Popen(load_cmd, stdout=table, stderr=prog)
        columns = ["t_s", "phase", "rss_kib", "fds", "cpu_pct", "loadgen_rss_kib"] + list(METRICS)
        samples = []
        csv_file = open(out / "samples.csv", "w", newline="")
        writer = csv.DictWriter(csv_file, fieldnames=columns)
        writer.writeheader()
        last_cpu, last_t = cpu_seconds(pid), t0

        def sample(phase):
            nonlocal last_cpu, last_t
            now = time.monotonic()
            cpu = cpu_seconds(pid)
            row = {"t_s": round(now - t0, 1), "phase": phase, "rss_kib": rss_kib(pid),
                   "fds": fd_count(pid),
                   "cpu_pct": round(100 * (cpu - last_cpu) / max(now - last_t, 1e-3), 1),
                   "loadgen_rss_kib": rss_kib(load.pid) if load.poll() is None else ""}
            last_cpu, last_t = cpu, now
            m = scrape(args.http_port)
            for k, v in m.items():
                row[k] = round(v - base[k]) if k in COUNTERS else round(v)
            samples.append(row)
            writer.writerow(row)
            csv_file.flush()
            return row

        next_sample = t0 + args.sample_every
        while load.poll() is None:
            if server.poll() is not None:
                load.kill()
                load.wait()
                sys.exit(f"server exited during the run (exit {server.returncode}; see "
                         f"{out / 'server.log'})")
            time.sleep(min(1.0, max(0.0, next_sample - time.monotonic())))
            if time.monotonic() >= next_sample and load.poll() is None:
                r = sample("load")
                next_sample += args.sample_every
                print(f"[{r['t_s']:7.1f}s] calls {r['calls_active']:4d} | RSS {r['rss_kib']} KiB"
                      f" | fds {r['fds']} | cpu {r['cpu_pct']:.1f} % | dropped "
                      f"{r['frames_dropped']} late ticks {r['late_ticks']}", flush=True)
        load_rc = load.returncode
        load_end = time.monotonic() - t0

        # Drain: every call gone on the server, then the descriptors back.
        deadline = time.monotonic() + args.drain_timeout
        while True:
            m = scrape(args.http_port)
            if (m["calls_active"] == 0 and m["sockets"] == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        drained = m["calls_active"] == 0 and m["sockets"] == 0
        time.sleep(1.0)
        while fd_count(pid) != base_fds and time.monotonic() < deadline:
            time.sleep(0.5)
        after_fds = fd_count(pid)
        after = sample("after")
        csv_file.close()
        stop_rc = stop_server(server)
        server = None
    finally:
        if server is not None:
            stop_server(server)

    result = json.loads((out / "load.json").read_text()) if (out / "load.json").exists() else {}
    churn = result.get("churn", {})
    frames = result.get("frames", {})
    failures = result.get("failures", {})
    load_rows = [r for r in samples if r["phase"] == "load"]
    warm = [r for r in load_rows if r["t_s"] >= args.rss_warmup]
    lines = []
    ok = True

    def check(label, good, detail):
        nonlocal ok
        ok = ok and good
        lines.append(f"  {'met   ' if good else 'MISSED'} {label}: {detail}")

    lines.append(f"soak: {args.calls} calls of {args.call_seconds:g} s +-20 %, "
                 f"{args.duration:g} s window ({load_end:.0f} s of load), server --threads "
                 f"{args.server_threads}, samples every {args.sample_every:g} s -> "
                 f"{out / 'samples.csv'}")
    active = [r["calls_active"] for r in load_rows if r["t_s"] >= args.calls / args.ramp + 5]
    if active:
        lines.append(f"  calls active (server) min {min(active)} / max {max(active)} "
                     "after the ramp")
    lines.append(f"  calls: {result.get('calls_connected', '?')} placed, "
                 f"{churn.get('calls_completed', '?')} completed, {failures.get('total', '?')} "
                 f"failed (connect {failures.get('connect', '?')}, refused "
                 f"{churn.get('connects_refused', '?')}, server closed "
                 f"{failures.get('closed_by_server', '?')}, server hangup "
                 f"{failures.get('server_hangup', '?')}); server counted "
                 f"{after['calls_started']} started, {after['rejected']} rejected")
    sent_pc = churn.get("frames_sent_per_completed_call", {})
    recv_pc = churn.get("frames_received_per_completed_call", {})
    lines.append(f"  frames per completed call: sent mean {sent_pc.get('mean', '?')} "
                 f"(min {sent_pc.get('min', '?')}, max {sent_pc.get('max', '?')}), received mean "
                 f"{recv_pc.get('mean', '?')} (min {recv_pc.get('min', '?')}, max "
                 f"{recv_pc.get('max', '?')})")
    lines.append(f"  frames in the window: sent {frames.get('sent', '?')}, received "
                 f"{frames.get('received', '?')}, expected {frames.get('expected', '?')}; "
                 f"server: in {after['frames_received']}, out {after['frames_sent']}, late ticks "
                 f"{after['late_ticks']}, underruns {after['underruns']}")
    mc = result.get("machine_cpu_percent", {})
    others = ", ".join(f"{k} {v:g}" for k, v in mc.get("top_others", {}).items())
    others = f" ({others})" if others else ""
    lines.append(f"  machine over the window: {mc.get('busy', '?')} % of a core busy, other work "
                 f"{mc.get('disturbance', '?')} %{others}; server CPU "
                 f"{result.get('server', {}).get('cpu_percent', '?')} %, load generator "
                 f"{result.get('load_generator', {}).get('cpu_percent', '?')} %")

    check("voxbridge-load", load_rc == 0 and bool(result), f"exit {load_rc}")
    check("failed calls", failures.get("total", 1) == 0,
          f"{failures.get('total', '?')} (refused {churn.get('connects_refused', '?')})")
    check("lost frames", frames.get("dropped", 1) == 0,
          f"{frames.get('dropped', '?')} of {frames.get('expected', '?')} expected, in "
          f"{churn.get('calls_with_drops', '?')} call(s) (most in one "
          f"{churn.get('max_dropped_in_call', '?')})")
    check("server send drops", after["frames_dropped"] == 0,
          f"voxbridge_frames_dropped_total {after['frames_dropped']}")
    if len(warm) >= 2:
        head = warm[: min(3, len(warm))]
        tail = load_rows[-min(3, len(warm)):]
        rss_w = sum(r["rss_kib"] for r in head) / len(head) / 1024
        rss_e = sum(r["rss_kib"] for r in tail) / len(tail) / 1024
        slope = linear_slope([(r["t_s"] / 3600, r["rss_kib"] / 1024) for r in warm])
        peak = max(r["rss_kib"] for r in load_rows) / 1024
        lines.append(f"  RSS: baseline {base_rss / 1024:.1f} MB, at warm-up end "
                     f"({args.rss_warmup:g} s) {rss_w:.1f} MB, at the end {rss_e:.1f} MB, peak "
                     f"{peak:.1f} MB, after the run {after['rss_kib'] / 1024:.1f} MB (means of "
                     "up to 3 samples)")
        check("RSS growth after warm-up", rss_e - rss_w <= args.max_rss_growth_mb,
              f"{rss_e - rss_w:+.2f} MB (limit {args.max_rss_growth_mb:g})")
        span = warm[-1]["t_s"] - warm[0]["t_s"]
        detail = (f"{slope:+.2f} MB/hour over {len(warm)} samples, {span:.0f} s "
                  f"(limit {args.max_rss_slope:g})")
        if span >= MIN_SLOPE_SPAN_S:
            check("RSS slope after warm-up", slope <= args.max_rss_slope, detail)
        else:
            lines.append(f"  (not judged: shorter than {MIN_SLOPE_SPAN_S} s) RSS slope after "
                         f"warm-up: {detail}")
    else:
        check("RSS flat", False, f"fewer than 2 samples after the {args.rss_warmup:g} s warm-up")
    peak_fds = max([r["fds"] for r in samples] + [base_fds])
    check("calls drained", drained,
          f"calls_active {m['calls_active']:.0f}, sockets {m['sockets']:.0f} after the run")
    check("file descriptors back to baseline", after_fds == base_fds,
          f"baseline {base_fds}, peak {peak_fds}, after {after_fds}")
    check("server stopped cleanly", stop_rc == 0, f"exit {stop_rc}")
    lines.append("result: " + ("all targets met" if ok else "TARGETS MISSED"))
    summary = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(summary)
    print((out / "load.txt").read_text(), end="")
    print(summary, end="")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
