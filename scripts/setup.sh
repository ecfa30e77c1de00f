#!/usr/bin/env bash
# Installs what restore-assistant needs on Debian/Ubuntu: gpg and age (encrypted sets), the PostgreSQL, Redis and Prometheus
# binaries its tests, drills and demo start as throwaway processes, node_exporter and Pushgateway for the metrics
# test, Docker (docker.io, docker-compose) for the container tests, and the npm dependencies.
# Safe to run again: it installs only what is missing. Uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_pg() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_pg || need+=(postgresql postgresql-client)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 && command -v redis-check-rdb >/dev/null 2>&1 || need+=(redis-tools)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v prometheus-pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v tar >/dev/null 2>&1 || need+=(tar)
# Encrypted backup components (*.gpg, *.age: source/offsite/decrypt.ts) and the off-site tests.
command -v gpg >/dev/null 2>&1 && command -v gpgconf >/dev/null 2>&1 || need+=(gnupg)
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || need+=(age)
command -v strace >/dev/null 2>&1 || need+=(strace) # test/integration/verified-bytes.test.ts: which process opens the dump, and when
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
# The container tests start their own private dockerd (source/sandbox/docker.ts) and use Debian's
# client beside it (/usr/bin/docker) and docker-compose v1 for the compose exec kind.
{ command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ]; } && [ -x /usr/bin/docker ] || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)

if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing Debian packages: ${need[*]}" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  # Debian's packages start their services where an init system runs; the tool never uses them.
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi
if [ ! -f node_modules/node-pty/build/Release/pty.node ]; then
  echo "setup: building node-pty" >&2
  npm rebuild node-pty >&2
fi
echo "setup: building" >&2
node --import tsx scripts/build.ts >&2 # the esbuild bundle into dist/ (scripts/build.ts)
