#!/usr/bin/env bash
# Usage: .ci/images/test.sh
# Contract test of the stand-in images that .ci/images/build.sh makes: runs each one directly with
# `docker run`, as compose runs it and as the official image's documentation says it may be run
# (the uid from the run, *_FILE variables, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD,
# /docker-entrypoint-initdb.d, templates, ...), and checks it behaves as the official image does.
# Prints one "ok NAME" or "FAIL NAME: why" line per check; exits 1 if any check failed.
# Images: POSTGRES_IMAGE, REDIS_IMAGE, NGINX_IMAGE, PYTHON_IMAGE, REGISTRY_IMAGE, DIND_IMAGE, as
# build.sh prints them (default: the stack-standin/* names it builds). Removes the containers and
# volumes it makes.
set -Eeuo pipefail

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
case ${1:-} in
  "") ;;
  -h | --help) usage ;;
  *) usage 2 ;;
esac

postgres_image=${POSTGRES_IMAGE:-stack-standin/postgres:17}
redis_image=${REDIS_IMAGE:-stack-standin/redis:8}
nginx_image=${NGINX_IMAGE:-stack-standin/nginx:1.30}
python_image=${PYTHON_IMAGE:-stack-standin/python:3.13}
registry_image=${REGISTRY_IMAGE:-stack-standin/registry:2}
dind_image=${DIND_IMAGE:-stack-standin/dind:26}

