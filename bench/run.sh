#!/usr/bin/env bash
# Usage: scripts/bench.sh [--duration SECONDS] [--rounds N] [--quick] [--no-rebuild] [--out DIR]
# Benchmarks the real stacks on this machine in one invocation, through nginx on 127.0.0.1:
#   1. GET /api/tasks/<id>/ (a Postgres read): tuned WSGI (compose.yaml), ASGI (compose.asgi.yaml)
#      and a naive baseline (1 sync worker, nginx without upstream keepalive), each through nginx
#      and direct to gunicorn
#   2. /api/wait/?ms=100 at 50 and 500 connections, WSGI vs ASGI
#   3. a hashed static file from nginx vs the same file from Django (DJANGO_DEBUG=true, direct)
#   4. Celery: enqueue -> "succeeded" event round trip, and tasks/s
#   5. cold `up --wait`, rebuild after a one-line view change (in a temporary copy), image sizes
# Writes DIR/results.md, results.png (chart) and results.json, and prints the report.
#   --duration S   seconds of each wrk run (default 8)
#   --rounds N     rounds of parts 1 and 3, interleaved; the report shows medians (default 4)
#   --quick        3 s runs, 1 round, fewer Celery tasks: checks the script, not the stack
#   --no-rebuild   skip the rebuild timing
#   --out DIR      where the report goes (default docs/bench)
# Runs compose projects django-stack-bench-{wsgi,asgi,naive} on ports BENCH_PORT_BASE+1..+13
# (default 18101..18113), ignores .env (scripts/bench/bench.env instead) and removes the
# stacks with their volumes when done, also on failure. COMPOSE_OVERLAY: extra compose files,
# colon-separated (default tests/compose.build-ca.yaml). Without the official images here,
# tests/images/build.sh's stand-ins are used. Needs docker with compose v2, wrk, curl, python3
# and uv (the chart). Load goes to 127.0.0.1 only.
set -Eeuo pipefail

usage() { sed -n '2,24s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

duration=8 rounds=4 quick=false rebuild=true out=docs/bench
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=${2:?--duration needs seconds}; shift ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --quick) quick=true duration=3 rounds=1 ;;
    --no-rebuild) rebuild=false ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."
repo=$(pwd)
bench_started=$(date +%s.%N)

# --- settings -----------------------------------------------------------------------------------

readonly warmup=2 timeout=2 json_connections=32 static_connections=32 wait_ms=100
readonly -a wait_connections=(50 500)
threads=$(nproc)
celery_round_trips=200 celery_tasks=300
if [ "$quick" = true ]; then celery_round_trips=30 celery_tasks=50; fi
overlay=${COMPOSE_OVERLAY-tests/compose.build-ca.yaml}
port_base=${BENCH_PORT_BASE:-18100}

stacks=(wsgi asgi naive)
declare -A base_file=([wsgi]=compose.yaml [asgi]=compose.asgi.yaml [naive]=compose.yaml)
declare -A extra_file=([naive]=scripts/bench/compose.naive.yaml)
declare -A label=([wsgi]="WSGI (tuned)" [asgi]="ASGI" [naive]="naive baseline")
declare -A http_port=([wsgi]=$((port_base + 1)) [asgi]=$((port_base + 2)) [naive]=$((port_base + 3)))
declare -A direct_port=([wsgi]=$((port_base + 11)) [asgi]=$((port_base + 12)) [naive]=$((port_base + 13)))
declare -A task_id=()

# The product's own variables would change what is measured: the bench measures the defaults.
unset WEB_CONCURRENCY DJANGO_DB_POOL_SIZE CELERY_WORKER_CONCURRENCY DJANGO_DEBUG SERVER_INTERFACE \
  HTTP_BIND HTTP_PORT DJANGO_LOG_LEVEL DJANGO_LOG_FORMAT NGINX_CLIENT_MAX_BODY_SIZE \
  COMPOSE_FILE COMPOSE_PROJECT_NAME
