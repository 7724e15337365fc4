# Shared by the project's scripts: `source "$(dirname "$0")/lib.sh"` (from scripts/) or the
# path to this file. Defines output helpers, the compose file list of a variant, JSON reading
# and the pinned tool environment. Sourcing changes into the repository's root directory.
# shellcheck shell=bash

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root" || exit

# One line per check: "ok    NAME" or "FAIL  NAME: WHY"; `failures` counts the FAILs.
failures=0
ok() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s: %s\n' "$1" "$2"; failures=$((failures + 1)); }
# check NAME WHY COMMAND...: ok NAME if COMMAND succeeds, else FAIL NAME: WHY.
check() {
  local name=$1 why=$2
  shift 2
  if "$@"; then ok "$name"; else fail "$name" "$why"; fi
}
step() { printf '\n== %s\n' "$*"; }

# The compose files of a variant (wsgi, asgi or dev), plus COMPOSE_OVERLAY's, colon-separated:
# the value for COMPOSE_FILE.
compose_files() {
  local base=compose.yaml
  [ "$1" = asgi ] && base=compose.asgi.yaml
  [ "$1" = dev ] && base=compose.dev.yaml
  printf '%s\n' "$base${COMPOSE_OVERLAY:+:$COMPOSE_OVERLAY}"
}

# What a variant lays over a stack's base file, for the stacks that have no entry file of their
# own per variant (HTTPS, Swarm): compose.asgi.yaml's override for asgi, nothing for wsgi.
variant_override() {
  if [ "$1" = asgi ]; then echo compose/asgi.yaml; fi
}

# up_healthy [OPTION...]: `docker compose up --detach --wait` with the options, quietly; when a
# service does not become healthy, what compose knows (each container's state, the last log
# lines), and a non-zero status.
# shellcheck disable=SC2120 # the options are optional
up_healthy() {
  docker compose up --detach --wait --quiet-pull "$@" >/dev/null 2>&1 && return 0
  docker compose ps --all
  docker compose logs --tail 30
  return 1
}

# require_docker: stops, saying what to upgrade, when the engine or Compose is older than the
# versions the README names (Compose 2.24, for `include:` with override files, `develop.watch`
# and `pull_policy: build`; Engine 20.10). Older ones fail later, with less helpful errors.
require_docker() {
  local compose engine
  compose=$(docker compose version --short 2>/dev/null) \
    || { echo "docker compose (v2) is missing: install the Docker Compose plugin, 2.24 or later" >&2; exit 2; }
  engine=$(docker version --format '{{.Server.Version}}' 2>/dev/null) \
    || { echo "the Docker engine does not answer: is dockerd running, may you use its socket?" >&2; exit 2; }
  if ! version_at_least "${compose#v}" 2.24; then
    echo "Docker Compose $compose is older than 2.24, which these compose files need: upgrade it" >&2
    exit 2
  fi
  if ! version_at_least "$engine" 20.10; then
    echo "Docker Engine $engine is older than 20.10, which these compose files need: upgrade it" >&2
    exit 2
  fi
}

# version_at_least VERSION MINIMUM: whether VERSION (e.g. 2.26.1-4) is MINIMUM (e.g. 2.24) or later.
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "${1%%[-+]*}" | sort -V | head -1)" = "$2" ]
}

# json PATH: the value at a dotted PATH of the JSON document on stdin, or nothing.
json() {
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$1" 2>/dev/null || true
}

# tools COMMAND...: runs COMMAND with the linters and test tools pinned in tests/requirements.txt
# on PATH, in an environment uv builds once and then reuses from its cache.
tools() {
  uv run --quiet --no-project --with-requirements "$repo_root/tests/requirements.txt" -- "$@"
}