run_id="standin-test-$$"
label="standin-contract-test=$run_id"
fixtures=$(mktemp -d)
chmod 0755 "$fixtures"
cleanup() {
  local ids
  mapfile -t ids < <(docker ps -aq --filter "label=$label")
  if [ ${#ids[@]} -gt 0 ]; then docker rm -f -v "${ids[@]}" >/dev/null 2>&1 || true; fi
  mapfile -t ids < <(docker volume ls -q --filter "label=$label")
  if [ ${#ids[@]} -gt 0 ]; then docker volume rm "${ids[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$fixtures"
}
trap cleanup EXIT

failures=0
# (Output is grepped from variables, not pipes: with pipefail, `grep -q` closing a pipe early
# would fail the check at random.)
# check NAME FUNCTION [ARG...]: FUNCTION prints why and returns non-zero when the check fails.
check() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    echo "ok $name"
  else
    echo "FAIL $name: $(printf '%s' "$output" | tr '\n' ' ' | cut -c1-600)"
    failures=$((failures + 1))
  fi
}

# The compose file's lock-down for every container.
hardened=(--cap-drop ALL --security-opt no-new-privileges:true --read-only --tmpfs /tmp)

start() {  # start NAME DOCKER-RUN-ARGUMENT...: a labelled, detached container called $run_id-NAME
  docker run -d --name "$run_id-$1" --label "$label" "${@:2}" >/dev/null
}
volume() {  # volume NAME: a labelled volume called $run_id-NAME
  docker volume create --label "$label" "$run_id-$1" >/dev/null
  echo "$run_id-$1"
}
# wait_until CONTAINER SECONDS COMMAND...: until COMMAND succeeds in CONTAINER; fails at once if
# the container stops.
wait_until() {
  local container=$1 deadline=$((SECONDS + $2))
  shift 2
  until docker exec "$container" "$@" >/dev/null 2>&1; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$container")" != true ] || [ $SECONDS -ge $deadline ]; then
      echo "$container never got ready ($*); its log ends:"
      docker logs --tail 15 "$container" 2>&1
      return 1
    fi
    sleep 1
  done
}
# wait_exit CONTAINER SECONDS: its exit code, once it has stopped.
wait_exit() {
  local deadline=$((SECONDS + $2))
  while [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ]; do
    if [ $SECONDS -ge $deadline ]; then echo timeout; return 1; fi
    sleep 1
  done
  docker inspect -f '{{.State.ExitCode}}' "$1"
}
# uids CONTAINER: real, effective, saved and file-system uid of its process 1.
uids() { docker exec "$1" awk '$1 == "Uid:" {print $2, $3, $4, $5}' /proc/1/status; }
expect_uid() {  # expect_uid CONTAINER UID
  local got
  got=$(uids "$1") || { echo "cannot read the uid of $1"; return 1; }
  [ "$got" = "$2 $2 $2 $2" ] || { echo "process 1 runs as uids $got, not $2"; return 1; }
}
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
expect_equal() {  # expect_equal WHAT EXPECTED ACTUAL
  [ "$2" = "$3" ] || { printf '%s: expected %q, got %q\n' "$1" "$2" "$3"; return 1; }
}
image_field() { docker image inspect -f "$2" "$1"; }

# --- The images themselves ------------------------------------------------------------------
check_no_user() {
  local image user
  for image in "$postgres_image" "$redis_image" "$nginx_image" "$python_image"; do
    user=$(image_field "$image" '{{.Config.User}}') || { echo "no image $image"; return 1; }
    # The official images set no USER: the uid is compose's (user:) or a Dockerfile's built on them.
    expect_equal "USER of $image" "" "$user" || return 1
  done
}
check_postgres_image() {
  local env
  env=$(image_field "$postgres_image" '{{join .Config.Env " "}}')
  [[ " $env " == *" PGDATA=/var/lib/postgresql/data "* ]] || { echo "PGDATA is not /var/lib/postgresql/data: $env"; return 1; }
  [[ " $env " == *" LANG=en_US.utf8 "* ]] || { echo "LANG is not en_US.utf8: $env"; return 1; }
  expect_equal volumes 'map[/var/lib/postgresql/data:{}]' "$(image_field "$postgres_image" '{{.Config.Volumes}}')" &&
    expect_equal stop-signal SIGINT "$(image_field "$postgres_image" '{{.Config.StopSignal}}')" &&
    expect_equal command '[postgres]' "$(image_field "$postgres_image" '{{.Config.Cmd}}')"
}
check_redis_image() {
  expect_equal volumes 'map[/data:{}]' "$(image_field "$redis_image" '{{.Config.Volumes}}')" &&
    expect_equal workdir /data "$(image_field "$redis_image" '{{.Config.WorkingDir}}')" &&
    expect_equal command '[redis-server]' "$(image_field "$redis_image" '{{.Config.Cmd}}')"
}
check_nginx_image() {
  expect_equal stop-signal SIGQUIT "$(image_field "$nginx_image" '{{.Config.StopSignal}}')" &&
    expect_equal command '[nginx -g daemon off;]' "$(image_field "$nginx_image" '{{.Config.Cmd}}')" &&
    expect_equal 'uid of user nginx' 101 "$(docker run --rm --label "$label" "$nginx_image" id -u nginx)"
}
check_python_image() {
  local out
  out=$(docker run --rm --label "$label" "${hardened[@]}" "$python_image" sh -c \
    'command -v python; python -c "import sys; print(sys.version_info[:2] == (3, 13))"; echo "$LANG"; pip install --no-index --dry-run --quiet pip && echo pip-installs') || { echo "$out"; return 1; }
  expect_equal 'python, 3.13, LANG, pip' "/usr/local/bin/python True C.UTF-8 pip-installs" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')"
}
check_python_uid() {
  local as_root as_app
  as_root=$(docker run --rm --label "$label" "${hardened[@]}" "$python_image" python -c 'import os; print(os.getuid())')
  as_app=$(docker run --rm --label "$label" "${hardened[@]}" --user 10001:10001 "$python_image" python -c 'import os; print(os.getuid())')
  expect_equal 'uid with no user given (official: root)' 0 "$as_root" &&
    expect_equal 'uid with --user 10001' 10001 "$as_app"
}

# --- postgres ---------------------------------------------------------------------------------
printf 'correct-horse-battery-staple-42\n' >"$fixtures/postgres_password"
printf -- '--locale-provider=builtin --locale="C.UTF-8"\n' >"$fixtures/initdb_args"
mkdir -p "$fixtures/initdb.d"
echo 'CREATE TABLE from_sql (n int); INSERT INTO from_sql VALUES (1);' >"$fixtures/initdb.d/10-table.sql"
echo 'CREATE TABLE from_gzip (n int);' | gzip >"$fixtures/initdb.d/20-table.sql.gz"
cat >"$fixtures/initdb.d/30-run.sh" <<'EOF'
#!/bin/bash
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c 'CREATE TABLE from_script (n int)'
EOF
chmod 0755 "$fixtures/initdb.d/30-run.sh"
echo 'docker_process_sql -c "CREATE TABLE from_sourced (n int)"' >"$fixtures/initdb.d/40-sourced.sh"
echo 'this is not SQL' >"$fixtures/initdb.d/50-ignored.txt"
chmod -R a+rX "$fixtures"

sql() {  # sql CONTAINER USER DATABASE QUERY
  docker exec "$1" psql -X -v ON_ERROR_STOP=1 -U "$2" -d "$3" -Atc "$4"
}

# As compose runs it: uid from the run, no capabilities, password from a file, compose's
# POSTGRES_INITDB_ARGS and POSTGRES_HOST_AUTH_METHOD, a socket tmpfs owned by postgres.
postgres_compose=$run_id-postgres-compose
postgres_compose_volume=$(volume postgres-compose)
start postgres-compose --user postgres "${hardened[@]}" \
  --tmpfs /var/run/postgresql:uid=999,gid=999,mode=3775 \
  -v "$fixtures/postgres_password:/run/secrets/postgres_password:ro" \
  -v "$postgres_compose_volume:/var/lib/postgresql/data" \
  -e POSTGRES_USER=app -e POSTGRES_DB=appdb -e POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password \
  -e POSTGRES_INITDB_ARGS='--locale-provider=builtin --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256' \
  -e POSTGRES_HOST_AUTH_METHOD=scram-sha-256 \
  "$postgres_image" || true
check_postgres_compose_ready() { wait_until "$postgres_compose" 90 pg_isready -q -h 127.0.0.1; }
check_postgres_compose_uid() { expect_uid "$postgres_compose" 999; }
check_postgres_password_file() {
  local ip environment
  ip=$(ip_of "$postgres_compose")
  docker exec -e PGPASSWORD=correct-horse-battery-staple-42 "$postgres_compose" \
    psql -X -h "$ip" -U app -d appdb -Atc 'SELECT 1' >/dev/null || { echo "the password from the file is refused over TCP"; return 1; }
  if docker exec -e PGPASSWORD=wrong-password "$postgres_compose" psql -X -h "$ip" -U app -d appdb -Atc 'SELECT 1' >/dev/null 2>&1; then
    echo "a wrong password is accepted over TCP"; return 1
  fi
  environment=$(docker exec "$postgres_compose" sh -c 'tr "\0" "\n" </proc/1/environ')
  if grep -q '^POSTGRES_PASSWORD_FILE=' <<<"$environment"; then echo "POSTGRES_PASSWORD_FILE is still set for the server"; return 1; fi
  expect_equal 'owner of POSTGRES_DB, superuser' 'app|t' \
    "$(sql "$postgres_compose" app appdb "SELECT pg_get_userbyid(datdba), (SELECT rolsuper FROM pg_roles WHERE rolname = 'app') FROM pg_database WHERE datname = 'appdb'")"
}
check_postgres_initdb_args() {
  expect_equal 'provider, locale, collate, ctype of appdb' 'b|C.UTF-8|C.UTF-8|C.UTF-8' \
    "$(sql "$postgres_compose" app appdb "SELECT datlocprovider, datlocale, datcollate, datctype FROM pg_database WHERE datname = 'appdb'")"
}
check_postgres_host_auth_method() {
  expect_equal 'pg_hba rules (type, address, method)' 'local||trust host|127.0.0.1|scram-sha-256 host|::1|scram-sha-256 local||trust host|127.0.0.1|scram-sha-256 host|::1|scram-sha-256 host|all|scram-sha-256' \
    "$(sql "$postgres_compose" app appdb "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number" | tr '\n' ' ' | sed 's/ $//')"
}
check_postgres_socket_directory() {
  local log
  log=$(docker logs "$postgres_compose" 2>&1)
  if grep -i 'chmod' <<<"$log"; then return 1; fi
  expect_equal 'socket directory owner and mode' 'postgres 3775' \
    "$(docker exec "$postgres_compose" stat -c '%U %a' /var/run/postgresql)"
}
check_postgres_restart() {
  sql "$postgres_compose" app appdb 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)' >/dev/null || return 1
  docker restart "$postgres_compose" >/dev/null
  wait_until "$postgres_compose" 60 pg_isready -q -h 127.0.0.1 || return 1
  grep -q 'skipping initialization' <<<"$(docker logs "$postgres_compose" 2>&1)" ||
    { echo "no 'skipping initialization' on restart"; return 1; }
  expect_equal 'row kept across a restart' 42 "$(sql "$postgres_compose" app appdb 'SELECT n FROM kept')"
}

# As the official documentation's `docker run`: root with Docker's default capabilities (the
# entrypoint drops to postgres), POSTGRES_PASSWORD, initdb's defaults, /docker-entrypoint-initdb.d.
postgres_defaults=$run_id-postgres-defaults
start postgres-defaults --tmpfs /var/run/postgresql \
  -v "$fixtures/initdb.d:/docker-entrypoint-initdb.d:ro" \
  -e POSTGRES_USER=owner -e POSTGRES_PASSWORD=correct-horse-battery-staple-42 \
  "$postgres_image" || true
check_postgres_defaults_ready() { wait_until "$postgres_defaults" 90 pg_isready -q -h 127.0.0.1; }
check_postgres_root_drops() { expect_uid "$postgres_defaults" 999; }
check_postgres_defaults() {
  # The official image: en_US.utf8 from LANG with the libc provider, POSTGRES_DB = POSTGRES_USER,
  # trust for the socket and loopback, scram-sha-256 for the rest.
  expect_equal 'provider, collate of owner' 'c|en_US.utf8' \
    "$(sql "$postgres_defaults" owner owner "SELECT datlocprovider, datcollate FROM pg_database WHERE datname = 'owner'")" &&
    expect_equal 'pg_hba rules (type, address, method)' 'local||trust host|127.0.0.1|trust host|::1|trust local||trust host|127.0.0.1|trust host|::1|trust host|all|scram-sha-256' \
      "$(sql "$postgres_defaults" owner owner "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number" | tr '\n' ' ' | sed 's/ $//')"
}
check_postgres_initdb_d() {
  expect_equal 'tables made by the init files' 'from_gzip from_script from_sourced from_sql' \
    "$(sql "$postgres_defaults" owner owner "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1" | tr '\n' ' ' | sed 's/ $//')" || return 1
  grep -q 'ignoring /docker-entrypoint-initdb.d/50-ignored.txt' <<<"$(docker logs "$postgres_defaults" 2>&1)" ||
    { echo "50-ignored.txt was not reported as ignored"; return 1; }
}

# POSTGRES_INITDB_ARGS_FILE (shell words, quotes honoured) and trust without a password.
postgres_trust=$run_id-postgres-trust
start postgres-trust --user postgres "${hardened[@]}" --tmpfs /var/run/postgresql:uid=999,gid=999,mode=3775 \
  -v "$fixtures/initdb_args:/run/secrets/initdb_args:ro" \
  -e POSTGRES_INITDB_ARGS_FILE=/run/secrets/initdb_args -e POSTGRES_HOST_AUTH_METHOD=trust \
  "$postgres_image" || true
check_postgres_initdb_args_file() {
  wait_until "$postgres_trust" 90 pg_isready -q -h 127.0.0.1 || return 1
  expect_equal 'provider, locale of postgres' 'b|C.UTF-8' \
    "$(sql "$postgres_trust" postgres postgres "SELECT datlocprovider, datlocale FROM pg_database WHERE datname = 'postgres'")" &&
    expect_equal 'last pg_hba rule' 'host|all|trust' \
      "$(sql "$postgres_trust" postgres postgres "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number DESC LIMIT 1")"
}

# Refusals: each must stop the container with a message saying why, before initdb.
expect_refusal() {  # expect_refusal NAME MESSAGE-PATTERN DOCKER-RUN-ARGUMENT...
  local name=$1 pattern=$2 code
  shift 2
  start "$name" "$@" || return 1
  code=$(wait_exit "$run_id-$name" 30) || { echo "still running after 30 s"; return 1; }
  [ "$code" != 0 ] || { echo "exited 0"; return 1; }
  grep -Eq "$pattern" <<<"$(docker logs "$run_id-$name" 2>&1)" ||
    { echo "exit $code without /$pattern/ in its log: $(docker logs --tail 5 "$run_id-$name" 2>&1)"; return 1; }
}
check_postgres_both_passwords() {
  expect_refusal postgres-both 'both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set' \
    --user postgres "${hardened[@]}" -v "$fixtures/postgres_password:/run/secrets/postgres_password:ro" \
    -e POSTGRES_PASSWORD=correct-horse-battery-staple-42 -e POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password \
    "$postgres_image"
}
check_postgres_no_password() {
  expect_refusal postgres-nopassword 'POSTGRES_PASSWORD' --user postgres "${hardened[@]}" "$postgres_image"
}
check_postgres_root_without_capabilities() {
  # Root under cap_drop: [ALL] cannot become postgres: the official image fails there too.
  expect_refusal postgres-root-nocaps '.' "${hardened[@]}" -e POSTGRES_PASSWORD=correct-horse-battery-staple-42 "$postgres_image"
}
check_postgres_unemulated() {
  expect_refusal postgres-waldir 'POSTGRES_INITDB_WALDIR is not emulated' --user postgres "${hardened[@]}" \
    -e POSTGRES_PASSWORD=correct-horse-battery-staple-42 -e POSTGRES_INITDB_WALDIR=/tmp/wal "$postgres_image"
}

# --- redis ----------------------------------------------------------------------------------
mkdir -p "$fixtures/redis" "$fixtures/modules"
echo 'requirepass correct-horse-battery-staple-42' >"$fixtures/redis/redis.conf"
head -c 4096 /dev/urandom >"$fixtures/modules/fake.so"
chmod 0755 "$fixtures/modules/fake.so"
chmod -R a+rX "$fixtures"

# As compose runs it: uid from the run, configuration file first, append-only file in /data.
redis_compose=$run_id-redis-compose
start redis-compose --user redis "${hardened[@]}" -v "$fixtures/redis:/run/secrets:ro" \
  "$redis_image" redis-server /run/secrets/redis.conf --appendonly yes || true
check_redis_compose() {
  wait_until "$redis_compose" 30 sh -c 'REDISCLI_AUTH=correct-horse-battery-staple-42 redis-cli ping | grep -q PONG' || return 1
  expect_uid "$redis_compose" 999 || return 1
  grep -q NOAUTH <<<"$(docker exec "$redis_compose" redis-cli ping 2>&1)" || { echo "answers without the password"; return 1; }
  expect_equal 'appendonly' 'appendonly yes' \
    "$(docker exec -e REDISCLI_AUTH=correct-horse-battery-staple-42 "$redis_compose" redis-cli config get appendonly | tr '\n' ' ' | sed 's/ $//')" &&
    # The official entrypoint's umask 0077.
    expect_equal 'mode of /data/appendonlydir' 700 "$(docker exec "$redis_compose" stat -c '%a' /data/appendonlydir)"
}
check_redis_root_with_capabilities() {
  start redis-root "$redis_image" || return 1
  wait_until "$run_id-redis-root" 30 redis-cli ping || return 1
  expect_uid "$run_id-redis-root" 999
}
check_redis_root_without_capabilities() {
  # The official entrypoint drops root only when it can: under cap_drop: [ALL] Redis runs as root,
  # which is why compose sets user: redis. The stand-in must not hide that.
  start redis-root-nocaps "${hardened[@]}" "$redis_image" || return 1
  wait_until "$run_id-redis-root-nocaps" 30 redis-cli ping || return 1
  expect_uid "$run_id-redis-root-nocaps" 0
}
check_redis_modules() {
  # Each executable *.so in the modules directory is handed to redis-server (an invalid one fails).
  expect_refusal redis-modules 'fake\.so.*(failed|error)|(failed|error).*fake\.so' --user redis "${hardened[@]}" \
    -v "$fixtures/modules:/usr/local/lib/redis/modules:ro" "$redis_image"
}
check_redis_unemulated() {
  expect_refusal redis-password 'REDIS_PASSWORD is not emulated' --user redis "${hardened[@]}" \
    -e REDIS_PASSWORD=correct-horse-battery-staple-42 "$redis_image"
}

# --- nginx ----------------------------------------------------------------------------------
mkdir -p "$fixtures/templates/sub" "$fixtures/conf.d" "$fixtures/filtered" "$fixtures/hooks"
# shellcheck disable=SC2016  # the ${...} are for envsubst
printf 'server_name ${SITE_NAME};\nset $x $host;\nkeep ${NOT_SET};\nother ${OTHER_NAME};\n' >"$fixtures/templates/site.conf.template"
# shellcheck disable=SC2016
printf 'sub ${SITE_NAME};\n' >"$fixtures/templates/sub/inner.conf.template"
echo 'echo hook' >"$fixtures/hooks/90-hook.sh"
chmod -R a+rX "$fixtures"
chmod 0777 "$fixtures/conf.d" "$fixtures/filtered"  # written by uid 101

render() {  # render OUTPUT-DIR DOCKER-RUN-ARGUMENT...: the entrypoint's rendering, then nginx -v
  local output=$1
  shift
  docker run --rm --label "$label" --user 101:101 "${hardened[@]}" \
    -v "$fixtures/templates:/etc/nginx/templates:ro" -v "$output:/etc/nginx/conf.d" \
    -e SITE_NAME=example.test -e OTHER_NAME=other.test "$@" "$nginx_image" nginx -v
}
check_nginx_templates() {
  render "$fixtures/conf.d" >/dev/null || return 1
  # shellcheck disable=SC2016
  expect_equal 'rendered site.conf' 'server_name example.test; set $x $host; keep ${NOT_SET}; other other.test;' \
    "$(tr '\n' ' ' <"$fixtures/conf.d/site.conf" | sed 's/ $//')" &&
    expect_equal 'rendered sub/inner.conf' 'sub example.test;' "$(cat "$fixtures/conf.d/sub/inner.conf")"
}
check_nginx_filter() {
  render "$fixtures/filtered" -e NGINX_ENVSUBST_FILTER='^SITE_' >/dev/null || return 1
  # shellcheck disable=SC2016
  grep -qF 'other ${OTHER_NAME};' "$fixtures/filtered/site.conf" || { echo "NGINX_ENVSUBST_FILTER not applied"; return 1; }
}
check_nginx_output_not_writable() {
  local out
  out=$(docker run --rm --label "$label" --user 101:101 "${hardened[@]}" \
    -v "$fixtures/templates:/etc/nginx/templates:ro" "$nginx_image" nginx -v 2>&1) || { echo "$out"; return 1; }
  grep -q 'is not writable' <<<"$out" || { echo "no report of the read-only output directory: $out"; return 1; }
}
check_nginx_unemulated() {
  expect_refusal nginx-hook 'not emulated' --user 101:101 "${hardened[@]}" \
    -v "$fixtures/hooks:/docker-entrypoint.d:ro" "$nginx_image" nginx -v
}

# --- registry (swarm harness) ------------------------------------------------------------------
check_registry_image() {
  expect_equal volumes 'map[/var/lib/registry:{}]' "$(image_field "$registry_image" '{{.Config.Volumes}}')" &&
    expect_equal entrypoint '[/entrypoint.sh]' "$(image_field "$registry_image" '{{.Config.Entrypoint}}')" &&
    expect_equal command '[/etc/docker/registry/config.yml]' "$(image_field "$registry_image" '{{.Config.Cmd}}')" &&
    expect_equal ports 'map[5000/tcp:{}]' "$(image_field "$registry_image" '{{.Config.ExposedPorts}}')"
}
# As the official documentation runs it: plain HTTP on :5000, blobs stored in /var/lib/registry.
check_registry_stores() {
  local ip digest location=
  start registry-plain "$registry_image" || return 1
  ip=$(ip_of "$run_id-registry-plain")
  printf 'a blob\n' >"$fixtures/blob"
  digest=sha256:$(sha256sum "$fixtures/blob" | cut -d' ' -f1)
  # An upload in two requests (the registry's API): POST opens it, PUT with the digest ends it.
  for _ in $(seq 30); do
    location=$(curl -fsS -o /dev/null -X POST -w '%header{location}' "http://$ip:5000/v2/contract/blobs/uploads/" 2>/dev/null) && break
    sleep 0.5
  done
  [ -n "$location" ] || { echo "no upload location from POST /v2/contract/blobs/uploads/"; return 1; }
  expect_equal 'upload ended by PUT' 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/octet-stream' --data-binary @"$fixtures/blob" "$location&digest=$digest")" &&
    docker exec "$run_id-registry-plain" test -s "/var/lib/registry/docker/registry/v2/blobs/sha256/${digest:7:2}/${digest#sha256:}/data"
}
# REGISTRY_* variables override the configuration's keys, TLS included (as .ci/swarm.sh uses it).
check_registry_env_overrides() {
  local ip
  mkdir -p "$fixtures/registry-tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=registry.test \
    -addext subjectAltName=DNS:registry.test -keyout "$fixtures/registry-tls/key.pem" \
    -out "$fixtures/registry-tls/cert.pem" 2>/dev/null || { echo "openssl failed"; return 1; }
  chmod -R a+rX "$fixtures/registry-tls"
  start registry-tls -v "$fixtures/registry-tls:/certs:ro" -e REGISTRY_HTTP_ADDR=:5443 \
    -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/cert.pem -e REGISTRY_HTTP_TLS_KEY=/certs/key.pem "$registry_image" || return 1
  ip=$(ip_of "$run_id-registry-tls")
  for _ in $(seq 30); do
    curl -fsS --cacert "$fixtures/registry-tls/cert.pem" --connect-to "registry.test:5443:$ip:5443" \
      https://registry.test:5443/v2/ >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "no TLS answer on :5443; log: $(docker logs --tail 5 "$run_id-registry-tls" 2>&1)"
  return 1
}

# --- dind (swarm harness) ----------------------------------------------------------------------
# Run as .ci/swarm.sh runs a node: no --privileged (refused on these machines), a volume for
# /var/lib/docker. Its engine must run a container, and answer again after a stop and a start.
dind_node=$run_id-dind
dind_engine() { docker -H "tcp://$(ip_of "$dind_node"):2375" "$@"; }
wait_dind_engine() {
  local deadline=$((SECONDS + 60))
  until dind_engine version >/dev/null 2>&1; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$dind_node")" != true ] || [ $SECONDS -ge $deadline ]; then
      echo "the inner engine never answered; its log ends: $(docker logs --tail 5 "$dind_node" 2>&1)"
      return 1
    fi
    sleep 0.5
  done
}
check_dind_image() {
  expect_equal volumes 'map[/var/lib/docker:{}]' "$(image_field "$dind_image" '{{.Config.Volumes}}')"
}
check_dind_runs_a_container() {
  start dind -v "$(volume dind):/var/lib/docker" --cap-add ALL --cap-drop SYS_RESOURCE --cgroupns private \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined "$dind_image" || return 1
  wait_dind_engine || return 1
  docker save "$python_image" | dind_engine load -q >/dev/null || return 1
  expect_equal 'inner container output' inner-ok "$(dind_engine run --rm "$python_image" echo inner-ok 2>&1)"
}
check_dind_restart() {
  docker stop "$dind_node" >/dev/null && docker start "$dind_node" >/dev/null || return 1
  wait_dind_engine || return 1
  # The volume kept the image loaded before the stop.
  dind_engine image inspect "$python_image" >/dev/null
}

