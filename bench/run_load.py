#!/usr/bin/env python3
"""Runs the end-to-end load target several times and reports the medians.

Each run: wait until the machine is idle, start a fresh voxbridge (echo agent), run
voxbridge-load against it with --server-pid, stop the server. A run during which other processes
(not the server, the load generator or kernel threads, counted process by process) used more
than --max-other % of a core is kept aside as disturbed and repeated. (The machine-wide busy
time of /proc/stat is not used: on this kind of VM it has read 14 % while the two processes
alone were charged 105 %.) The medians of
the undisturbed runs are checked against the targets and written to OUT/summary.md.

With --scenario conversation each run also starts a fresh voxbridge-stub-provider (ASR endpoint,
LLM and TTS delays from --stub-*-ms, default 200/100/50 ms) on --stub-port, runs the server with
the pipeline agent "bot" of bench/conf/conversation.conf (a copy with the stub's address, written
to OUT/conversation.conf) and voxbridge-load --scenario conversation, then stops both. The stub's
CPU during the window is measured here and taken out of the disturbance, like the server's and
the load generator's. The summary adds the reply after speech and "voxbridge's share" (reply p99
minus the stub's delays); the only target is no dropped frames. Defaults for this scenario:
--calls 500, --duration 30, --ramp 100.

With --scenario realtime each run starts a fresh voxbridge-realtime-mock (the tests' OpenAI
Realtime mock as a process, over TLS with a throwaway CA) on --mock-port, runs the server with an
s2s agent on voxbridge's in-process Realtime backend pointed at it (OUT/realtime.conf; the key
from the environment variable VB_BENCH_REALTIME_KEY), and voxbridge-load --scenario conversation
--stamps. Each caller speaks 1 s every 6 s; the mock's server VAD answers each turn with
--mock-reply-ms of tone. The mock's CPU over the window is measured here and left out of the
disturbance. Both sides time stamp on this machine's monotonic clock, and the calls are
matched to the mock's connections by their AudioSocket UUID (the instructions carry {call_id}),
which gives two more figures (see bench/README.md, "OpenAI Realtime"):
  delta to wire: the mock hands a response's first audio delta to its socket -> the first frame
    of that reply reaches the caller's socket (kernel receive stamp): voxbridge's whole path;
  caller to append: a turn's first voice frame leaves the caller -> the mock has read the
    input_audio_buffer.append that carries its start.
Targets: 0 dropped frames, p99 jitter <= 2 ms, server CPU <= 0.25 % of a core per call, delta to
wire p99 <= 25 ms. Defaults: --calls 300, --duration 30, --ramp 50.

--scenario deepgram is --scenario conversation with the recognizer swapped: the pipeline agent
recognizes with voxbridge's in-process Deepgram backend against a fresh voxbridge-deepgram-mock
(the tests' Deepgram Live Audio mock as a process, TLS, on --mock-port; the key from
VB_BENCH_DEEPGRAM_KEY; OUT/deepgram.conf), LLM and TTS from the stub. The mock's endpointing
(300 ms of silence, Deepgram's endpointing_ms as voxbridge sets it) ends each turn, so
voxbridge's share = reply after speech - (300 + the stub's LLM and TTS delays). Both helpers' CPU
is measured and left out of the disturbance. Defaults: --calls 300, --duration 30, --ramp 50.

--scenario openai-speech is --scenario conversation with the recognizer and the voice swapped:
the pipeline agent recognizes with voxbridge's in-process OpenAI-compatible transcription
backend and speaks with its speech backend, both against a fresh voxbridge-openai-speech-mock
(the tests' mock of OpenAI's speech API as a process, TLS, on --mock-port; the key from
VB_BENCH_OPENAI_SPEECH_KEY; OUT/openai-speech.conf), the LLM from the stub. voxbridge's own VAD
ends each turn (endpoint_silence_ms 800), the utterance goes as one WAV, the reply's sentence
as one pcm request; the mock answers both at once, so voxbridge's share = reply after speech -
(800 + the stub's LLM delay). Defaults: --calls 300, --duration 30, --ramp 50.

--scenario riva is --scenario conversation with the recognizer and the voice on voxbridge's
Riva backend ([riva-NAME], gRPC), against a fresh voxbridge-riva-mock (the tests' mock of a Riva
server as a process, TLS, on --mock-port; OUT/riva.conf), the LLM from the stub. The mock's
endpointing (Riva's stop history, 800 ms of silence) ends each turn (voxbridge's own endpoint is
set later, 1500 ms), the leg's mu-law goes as it is, the reply's sentence as one
SynthesizeOnline at 8 kHz; the mock answers at once, so voxbridge's share = reply after speech -
(800 + the stub's LLM delay). Defaults: --calls 300, --duration 30, --ramp 50.

--scenario vosk is --scenario conversation with the recognizer on voxbridge's Vosk backend
([vosk-NAME], gRPC, plaintext as vosk-server serves it) against a fresh voxbridge-vosk-mock (the
tests' mock of vosk-server as a process, on --mock-port; OUT/vosk.conf), the LLM and the voice
from the stub. The mock's endpoint (Kaldi's rule 2, 500 ms of silence after speech) ends each
turn (voxbridge's own endpoint is set later, 1500 ms), the leg's mu-law decoded once into PCM;
voxbridge's share = reply after speech - (500 + the stub's LLM and TTS delays). Defaults:
--calls 300, --duration 30, --ramp 50.

--scenario gemini is the same against voxbridge-gemini-mock (the tests' Gemini Live mock) and
voxbridge's in-process Gemini Live backend (OUT/gemini.conf; the key from VB_BENCH_GEMINI_KEY; the
call's UUID in the setup's systemInstruction): "delta" is the mock's first serverContent audio of
a model turn, "append" a realtimeInput message. Same targets and defaults.

Example (the 1,000-call target, three runs):
  bench/run_load.py --build build --calls 1000 --duration 60 --runs 3 --out /tmp/vb-1000

Example (500 conversations against the stub, three runs; add --server-bin OLD/voxbridge to run an
older server against the same load generator and stub):
  bench/run_load.py --build build --scenario conversation --runs 3 --out /tmp/vb-conv-500
"""

import argparse
import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

TARGETS = {
    # metric key: (label, limit, how the median compares)
    "dropped": ("dropped frames", 0, "<="),
    "jitter_p99_ms": ("p99 |inter-arrival - 20 ms| (ms)", 2.0, "<="),
    "latency_p99_ms": ("p99 echo latency (ms)", 25.0, "<="),
    "server_cpu_pct_per_call": ("server CPU per call (% of one core)", 0.08, "<="),
    "server_rss_kib_per_call": ("server RSS growth per call (KiB)", 64.0, "<="),
}

