#!/usr/bin/env bash
# The container image's build steps, in one place: the Dockerfile runs them, and CI runs the same
# script (no container engine runs in CI), so a step that breaks breaks CI too.
#
#   scripts/container-build.sh toolchain            # build tools the compile needs (cmake for zlib-ng)
#   scripts/container-build.sh build PROFILE OUT    # cargo build --locked of the proofgate binary → OUT
#   scripts/container-build.sh stage BIN ROOTFS     # lay out the runtime image's files under ROOTFS, check them
#   scripts/container-build.sh ci                   # what CI runs: see `ci` below
#
# The Dockerfile calls `toolchain`, `build release` and `stage`; CI calls `ci`, which runs
# `toolchain` (a no-op where cmake is present), the same `build` in the dev profile (a release
# build takes most of CI's time budget on two cores, and the dev binary runs the same code),
# `stage` exactly as the Dockerfile does, the Dockerfile's HEALTHCHECK command against a real
# gateway, and checks that every build step in the Dockerfile is a call to this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Where the runtime image keeps things; the Dockerfile, the Kubernetes manifests and docs/ use
# the same paths.
readonly BIN_PATH=usr/local/bin/proofgate
readonly CONFIG_PATH=etc/proofgate/proofgate.toml
readonly EXAMPLES_PATH=usr/share/proofgate/examples
readonly CA_BUNDLE=etc/ssl/certs/ca-certificates.crt

log() { printf 'container-build: %s\n' "$*" >&2; }

toolchain() {
  if command -v cmake >/dev/null 2>&1; then
    log "cmake present"
    return
  fi
  # Pingora's zlib-ng build needs cmake; ca-certificates is the CA bundle `stage` copies.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends cmake ca-certificates >/dev/null
  rm -rf /var/lib/apt/lists/*
}

build() {
  local profile=${1:?profile: release or dev} out=${2:?output path of the binary}
  local dir=$profile
  [ "$profile" = dev ] && dir=debug
  cargo build --locked --profile "$profile" -p proofgate --bin proofgate
  mkdir -p "$(dirname "$out")"
  install -m 0755 "${CARGO_TARGET_DIR:-target}/$dir/proofgate" "$out"
  log "built $out ($profile)"
}

stage() {
  local bin=${1:?binary} root=${2:?rootfs directory}
  rm -rf "$root"
  install -D -m 0755 "$bin" "$root/$BIN_PATH"
  install -D -m 0644 deploy/container/proofgate.toml "$root/$CONFIG_PATH"
  install -d "$root/$EXAMPLES_PATH"
  install -m 0644 config/examples/*.toml "$root/$EXAMPLES_PATH/"
  # The issuer is reached over HTTPS with the system's roots; the slim base image has none.
  install -D -m 0644 "/$CA_BUNDLE" "$root/$CA_BUNDLE"
  # Every shipped configuration must pass the shipped binary's own check.
  "$root/$BIN_PATH" check -c "$root/$CONFIG_PATH"
  local f
  for f in "$root/$EXAMPLES_PATH"/*.toml; do
    "$root/$BIN_PATH" check -c "$f"
  done
  log "staged $root"
}

# The Dockerfile's build steps must be calls to this script and nothing else, so that what CI
# runs is what the image build runs.
check_dockerfile() {
  local steps
  steps=$(python3 - <<'PY'
import re, sys
text = open("Dockerfile").read().replace("\\\n", " ")
bad = []
for line in text.splitlines():
    m = re.match(r"\s*RUN\s+(.*)", line)
    if not m:
        continue
    cmd = re.sub(r"--mount=\S+\s*", "", m.group(1)).strip()
    if not re.fullmatch(r"scripts/container-build\.sh (toolchain|build release \S+|stage \S+ \S+)", cmd):
        bad.append(cmd)
    print(cmd)
if bad:
    sys.exit("Dockerfile RUN steps that are not a call to scripts/container-build.sh: %r" % bad)
PY
  )
  for want in toolchain "build release" stage; do
    grep -q "^scripts/container-build.sh $want" <<<"$steps" ||
      { log "the Dockerfile never runs '$want'"; exit 1; }
  done
  grep -q '^USER [0-9]' Dockerfile || { log "the Dockerfile must set a numeric non-root USER"; exit 1; }
  grep -q '^HEALTHCHECK ' Dockerfile || { log "the Dockerfile has no HEALTHCHECK"; exit 1; }
  log "Dockerfile steps are this script's"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs the Dockerfile's HEALTHCHECK command (exec form) with PROOFGATE_ADMIN_PORT set.
run_healthcheck() {
  local port=$1
  python3 - "$port" <<'PY'
import json, os, re, subprocess, sys
text = open("Dockerfile").read().replace("\\\n", " ")
m = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.M)
if not m:
    sys.exit("no exec-form HEALTHCHECK CMD in the Dockerfile")
argv = json.loads(m.group(1))
env = dict(os.environ, PROOFGATE_ADMIN_PORT=sys.argv[1])
sys.exit(subprocess.run(argv, env=env, timeout=10).returncode)
PY
}

# The HEALTHCHECK must pass against a live gateway and fail against nothing.
check_healthcheck() {
  local bin=$1 proxy admin sandbox pid logfile
  proxy=$(free_port) admin=$(free_port) sandbox=$(free_port)
  logfile=$(mktemp)
  if run_healthcheck "$admin" 2>/dev/null; then
    log "HEALTHCHECK passed with nothing listening"
    exit 1
  fi
  "$bin" dev --listen "127.0.0.1:$proxy" --admin "127.0.0.1:$admin" --sandbox "127.0.0.1:$sandbox" \
    >"$logfile" 2>&1 &
  pid=$!
  local ok=0 i
  for i in $(seq 1 100); do
    if run_healthcheck "$admin" 2>/dev/null; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$ok" != 1 ]; then
    log "HEALTHCHECK never passed against a running gateway"
    cat "$logfile" >&2
    exit 1
  fi
  rm -f "$logfile"
  log "HEALTHCHECK passes against a running gateway"
}

ci() {
  check_dockerfile
  toolchain
  local out
  out=$(mktemp -d)
  trap 'rm -rf "$out"' RETURN
  build dev "$out/bin/proofgate"
  stage "$out/bin/proofgate" "$out/rootfs"
  check_healthcheck "$out/rootfs/$BIN_PATH"
  scripts/validate-manifests.sh "$out/rootfs/$BIN_PATH"
}

cmd=${1:-}
shift || true
case "$cmd" in
  toolchain) toolchain "$@" ;;
  build) build "$@" ;;
  stage) stage "$@" ;;
  ci) ci "$@" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
