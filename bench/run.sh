#!/usr/bin/env bash
# Usage: bench/run.sh [--duration SECONDS] [--rounds N] [--quick] [--no-rebuild] [--soak MINUTES]
#                     [--out DIR]
# Benchmarks the real stacks on this machine. The load generator (wrk) runs in a container on
# each stack's frontend network and asks nginx directly, as a load balancer would; the JSON view
# and the static file are also measured through the published port (Docker's port proxy), for
# comparison. Measured, side by side in one invocation:
#   1. GET /api/tasks/<id>/ (a Postgres read): tuned WSGI (compose.yaml), ASGI (compose.asgi.yaml)
#      and a naive baseline (1 sync worker, nginx without upstream keepalive): via nginx, direct
#      to gunicorn, and via nginx through the published port
#   2. /api/wait/?ms=100 at 50 and 500 connections, WSGI vs ASGI
#   3. POST /api/tasks/ (enqueues a no-op Celery task), WSGI and ASGI
#   4. Celery from inside the network (bench/celery_probe.py): enqueue -> recorded done, tasks/s
#   5. a hashed static file from nginx vs the same file from Django (DJANGO_DEBUG=true, direct)
#   6. idle memory of every container, cold `up --wait`, rebuild after a one-line view change,
#      image sizes
# and for each run the CPU time each service's containers spent per request. With --soak, a soak
# of each variant at half the JSON view's capacity measured in this run. Writes DIR/results.md
# (every target of issue 11, measured vs goal, first), results.json and results.png.
#   --duration S   seconds of each wrk run (default 8)
#   --rounds N     rounds of parts 1 and 5, interleaved; the report shows medians (default 3)
#   --quick        3 s runs, 1 round, fewer Celery tasks: checks the script, not the stack
#   --no-rebuild   skip the rebuild timing
#   --soak M       M minutes of soak per variant (WSGI, ASGI), sampled once a minute (default
#                  0: none; the targets ask for 30)
#   --out DIR      where the report goes (default docs/bench)
# Compose projects BENCH_PREFIX-{wsgi,asgi,naive} (BENCH_PREFIX default django-stack-bench; images
# BENCH_PREFIX-app, -nginx, -wrk): nginx published on ports BENCH_PORT_BASE+1..3 (base 18100).
# .env and the product's variables are ignored (the defaults are measured); stacks and volumes
# are removed at the end, also on failure. COMPOSE_OVERLAY: extra compose files (default
# .ci/compose.build-ca.yaml). Without the official images, the stand-ins of .ci/images/build.sh.
# Needs docker with compose v2, wrk, curl, python3 and uv.
set -Eeuo pipefail

usage() { sed -n '2,33s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

duration=8 rounds=3 trips=200 tasks=600 warmup=2 rebuild=true soak=0 out=docs/bench
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=${2:?--duration needs seconds}; shift ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --quick) duration=3 rounds=1 trips=30 tasks=100 ;;
    --soak) soak=${2:?--soak needs minutes}; shift ;;
    --no-rebuild) rebuild=false ;;
    --out) out=$(realpath -m "${2:?--out needs a directory}"); shift ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
  shift
done

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"

for tool in docker wrk curl python3 uv; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk curl; uv from PyPI)" >&2; exit 2; }
done

overlay=${COMPOSE_OVERLAY-.ci/compose.build-ca.yaml}
# The product's own variables would change what is measured: the bench measures the defaults.
while read -r name; do unset "$name"; done \
  < <(compgen -e | grep -E '^(DJANGO|WEB|CELERY|SERVER|HTTP|NGINX|COMPOSE)_' | grep -v '_IMAGE$')
export BENCH_PREFIX=${BENCH_PREFIX:-django-stack-bench}
export APP_IMAGE=$BENCH_PREFIX-app BENCH_NGINX_IMAGE=$BENCH_PREFIX-nginx BENCH_WRK_IMAGE=$BENCH_PREFIX-wrk

stacks=(wsgi asgi naive)
declare -A label=([wsgi]="WSGI (tuned)" [asgi]=ASGI [naive]="naive baseline") port=() files=() task=()
for i in 1 2 3; do
  stack=${stacks[i - 1]}
  port[$stack]=$((${BENCH_PORT_BASE:-18100} + i))
  files[$stack]=$(COMPOSE_OVERLAY=$overlay compose_files "${stack/naive/wsgi}"):bench/compose.bench.yaml
