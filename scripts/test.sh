#!/usr/bin/env bash
# Usage: scripts/test.sh [--quick | --swarm | --dev-loop]
# The project's test command. In order, stopping at the first failure:
#   1. lint: scripts/lint.sh
#   2. compose: `docker compose config` of each variant
#   3. unit: the Django tests in the app's test image, against real Postgres and Redis
#   4. stack: for WSGI, then ASGI: scripts/smoke.sh --keep, then every tests/stack/test_*.py
#      through nginx, then the stack is removed with its volumes
#   5. https: for WSGI, then ASGI: compose.https.yaml with Pebble as the ACME CA
#      (.ci/compose.acme-test.yaml), tests/stack/test_https.py, then removed with its volumes
#   6. dev loop: compose.dev.yaml under `docker compose watch` in a temporary copy of the
#      repository: edits to a view, a template, a stylesheet and a task served without a
#      rebuild; scripts/manage.sh makemigrations writes a file owned by the checkout's owner
#      (tests/devloop/, about 35 s)
#   7. swarm: a three-node Docker Swarm with a registry, from Docker engines in containers
#      (.ci/swarm.sh); for WSGI, then ASGI: scripts/deploy.sh, then tests/swarm/ (rolling update,
#      scaling, a failing migration, a node stopped, a worker's node killed)
#   8. template: scripts/init.sh in a temporary copy of the repository (tests/template.sh)
# --quick: steps 1 to 4, WSGI only.
# --dev-loop: step 6 only.
# --swarm: step 7 only. STACK_SKIP_SWARM=1 skips it (its Docker-in-Docker nodes are built for
#   this project's CI machines, cgroup v1: .ci/README.md).
# Needs docker with compose v2, uv, python3 and curl; uv fetches the pinned linters and test
# tools itself (tests/requirements.txt). Runs under its own compose project
# (COMPOSE_PROJECT_NAME, default django-stack-test; the dev loop's is that + "-dev") on
# 127.0.0.1, port TEST_HTTP_PORT (default 18000; over HTTPS that +80 and +443, Pebble's API
# +15, the dev loop +91), with the defaults of .env.example whatever your .env says.
# BUILD_CA_BUNDLE: a CA file for image builds behind a TLS-intercepting proxy.
set -Eeuo pipefail

usage() { sed -n '2,28s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
variants=(wsgi asgi) https_variants=(wsgi asgi) swarm_variants=(wsgi asgi) quick=false
dev_loop_only=false swarm_only=false
case ${1:-} in
  "") ;;
  --quick) variants=(wsgi) https_variants=() quick=true ;;
  --swarm) swarm_only=true ;;
  --dev-loop) dev_loop_only=true ;;
  -h | --help) usage ;;
  *) usage 2 ;;
esac
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

missing=()
for tool in docker uv python3 curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]} (docs/testing.md says what the test command needs)" >&2
  exit 2
fi
require_docker

# The product's documented defaults, not a developer's .env or exported settings. The *_IMAGE
# variables stay: they choose where images come from, not how the stack behaves.
while read -r name; do unset "$name"; done < <(sed -n 's/^#* *\([A-Z][A-Z0-9_]*\)=.*/\1/p' .env.example | grep -v '_IMAGE$')
export COMPOSE_ENV_FILES=$repo_root/.env.example
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-django-stack-test}
export HTTP_PORT=${TEST_HTTP_PORT:-18000}
export STACK_URL="http://127.0.0.1:$HTTP_PORT"
# Tasks of a killed worker come back after 20 s instead of 5 minutes (tests/stack/test_faults.py).
export CELERY_VISIBILITY_TIMEOUT=20
# The HTTPS stage: a test domain that Pebble resolves to caddy (.ci/compose.acme-test.yaml).
export DOMAIN=site.example.test PUBLIC_BIND=127.0.0.1
export PUBLIC_HTTP_PORT=$((HTTP_PORT + 80)) PUBLIC_HTTPS_PORT=$((HTTP_PORT + 443))
export PEBBLE_MANAGEMENT_PORT=$((HTTP_PORT + 15))
# The dev loop's stack (tests/devloop/conftest.py).
export DEV_PROJECT_NAME=$COMPOSE_PROJECT_NAME-dev DEV_HTTP_PORT=$((HTTP_PORT + 91))
# A harness need, not the product's: behind a TLS-intercepting proxy the image builds get its CA.
if [ -n "${BUILD_CA_BUNDLE:-}" ]; then
  export COMPOSE_OVERLAY=.ci/compose.build-ca.yaml
fi

