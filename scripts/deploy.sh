#!/usr/bin/env bash
# Usage: scripts/deploy.sh [--asgi] [--context NAME] [--tag TAG] [--no-build] [--stack NAME] REPOSITORY
# Deploys the stack to a Docker Swarm (docs/swarm.md): builds the images,
# pushes them as REPOSITORY/app:TAG and REPOSITORY/nginx:TAG (e.g. REPOSITORY=ghcr.io/acme/mysite),
# then, on the swarm:
#   1. secrets: Swarm secrets of .env's values, or generated on the first deploy and kept;
#   2. db and redis, on the node labelled data=true, and cache, until all are healthy;
#   3. migrations, a one-off job with the new image: if it fails, the deploy stops there and the
#      running site is left as it was;
#   4. web, worker, beat and nginx: rolling updates, each new task healthy before an old one
#      stops, rolled back if it fails (an nginx whose image did not change keeps running).
#   --asgi          serve over ASGI (compose/asgi.yaml)
#   --context NAME  the Docker context of a swarm manager (default: the current context)
#   --tag TAG       image tag (default: the git commit, -dirty with uncommitted changes)
#   --no-build      deploy images already pushed under TAG
#   --stack NAME    the stack's name (default: the compose project's name)
# Environment: .env and the variables of compose.yaml; WEB_REPLICAS (default 2), WORKER_REPLICAS
# (default 2), PUBLIC_HTTP_PORT (default 80); DEPLOY_TIMEOUT: seconds each step may take to
# converge (default 600); COMPOSE_OVERLAY: extra compose files for the build.
set -Eeuo pipefail

usage() { sed -n '2,20s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

variant=wsgi context='' tag='' build=true stack='' repository=''
while [ $# -gt 0 ]; do
  case $1 in
    --asgi) variant=asgi ;;
    --context) context=${2:?--context needs a name}; shift ;;
    --tag) tag=${2:?--tag needs a tag}; shift ;;
    --no-build) build=false ;;
    --stack) stack=${2:?--stack needs a name}; shift ;;
    -h | --help) usage ;;
    -*) echo "error: unknown option $1" >&2; usage 2 ;;
    *) [ -z "$repository" ] || usage 2; repository=$1 ;;
  esac
  shift
done
[ -n "$repository" ] || usage 2

say() { printf '[deploy] %s\n' "$*"; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }
# The swarm's commands go to the manager; builds and pushes stay on this machine's engine.
swarm() { docker ${context:+--context "$context"} "$@"; }

files=(-f compose.yaml)
override=$(variant_override "$variant")
[ -z "$override" ] || files+=(-f "$override")
files+=(-f swarm/compose.swarm.yaml)
build_files=("${files[@]}")
IFS=: read -ra overlays <<<"${COMPOSE_OVERLAY:-}"
for file in "${overlays[@]}"; do build_files+=(-f "$file"); done