check images-set-no-user check_no_user
check postgres-image check_postgres_image
check redis-image check_redis_image
check nginx-image check_nginx_image
check python-image check_python_image
check python-uid-from-run check_python_uid
check postgres-compose-starts check_postgres_compose_ready
check postgres-uid-from-run check_postgres_compose_uid
check postgres-password-file check_postgres_password_file
check postgres-initdb-args check_postgres_initdb_args
check postgres-host-auth-method check_postgres_host_auth_method
check postgres-socket-directory check_postgres_socket_directory
check postgres-restart-keeps-data check_postgres_restart
check postgres-defaults-start check_postgres_defaults_ready
check postgres-root-drops-to-postgres check_postgres_root_drops
check postgres-defaults-like-official check_postgres_defaults
check postgres-initdb.d check_postgres_initdb_d
check postgres-initdb-args-file-and-trust check_postgres_initdb_args_file
check postgres-both-password-variables-refused check_postgres_both_passwords
check postgres-no-password-refused check_postgres_no_password
check postgres-root-without-capabilities-fails check_postgres_root_without_capabilities
check postgres-unemulated-variable-refused check_postgres_unemulated
check redis-compose-contract check_redis_compose
check redis-root-with-capabilities-drops-to-redis check_redis_root_with_capabilities
check redis-root-without-capabilities-stays-root check_redis_root_without_capabilities
check redis-loads-modules check_redis_modules
check redis-unemulated-variable-refused check_redis_unemulated
check nginx-templates check_nginx_templates
check nginx-envsubst-filter check_nginx_filter
check nginx-output-not-writable check_nginx_output_not_writable
check nginx-unemulated-hook-refused check_nginx_unemulated
check registry-image check_registry_image
check registry-stores-in-var-lib-registry check_registry_stores
check registry-env-overrides-tls check_registry_env_overrides
check dind-image check_dind_image
check dind-runs-a-container check_dind_runs_a_container
check dind-restart-keeps-state check_dind_restart

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all stand-in contract checks passed"