export APP_IMAGE=django-stack-bench-app BENCH_NGINX_IMAGE=django-stack-bench-nginx

run=$(mktemp -d "${TMPDIR:-/tmp}/django-stack-bench.XXXXXX")
results=$run/results.jsonl
mkdir -p "$run/raw"
touch "$results"

# --- helpers ------------------------------------------------------------------------------------

log() { printf '[bench %5.0fs] %s\n' "$(elapsed "$bench_started")" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
record() { python3 scripts/bench/report.py record "$@" >>"$results"; }
note() { record kind=note "section=$1" "text=$2"; log "note: $2"; }

# Prints the value at a dotted path of the JSON on stdin, or nothing.
json() {
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$1" 2>/dev/null || true
}

compose_files() {
  local stack=$1 files=${base_file[$1]}
  [ -n "$overlay" ] && files+=":$overlay"
  files+=":scripts/bench/compose.images.yaml:scripts/bench/compose.direct.yaml"
  [ -n "${extra_file[$stack]:-}" ] && files+=":${extra_file[$stack]}"
  [ -n "${BENCH_EXTRA_FILES:-}" ] && files+=":$BENCH_EXTRA_FILES"
  printf '%s' "$files"
}

# dc STACK ARGS...: docker compose for one bench stack.
dc() {
  local stack=$1
  shift
  COMPOSE_PROJECT_NAME=django-stack-bench-$stack COMPOSE_FILE=$(compose_files "$stack") \
    HTTP_PORT=${http_port[$stack]} BENCH_DIRECT_PORT=${direct_port[$stack]} \
    docker compose --env-file scripts/bench/bench.env "$@"
}

url() { printf 'http://127.0.0.1:%s' "${http_port[$1]}"; }
direct_url() { printf 'http://127.0.0.1:%s' "${direct_port[$1]}"; }
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true; }

teardown() {
  local stack
  for stack in "${stacks[@]}"; do
    dc "$stack" down --volumes --remove-orphans >/dev/null 2>&1 || true
  done
}

cleanup() {
  local status=$?
  trap - EXIT
  [ "$status" -ne 0 ] && log "failed (exit $status): removing the bench stacks"
  teardown
  [ -n "${rebuild_dir:-}" ] && rm -rf "$rebuild_dir"
  docker image rm django-stack-bench-rebuild-app django-stack-bench-rebuild-nginx >/dev/null 2>&1 || true
  log "raw output kept in $run"
  exit "$status"
}
trap cleanup EXIT
trap 'log "error at line $LINENO: $BASH_COMMAND"' ERR

# Waits until a quick request to the stack answers in under 0.2 s again (a backlog has drained).
settle() {
  local target=$1 answer
  for _ in $(seq 120); do
    answer=$(curl -s -o /dev/null -m 2 -w '%{http_code} %{time_total}' "$target/healthz" || true)
    if [[ $answer == 200\ * ]] && awk -v t="${answer#* }" 'BEGIN { exit !(t < 0.2) }'; then
      return 0
    fi
    sleep 0.5
  done
  log "warning: $target still slow after 60 s"
}

# CPU nanoseconds a container has used so far (cgroup v1 cpuacct or v2 cpu.stat; 0 if neither).
container_cpu_ns() {
  local id=$1 file
  for file in "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage" \
    "/sys/fs/cgroup/cpu,cpuacct/docker/$id/cpuacct.usage"; do
    if [ -r "$file" ]; then cat "$file"; return; fi
  done
  file=/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat
  if [ -r "$file" ]; then awk '/^usage_usec/ { printf "%d\n", $2 * 1000 }' "$file"; return; fi
  echo 0
}

