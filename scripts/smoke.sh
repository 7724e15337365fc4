#!/usr/bin/env bash
# Usage: scripts/smoke.sh [--asgi] [--keep] [--no-build] | scripts/smoke.sh [--asgi] --url URL
# Builds and starts the stack under its own compose project, waits until every service is
# healthy, then checks what a visitor relies on through nginx, one "ok"/"FAIL" line per check.
# Tears the stack down (volumes included) unless --keep. Exits non-zero if any check failed.
# The pytest stack tests (tests/stack/) check the rest in depth.
#   --asgi      compose.asgi.yaml instead of compose.yaml
#   --keep      leave the stack running (for the stack tests, or a look around)
#   --no-build  use the images already built
#   --url URL   only check the site running at URL (a deployment; nothing is started)
# Environment: COMPOSE_PROJECT_NAME (default django-stack-smoke), HTTP_PORT (default 18000),
# COMPOSE_OVERLAY (extra compose files, colon-separated, e.g. .ci/compose.build-ca.yaml).
set -Eeuo pipefail

usage() { sed -n '2,12s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

variant=wsgi keep=false build=true url=''
while [ $# -gt 0 ]; do
  case $1 in
    --asgi) variant=asgi ;;
    --keep) keep=true ;;
    --no-build) build=false ;;
    --url) url=${2:?--url needs a URL}; shift ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
  shift
done

# start_stack: the stack of this checkout, under its own project, every service healthy.
start_stack() {
  require_docker
  COMPOSE_FILE=$(compose_files "$variant")
  export COMPOSE_FILE
  export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-django-stack-smoke}
  export HTTP_PORT=${HTTP_PORT:-18000}
  url="http://127.0.0.1:$HTTP_PORT"
  teardown() {
    if [ "$keep" = false ]; then
      docker compose down --volumes --remove-orphans >/dev/null 2>&1 || true
    fi
  }
  trap teardown EXIT

  if [ "$build" = true ]; then
    docker compose build --quiet
  fi
  # --no-build: built just now, or by whoever passed --no-build (web's pull_policy would build
  # it on every up).
  if up_healthy --no-build; then
    # The worker's healthcheck is a Celery ping through the broker: healthy means it answers.
    ok "$variant stack up: every service healthy (the worker answers through the broker)"
  else
    fail "$variant stack up" "not every service became healthy (states and logs above)"
    exit 1
  fi
}
[ -n "$url" ] || start_stack
url=${url%/}

check "/healthz" "not ok" test "$(curl -fsS "$url/healthz" | json status)" = ok
ready=$(curl -sS "$url/readyz" || true)
check "/readyz: database, redis, migrations" "$ready" test "$(json status <<<"$ready")" = ok
admin_css=$(curl -fsS "$url/admin/login/" | grep -o '/static/admin/css/base\.[0-9a-f]\{12\}\.css' || true)
if [ -n "$admin_css" ] && curl -fsS -o /dev/null -w '%{content_type}' "$url$admin_css" | grep -q text/css; then
  ok "/admin/ styled: $admin_css served by nginx"
else
  fail "/admin/ stylesheet" "login page has no stylesheet, or it is not served"
fi

# Each app's own checks, if it has any: app/*/smoke.sh, sourced with $url and $variant set.
for app_checks in app/*/smoke.sh; do
  [ -e "$app_checks" ] || continue
  # shellcheck source=/dev/null
  source "$app_checks"
done

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all smoke checks passed ($variant)"