[ "$(swarm info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] ||
  die "the engine of ${context:-the current context} is not a swarm manager (docker swarm init, or --context NAME)"
# compose.yaml as compose reads it, .env included: the project's name, the secrets .env gives.
one_host=$(docker compose -f compose.yaml config --format json)
stack=${stack:-$(json name <<<"$one_host")}
if [ -z "$tag" ]; then
  tag=$(git rev-parse --short HEAD 2>/dev/null) || die "no git commit to tag the images with: give --tag TAG"
  git diff --quiet HEAD 2>/dev/null || tag+=-dirty
fi
export APP_IMAGE=$repository/app:$tag NGINX_APP_IMAGE=$repository/nginx:$tag

if [ "$build" = true ]; then
  say "build and push $APP_IMAGE, $NGINX_APP_IMAGE"
  docker compose "${build_files[@]}" build --quiet web nginx
  docker compose "${build_files[@]}" push --quiet web nginx
fi

# An nginx whose image is the one already running (the same content under a new tag: nothing in
# nginx/ or the static files changed) keeps running. Replacing it takes each node out of the load
# balancer in turn: its port cannot be shared, so the old nginx stops before the new one starts.
running_nginx=$(swarm service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${stack}_nginx" 2>/dev/null || true)
if [[ $running_nginx == "$repository/nginx:"*@sha256:* ]] &&
  docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$NGINX_APP_IMAGE" 2>/dev/null |
  grep -qxF "$repository/nginx@${running_nginx##*@}"; then
  say "nginx: unchanged, kept ($running_nginx)"
  NGINX_APP_IMAGE=$running_nginx
fi

# 1. Secrets. The one-host stack's secrets service makes them (app/config/secrets.py), in a
# container of the new image: it checks the values .env gives (no placeholders, no short ones;
# they reach it through its environment, not a command line), generates the others and writes
# Redis's config file. Its files come back through a pipe into a directory in memory.
workdir=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$workdir"' EXIT
for name in DJANGO_SECRET_KEY POSTGRES_PASSWORD REDIS_PASSWORD; do
  export "$name=$(json "services.secrets.environment.$name" <<<"$one_host")"
done
docker run --rm --network none --read-only --tmpfs /tmp -e DJANGO_SECRET_KEY -e POSTGRES_PASSWORD \
  -e REDIS_PASSWORD "$APP_IMAGE" \
  sh -c 'mkdir /tmp/secrets && python -m config.secrets /tmp/secrets >/dev/null && tar -C /tmp/secrets -c .' |
  tar -C "$workdir" -x || die "fix the secret named above in .env"
# A Swarm secret cannot be changed or read back, so each one's name ends in a hash of its value:
# a new value in .env makes a new secret, and the services roll over to it. One .env leaves
# empty is generated on the first deploy; later ones find it by its label.
digest() { sha256sum "$1" | cut -c 1-12; }
current_secret() {
  swarm secret ls --filter "label=$stack.secret=$1" --format '{{.CreatedAt}}	{{.Name}}' |
    sort | tail -n 1 | cut -f 2
}
for name in DJANGO_SECRET_KEY POSTGRES_PASSWORD REDIS_PASSWORD; do
  key=${name,,} secret=''
  [ -n "${!name}" ] || secret=$(current_secret "$key")
  if [ -z "$secret" ]; then
    secret=${stack}_${key}_$(digest "$workdir/$key")
    swarm secret inspect "$secret" >/dev/null 2>&1 ||
      swarm secret create --label "$stack.secret=$key" "$secret" "$workdir/$key" >/dev/null
  fi
  export "SWARM_SECRET_$name=$secret"
done
unset DJANGO_SECRET_KEY POSTGRES_PASSWORD REDIS_PASSWORD
# Redis's config file goes with its password: one per password, named after it.
export SWARM_SECRET_REDIS_CONF=${stack}_redis_conf_${SWARM_SECRET_REDIS_PASSWORD##*_}
if ! swarm secret inspect "$SWARM_SECRET_REDIS_CONF" >/dev/null 2>&1; then
  [ "$(digest "$workdir/redis_password")" = "${SWARM_SECRET_REDIS_PASSWORD##*_}" ] ||
    die "secret $SWARM_SECRET_REDIS_CONF is missing: set REDIS_PASSWORD in .env to make a new pair"
  swarm secret create --label "$stack.secret=redis_conf" "$SWARM_SECRET_REDIS_CONF" \
    "$workdir/redis.conf" >/dev/null
fi
say "secrets: $SWARM_SECRET_DJANGO_SECRET_KEY, $SWARM_SECRET_POSTGRES_PASSWORD, $SWARM_SECRET_REDIS_PASSWORD, $SWARM_SECRET_REDIS_CONF"

stack_file=$workdir/stack.json
timeout=${DEPLOY_TIMEOUT:-600}
# deploy_services SERVICE...: compose renders the stack, swarm/stackfile.py makes a stack file of
# these services, and the swarm converges to it (unless detach=true). A new service whose tasks
# never become healthy has nothing to roll back to: the CLI would wait for ever.
deploy_services() {
  docker compose --project-name "$stack" "${files[@]}" config --format json |
    python3 swarm/stackfile.py "$@" >"$stack_file"
  timeout "$timeout" docker ${context:+--context "$context"} stack deploy --quiet \
    --detach="${detach:-false}" --with-registry-auth -c "$stack_file" "$stack" >/dev/null ||
    { task_states "$@"; die "$* did not converge within $timeout s (task states above)"; }
}

# task_states SERVICE...: each service's newest tasks (where they run, why they stopped) and,
# for one with a task not running, its last log lines.
task_states() {
  local service states
  for service in "$@"; do
    states=$(swarm service ps --no-trunc --format \
      "{{.Name}} on {{.Node}}: {{.DesiredState}}, {{.CurrentState}} {{.Error}}" \
      "${stack}_$service" 2>&1 | head -n 6) || true
    printf '%s\n' "$states" >&2
    if grep -qv ': Running, Running' <<<"$states"; then
      swarm service logs --raw --tail 10 "${stack}_$service" 2>&1 | sed "s/^/  $service| /" >&2 || true
    fi
  done
}

# 2. Postgres and the two Redis servers (unchanged ones are left running).
say "db, redis, cache"
deploy_services db redis cache

# 3. Migrations: a job of one task, recreated on every deploy so that it runs again.
say "migrate with $APP_IMAGE"
if swarm service inspect "${stack}_migrate" >/dev/null 2>&1; then
  swarm service rm "${stack}_migrate" >/dev/null
  for _ in $(seq 60); do
    swarm service inspect "${stack}_migrate" >/dev/null 2>&1 || break
    sleep 0.5
  done
fi
# The CLI would wait for a failed job to succeed: its task's state is read here instead.
detach=true deploy_services migrate
state=''
for _ in $(seq "$timeout"); do
  state=$(swarm service ps --no-trunc --format '{{.CurrentState}}' "${stack}_migrate" | head -n 1)
  case $state in Complete* | Failed* | Rejected* | Shutdown*) break ;; esac
  sleep 1
done
if [[ $state != Complete* ]]; then
  swarm service logs --raw "${stack}_migrate" 2>&1 | tail -n 30 >&2 || true
  die "migrations: $state $(swarm service ps --no-trunc --format '{{.Error}}' "${stack}_migrate" | head -n 1); nothing else was updated"
fi

# 4. The rest. The CLI waits until every service has converged; one that was rolled back fails.
say "web, worker, beat, nginx ($variant)"
deploy_services web worker beat nginx
rolled_back=''
for service in web worker beat nginx; do
  state=$(swarm service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${stack}_$service")
  if [[ $state == rollback* ]]; then rolled_back+="${stack}_$service "; fi
done
[ -z "$rolled_back" ] || die "rolled back: $rolled_back(docker service ps NAME shows why)"
say "deployed $stack: $APP_IMAGE"