# stack_cpu_ns STACK: "ALL WEB NGINX", CPU nanoseconds used so far by the stack's containers.
stack_cpu_ns() {
  local service id ns all=0 web=0 nginx=0
  while read -r service id; do
    ns=$(container_cpu_ns "$id")
    all=$((all + ns))
    case $service in
      web) web=$((web + ns)) ;;
      nginx) nginx=$((nginx + ns)) ;;
    esac
  done < <(docker ps --no-trunc --filter "label=com.docker.compose.project=django-stack-bench-$1" \
    --format '{{.Label "com.docker.compose.service"}} {{.ID}}')
  echo "$all $web $nginx"
}

# nginx_statuses STACK SINCE: "CODE:COUNT ..." of the non-200 answers nginx logged since then.
nginx_statuses() {
  dc "$1" logs --no-log-prefix --since "$2" nginx 2>/dev/null \
    | grep -o '"status":[0-9]*' | cut -d: -f2 | grep -v '^200$' | sort | uniq -c \
    | awk '{ printf "%s%s:%s", sep, $2, $1; sep = " " }' || true
}

# wrk_run STACK GROUP CONFIG LABEL CONNECTIONS URL ROUND [KEY=VALUE...]: one wrk run, recorded
# with the CPU time the stack's containers used during it, after a warm-up of BENCH_WARMUP
# seconds (default $warmup) at the same concurrency.
wrk_run() {
  local stack=$1 group=$2 config=$3 name=$4 connections=$5 target=$6 round=$7
  shift 7
  local raw="$run/raw/$group-$config-c$connections-r$round.txt"
  local wrk_threads=$((threads < connections ? threads : connections))
  local warm=${BENCH_WARMUP:-$warmup} all0 web0 nginx0 all1 web1 nginx1 since statuses=""
  if [ "$warm" -gt 0 ]; then
    wrk -t "$wrk_threads" -c "$connections" -d "${warm}s" --timeout "${timeout}s" "$target" >/dev/null
  fi
  read -r all0 web0 nginx0 < <(stack_cpu_ns "$stack")
  since=$(date +%s)
  wrk -t "$wrk_threads" -c "$connections" -d "${duration}s" --timeout "${timeout}s" --latency \
    "$target" >"$raw"
  read -r all1 web1 nginx1 < <(stack_cpu_ns "$stack")
  # Which answers the non-2xx were, from nginx's access log (runs through nginx only).
  if grep -q 'Non-2xx' "$raw" && [[ $target == "$(url "$stack")"* ]]; then
    statuses=$(nginx_statuses "$stack" "$since")
  fi
  # The JSON line goes to the results, a readable summary of it to stderr.
  python3 scripts/bench/report.py wrk "$raw" group="$group" config="$config" "label=$name" \
    connections="$connections" round="$round" "path=/${target#http://*/}" \
    x_cpu_ns=$((all1 - all0)) x_web_cpu_ns=$((web1 - web0)) x_nginx_cpu_ns=$((nginx1 - nginx0)) \
    "x_statuses=$statuses" "$@" >>"$results"
}

# --- preparation --------------------------------------------------------------------------------

check_tools() {
  local missing=() tool
  for tool in docker wrk curl python3 uv; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing tools: ${missing[*]} (apt-get install -y wrk curl; uv from PyPI)" >&2
    exit 2
  fi
}

# Official base images when this machine has them, else the registry-free stand-ins.
select_images() {
  local line
  if [ -z "${PYTHON_IMAGE:-}" ] && ! docker image inspect python:3.13-slim >/dev/null 2>&1; then
    log "no official images here: building/using the stand-ins (tests/images/build.sh)"
    while IFS= read -r line; do export "${line?}"; done < <(bash tests/images/build.sh 2>/dev/null)
  fi
  base_images="python ${PYTHON_IMAGE:-python:3.13-slim}, postgres ${POSTGRES_IMAGE:-postgres:17},"
  base_images+=" redis ${REDIS_IMAGE:-redis:8}, nginx ${NGINX_IMAGE:-official}"
}

# Containers running on this machine that are not the bench's: the noise it shares the cores with.
other_containers() {
  docker ps --format '{{.Label "com.docker.compose.project"}}' | grep -vc '^django-stack-bench-' || true
}