# --scenario conversation: no dropped frames; voxbridge's share is reported, not judged.
CONVERSATION_TARGETS = {
    "dropped": ("dropped frames", 0, "<="),
}

# --scenario realtime (the OpenAI Realtime backend against voxbridge-realtime-mock).
REALTIME_TARGETS = {
    "dropped": ("dropped frames", 0, "<="),
    "jitter_p99_ms": ("p99 |inter-arrival - 20 ms| (ms)", 2.0, "<="),
    "server_cpu_pct_per_call": ("server CPU per call (% of one core)", 0.25, "<="),
    "delta_to_wire_p99_ms": ("p99 mock audio delta -> frame on the wire (ms)", 25.0, "<="),
}

# --scenario gemini: the same figures against voxbridge-gemini-mock.
GEMINI_TARGETS = dict(REALTIME_TARGETS, delta_to_wire_p99_ms=(
    "p99 mock serverContent audio -> frame on the wire (ms)", 25.0, "<="))

# --scenario deepgram: the conversation figures with the Deepgram recognizer (see the docstring).
DEEPGRAM_TARGETS = {
    "dropped": ("dropped frames", 0, "<="),
    "jitter_p99_ms": ("p99 |inter-arrival - 20 ms| (ms)", 2.0, "<="),
}
DEEPGRAM_KEY = "dg-bench-0123456789"
DEEPGRAM_ENDPOINTING_MS = 300

# Written per run with the stub's and the mock's ports and the CA file.
DEEPGRAM_CONF = """[general]
log_level = warning
max_calls = 4096

[provider-stub]
address = 127.0.0.1:{stub_port}
deadline_ms = 600000

[agent-bot]
type = pipeline
asr = dg
llm = stub
tts = stub
greeting = none
endpoint_silence_ms = 800
no_input_timeout_ms = 600000

[deepgram-dg]
url = wss://localhost:{port}/v1/listen
api_key = ${{VB_BENCH_DEEPGRAM_KEY}}
ca_file = {ca}
endpointing_ms = {endpointing}
threads = {threads}

[listener-main]
bind = 127.0.0.1:5001
agent = bot
"""

# --scenario openai-speech: the conversation figures with the OpenAI-compatible recognizer and
# voice (see the docstring).
OPENAI_SPEECH_KEY = "sk-bench-0123456789abcdef"
OPENAI_SPEECH_ENDPOINT_MS = 800

OPENAI_SPEECH_CONF = """[general]
log_level = warning
max_calls = 4096

[provider-stub]
address = 127.0.0.1:{stub_port}
deadline_ms = 600000

[agent-bot]
type = pipeline
asr = whisper
llm = stub
tts = voice
greeting = none
tts_rate = 24000
endpoint_silence_ms = {endpoint}
no_input_timeout_ms = 600000

[transcription-whisper]
base_url = https://127.0.0.1:{port}/v1
api_key = ${{VB_BENCH_OPENAI_SPEECH_KEY}}
ca_file = {ca}
model = whisper-1
threads = {threads}

[speech-voice]
base_url = https://127.0.0.1:{port}/v1
api_key = ${{VB_BENCH_OPENAI_SPEECH_KEY}}
ca_file = {ca}
model = tts-1
voice = alloy
threads = {threads}

[listener-main]
bind = 127.0.0.1:5001
agent = bot
"""

# --scenario riva: the conversation figures with the Riva recognizer and voice (see the docstring).
RIVA_STOP_HISTORY_MS = 800

RIVA_CONF = """[general]
log_level = warning
max_calls = 4096

[provider-stub]
address = 127.0.0.1:{stub_port}
deadline_ms = 600000

[agent-bot]
type = pipeline
asr = riva
llm = stub
tts = riva
greeting = none
asr_encoding = mulaw
tts_rate = 8000
endpoint_silence_ms = 1500
no_input_timeout_ms = 600000

[riva-riva]
address = 127.0.0.1:{port}
tls = yes
ca_file = {ca}
voice = English-US.Female-1

[listener-main]
bind = 127.0.0.1:5001
agent = bot
"""

# --scenario vosk: the conversation figures with the Vosk recognizer (see the docstring).
VOSK_ENDPOINT_MS = 500

VOSK_CONF = """[general]
log_level = warning
max_calls = 4096

[provider-stub]
address = 127.0.0.1:{stub_port}
deadline_ms = 600000

[agent-bot]
type = pipeline
asr = vosk
llm = stub
tts = stub
greeting = none
asr_encoding = mulaw
endpoint_silence_ms = 1500
no_input_timeout_ms = 600000

[vosk-vosk]
address = 127.0.0.1:{port}

[listener-main]
bind = 127.0.0.1:5001
agent = bot
"""

# Defaults of --calls, --duration and --ramp per scenario.
SCENARIO_DEFAULTS = {
    "echo": {"calls": 1000, "duration": 60.0, "ramp": 200.0},
    "conversation": {"calls": 500, "duration": 30.0, "ramp": 100.0},
    "realtime": {"calls": 300, "duration": 30.0, "ramp": 50.0},
    "gemini": {"calls": 300, "duration": 30.0, "ramp": 50.0},
    "deepgram": {"calls": 300, "duration": 30.0, "ramp": 50.0},
    "openai-speech": {"calls": 300, "duration": 30.0, "ramp": 50.0},
    "riva": {"calls": 300, "duration": 30.0, "ramp": 50.0},
    "vosk": {"calls": 300, "duration": 30.0, "ramp": 50.0},
}

REALTIME_KEY = "sk-bench-realtime-0123456789"

# Written per run with the mock's port and CA file. vad_threshold 0.25: the mock's VAD takes a
# 20 ms block as voiced at RMS >= 2000 x threshold, and the load generator's voice has block RMS
# of 330-1080 (about -30 dBFS); at the default 0.5 it would never hear a turn.
REALTIME_CONF = """[general]
log_level = warning
max_calls = 4096

[agent-rt]
type = s2s
realtime = mock

[realtime-mock]
url = wss://localhost:{port}/v1/realtime
api_key = ${{VB_BENCH_REALTIME_KEY}}
ca_file = {ca}
model = gpt-realtime
instructions = Benchmark call call_id=<{{call_id}}>.
vad_threshold = 0.25
append_ms = {append_ms}
threads = {threads}
idle_timeout_ms = 600000

[listener-main]
bind = 127.0.0.1:5001
agent = rt
"""

GEMINI_KEY = "AIzaBench-0123456789"

# Written per run with the mock's port and CA file. The mock's activity detection takes no
# setting from the config (its level: S2S["gemini"]["mock_args"]).
GEMINI_CONF = """[general]
log_level = warning
max_calls = 4096

[agent-gl]
type = s2s
gemini = mock

[gemini-mock]
url = wss://localhost:{port}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent
api_key = ${{VB_BENCH_GEMINI_KEY}}
ca_file = {ca}
instructions = Benchmark call call_id=<{{call_id}}>.
append_ms = {append_ms}
threads = {threads}
idle_timeout_ms = 600000

[listener-main]
bind = 127.0.0.1:5001
agent = gl
"""

