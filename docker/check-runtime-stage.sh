#!/usr/bin/env bash
# Checks the image's runtime stage without Docker: a minimal Debian 12 root made by debootstrap
# (what debian:12-slim is), the runtime stage's apt-get line and user taken from the Dockerfile
# itself, the two binaries of a local build and the image's config copied in; then, inside the
# root as uid 10001, voxbridge starts on docker/voxbridge.conf, the HEALTHCHECK's curl gets 200
# from /readyz, SIGTERM drains it to exit 0, and voxbridge-provider starts and answers.
#
#   sudo docker/check-runtime-stage.sh BUILD_DIR [ROOT_DIR]
#
# BUILD_DIR holds src/app/voxbridge and src/provider_host/voxbridge-provider (any build type,
# built on Debian 12). ROOT_DIR (default /var/tmp/voxbridge-runtime-root) is kept for reuse.
# Needs root, debootstrap and deb.debian.org.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR [ROOT_DIR]}" && pwd)
root=${2:-/var/tmp/voxbridge-runtime-root}
dockerfile="$here/Dockerfile"

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap and chroot)"
command -v debootstrap >/dev/null || fail "apt-get install debootstrap"
for b in src/app/voxbridge src/provider_host/voxbridge-provider; do
  [ -x "$build/$b" ] || fail "$build/$b missing: build the targets voxbridge voxbridge-provider"
done

# The runtime stage's package list, as the Dockerfile has it (the RUN after FROM ... AS runtime).
packages=$(awk '/^FROM .* AS runtime/ {rt = 1} rt && /apt-get install/ {on = 1; next}
                rt && on { if ($0 ~ /&&/) exit; print }' "$dockerfile" | tr -d '\\' | xargs)
[ -n "$packages" ] || fail "no package list found in the runtime stage of $dockerfile"
say "runtime packages: $packages"

if [ ! -x "$root/usr/bin/apt-get" ]; then
  say "debootstrap --variant=minbase bookworm $root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
cp /etc/resolv.conf "$root/etc/resolv.conf"

say "apt-get install (the runtime stage's line)"
# shellcheck disable=SC2086
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages" \
  >/dev/null
in_root sh -c 'getent group voxbridge >/dev/null || groupadd --system --gid 10001 voxbridge'
in_root sh -c 'id voxbridge >/dev/null 2>&1 || useradd --system --uid 10001 --gid voxbridge \
  --home-dir /var/lib/voxbridge --shell /usr/sbin/nologin voxbridge'
install -d -m 0750 -o 10001 -g 10001 "$root/var/lib/voxbridge"

say "the image's files"
install -D -m 0755 "$build/src/app/voxbridge" "$root/usr/local/bin/voxbridge"
install -D -m 0755 "$build/src/provider_host/voxbridge-provider" \
  "$root/usr/local/bin/voxbridge-provider"
install -D -m 0644 "$here/voxbridge.conf" "$root/etc/voxbridge/voxbridge.conf"

missing=$(in_root sh -c 'ldd /usr/local/bin/voxbridge /usr/local/bin/voxbridge-provider' |
  grep 'not found' || true)
[ -z "$missing" ] || fail "shared libraries the runtime stage lacks: $missing"
say "ldd: every shared library resolves"

say "voxbridge as uid 10001 on /etc/voxbridge/voxbridge.conf"
token=check-runtime-stage-token-0123456789
log="$root/var/lib/voxbridge/check.log"
chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  VOXBRIDGE_HTTP_TOKEN=$token sh -c 'cd /var/lib/voxbridge &&
  exec /usr/local/bin/voxbridge --config /etc/voxbridge/voxbridge.conf' >"$log" 2>&1 &
pid=$!
ready=""
for _ in $(seq 1 150); do
  if in_root curl -fsS -o /dev/null http://127.0.0.1:8081/readyz 2>/dev/null; then
    ready=yes
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$ready" ]; then
  kill "$pid" 2>/dev/null || true
  cat "$log" >&2
  fail "/readyz never answered 200"
fi
say "HEALTHCHECK (curl -fsS http://127.0.0.1:8081/readyz): 200"
code=$(in_root curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/status)
[ "$code" = 401 ] || fail "/status without the token answered $code, not 401"
code=$(in_root curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  http://127.0.0.1:8081/status)
[ "$code" = 200 ] || fail "/status with the token answered $code, not 200"
say "/status: 401 without the token, 200 with it"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || { cat "$log" >&2; fail "voxbridge exited $rc after SIGTERM"; }
say "SIGTERM: drained, exit 0"

say "voxbridge-provider as uid 10001"
chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /usr/local/bin/voxbridge-provider --listen 127.0.0.1:50099 >"$log" 2>&1 &
ppid=$!
up=""
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/50099) 2>/dev/null; then
    up=yes
    break
  fi
  kill -0 "$ppid" 2>/dev/null || break
  sleep 0.2
done
kill -TERM "$ppid" 2>/dev/null || true
wait "$ppid" 2>/dev/null || true
[ -n "$up" ] || { cat "$log" >&2; fail "voxbridge-provider did not listen"; }
say "voxbridge-provider: listening on 127.0.0.1:50099"
say "runtime stage OK"