machine_facts() {
  local commit dirty="" wrk_version
  wrk_version=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -n "$(GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no 2>/dev/null)" ] \
    && dirty=" (with uncommitted changes)"
  record kind=meta "date=$(date -u '+%Y-%m-%d %H:%M UTC')" "cores=$(nproc)" \
    "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
    "memory=$(free -g | awk '/^Mem:/ { print $2 " GiB" }')" "kernel=Linux $(uname -r)" \
    "docker=$(docker version --format '{{.Server.Version}}')" \
    "compose=$(docker compose version --short)" \
    "wrk=$wrk_version" "base_images=$base_images" \
    "commit=$commit$dirty" duration="$duration" warmup="$warmup" timeout="$timeout" \
    rounds="$rounds" wrk_threads="$threads" "load_start=$(cut -d' ' -f1-3 /proc/loadavg)" \
    "other_containers=$(other_containers)"
  log "$(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, docker $(docker version --format '{{.Server.Version}}'), compose $(docker compose version --short), wrk $wrk_version"
}

build_images() {
  local started
  log "building the app and nginx images (cached layers reused)"
  started=$(now)
  dc wsgi build --quiet
  record kind=timing "label=build, no change (every layer cached)" seconds="$(elapsed "$started")"
}

# Cold start: fresh volumes, so secrets are generated, Postgres initialised, migrations applied.
cold_up() {
  local stack=$1 started
  log "cold up --wait: ${label[$stack]}"
  dc "$stack" down --volumes --remove-orphans >/dev/null 2>&1 || true
  started=$(now)
  if ! dc "$stack" up --detach --wait --no-build --quiet-pull >/dev/null 2>&1; then
    dc "$stack" ps --all >&2
    dc "$stack" logs --tail 30 >&2
    echo "the ${label[$stack]} stack did not become healthy" >&2
    exit 1
  fi
  record kind=timing "label=cold up --wait: ${label[$stack]}" seconds="$(elapsed "$started")"
  # shellcheck disable=SC2046 # one argument per container id
  docker inspect $(dc "$stack" ps --all --quiet) \
    | python3 scripts/bench/report.py timeline --since "$started" "label=${label[$stack]}" \
      >>"$results"
}

# A task that has run, for the JSON view to read.
seed_task() {
  local stack=$1 id status=""
  id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"seconds": 0}' \
    "$(url "$stack")/api/tasks/" | json id)
  for _ in $(seq 100); do
    status=$(curl -fsS "$(url "$stack")/api/tasks/$id/" | json status)
    [ "$status" = succeeded ] && break
    sleep 0.2
  done
  [ "$status" = succeeded ] || { echo "task $id on $stack is '$status'" >&2; exit 1; }
  task_id[$stack]=$id
}

worker_count() { dc "$1" top web | grep -c '[g]unicorn' | awk '{ print $1 - 1 }'; }