done
files[naive]+=:bench/compose.naive.yaml
results=$(mktemp "${TMPDIR:-/tmp}/django-stack-bench.XXXXXX.jsonl")

log() { printf '[bench %4ss] %s\n' "$SECONDS" "$*" >&2; }
measure() { python3 bench/measure.py "$@" >>"$results"; }
# url STACK: nginx through the published port; net STACK: the stack's frontend network.
url() { printf 'http://127.0.0.1:%s' "${port[$1]}"; }
net() { printf '%s-%s_frontend' "$BENCH_PREFIX" "$1"; }

# dc STACK ARGS...: docker compose for one bench stack; --env-file keeps a developer's .env out.
dc() {
  local stack=$1
  shift
  COMPOSE_PROJECT_NAME=$BENCH_PREFIX-$stack COMPOSE_FILE=${files[$stack]} \
    HTTP_PORT=${port[$stack]} docker compose --env-file /dev/null "$@"
}

teardown() {
  for stack in "${stacks[@]}"; do dc "$stack" down --volumes --remove-orphans >/dev/null 2>&1 || true; done
}

cleanup() {
  local status=$?
  trap - EXIT
  teardown
  rm -rf "${copy:-}"
  docker image rm "$BENCH_PREFIX-rebuild-app" "$BENCH_PREFIX-rebuild-nginx" >/dev/null 2>&1 || true
  if [ "$status" -eq 0 ]; then rm -f "$results"; else log "failed (exit $status); results so far in $results"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'log "error at line $LINENO: $BASH_COMMAND"' ERR

# wrk_run STACK GROUP CONFIG LABEL CONNECTIONS URL [KEY=VALUE...]: from inside the stack's
# network when URL names a service (nginx:8080, web:8000), else through the published port.
wrk_run() {
  local where=()
  [[ $6 == http://127.0.0.1:* ]] || where=("network=$(net "$1")")
  measure wrk stack="$1" group="$2" config="$3" "label=$4" connections="$5" "url=$6" \
    "path=/${6#http://*/}" duration="$duration" warmup="$warmup" "${where[@]}" "${@:7}"
}

# Waits until no task is queued (POST runs leave a backlog for the worker).
drain() {
  for _ in $(seq 240); do
    # shellcheck disable=SC2016 # expanded in the container
    [ "$(dc "$1" exec -T redis sh -c 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" redis-cli llen celery')" = 0 ] && return 0
    sleep 0.5
  done
  log "warning: the ${label[$1]} worker still has tasks queued after 120 s"
}

# Waits until /healthz answers within 0.2 s again: a wait-bound run leaves a backlog behind.
settle() {
  for _ in $(seq 120); do
    curl -fso /dev/null -m 0.2 "$1/healthz" && return 0
    sleep 0.5
  done
  log "warning: $1 still slow after 60 s"
}

# Containers on this machine that are not the bench's: the noise it shares the cores with.
others() { docker ps --format '{{.Label "com.docker.compose.project"}}' | grep -vc "^$BENCH_PREFIX-" || true; }
workers() { dc "$1" top web | grep -c '[g]unicorn' | awk '{ print $1 - 1 }'; }

step "machine and images"
if [ -z "${PYTHON_IMAGE:-}" ] && ! docker image inspect python:3.13-slim >/dev/null 2>&1; then
  log "no official images here: using the stand-ins (.ci/images/build.sh)"
  while IFS= read -r line; do export "${line?}"; done < <(bash .ci/images/build.sh 2>/dev/null)
fi
dirty=$(git diff --quiet HEAD || echo " (with uncommitted changes)")
measure meta "date=$(date -u '+%Y-%m-%d %H:%M UTC')" "cores=$(nproc)" "kernel=Linux $(uname -r)" \
  "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)" duration="$duration" warmup="$warmup" \
  "memory=$(free -g | awk '/^Mem:/ { print $2 " GiB" }')" rounds="$rounds" \
  "load_start=$(cut -d' ' -f1-3 /proc/loadavg)" "others_start=$(others)"
measure component "docker=$(docker version --format '{{.Server.Version}}')" \
  "compose=$(docker compose version --short)" "wrk=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')" \
  "base images=${PYTHON_IMAGE:-python:3.13-slim}, ${POSTGRES_IMAGE:-postgres:17}, ${REDIS_IMAGE:-redis:8}, ${NGINX_IMAGE:-nginx:1.30}" \
  "commit=$(git rev-parse --short HEAD)$dirty"
started=$(date +%s.%N)
dc wsgi build --quiet
measure timing "label=build, no change (every layer cached)" started="$started"
docker build --quiet --tag "$BENCH_WRK_IMAGE" --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.13-slim}" bench >/dev/null

step "cold up --wait of each stack (fresh volumes: secrets, Postgres init, migrations)"
for stack in "${stacks[@]}"; do
  started=$(date +%s.%N)
  if ! dc "$stack" up --detach --wait --no-build --quiet-pull >/dev/null 2>&1; then
    dc "$stack" ps --all >&2
    dc "$stack" logs --tail 30 >&2
    echo "the ${label[$stack]} stack did not become healthy" >&2
    exit 1
  fi
  measure timing "label=cold up --wait: ${label[$stack]}" started="$started"
  # A task that has run, for the JSON view to read.
  task[$stack]=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"seconds": 0}' \
    "$(url "$stack")/api/tasks/" | json id)
  for _ in $(seq 100); do
    [ "$(curl -fsS "$(url "$stack")/api/tasks/${task[$stack]}/" | json status)" = succeeded ] && break
    sleep 0.2
  done
done
versions=$(dc wsgi exec -T web python -c 'import importlib.metadata as m, platform
print(f"python={platform.python_version()}", *(f"{p}={m.version(p)}" for p in
    ("django", "gunicorn", "uvicorn", "celery", "psycopg")))')
# shellcheck disable=SC2086 # one pair a word
measure component $versions "nginx=$(dc wsgi exec -T nginx nginx -v 2>&1 | sed 's/^nginx version: //')" \
  "postgres=$(dc wsgi exec -T db postgres --version | awk '{ print $3 }')" \
  "redis=$(dc wsgi exec -T redis redis-server --version | awk '{ print $3 }' | sed 's/^v=//')" \
  "workers=gunicorn: WSGI $(workers wsgi) sync, ASGI $(workers asgi) UvicornWorker, naive $(workers naive) sync; ASGI Postgres pool 8 a worker; Celery: 1 worker container, concurrency 2, prefetch 1, acks late (the defaults)"

step "6a. idle memory, once every container has started and settled"
sleep 20
for stack in "${stacks[@]}"; do measure memory stack="$stack" "label=${label[$stack]}"; done

step "1. JSON view reading Postgres, $rounds round(s)"
for round in $(seq "$rounds"); do
  for stack in "${stacks[@]}"; do
    path=/api/tasks/${task[$stack]}/
    wrk_run "$stack" json "$stack-nginx" "${label[$stack]}, via nginx" 32 "http://nginx:8080$path" round="$round"
    wrk_run "$stack" json "$stack-direct" "${label[$stack]}, direct to gunicorn" 32 "http://web:8000$path" round="$round"
    wrk_run "$stack" json "$stack-port" "${label[$stack]}, via nginx, published port" 32 "$(url "$stack")$path" round="$round"
  done
done

step "2. /api/wait/?ms=100"
for connections in 50 500; do
  for stack in wsgi asgi; do
    settle "$(url "$stack")"
    # No warm-up: it would leave a backlog of waiting requests in front of the measured run.
    warmup=0 wrk_run "$stack" wait "$stack" "${label[$stack]}" "$connections" "http://nginx:8080/api/wait/?ms=100"
  done
done
settle "$(url wsgi)"

step "3. POST /api/tasks/ (each enqueues a no-op task, which the worker runs meanwhile)"
for stack in wsgi asgi; do
  wrk_run "$stack" post "$stack" "${label[$stack]}" 32 "http://nginx:8080/api/tasks/" script=post-task.lua
  drain "$stack"
done

step "4. Celery from inside the network"
for stack in wsgi asgi; do
  measure celery stack="$stack" round_trips="$trips" tasks="$tasks" "label=${label[$stack]}"
  drain "$stack"
done

if [ "$soak" -gt 0 ]; then
  step "soak: $soak minute(s) a variant at half the capacity measured in part 1"
  for stack in wsgi asgi; do
    capacity=$(python3 - "$results" "$stack-nginx" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(statistics.median(r["rps"] for r in rows if r["kind"] == "wrk" and r["config"] == sys.argv[2]))
PY
)
    rate=$(python3 -c "print(max(int(float('$capacity') / 2), 1))")
    measure soak stack="$stack" "label=${label[$stack]}" minutes="$soak" capacity="$capacity" \
      rate="$rate" connections=32 "network=$(net "$stack")" task="${task[$stack]}" url=http://nginx:8080/
    drain "$stack"
  done
fi

step "5. static file, nginx vs Django"
# nginx serves the hashed name from its image; Django's static view (debug mode only, direct
# to gunicorn) the same file under its source name, from the app's static directory.
hashed=$(curl -fsS "$(url wsgi)/" | grep -o '/static/demo/status\.[0-9a-f]\{12\}\.css' | head -1 || true)
DJANGO_DEBUG=true dc wsgi up --detach --wait --no-deps --no-build web >/dev/null 2>&1
if [ -z "$hashed" ]; then
  measure note "text=the status page links no hashed stylesheet: static files not measured"
else
  bytes=$(curl -fsS -o /dev/null -w '%{size_download}' "$(url wsgi)$hashed")
  for round in $(seq "$rounds"); do
    wrk_run wsgi static nginx nginx 32 "http://nginx:8080$hashed" round="$round" bytes="$bytes"
    wrk_run wsgi static django "Django (debug mode, direct to gunicorn)" 32 \
      "http://web:8000${hashed%.*.css}.css" round="$round" bytes="$bytes"
    wrk_run wsgi static nginx-port "nginx, published port" 32 "$(url wsgi)$hashed" round="$round" bytes="$bytes"
  done
fi

# What the web containers logged about trouble during the bench.
for stack in "${stacks[@]}"; do
  logs=$(dc "$stack" logs --no-log-prefix web 2>/dev/null || true)
  for trouble in 'WORKER TIMEOUT' "can't start new thread"; do
    count=$(grep -c "$trouble" <<<"$logs" || true)
    if [ "$count" -gt 0 ]; then measure note "text=${label[$stack]}: web logged '$trouble' $count times"; fi
  done
done
teardown

if [ "$rebuild" = true ]; then
  step "6b. rebuild after a one-line view change, in a copy (this work tree is never touched)"
  copy=$(mktemp -d "${TMPDIR:-/tmp}/django-stack-bench-rebuild.XXXXXX")
  git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$copy"
  # A new value each run, so that no earlier bench's build cache can answer it. Every layer
  # before the app code is the build above's, from the cache.
  printf '\nBENCH_REBUILD_MARK = "%s"\n' "$(date +%s%N)" >>"$copy/app/demo/views.py"
  files[rebuild]=$copy/compose.yaml port[rebuild]=0
  for file in ${overlay//:/ } bench/compose.bench.yaml; do files[rebuild]+=:$(realpath "$file"); done
  started=$(date +%s.%N)
  # Images of their own, removed at the end, so that the measured ones stay as they were.
  APP_IMAGE=$BENCH_PREFIX-rebuild-app BENCH_NGINX_IMAGE=$BENCH_PREFIX-rebuild-nginx \
    dc rebuild --project-directory "$copy" build --quiet
  measure timing "label=rebuild after a one-line view change" started="$started"
fi
for image in "$APP_IMAGE" "$BENCH_NGINX_IMAGE" "${PYTHON_IMAGE:-python:3.13-slim}" "${NGINX_IMAGE:-nginx:1.30}"; do
  if size=$(docker image inspect -f '{{.Size}}' "$image" 2>/dev/null); then measure image "label=$image" mb=$((size / 1000000)); fi
done
python_mb=$(docker image inspect -f '{{.Size}}' "${PYTHON_IMAGE:-python:3.13-slim}")
app_mb=$(docker image inspect -f '{{.Size}}' "$APP_IMAGE")
measure image "label=app image over its Python base" mb=$(((app_mb - python_mb) / 1000000)) over_base=1

measure meta "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" "others_end=$(others)" total_seconds="$SECONDS"
mkdir -p "$out"
if ! uv run --quiet --no-project --with 'matplotlib==3.10.3' python bench/report.py "$results" "$out"; then
  log "the report through uv failed: again without the chart"
  python3 bench/report.py "$results" "$out"
fi
log "wrote $out/results.md, results.json and results.png"
