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

# The compose files of a variant (wsgi or asgi), plus COMPOSE_OVERLAY's, colon-separated: the
# value for COMPOSE_FILE.
compose_files() {
  local base=compose.yaml
  [ "$1" = asgi ] && base=compose.asgi.yaml
  printf '%s\n' "$base${COMPOSE_OVERLAY:+:$COMPOSE_OVERLAY}"
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
