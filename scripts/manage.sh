#!/usr/bin/env bash
# Usage: scripts/manage.sh COMMAND [ARGS...]
# Runs `python manage.py COMMAND ARGS...` in a one-off container of the development stack
# (compose.dev.yaml) with this checkout's app/ mounted at /app, as your own user: the files
# makemigrations, startapp, makemessages and the like write appear in app/, owned by you.
#   scripts/manage.sh makemigrations
#   scripts/manage.sh startapp blog     (the new app lands in app/blog/)
# The container starts what the command needs (database, Redis) and is removed afterwards.
# Environment: MANAGE_USER (default: your uid:gid), COMPOSE_OVERLAY (extra compose files).
set -Eeuo pipefail

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
case ${1:-} in
  "") usage 2 ;;
  -h | --help) usage ;;
esac
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

require_docker
COMPOSE_FILE=$(compose_files dev)
export COMPOSE_FILE
# `run` starts web's dependencies, which run the dev image too, before it would build it: on a
# fresh clone, build it first.
docker image inspect "$(docker compose config --images web)" >/dev/null 2>&1 \
  || docker compose build web
exec docker compose run --rm --user "${MANAGE_USER:-$(id -u):$(id -g)}" \
  --volume "$repo_root/app:/app" web python manage.py "$@"
