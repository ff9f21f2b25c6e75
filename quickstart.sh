#!/usr/bin/env bash
# voxbridge quick start, on a fresh Debian 12 machine:
#   ./quickstart.sh run    install packages, build, start the server on 127.0.0.1:5001 (offline receptionist)
#   ./quickstart.sh test   install packages, build, run the whole test suite (what CI runs)
# Extra arguments after `run` go to voxbridge (e.g. ./quickstart.sh run --agent playback).
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
jobs=$(nproc)
cache=${VOXBRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voxbridge}
asterisk_src=${VOXBRIDGE_ASTERISK_SRC:-$root/../shared/asterisk}
export VOXBRIDGE_ASTERISK_PREFIX=${VOXBRIDGE_ASTERISK_PREFIX:-$cache/asterisk}

packages=(build-essential cmake ninja-build pkg-config libboost1.81-dev libspeexdsp-dev
          libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev
          clang-format-14 libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
          libwebrtc-audio-processing-dev libopus-dev flite1-dev libpocketsphinx-dev pocketsphinx-en-us
          libssl-dev haproxy)

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

build() {  # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja -DVOXBRIDGE_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

fuzz() {  # fuzz NAME SECONDS: tests/fuzz's NAME_fuzz on its corpus, new inputs in a temp dir
  local work
  work=$(mktemp -d)
  "$root/build-fuzz/tests/fuzz/$1_fuzz" -max_total_time="$2" -print_final_stats=1 "$work" \
    "$root/tests/fuzz/corpus/$1" 2>&1 | tail -n 12
  rm -rf "$work"
}

cmd_run() {
  install_packages
  step "building (Release)"
  build "$root/build" -DCMAKE_BUILD_TYPE=Release -DVOXBRIDGE_TESTS=OFF -DVOXBRIDGE_BENCH=OFF
  if [ $# -eq 0 ]; then set -- --listen 127.0.0.1:5001 --http 127.0.0.1:8081; fi
  step "starting voxbridge with the offline receptionist on 127.0.0.1:5001 (Ctrl-C to stop)"
  cat <<'EOF'
In Asterisk (extensions.conf, or extensions_custom.conf on FreePBX), a wideband leg:
    exten => 7016,1,Dial(AudioSocket/127.0.0.1:5001/${UUID()}/c(slin16))
Without Asterisk, from another terminal (--events: the server's own transcript, live):
    ./build/src/app/voxbridge call --say "I would like to talk to sales" --events 127.0.0.1:8081
The HTTP API (metrics, status) is on 127.0.0.1:8081.
EOF
  exec "$root/build/src/app/voxbridge" "$@"
}

cmd_test() {
  install_packages
  step "format check (clang-format 14)"
  local unformatted
  unformatted=$(git -C "$root" ls-files '*.cpp' '*.hpp' | while read -r f; do
    clang-format-14 --dry-run --Werror "$root/$f" >/dev/null 2>&1 || echo "$f"; done)
  if [ -n "$unformatted" ]; then
    echo "not clang-formatted (run clang-format-14 -i on them):"; echo "$unformatted"; exit 1
  fi

  # One Release build: the server `run` starts (same flags) and the tests of it, so what is
  # tested is what ships (the ASan build below is the one with debug info).
  step "Release build (warnings are errors) and unit + integration tests"
  build "$root/build" -DCMAKE_BUILD_TYPE=Release
  (cd "$root/build" && ctest -j "$jobs" --output-on-failure -LE asterisk)

  step "ASan + UBSan build and unit + integration tests"
  build "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DVOXBRIDGE_SANITIZE=ON
  (cd "$root/build-asan" &&
    ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
    LSAN_OPTIONS=suppressions="$root/tests/lsan.supp" \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest -j "$jobs" --output-on-failure -LE asterisk)

  step "libFuzzer: frame parser for ${VOXBRIDGE_FUZZ_SECONDS:-60} s on tests/fuzz/corpus"
  build "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOXBRIDGE_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++-14
  fuzz frame_parser "${VOXBRIDGE_FUZZ_SECONDS:-60}"
  step "libFuzzer: AMI parser for ${VOXBRIDGE_AMI_FUZZ_SECONDS:-20} s on tests/fuzz/corpus"
  fuzz ami_parser "${VOXBRIDGE_AMI_FUZZ_SECONDS:-20}"
  step "libFuzzer: HTTP API request path for ${VOXBRIDGE_HTTP_FUZZ_SECONDS:-20} s on tests/fuzz/corpus"
  fuzz http_request "${VOXBRIDGE_HTTP_FUZZ_SECONDS:-20}"
  step "libFuzzer: SSE parser for ${VOXBRIDGE_SSE_FUZZ_SECONDS:-20} s on tests/fuzz/corpus"
  fuzz sse_parser "${VOXBRIDGE_SSE_FUZZ_SECONDS:-20}"
  step "libFuzzer: OpenAI Realtime server events for ${VOXBRIDGE_REALTIME_FUZZ_SECONDS:-20} s on tests/fuzz/corpus"
  fuzz realtime_event "${VOXBRIDGE_REALTIME_FUZZ_SECONDS:-20}"
  step "libFuzzer: Gemini Live server messages for ${VOXBRIDGE_GEMINI_FUZZ_SECONDS:-10} s on tests/fuzz/corpus"
  fuzz gemini_event "${VOXBRIDGE_GEMINI_FUZZ_SECONDS:-10}"
  step "libFuzzer: Deepgram Live Audio messages for ${VOXBRIDGE_DEEPGRAM_FUZZ_SECONDS:-10} s on tests/fuzz/corpus"
  fuzz deepgram_message "${VOXBRIDGE_DEEPGRAM_FUZZ_SECONDS:-10}"
  step "libFuzzer: transcription server answers for ${VOXBRIDGE_TRANSCRIPTION_FUZZ_SECONDS:-10} s on tests/fuzz/corpus"
  fuzz transcription_answer "${VOXBRIDGE_TRANSCRIPTION_FUZZ_SECONDS:-10}"

  step "end-to-end: real Asterisk calls into voxbridge (Asterisk is built once into $VOXBRIDGE_ASTERISK_PREFIX)"
  if [ ! -d "$asterisk_src" ]; then
    echo "Asterisk source not found at $asterisk_src (set VOXBRIDGE_ASTERISK_SRC)"; exit 1
  fi
  as_root bash "$asterisk_src/build.sh" "$VOXBRIDGE_ASTERISK_PREFIX"
  (cd "$root/build" && ctest --output-on-failure -L asterisk)
  step "all tests passed"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: $0 run [voxbridge options] | $0 test"; exit 2 ;;
esac