stack_facts() {
  local versions
  wsgi_workers=$(worker_count wsgi)
  versions=$(dc wsgi exec -T web python -c 'import json, platform
import celery, django, gunicorn, psycopg, uvicorn
print(json.dumps({"python": platform.python_version(), "django": django.get_version(),
    "gunicorn": gunicorn.__version__, "uvicorn": uvicorn.__version__,
    "celery": celery.__version__, "psycopg": psycopg.__version__}))')
  record kind=meta - <<<"$versions"
  record kind=meta \
    "nginx=$(dc wsgi exec -T nginx nginx -v 2>&1 | sed 's/^nginx version: //')" \
    "postgres=$(dc wsgi exec -T db postgres --version | awk '{ print $3 }')" \
    "redis=$(dc wsgi exec -T redis redis-server --version | awk '{ print $3 }' | sed 's/^v=//')" \
    "workers=gunicorn: WSGI $wsgi_workers sync, ASGI $(worker_count asgi) UvicornWorker, naive $(worker_count naive) sync; ASGI Postgres pool 8 a worker; Celery: 1 worker container, concurrency 2 (the defaults)"
  log "versions: $versions"
}

# --- measurements -------------------------------------------------------------------------------

json_view() {
  local round stack
  log "part 1: JSON view reading Postgres, $rounds round(s)"
  for round in $(seq "$rounds"); do
    for stack in "${stacks[@]}"; do
      wrk_run "$stack" json "$stack-nginx" "${label[$stack]}, via nginx" "$json_connections" \
        "$(url "$stack")/api/tasks/${task_id[$stack]}/" "$round"
      wrk_run "$stack" json "$stack-direct" "${label[$stack]}, direct to gunicorn" "$json_connections" \
        "$(direct_url "$stack")/api/tasks/${task_id[$stack]}/" "$round"
    done
  done
}

wait_view() {
  local connections stack
  log "part 2: /api/wait/?ms=$wait_ms"
  # No warm-up: it would leave a backlog of waiting requests in front of the measured run.
  for connections in "${wait_connections[@]}"; do
    for stack in wsgi asgi; do
      settle "$(url "$stack")"
      BENCH_WARMUP=0 wrk_run "$stack" wait "$stack" "${label[$stack]}" "$connections" \
        "$(url "$stack")/api/wait/?ms=$wait_ms" 1 x_wait_ms="$wait_ms"
    done
  done
  settle "$(url wsgi)"
}

celery_round_trip() {
  local stack out
  log "part 4: Celery round trips and throughput"
  for stack in wsgi asgi; do
    out=$(python3 scripts/bench/celery_bench.py --port "${http_port[$stack]}" \
      --round-trips "$celery_round_trips" --tasks "$celery_tasks")
    record kind=celery config="$stack" "label=${label[$stack]}" - <<<"$out"
    log "celery ${label[$stack]}: $out"
  done
}

# nginx serves the hashed name from the image; Django's static view (debug mode only) serves the
# same file under its source name, from the app's static directory.
static_file() {
  local hashed plain round bytes_nginx bytes_django
  log "part 3: static file, nginx vs Django"
  hashed=$(curl -fsS "$(url wsgi)/" | grep -o '/static/demo/status\.[0-9a-f]\{12\}\.css' | head -1)
  if [ -z "$hashed" ]; then
    note static "the status page links no hashed stylesheet: static files not measured"
    return 0
  fi
  plain=${hashed%.*.css}.css
  # web again, in debug mode (direct port only; nginx re-resolves it).
  BENCH_EXTRA_FILES=scripts/bench/compose.debug.yaml dc wsgi up --detach --wait --no-deps \
    --no-build web >/dev/null 2>&1
  if [ "$(http_code "$(direct_url wsgi)$plain")" != 200 ]; then
    note static "Django did not serve $plain with DJANGO_DEBUG=true (does config/urls.py add staticfiles_urlpatterns()?): only nginx measured"
    plain=""
  fi
  bytes_nginx=$(curl -fsS -o /dev/null -w '%{size_download}' "$(url wsgi)$hashed")
  [ -n "$plain" ] && bytes_django=$(curl -fsS -o /dev/null -w '%{size_download}' "$(direct_url wsgi)$plain")
  for round in $(seq "$rounds"); do
    wrk_run wsgi static nginx "nginx" "$static_connections" "$(url wsgi)$hashed" "$round" \
      x_bytes="$bytes_nginx"
    if [ -n "$plain" ]; then
      wrk_run wsgi static django "Django (debug mode, $wsgi_workers sync workers, direct)" \
        "$static_connections" \
        "$(direct_url wsgi)$plain" "$round" x_bytes="$bytes_django"
    fi
  done
}

# What the web containers logged about trouble during the bench.
web_log_findings() {
  local stack logs count
  for stack in "${stacks[@]}"; do
    logs=$(dc "$stack" logs --no-log-prefix web 2>/dev/null || true)
    count=$(grep -c 'WORKER TIMEOUT' <<<"$logs" || true)
    if [ "$count" -gt 0 ]; then
      note other "${label[$stack]}: gunicorn killed $count worker(s) for WORKER TIMEOUT during the bench"
    fi
    count=$(grep -c "can't start new thread" <<<"$logs" || true)
    if [ "$count" -gt 0 ]; then
      note other "${label[$stack]}: web logged \"RuntimeError: can't start new thread\" $count times (the container's pids_limit reached: threads count as pids)"
    fi
  done
}

build_copy() {
  COMPOSE_PROJECT_NAME=django-stack-bench-rebuild COMPOSE_FILE=$1 \
    APP_IMAGE=django-stack-bench-rebuild-app BENCH_NGINX_IMAGE=django-stack-bench-rebuild-nginx \
    docker compose --project-directory "$rebuild_dir" --env-file "$repo/scripts/bench/bench.env" \
    build --quiet
}

# The rebuild a developer waits for after changing one line of a view: in a temporary copy of the
# tracked files (this work tree is never touched), built once as it is, then after the change.
rebuild_after_change() {
  local started files file
  log "part 5: rebuild after a one-line view change (temporary copy)"
  rebuild_dir=$(mktemp -d "${TMPDIR:-/tmp}/django-stack-bench-rebuild.XXXXXX")
  git ls-files -z | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null \
    | tar -xf - -C "$rebuild_dir"
  # The copy's compose.yaml (its directory is the build context); overlays from this work tree.
  files="$rebuild_dir/compose.yaml"
  local -a extra=()
  [ -n "$overlay" ] && IFS=: read -ra extra <<<"$overlay"
  for file in "${extra[@]}" scripts/bench/compose.images.yaml; do
    [[ $file == /* ]] || file=$repo/$file
    files+=":$file"
  done
  build_copy "$files"
  # A new value each run, so that no earlier bench's build cache can answer it.
  printf '\nBENCH_REBUILD_MARK = "%s"\n' "$(date +%s%N)" >>"$rebuild_dir/app/demo/views.py"
  started=$(now)
  build_copy "$files"
  record kind=timing "label=rebuild after a one-line view change" seconds="$(elapsed "$started")"
}

image_sizes() {
  local image
  for image in "$APP_IMAGE" "$BENCH_NGINX_IMAGE" "${PYTHON_IMAGE:-python:3.13-slim}" \
    "${NGINX_IMAGE:-nginx:1.30}"; do
    docker image inspect "$image" >/dev/null 2>&1 || continue
    record kind=image "label=$image" bytes="$(docker image inspect -f '{{.Size}}' "$image")"
  done
}

render() {
  mkdir -p "$out"
  record kind=meta "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" \
    "other_containers_end=$(other_containers)"
  record kind=meta total_seconds="$(elapsed "$bench_started" | cut -d. -f1)"
  local args=(render "$results" --markdown "$out/results.md" --json "$out/results.json")
  if uv run --quiet --no-project --with 'matplotlib==3.10.3' python scripts/bench/report.py \
    "${args[@]}" --chart "$out/results.png" >"$run/report.md"; then
    :
  else
    log "no chart (matplotlib through uv failed): markdown only"
    python3 scripts/bench/report.py "${args[@]}" >"$run/report.md"
  fi
  cat "$run/report.md"
  log "wrote $out/results.md, $out/results.json$([ -f "$out/results.png" ] && echo ", $out/results.png")"
}

# --- main ---------------------------------------------------------------------------------------

check_tools
select_images
machine_facts
build_images
for stack in "${stacks[@]}"; do cold_up "$stack"; done
for stack in "${stacks[@]}"; do seed_task "$stack"; done
stack_facts
json_view
wait_view
celery_round_trip
static_file
web_log_findings
teardown
[ "$rebuild" = true ] && rebuild_after_change
image_sizes
render
log "done in $(elapsed "$bench_started") s"
