#!/usr/bin/env bash
# Usage: scripts/smoke.sh [--asgi] [--keep] [--no-build]
# Builds and starts the stack under its own compose project, waits until every service is
# healthy, then checks it through nginx: one "ok"/"FAIL" line per check. Tears the stack down
# (volumes included) unless --keep. Exits non-zero if any check failed.
#   --asgi      compose.asgi.yaml instead of compose.yaml
#   --keep      leave the stack running (for the stack tests, or a look around)
#   --no-build  use the images already built
# Environment: COMPOSE_PROJECT_NAME (default django-stack-smoke), HTTP_PORT (default 18000),
# COMPOSE_OVERLAY (extra compose files, colon-separated, e.g. .ci/compose.build-ca.yaml).
set -Eeuo pipefail

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

variant=wsgi keep=false build=true
for arg in "$@"; do
  case $arg in
    --asgi) variant=asgi ;;
    --keep) keep=true ;;
    --no-build) build=false ;;
    -h | --help) usage ;;
    *) echo "unknown option: $arg" >&2; usage 2 ;;
  esac
done

cd "$(dirname "$0")/.."
base=compose.yaml
[ "$variant" = asgi ] && base=compose.asgi.yaml
export COMPOSE_FILE="$base${COMPOSE_OVERLAY:+:$COMPOSE_OVERLAY}"
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-django-stack-smoke}
export HTTP_PORT=${HTTP_PORT:-18000}
url="http://127.0.0.1:$HTTP_PORT"

failures=0
ok() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s: %s\n' "$1" "$2"; failures=$((failures + 1)); }
# check NAME WHY COMMAND...: "ok NAME" if COMMAND succeeds, else "FAIL NAME: WHY".
check() {
  local name=$1 why=$2
  shift 2
  if "$@"; then ok "$name"; else fail "$name" "$why"; fi
}

teardown() {
  if [ "$keep" = false ]; then
    docker compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  fi
}
trap teardown EXIT

# Prints the value at a dotted path of the JSON on stdin, or nothing.
json() { python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$1" 2>/dev/null || true; }

if [ "$build" = true ]; then
  docker compose build --quiet
fi
if docker compose up --detach --wait --quiet-pull >/dev/null 2>&1; then
  ok "$variant stack up: every service healthy"
else
  fail "$variant stack up" "not every service became healthy"
  docker compose ps --all
  docker compose logs --tail 30
  exit 1
fi

# The status page, and the static files it links to.
page=$(curl -fsS "$url/" || true)
check "/ status page" "no status page" grep -q "Django stack" <<<"$page"
css=$(grep -o '/static/demo/status\.[0-9a-f]\{12\}\.css' <<<"$page" || true)
if [ -z "$css" ]; then
  fail "static asset" "the page links no hashed stylesheet"
else
  headers=$(curl -fsS -o /dev/null -D - -H 'Accept-Encoding: gzip' "$url$css" || true)
  if [[ ${headers,,} == *"cache-control: public, max-age=31536000, immutable"* \
     && ${headers,,} == *"content-encoding: gzip"* ]]; then
    ok "static asset $css: immutable, gzip"
  else
    fail "static asset $css" "missing immutable caching or gzip"
  fi
fi
admin_css=$(curl -fsS "$url/admin/login/" | grep -o '/static/admin/css/base\.[0-9a-f]\{12\}\.css' || true)
if [ -n "$admin_css" ] && curl -fsS -o /dev/null -w '%{content_type}' "$url$admin_css" | grep -q text/css; then
  ok "/admin/ stylesheet served by nginx"
else
  fail "/admin/ stylesheet" "login page has no stylesheet, or it is not served"
fi

# Probes and the info endpoint.
check "/healthz" "not ok" test "$(curl -fsS "$url/healthz" | json status)" = ok
ready=$(curl -sS "$url/readyz" || true)
check "/readyz: database, redis, migrations" "$ready" test "$(json status <<<"$ready")" = ok
interface=$(curl -fsS "$url/api/info/" | json interface)
check "/api/info/ interface: $variant" "interface is '$interface'" test "$interface" = "$variant"

# A Celery round trip: enqueue through the API, wait for a worker to record the outcome.
task_id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"seconds": 0.2}' \
  "$url/api/tasks/" | json id)
status='' worker=
for _ in $(seq 100); do
  task=$(curl -fsS "$url/api/tasks/$task_id/" || true)
  status=$(json status <<<"$task")
  [ "$status" = succeeded ] && { worker=$(json result.worker <<<"$task"); break; }
  sleep 0.2
done
check "celery round trip: task ran on ${worker:-no worker}" "task '$task_id' is '$status' after 20 s" \
  test -n "$worker"

# Async views: the event loop in use, a wait, and a task's events streamed through nginx.
event_loop=$(curl -fsS "$url/api/info/" | json event_loop)
expected_loop=None
[ "$variant" = asgi ] && expected_loop=uvloop
check "/api/info/ event loop: $expected_loop" "event loop is '$event_loop'" \
  test "$event_loop" = "$expected_loop"
check "/api/wait/?ms=100" "no answer" test "$(curl -fsS "$url/api/wait/?ms=100" | json waited_ms)" = 100
task_id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"seconds": 3}' \
  "$url/api/tasks/" | json id)
# grep stops at the first event; curl then ends on its next write, hence the 2>/dev/null.
first_event=$(curl -fsSN --max-time 20 "$url/api/tasks/$task_id/events/" 2>/dev/null \
  | grep -m1 '^event: ' || true)
status_then=$(curl -fsS "$url/api/tasks/$task_id/" | json status)
check "task events: '$first_event' streamed before the task ended" \
  "first event '$first_event', task already '$status_then'" \
  test -n "$first_event" -a "$status_then" != succeeded

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all smoke checks passed ($variant)"
