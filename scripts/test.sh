#!/usr/bin/env bash
# Usage: scripts/test.sh [--quick]
# The project's test command. In order, stopping at the first failure:
#   1. lint: scripts/lint.sh (ruff, shellcheck, hadolint, compose-lint, gixy, bandit)
#   2. compose: `docker compose config` of each variant
#   3. unit: the Django test suite in the app image, against real Postgres and Redis
#   4. stack: for WSGI, then ASGI: scripts/smoke.sh --keep, then the pytest stack tests through
#      nginx, then the stack is removed with its volumes
#   5. https: for WSGI, then ASGI: compose.https.yaml with Pebble as the ACME CA
#      (.ci/compose.acme-test.yaml), tests/stack/test_https.py, then removed with its volumes
# --quick: the WSGI stack only, over HTTP.
# Needs docker (with compose), curl, python3, uv, envsubst and the linters (.ci/run installs all). Runs under its own compose
# project (COMPOSE_PROJECT_NAME, default django-stack-test) on HTTP_PORT (default 18000); over
# HTTPS on 127.0.0.1, ports HTTP_PORT+80 (HTTP), +443 (HTTPS) and +15 (Pebble's management API).
# BUILD_CA_BUNDLE: a CA file for image builds behind a TLS-intercepting proxy.
set -Eeuo pipefail

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

variants=(wsgi asgi) https_variants=(wsgi asgi)
case ${1:-} in
  "") ;;
  --quick) variants=(wsgi) https_variants=() ;;
  -h | --help) usage ;;
  *) usage 2 ;;
esac

cd "$(dirname "$0")/.."
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-django-stack-test}
export HTTP_PORT=${HTTP_PORT:-18000}
export STACK_URL="http://127.0.0.1:$HTTP_PORT"
# Tasks of a killed worker come back after 20 s instead of 5 minutes (tests/stack/test_faults.py).
export CELERY_VISIBILITY_TIMEOUT=20
# The HTTPS stage: a test domain that Pebble resolves to caddy (.ci/compose.acme-test.yaml).
export DOMAIN=site.example.test PUBLIC_BIND=127.0.0.1
export PUBLIC_HTTP_PORT=$((HTTP_PORT + 80)) PUBLIC_HTTPS_PORT=$((HTTP_PORT + 443))
export PEBBLE_MANAGEMENT_PORT=$((HTTP_PORT + 15))
if [ -n "${BUILD_CA_BUNDLE:-}" ]; then
  export COMPOSE_OVERLAY=.ci/compose.build-ca.yaml
fi

step() { printf '\n== %s\n' "$*"; }
missing=()
for tool in docker curl python3 uv envsubst ruff shellcheck hadolint compose-lint gixy bandit; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing tools: ${missing[*]} (.ci/run shows how to install them)" >&2
  exit 2
fi

# The HTTPS test stack is a superset of every variant's services.
cleanup() {
  COMPOSE_FILE=compose.https.yaml:.ci/compose.acme-test.yaml \
    docker compose down --volumes --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup  # whatever an interrupted earlier run left behind

step "lint"
scripts/lint.sh

step "compose config"
for file in compose.yaml compose.asgi.yaml compose.https.yaml; do
  docker compose -f "$file" config --quiet
  echo "ok    $file"
done
refusal=$(DOMAIN='' docker compose -f compose.https.yaml config --quiet 2>&1 || true)
if [[ $refusal == *"set DOMAIN in .env"* ]]; then
  echo "ok    compose.https.yaml without DOMAIN: refused, naming it"
else
  echo "FAIL  compose.https.yaml without DOMAIN: not refused with a message" >&2
  exit 1
fi

step "unit tests (app image, real Postgres and Redis)"
export COMPOSE_FILE="compose.yaml${COMPOSE_OVERLAY:+:$COMPOSE_OVERLAY}"
docker compose --profile test build --quiet
docker compose --profile test run --rm test
docker compose --profile test down --volumes --remove-orphans >/dev/null 2>&1

for variant in "${variants[@]}"; do
  step "stack: $variant"
  smoke_options=(--keep --no-build)
  [ "$variant" = asgi ] && smoke_options+=(--asgi)
  scripts/smoke.sh "${smoke_options[@]}"
  base=compose.yaml
  [ "$variant" = asgi ] && base=compose.asgi.yaml
  COMPOSE_FILE="$base${COMPOSE_OVERLAY:+:$COMPOSE_OVERLAY}" STACK_VARIANT=$variant \
    uv run --quiet --no-project --with-requirements tests/requirements.txt \
    pytest -p no:cacheprovider -q tests/stack/test_site.py tests/stack/test_async.py \
    tests/stack/test_hostile.py tests/stack/test_operations.py tests/stack/test_faults.py
  docker compose down --volumes --remove-orphans >/dev/null 2>&1
done

for variant in "${https_variants[@]}"; do
  step "https: $variant (Caddy, with Pebble as the ACME CA)"
  files=compose.https.yaml
  [ "$variant" = asgi ] && files+=:compose.asgi.override.yaml
  export COMPOSE_FILE="$files:.ci/compose.acme-test.yaml${COMPOSE_OVERLAY:+:$COMPOSE_OVERLAY}"
  docker compose build --quiet
  if ! docker compose up --detach --wait --quiet-pull >/dev/null 2>&1; then
    docker compose ps --all
    docker compose logs --tail 30
    exit 1
  fi
  STACK_HTTPS_DOMAIN=$DOMAIN uv run --quiet --no-project --with-requirements tests/requirements.txt \
    pytest -p no:cacheprovider -q tests/stack/test_https.py
  docker compose down --volumes --remove-orphans >/dev/null 2>&1
done

step "all tests passed"