# The speech-to-speech scenarios: each runs its mock (TLS) beside the server, with the same
# figures (see realtime_latencies). "delta": the mock's first reply audio of a response;
# "append": the input audio message that carries the start of the caller's speech.
S2S = {
    "realtime": {
        "title": "OpenAI Realtime", "mock": "bench/realtime_mock/voxbridge-realtime-mock",
        "conf": REALTIME_CONF, "conf_name": "realtime.conf", "agent": "rt",
        "key_env": "VB_BENCH_REALTIME_KEY", "key": REALTIME_KEY, "section": "realtime",
        "append": "input_audio_buffer.append", "targets": REALTIME_TARGETS, "mock_args": [],
    },
    "gemini": {
        "title": "Gemini Live", "mock": "bench/gemini_mock/voxbridge-gemini-mock",
        "conf": GEMINI_CONF, "conf_name": "gemini.conf", "agent": "gl",
        "key_env": "VB_BENCH_GEMINI_KEY", "key": GEMINI_KEY, "section": "gemini",
        "append": "realtimeInput", "targets": GEMINI_TARGETS,
        # The load generator's voice has 20 ms blocks of RMS 330-1,080: at the mock's default
        # 1,000 its activity detection never hears a turn (as vad_threshold 0.25 for realtime).
        "mock_args": ["--voiced-rms", "500"],
    },
}

CONVERSATION_CONF = pathlib.Path(__file__).resolve().parent / "conf" / "conversation.conf"


def machine_busy_fraction(interval_s=2.0):
    """Fraction of all cores busy over `interval_s`, from /proc/stat."""

    def sample():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields[:8]) - idle, sum(fields[:8])

    busy0, total0 = sample()
    time.sleep(interval_s)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_for_idle(threshold, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        busy = machine_busy_fraction()
        if busy <= threshold:
            return busy
        if time.monotonic() > deadline:
            print(f"  machine still {busy:.0%} busy after {timeout_s} s; running anyway", flush=True)
            return busy
        print(f"  machine {busy:.0%} busy (load average {os.getloadavg()[0]:.2f}); waiting", flush=True)
        time.sleep(5)


def listening(port, tables=("/proc/net/tcp",)):
    """True once something listens on 127.0.0.1:port (from /proc/net/tcp, or the other tables)."""
    for table in tables:
        with open(table) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.split(":")[1], 16) == port:
                    return True
    return False


def start_server(binary, port, threads, config, log_path, agent="echo", env=None,
                 http_port=None):
    log = open(log_path, "w")
    cmd = [binary, "--listen", f"127.0.0.1:{port}", "--agent", agent, "--threads", str(threads),
           "--log-level", "warning"]
    if http_port:
        cmd += ["--http", f"127.0.0.1:{http_port}"]
    if config:
        cmd += ["--config", config]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    for _ in range(100):
        if proc.poll() is not None:
            sys.exit(f"server exited at start (see {log_path})")
        if listening(port):
            return proc
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"server did not listen on port {port}")


PHASES = ("asr", "llm", "tts", "playout")


def turn_phases(http_port):
    """The server's own turn phases (voxbridge_turn_phase_seconds on its /metrics): per phase
    the mean in ms (sum / count, exact) and the upper bound of the bucket holding the 99th
    percentile (the buckets are 5, 10, 20, 50, 100, 200... ms). "playout" is the provider's first
    audio -> the first frame sent to the caller: what voxbridge adds on the way out; "asr" is the
    caller's end of speech (voxbridge's VAD or the provider's endpoint) -> the final transcript.
    Empty if the API does not answer."""
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for phase in PHASES:
        lab = f'phase="{phase}"'
        buckets, total, count = [], 0.0, 0
        for line in text.splitlines():
            if not line.startswith("voxbridge_turn_phase_seconds") or lab not in line:
                continue
            name, value = line.rsplit(" ", 1)
            if name.startswith("voxbridge_turn_phase_seconds_bucket"):
                le = re.search(r'le="([^"]+)"', name).group(1)
                buckets.append((float("inf") if le == "+Inf" else float(le), float(value)))
            elif name.startswith("voxbridge_turn_phase_seconds_sum"):
                total = float(value)
            elif name.startswith("voxbridge_turn_phase_seconds_count"):
                count = int(float(value))
        if count == 0:
            continue
        p99 = next((le for le, c in sorted(buckets) if c >= 0.99 * count), float("inf"))
        out[f"{phase}_mean_ms"] = total / count * 1000.0
        out[f"{phase}_p99_le_ms"] = p99 * 1000.0
    return out


def stop_server(proc, timeout_s=30):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_stub(binary, port, args, log_path):
    """A fresh voxbridge-stub-provider on 127.0.0.1:port, once it listens."""
    log = open(log_path, "w")
    cmd = [binary, "--listen", f"127.0.0.1:{port}",
           "--asr-endpoint-ms", str(args.stub_asr_endpoint_ms),
           "--llm-delay-ms", str(args.stub_llm_delay_ms),
           "--tts-delay-ms", str(args.stub_tts_delay_ms)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"stub provider exited at start (see {log_path})")
        # gRPC listens on an IPv6 socket (127.0.0.1 as ::ffff:127.0.0.1): /proc/net/tcp6.
        if listening(port, ("/proc/net/tcp", "/proc/net/tcp6")):
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    sys.exit(f"stub provider did not listen on port {port}")


def start_mock(binary, args, ca_path, stamps_path, log_path):
    """A fresh mock of --scenario realtime or gemini (TLS) on 127.0.0.1:--mock-port, once it
    listens."""
    log = open(log_path, "w")
    cmd = [binary, "--port", str(args.mock_port), "--tls", "--ca-out", str(ca_path),
           "--api-key", S2S[args.scenario]["key"], "--reply-ms", str(args.mock_reply_ms),
           "--threads", str(args.mock_threads), "--stamps", str(stamps_path)]
    cmd += S2S[args.scenario]["mock_args"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"{args.scenario} mock exited at start (see {log_path})")
        if listening(args.mock_port) and pathlib.Path(ca_path).exists():
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    sys.exit(f"{args.scenario} mock did not listen on port {args.mock_port}")