# The HTTPS test stack is a superset of every variant's services.
cleanup() {
  COMPOSE_FILE=compose.https.yaml:.ci/compose.acme-test.yaml \
    docker compose --profile test down --volumes --remove-orphans >/dev/null 2>&1 || true
  if [ -n "${SWARM_MANAGER:-}" ]; then  # the swarm stage started its cluster
    docker context rm --force swarmtest >/dev/null 2>&1 || true
    .ci/swarm.sh down >/dev/null 2>&1 || true
    unset SWARM_MANAGER
  fi
}
trap cleanup EXIT
cleanup  # whatever an interrupted earlier run left behind

# dev_loop_stage: step 6.
dev_loop_stage() {
  step "dev loop: docker compose watch in a copy"
  # The dev stack builds the image in worker and beat too: they need the CA as well.
  COMPOSE_OVERLAY=${COMPOSE_OVERLAY:+$COMPOSE_OVERLAY:.ci/compose.build-ca.dev.yaml} \
    tools pytest -p no:cacheprovider --strict-markers -q -rs tests/devloop
}
if [ "$dev_loop_only" = true ]; then
  dev_loop_stage
  exit
fi

# swarm_stage: step 7.
swarm_stage() {
  if [ -n "${STACK_SKIP_SWARM:-}" ]; then
    step "swarm: skipped (STACK_SKIP_SWARM is set)"
    return
  fi
  step "swarm: three nodes and a registry (.ci/swarm.sh up)"
  while IFS= read -r line; do export "${line?}"; done < <(.ci/swarm.sh up)
  docker context rm --force swarmtest >/dev/null 2>&1 || true
  docker context create swarmtest --docker "host=$SWARM_MANAGER" >/dev/null 2>&1
  export SWARM_CONTEXT=swarmtest
  for variant in "${swarm_variants[@]}"; do
    step "swarm: $variant (scripts/deploy.sh, tests/swarm/)"
    STACK_VARIANT=$variant tools pytest -p no:cacheprovider --strict-markers -q -rs tests/swarm
  done
  cleanup
}
if [ "$swarm_only" = true ]; then
  swarm_stage
  exit
fi

step "lint"
scripts/lint.sh

step "compose config"
for file in compose.yaml compose.asgi.yaml compose.https.yaml compose.dev.yaml; do
  docker compose -f "$file" config --quiet
  ok "$file"
done
refusal=$(DOMAIN='' docker compose -f compose.https.yaml config --quiet 2>&1 || true)
check "compose.https.yaml without DOMAIN: refused, naming it" "not refused with a message" \
  grep -q "set DOMAIN in .env" <<<"$refusal"
# An included file (compose.asgi.yaml's) reads .env for the variables .env.example leaves unset,
# whatever COMPOSE_ENV_FILES says: refuse to test settings other than the defaults.
leaked=$(docker compose -f compose.asgi.yaml config --format json | python3 -c '
import json, sys
web = json.load(sys.stdin)["services"]["web"]["environment"]
print(" ".join(f"{name}={web[name]}" for name in ("WEB_CONCURRENCY", "DJANGO_DB_POOL_SIZE") if web.get(name)))')
check "the defaults under test, whatever .env says" "unset $leaked in .env to run the tests" \
  test -z "$leaked"
[ "$failures" -eq 0 ] || exit 1

step "unit tests (app image, real Postgres and Redis)"
COMPOSE_FILE=$(compose_files wsgi)
export COMPOSE_FILE
docker compose --profile test build --quiet
docker compose --profile test run --rm test
cleanup

for variant in "${variants[@]}"; do
  step "stack: $variant"
  smoke_options=(--keep --no-build)
  [ "$variant" = asgi ] && smoke_options+=(--asgi)
  scripts/smoke.sh "${smoke_options[@]}"
  COMPOSE_FILE=$(compose_files "$variant") STACK_VARIANT=$variant \
    tools pytest -p no:cacheprovider --strict-markers -q -rs tests/stack
  cleanup
done

for variant in "${https_variants[@]}"; do
  step "https: $variant (Caddy, with Pebble as the ACME CA)"
  override=$(variant_override "$variant")
  files=compose.https.yaml${override:+:$override}
  export COMPOSE_FILE="$files:.ci/compose.acme-test.yaml${COMPOSE_OVERLAY:+:$COMPOSE_OVERLAY}"
  docker compose build --quiet
  up_healthy --no-build || exit 1
  STACK_HTTPS_DOMAIN=$DOMAIN STACK_VARIANT=$variant tools pytest -p no:cacheprovider --strict-markers -q -rs tests/stack/test_https.py
  cleanup
done

if [ "$quick" = false ]; then
  dev_loop_stage
  swarm_stage
  step "template: scripts/init.sh in a copy"
  tests/template.sh
fi

step "all tests passed"