def start_deepgram_mock(binary, args, ca_path, log_path):
    """A fresh voxbridge-deepgram-mock (TLS) on 127.0.0.1:--mock-port, once it listens (or
    voxbridge-openai-speech-mock for --scenario openai-speech)."""
    log = open(log_path, "w")
    if args.scenario == "openai-speech":
        cmd = [binary, "--port", str(args.mock_port), "--tls", "--ca-out", str(ca_path),
               "--api-key", OPENAI_SPEECH_KEY, "--threads", str(args.mock_threads)]
    elif args.scenario == "riva":
        # The load generator's voice has 20 ms blocks of RMS 330-1,080.
        cmd = [binary, "--port", str(args.mock_port), "--tls", "--ca-out", str(ca_path),
               "--voiced-rms", "250"]
    elif args.scenario == "vosk":  # plaintext, as vosk-server serves
        cmd = [binary, "--port", str(args.mock_port), "--voiced-rms", "250"]
    else:
        cmd = [binary, "--port", str(args.mock_port), "--tls", "--ca-out", str(ca_path),
               "--api-key", DEEPGRAM_KEY, "--threads", str(args.mock_threads),
               # The load generator's voice has 20 ms blocks of RMS 330-1,080.
               "--voiced-rms", "250"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"{args.scenario} mock exited at start (see {log_path})")
        # gRPC (the Riva mock) listens on a dual-stack socket: 127.0.0.1 shows in tcp6.
        if (listening(args.mock_port, ("/proc/net/tcp", "/proc/net/tcp6"))
                and (args.scenario == "vosk" or pathlib.Path(ca_path).exists())):
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    sys.exit(f"{args.scenario} mock did not listen on port {args.mock_port}")


def percentiles(values):
    """count, p50, p99 and max (nearest rank) of `values` in ms, NaN when empty."""
    if not values:
        return {"count": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    v = sorted(values)

    def rank(q):
        return v[min(len(v) - 1, max(0, int(-(-q * len(v) // 1)) - 1))]

    return {"count": len(v), "p50": rank(0.50), "p99": rank(0.99), "max": v[-1]}


def realtime_latencies(load_stamps, mock_stamps, limit_ms=6000.0, end_margin_ms=100.0):
    """The two latencies of --scenario realtime and gemini, matching calls by UUID (see the
    docstring).

    delta to wire: for every response whose first audio delta the mock handed to its socket
    inside the window, the first reply onset the caller got at or after it. caller to append:
    for every turn the caller began inside the window, the mock's first speech onset at or after
    it. A pair further apart than `limit_ms` (one turn cycle of the conversation scenario: a later
    stamp would be the next turn's) is not a match (counted as unmatched). A turn begun less than
    `end_margin_ms` before the window's end is not timed (counted as turns_at_window_end): the
    calls hang up at the end, before its first append could leave voxbridge (up to 20 ms for
    the call's tick and append_ms of batching)."""
    import bisect
    w0, w1 = load_stamps["window_start_ns"], load_stamps["window_end_ns"]
    calls = {c["uuid"].lower(): c for c in load_stamps["calls"]}
    conns = {}
    for c in mock_stamps["conns"]:
        if c["call_id"]:
            conns.setdefault(c["call_id"].lower(), []).append(c)
    d2w, c2a, greet = [], [], []
    unmatched = {"deltas": 0, "turns": 0, "calls_without_connection": 0, "turns_at_end": 0}
    limit = limit_ms * 1e6

    def first_at_or_after(sorted_list, t):
        i = bisect.bisect_left(sorted_list, t)
        return sorted_list[i] if i < len(sorted_list) else None

    for uuid, call in calls.items():
        mine = conns.get(uuid)
        if not mine:
            unmatched["calls_without_connection"] += 1
            continue
        replies = sorted(call["reply"])
        onsets = sorted(t for c in mine for t in c["onsets"])
        for c in mine:
            # The greeting (each connection's first response, asked for by voxbridge at session
            # start, during the ramp) comes at a random phase of the call's tick; the turns'
            # replies come right after one (the mock answers the append that ends the turn).
            if c["deltas"]:
                r = first_at_or_after(replies, c["deltas"][0])
                if r is not None and r - c["deltas"][0] <= limit:
                    greet.append((r - c["deltas"][0]) / 1e6)
            for d in c["deltas"]:
                if not (w0 <= d < w1):
                    continue
                r = first_at_or_after(replies, d)
                if r is None or r - d > limit:
                    unmatched["deltas"] += 1
                else:
                    d2w.append((r - d) / 1e6)
        for v in call["voice"]:
            if not (w0 <= v < w1):
                continue
            if v >= w1 - end_margin_ms * 1e6:
                unmatched["turns_at_end"] += 1
                continue
            o = first_at_or_after(onsets, v)
            if o is None or o - v > limit:
                unmatched["turns"] += 1
            else:
                c2a.append((o - v) / 1e6)
    unmatched["greeting"] = percentiles(greet)
    return percentiles(d2w), percentiles(c2a), unmatched


def realtime_metrics(result, mock_cpu_pct, d2w, c2a, unmatched, mock_total):
    """The numbers of a --scenario realtime or gemini run. The disturbance leaves out the mock."""
    m = conversation_metrics(result, mock_cpu_pct, 0)
    for k in ("share_p50_ms", "share_p99_ms", "stub_cpu_pct"):
        m.pop(k)
    m.update({
        "mock_cpu_pct": mock_cpu_pct,
        "mock_cpu_pct_per_call": mock_cpu_pct / max(result["calls"], 1),
        "mock_cpu_s_whole_run": mock_total,
        "delta_to_wire_n": d2w["count"],
        "delta_to_wire_p50_ms": d2w["p50"],
        "delta_to_wire_p99_ms": d2w["p99"],
        "delta_to_wire_max_ms": d2w["max"],
        "deltas_unmatched": unmatched["deltas"],
        "caller_to_append_n": c2a["count"],
        "caller_to_append_p50_ms": c2a["p50"],
        "caller_to_append_p99_ms": c2a["p99"],
        "caller_to_append_max_ms": c2a["max"],
        "turns_unmatched": unmatched["turns"],
        "turns_at_window_end": unmatched["turns_at_end"],
        "calls_without_connection": unmatched["calls_without_connection"],
        "greeting_to_wire_p50_ms": unmatched["greeting"]["p50"],
        "greeting_to_wire_p99_ms": unmatched["greeting"]["p99"],
    })
    return m


def conversation_config(template, stub_port, path):
    """Writes `template` to `path` with [provider-stub]'s address set to the stub's port."""
    lines = pathlib.Path(template).read_text().splitlines(keepends=True)
    section, replaced = None, False
    for i, line in enumerate(lines):
        head = re.match(r"\s*\[([^\]]+)\]", line)
        if head:
            section = head.group(1).strip()
            continue
        if section == "provider-stub" and re.match(r"\s*address\s*=", line):
            lines[i] = f"address = 127.0.0.1:{stub_port}\n"
            replaced = True
    if not replaced:
        sys.exit(f"{template}: no address in [provider-stub] to point at the stub")
    pathlib.Path(path).write_text("".join(lines))
    return path


def process_cpu_ticks(pid):
    """utime + stime of the whole process (every thread), in clock ticks, or None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


class CpuSampler:
    """Samples one process's CPU time every `period_s` so that its use over voxbridge-load's
    steady window (known only afterwards, from the JSON: the last `window_s` seconds before
    voxbridge-load exited, give or take its teardown) can be read back."""

    def __init__(self, pid, period_s=0.25):
        self.pid, self.period_s = pid, period_s
        self.samples = []  # (time.monotonic(), ticks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        ticks = process_cpu_ticks(self.pid)
        if ticks is not None:
            self.samples.append((time.monotonic(), ticks))

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.period_s)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()
        self._sample()

    def _ticks_at(self, t):
        s = self.samples
        if not s or t <= s[0][0]:
            return s[0][1] if s else 0
        for (t0, c0), (t1, c1) in zip(s, s[1:]):
            if t <= t1:
                return c0 + (c1 - c0) * (t - t0) / max(t1 - t0, 1e-9)
        return s[-1][1]

    def cpu_percent(self, start, end):
        ticks = self._ticks_at(end) - self._ticks_at(start)
        return 100.0 * ticks / os.sysconf("SC_CLK_TCK") / max(end - start, 1e-9)


def metrics(result):
    """The numbers the targets and the summary use, from one voxbridge-load JSON."""
    server = result.get("server") or {}
    return {
        "failures": result["failures"]["total"],
        "dropped": result["frames"]["dropped"],
        "dropped_inside": result["frames"].get("dropped_inside", 0),
        "expected": result["frames"]["expected"],
        "underruns": result["underrun_frames"],
        "jitter_p50_ms": result["jitter_ms"]["p50"],
        "jitter_p99_ms": result["jitter_ms"]["p99"],
        "jitter_max_ms": result["jitter_ms"]["max"],
        "read_delay_p99_ms": result.get("read_delay_ms", {}).get("p99", float("nan")),
        "latency_p50_ms": result["latency_ms"]["p50"],
        "latency_p99_ms": result["latency_ms"]["p99"],
        "latency_max_ms": result["latency_ms"]["max"],
        "onset_latency_p50_ms": result["onset_latency_ms"]["p50"],
        "onset_latency_p99_ms": result["onset_latency_ms"]["p99"],
        "server_cpu_pct": server.get("cpu_percent", float("nan")),
        "server_cpu_pct_per_call": server.get("cpu_percent_per_call", float("nan")),
        "server_rss_kib_per_call": server.get("rss_kib_per_call", float("nan")),
        "loadgen_cpu_pct": result["load_generator"]["cpu_percent"],
        "send_lateness_p99_ms": result["send_lateness_ms"]["p99"],
        "kernel_threads_cpu_pct": result["machine_cpu_percent"]["kernel_threads"],
        "disturbance_cpu_pct": result["machine_cpu_percent"]["disturbance"],
        "load_before": result["load_average_1m"]["before"],
        "load_after": result["load_average_1m"]["after"],
    }


def conversation_metrics(result, stub_cpu_pct, stub_delay_ms):
    """The numbers of a --scenario conversation run. The disturbance leaves out the stub."""
    server = result.get("server") or {}
    reply = dict(result["reply_ms"])
    if reply["count"] == 0:  # no reply timed in the window (each caller speaks every 6 s)
        reply.update(p50=float("nan"), p99=float("nan"), max=float("nan"))
    return {
        "failures": result["failures"]["total"],
        "dropped": result["frames"]["dropped"],
        "dropped_inside": result["frames"].get("dropped_inside", 0),
        "expected": result["frames"]["expected"],
        "underruns": result["underrun_frames"],
        "jitter_p50_ms": result["jitter_ms"]["p50"],
        "jitter_p99_ms": result["jitter_ms"]["p99"],
        "jitter_max_ms": result["jitter_ms"]["max"],
        "read_delay_p99_ms": result.get("read_delay_ms", {}).get("p99", float("nan")),
        "replies": reply["count"],
        "replies_missed": result["replies_missed"],
        "replies_over_agent": result["replies_over_agent"],
        "reply_p50_ms": reply["p50"],
        "reply_p99_ms": reply["p99"],
        "reply_max_ms": reply["max"],
        "share_p50_ms": reply["p50"] - stub_delay_ms,
        "share_p99_ms": reply["p99"] - stub_delay_ms,
        "server_cpu_pct": server.get("cpu_percent", float("nan")),
        "server_cpu_pct_per_call": server.get("cpu_percent_per_call", float("nan")),
        "server_rss_kib_per_call": server.get("rss_kib_per_call", float("nan")),
        "loadgen_cpu_pct": result["load_generator"]["cpu_percent"],
        "stub_cpu_pct": stub_cpu_pct,
        "send_lateness_p99_ms": result["send_lateness_ms"]["p99"],
        "kernel_threads_cpu_pct": result["machine_cpu_percent"]["kernel_threads"],
        "disturbance_cpu_pct": max(
            result["machine_cpu_percent"]["disturbance"] - stub_cpu_pct, 0.0),
        "load_before": result["load_average_1m"]["before"],
        "load_after": result["load_average_1m"]["after"],
    }


def stub_delay_ms(args):
    if args.scenario == "deepgram":  # the turn ends at the mock's endpointing, not the stub's
        return DEEPGRAM_ENDPOINTING_MS + args.stub_llm_delay_ms + args.stub_tts_delay_ms
    if args.scenario == "openai-speech":  # voxbridge's endpoint; the mock answers at once
        return OPENAI_SPEECH_ENDPOINT_MS + args.stub_llm_delay_ms
    if args.scenario == "riva":  # the mock's endpointing; it speaks at once
        return RIVA_STOP_HISTORY_MS + args.stub_llm_delay_ms
    if args.scenario == "vosk":  # the mock's endpoint, then the stub's LLM and voice
        return VOSK_ENDPOINT_MS + args.stub_llm_delay_ms + args.stub_tts_delay_ms
    return args.stub_asr_endpoint_ms + args.stub_llm_delay_ms + args.stub_tts_delay_ms


def fmt(v):
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.4g}"


def summarize(runs, args):
    keys = list(runs[0].keys())
    conversation = args.scenario in ("conversation", "deepgram", "openai-speech", "riva", "vosk")
    deepgram = args.scenario in ("deepgram", "openai-speech", "riva", "vosk")
    s2s = S2S.get(args.scenario)
    if args.scenario == "vosk":
        delay = stub_delay_ms(args)
        header = [
            f"{args.calls} conversations recognized by Vosk (--scenario vosk) against "
            f"voxbridge-vosk-mock (plaintext gRPC), LLM and TTS from the stub "
            f"({args.stub_llm_delay_ms}/{args.stub_tts_delay_ms} ms), {args.duration:g} s window, "
            f"server --threads {args.server_threads}, voxbridge-load --threads "
            f"{args.load_threads}, {len(runs)} undisturbed run(s)",
            f"voxbridge's share = reply after speech - {delay:g} ms (the mock's endpoint "
            f"{VOSK_ENDPOINT_MS} ms + LLM + TTS); the disturbance leaves out the stub's and the "
            "mock's CPU (stub_cpu_pct, mock_cpu_pct)",
        ]
    elif args.scenario == "riva":
        delay = stub_delay_ms(args)
        header = [
            f"{args.calls} conversations recognized and spoken by Riva (--scenario riva) against "
            f"voxbridge-riva-mock over TLS, LLM from the stub ({args.stub_llm_delay_ms} ms), "
            f"{args.duration:g} s window, server --threads {args.server_threads}, voxbridge-load "
            f"--threads {args.load_threads}, {len(runs)} undisturbed run(s)",
            f"voxbridge's share = reply after speech - {delay:g} ms (the mock's stop history "
            f"{RIVA_STOP_HISTORY_MS} ms + LLM; the mock speaks at once); the disturbance leaves "
            "out the stub's and the mock's CPU (stub_cpu_pct, mock_cpu_pct)",
        ]
    elif args.scenario == "openai-speech":
        delay = stub_delay_ms(args)
        header = [
            f"{args.calls} conversations recognized and spoken by OpenAI-compatible servers "
            f"(--scenario openai-speech) against voxbridge-openai-speech-mock over TLS (mock "
            f"--threads {args.mock_threads}), LLM from the stub ({args.stub_llm_delay_ms} ms), "
            f"{args.duration:g} s window, server --threads {args.server_threads}, "
            f"[transcription-NAME] / [speech-NAME] threads {args.realtime_threads}, "
            f"voxbridge-load --threads {args.load_threads}, {len(runs)} undisturbed run(s)",
            f"voxbridge's share = reply after speech - {delay:g} ms (voxbridge's endpoint "
            f"{OPENAI_SPEECH_ENDPOINT_MS} ms + LLM; the mock answers at once); the disturbance "
            "leaves out the stub's and the mock's CPU (stub_cpu_pct, mock_cpu_pct)",
        ]
    elif deepgram:
        delay = stub_delay_ms(args)
        header = [
            f"{args.calls} conversations recognized by Deepgram (--scenario deepgram) against "
            f"voxbridge-deepgram-mock over TLS (mock --threads {args.mock_threads}), LLM and TTS "
            f"from the stub ({args.stub_llm_delay_ms}/{args.stub_tts_delay_ms} ms), "
            f"{args.duration:g} s window, server --threads {args.server_threads}, "
            f"[deepgram-NAME] threads {args.realtime_threads}, voxbridge-load --threads "
            f"{args.load_threads}, {len(runs)} undisturbed run(s)",
            f"voxbridge's share = reply after speech - {delay:g} ms (the mock's endpointing "
            f"{DEEPGRAM_ENDPOINTING_MS} ms + LLM + TTS); the disturbance leaves out the stub's and "
            "the mock's CPU (stub_cpu_pct, mock_cpu_pct)",
        ]
    elif s2s:
        mock = pathlib.Path(s2s["mock"]).name
        header = [
            f"{args.calls} {s2s['title']} calls (--scenario {args.scenario}) against "
            f"{mock} over TLS (reply {args.mock_reply_ms} ms of tone per turn, "
            f"mock --threads {args.mock_threads}), {args.duration:g} s window, server --threads "
            f"{args.server_threads}, [{s2s['section']}] threads {args.realtime_threads}, append_ms "
            f"{args.append_ms}, voxbridge-load --threads {args.load_threads}, {len(runs)} "
            "undisturbed run(s)",
            "the disturbance leaves out the mock's CPU (mock_cpu_pct)",
        ]
    elif conversation:
        delay = stub_delay_ms(args)
        header = [
            f"{args.calls} conversations (--scenario conversation), {args.duration:g} s window, "
            f"server --threads {args.server_threads}, voxbridge-load --threads "
            f"{args.load_threads}, {len(runs)} undisturbed run(s)",
            f"stub {args.stub_asr_endpoint_ms}/{args.stub_llm_delay_ms}/{args.stub_tts_delay_ms} "
            f"ms (ASR endpoint/LLM/TTS), so voxbridge's share = reply after speech - {delay:g} ms; "
            "the disturbance leaves out the stub's CPU (stub_cpu_pct)",
        ]
    else:
        header = [
            f"{args.calls} calls, {args.duration:g} s window, server --threads "
            f"{args.server_threads}, voxbridge-load --threads {args.load_threads}, {len(runs)} "
            "undisturbed run(s)",
        ]
    lines = header + [
        "",
        "| metric | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " | median |",
        "| --- | " + " | ".join("---" for _ in runs) + " | --- |",
    ]
    medians = {}
    for k in keys:
        values = [r[k] for r in runs]
        medians[k] = statistics.median(values)
        lines.append(f"| {k} | " + " | ".join(fmt(v) for v in values) + f" | {fmt(medians[k])} |")
    lines.append("")
    targets = (DEEPGRAM_TARGETS if deepgram else s2s["targets"] if s2s
               else CONVERSATION_TARGETS if conversation else TARGETS)
    for k, (label, limit, _) in targets.items():
        ok = medians[k] <= limit
        lines.append(f"- {label}: median {fmt(medians[k])}, target <= {limit:g}: "
                     f"{'met' if ok else 'MISSED'}")
    if s2s:
        lines.append(f"- caller frame -> {s2s['append']} p50 / p99 (ms): median "
                     f"{fmt(medians['caller_to_append_p50_ms'])} / "
                     f"{fmt(medians['caller_to_append_p99_ms'])} (reported, no target)")
        lines.append(f"- the mock's own CPU: median {fmt(medians['mock_cpu_pct'])} % of a core")
    if deepgram:
        lines.append(f"- the mock's own CPU: median {fmt(medians['mock_cpu_pct'])} % of a core; "
                     f"the stub's: {fmt(medians['stub_cpu_pct'])} %")
    if conversation:
        lines.append(f"- reply after speech p50 / p99 (ms): median {fmt(medians['reply_p50_ms'])} / "
                     f"{fmt(medians['reply_p99_ms'])}")
        lines.append(f"- the server's turn phases, mean (p99 bucket) in ms, median of the runs: "
                     + ", ".join(f"{ph} {fmt(medians[ph + '_mean_ms'])} "
                                 f"(<= {fmt(medians[ph + '_p99_le_ms'])})" for ph in PHASES)
                     + "; playout = the provider's first audio -> the first frame out")
        lines.append(f"- voxbridge's share p99 (reply p99 - {delay:g} ms): median "
                     f"{fmt(medians['share_p99_ms'])} ms (per run: "
                     + ", ".join(fmt(r["share_p99_ms"]) for r in runs) + "; reported, no target)")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default="build", help="CMake build directory (default: build)")
    p.add_argument("--server-bin", help="server binary to test (default: BUILD/src/app/voxbridge)")
    p.add_argument("--server-config", help="voxbridge.conf for the server (e.g. another "
                   "resampler_quality); --listen, --agent echo and --threads still apply. With "
                   "--scenario conversation (default bench/conf/conversation.conf) a copy with "
                   "[provider-stub] address pointed at the stub is used, and --agent bot")
    p.add_argument("--scenario", choices=["echo", "conversation", "realtime", "gemini",
                                          "deepgram", "openai-speech", "riva", "vosk"],
                   default="echo",
                   help="echo (default): echo agent; conversation: pipeline agent against "
                   "voxbridge-stub-provider; realtime: s2s agent on the OpenAI Realtime backend "
                   "against voxbridge-realtime-mock (TLS); gemini: s2s agent on the Gemini Live "
                   "backend against voxbridge-gemini-mock (TLS); deepgram: conversation with the "
                   "recognizer on the Deepgram backend against voxbridge-deepgram-mock (TLS); openai-speech: "
                   "conversation with the recognizer and the voice on the OpenAI-compatible "
                   "backends against voxbridge-openai-speech-mock (TLS); riva: conversation with "
                   "the recognizer and the voice on the Riva backend against voxbridge-riva-mock "
                   "(TLS); vosk: conversation with the recognizer on the Vosk backend against "
                   "voxbridge-vosk-mock")
    p.add_argument("--calls", type=int, help="default 1000 (echo), 500 (conversation)")
    p.add_argument("--duration", type=float, help="default 60 (echo), 30 (conversation)")
    p.add_argument("--ramp", type=float, help="calls per second while ramping up (default 200 "
                   "for echo, 100 for conversation)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--server-threads", type=int, default=2)
    p.add_argument("--load-threads", type=int, default=1)
    p.add_argument("--port", type=int, default=17001)
    p.add_argument("--out", required=True, help="directory for the JSON, logs and summary")
    p.add_argument("--idle-below", type=float, default=0.10,
                   help="start a run only when the machine is at most this busy (default 0.10)")
    p.add_argument("--idle-wait", type=float, default=900, help="seconds to wait for idle")
    p.add_argument("--max-other", type=float, default=10.0,
                   help="a run with other processes above this %% of a core is disturbed")
    p.add_argument("--max-attempts", type=int, default=10)
    p.add_argument("--stub-port", type=int, default=50051,
                   help="conversation: the stub provider's port (default 50051)")
    p.add_argument("--stub-asr-endpoint-ms", type=int, default=200,
                   help="conversation: stub --asr-endpoint-ms (default 200)")
    p.add_argument("--stub-llm-delay-ms", type=int, default=100,
                   help="conversation: stub --llm-delay-ms (default 100)")
    p.add_argument("--stub-tts-delay-ms", type=int, default=50,
                   help="conversation: stub --tts-delay-ms (default 50)")
    p.add_argument("--http-port", type=int, default=17201,
                   help="conversation scenarios: the server's HTTP API, read for its turn phases "
                   "(default 17201)")
    p.add_argument("--mock-port", type=int, default=17101,
                   help="realtime, gemini: the mock's port (default 17101)")
    p.add_argument("--mock-threads", type=int, default=1,
                   help="realtime, gemini: the mock's io threads (default 1)")
    p.add_argument("--mock-reply-ms", type=int, default=1000,
                   help="realtime, gemini: tone per response (default 1000)")
    p.add_argument("--realtime-threads", type=int, default=1,
                   help="realtime, gemini: [realtime-NAME] / [gemini-NAME] threads, voxbridge's "
                   "service threads (default 1)")
    p.add_argument("--append-ms", type=int, default=40,
                   help="realtime, gemini: [realtime-NAME] / [gemini-NAME] append_ms (default 40, "
                   "voxbridge's default)")
    args = p.parse_args()
    for key, value in SCENARIO_DEFAULTS[args.scenario].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    conversation = args.scenario in ("conversation", "deepgram", "openai-speech", "riva", "vosk")
    deepgram = args.scenario in ("deepgram", "openai-speech", "riva", "vosk")
    s2s = S2S.get(args.scenario)

    build = pathlib.Path(args.build)
    server_bin = pathlib.Path(args.server_bin) if args.server_bin else build / "src/app/voxbridge"
    load_bin = build / "bench/load/voxbridge-load"
    stub_bin = build / "bench/stub/voxbridge-stub-provider"
    mock_bin = build / s2s["mock"] if s2s else None
    if deepgram:
        mock_bin = build / {"openai-speech": "bench/openai_speech_mock/voxbridge-openai-speech-mock",
                            "riva": "bench/riva_mock/voxbridge-riva-mock",
                            "vosk": "bench/vosk_mock/voxbridge-vosk-mock"}.get(
                                args.scenario, "bench/deepgram_mock/voxbridge-deepgram-mock")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server_config, agent = args.server_config, "echo"
    if conversation:
        if not stub_bin.exists():
            sys.exit(f"{stub_bin} not built")
        if args.stub_port == args.port:
            sys.exit("--stub-port and --port must differ")
        server_config = str(conversation_config(args.server_config or CONVERSATION_CONF,
                                                args.stub_port, out / "conversation.conf"))
        agent = "bot"
    if deepgram:
        if not mock_bin.exists():
            sys.exit(f"{mock_bin} not built")
        ca_path = (out / "mock-ca.pem").resolve()
        if args.scenario == "vosk":
            server_config = str(out / "vosk.conf")
            pathlib.Path(server_config).write_text(VOSK_CONF.format(
                stub_port=args.stub_port, port=args.mock_port))
            server_env = dict(os.environ)
        elif args.scenario == "riva":
            server_config = str(out / "riva.conf")
            pathlib.Path(server_config).write_text(RIVA_CONF.format(
                stub_port=args.stub_port, port=args.mock_port, ca=ca_path))
            server_env = dict(os.environ)
        elif args.scenario == "openai-speech":
            server_config = str(out / "openai-speech.conf")
            pathlib.Path(server_config).write_text(OPENAI_SPEECH_CONF.format(
                stub_port=args.stub_port, port=args.mock_port, ca=ca_path,
                endpoint=OPENAI_SPEECH_ENDPOINT_MS, threads=args.realtime_threads))
            server_env = dict(os.environ, VB_BENCH_OPENAI_SPEECH_KEY=OPENAI_SPEECH_KEY)
        else:
            server_config = str(out / "deepgram.conf")
            pathlib.Path(server_config).write_text(DEEPGRAM_CONF.format(
                stub_port=args.stub_port, port=args.mock_port, ca=ca_path,
                endpointing=DEEPGRAM_ENDPOINTING_MS, threads=args.realtime_threads))
            server_env = dict(os.environ, VB_BENCH_DEEPGRAM_KEY=DEEPGRAM_KEY)
    if not deepgram:
        server_env = None
    if s2s:
        if not mock_bin.exists():
            sys.exit(f"{mock_bin} not built")
        if args.mock_port == args.port:
            sys.exit("--mock-port and --port must differ")
        ca_path = (out / "mock-ca.pem").resolve()
        server_config = str(out / s2s["conf_name"])
        pathlib.Path(server_config).write_text(s2s["conf"].format(
            port=args.mock_port, ca=ca_path, append_ms=args.append_ms,
            threads=args.realtime_threads))
        agent = s2s["agent"]
        server_env = dict(os.environ, **{s2s["key_env"]: s2s["key"]})

    good = []
    attempt = 0
    while len(good) < args.runs and attempt < args.max_attempts:
        attempt += 1
        tag = f"attempt-{attempt}"
        busy = wait_for_idle(args.idle_below, args.idle_wait)
        print(f"{tag}: machine {busy:.0%} busy, load average {os.getloadavg()[0]:.2f}", flush=True)
        stub = sampler = dg = dg_sampler = None
        mock_stamps = out / f"{tag}.mock-stamps.json"
        load_stamps = out / f"{tag}.load-stamps.json"
        if conversation:
            stub = start_stub(str(stub_bin), args.stub_port, args, out / f"{tag}.stub.log")
            sampler = CpuSampler(stub.pid)
        if deepgram:
            if ca_path.exists():
                ca_path.unlink()
            dg = start_deepgram_mock(str(mock_bin), args, ca_path, out / f"{tag}.mock.log")
            dg_sampler = CpuSampler(dg.pid)
        if s2s:
            if ca_path.exists():
                ca_path.unlink()
            stub = start_mock(str(mock_bin), args, ca_path, mock_stamps, out / f"{tag}.mock.log")
            sampler = CpuSampler(stub.pid)
        try:
            server = start_server(str(server_bin), args.port, args.server_threads, server_config,
                                  out / f"{tag}.server.log", agent, server_env,
                                  args.http_port if conversation else None)
        except BaseException:
            for helper in (stub, dg):
                if helper:
                    stop_server(helper, timeout_s=10)
            raise
        json_path = out / f"{tag}.json"
        load_cmd = [str(load_bin), "--to", f"127.0.0.1:{args.port}", "--calls", str(args.calls),
                    "--ramp", str(args.ramp), "--duration", str(args.duration), "--threads",
                    str(args.load_threads), "--server-pid", str(server.pid), "--json",
                    str(json_path)]
        if conversation:
            load_cmd += ["--scenario", "conversation"]
        if s2s:
            load_cmd += ["--scenario", "conversation", "--stamps", str(load_stamps)]
        try:
            with open(out / f"{tag}.txt", "w") as table, \
                    open(out / f"{tag}.progress", "w") as prog:
                for smp in (sampler, dg_sampler):
                    if smp:
                        smp.start()
                rc = subprocess.call(load_cmd, stdout=table, stderr=prog)
                load_exit = time.monotonic()
                phases = turn_phases(args.http_port) if conversation else {}
                for smp in (sampler, dg_sampler):
                    if smp:
                        smp.stop()
        finally:
            stop_server(server)
            for helper in (stub, dg):
                if helper:
                    stop_server(helper, timeout_s=10)
        print((out / f"{tag}.txt").read_text(), end="", flush=True)
        if rc < 0 or not json_path.exists():
            print(f"{tag}: voxbridge-load did not finish (exit {rc}); rerunning", flush=True)
            continue
        result = json.loads(json_path.read_text())
        if s2s:
            mock_cpu = sampler.cpu_percent(load_exit - result["window_s"], load_exit)
            if not mock_stamps.exists() or not load_stamps.exists():
                print(f"{tag}: stamps missing; rerunning", flush=True)
                continue
            ms = json.loads(mock_stamps.read_text())
            d2w, c2a, unmatched = realtime_latencies(json.loads(load_stamps.read_text()), ms)
            m = realtime_metrics(result, mock_cpu, d2w, c2a, unmatched,
                                 ms["cpu_user_s"] + ms["cpu_system_s"])
            print(f"{tag}: mock {mock_cpu:.1f} % of a core; other processes without it "
                  f"{m['disturbance_cpu_pct']:.1f} %; delta to wire p50/p99 "
                  f"{fmt(d2w['p50'])}/{fmt(d2w['p99'])} ms (n={d2w['count']}), caller to append "
                  f"p50/p99 {fmt(c2a['p50'])}/{fmt(c2a['p99'])} ms (n={c2a['count']}), "
                  f"unmatched deltas {unmatched['deltas']} turns {unmatched['turns']} calls "
                  f"{unmatched['calls_without_connection']}; greeting delta to wire p50/p99 "
                  f"{fmt(unmatched['greeting']['p50'])}/{fmt(unmatched['greeting']['p99'])} ms",
                  flush=True)
        elif conversation:
            # The stub's CPU over the steady window: the window_s seconds before voxbridge-load
            # exited (its teardown after the window, a fraction of a second, is ignored).
            stub_cpu = sampler.cpu_percent(load_exit - result["window_s"], load_exit)
            mock_cpu = (dg_sampler.cpu_percent(load_exit - result["window_s"], load_exit)
                        if dg_sampler else 0.0)
            m = conversation_metrics(result, stub_cpu + mock_cpu, stub_delay_ms(args))
            for phase in PHASES:
                for k in (f"{phase}_mean_ms", f"{phase}_p99_le_ms"):
                    m[k] = phases.get(k, float("nan"))
            if deepgram:
                m["stub_cpu_pct"] = stub_cpu
                m["mock_cpu_pct"] = mock_cpu
            print(f"{tag}: stub {stub_cpu:.1f} %, mock {mock_cpu:.1f} % of a core; other "
                  f"processes without them {m['disturbance_cpu_pct']:.1f} %", flush=True)
        else:
            m = metrics(result)
        if m["disturbance_cpu_pct"] > args.max_other:
            print(f"{tag}: DISTURBED (other processes {m['disturbance_cpu_pct']:.1f} % of a core); "
                  "rerunning", flush=True)
            json_path.rename(out / f"{tag}.disturbed.json")
            continue
        good.append(m)
    if not good:
        sys.exit("no undisturbed run")
    summary = summarize(good, args)
    (out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
