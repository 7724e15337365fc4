#!/usr/bin/env bash
# Entrypoint of the postgres stand-in, written to the official image's documented contract:
#   - `postgres [OPTION...]` (or a first argument that is an option) starts the server after the
#     steps below; `postgres --help|--version|...` and any other command are run as they are.
#   - POSTGRES_PASSWORD, POSTGRES_USER (default postgres), POSTGRES_DB (default: the user) and
#     POSTGRES_INITDB_ARGS may each be given in a file named by <NAME>_FILE; setting both is an
#     error. The values are exported, the <NAME>_FILE variables unset.
#   - Started as root, it gives PGDATA and the socket directory to postgres and runs itself again
#     as postgres: that needs CAP_SETUID and CAP_SETGID, so under `cap_drop: [ALL]` the uid is
#     compose's `user:`. It sets PGDATA to 0700 and /var/run/postgresql to 3775, ignoring a
#     failure (only the owner may; compose gives the socket tmpfs its owner).
#   - First start only (PGDATA has no PG_VERSION): a password is required unless
#     POSTGRES_HOST_AUTH_METHOD=trust; initdb runs with POSTGRES_INITDB_ARGS (shell words) and
#     initdb's own defaults for the rest (locale from LANG, trust for the socket and loopback);
#     "host all all all METHOD" is appended to pg_hba.conf, METHOD being POSTGRES_HOST_AUTH_METHOD
#     or else the server's password_encryption; then, on a server reachable over the socket only,
#     POSTGRES_DB is created and /docker-entrypoint-initdb.d/* are run in name order (*.sh: run if
#     executable, else sourced; *.sql, *.sql.gz, *.sql.xz, *.sql.zst: fed to psql; the rest ignored).
# What the official entrypoint does and this one does not is refused, not ignored
# (POSTGRES_INITDB_WALDIR), or listed in .ci/README.md.
set -Eeuo pipefail

me=${0##*/}
log() { printf '%s: %s\n' "$me" "$*"; }
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }

# from_env_or_file NAME [DEFAULT]: exports NAME as its own value if set, else as the contents of
# the file that NAME_FILE names if that is set, else as DEFAULT; unsets NAME_FILE.
from_env_or_file() {
  local name=$1 file_name="$1_FILE" value=${2:-}
  if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
    die "both $name and $file_name are set (but are exclusive)"
  fi
  if [ -n "${!name:-}" ]; then
    value=${!name}
  elif [ -n "${!file_name:-}" ]; then
    value=$(<"${!file_name}")
  fi
  export "$name=$value"
  unset "$file_name"
}

# Options after which postgres prints something and exits: no set-up for those.
only_prints() {
  local arg
  for arg; do
    case $arg in '-?' | --help | --describe-config | -V | --version) return 0 ;; esac
  done
  return 1
}

# psql as POSTGRES_USER over the socket, as the official helpers run it. docker_process_sql (and
# the psql array) keep their official names: sourced init scripts may call them.
run_psql() { PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"; }
docker_process_sql() {
  if [ -n "$POSTGRES_DB" ]; then run_psql --dbname "$POSTGRES_DB" "$@"; else run_psql "$@"; fi
}
# shellcheck disable=SC2034  # used by sourced init scripts
psql=(docker_process_sql)

run_init_files() {
  local file
  for file in /docker-entrypoint-initdb.d/*; do
    [ -e "$file" ] || continue
    case $file in
      *.sh)
        if [ -x "$file" ]; then
          log "running $file"
          "$file"
        else
          log "sourcing $file"
          # Sourced scripts get the official entrypoint's shell options (no -u).
          set +u
          # shellcheck disable=SC1090
          . "$file"
          set -u
        fi
        ;;
      *.sql) log "running $file"; docker_process_sql -f "$file" ;;
      *.sql.gz) log "running $file"; gzip -dc "$file" | docker_process_sql ;;
      *.sql.xz) log "running $file"; xz -dc "$file" | docker_process_sql ;;
      *.sql.zst) log "running $file"; zstd -dcq "$file" | docker_process_sql ;;
      *) log "ignoring $file" ;;
    esac
  done
}

if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi
if [ "${1:-}" != postgres ] || only_prints "$@"; then exec "$@"; fi

from_env_or_file POSTGRES_PASSWORD
from_env_or_file POSTGRES_USER postgres
from_env_or_file POSTGRES_DB "$POSTGRES_USER"
from_env_or_file POSTGRES_INITDB_ARGS
POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-}

mkdir -p "$PGDATA"
chmod 0700 "$PGDATA" || :
mkdir -p /var/run/postgresql || :
chmod 3775 /var/run/postgresql || :

if [ "$(id -u)" = 0 ]; then
  find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ -s "$PGDATA/PG_VERSION" ]; then
  log "$PGDATA holds a database (PostgreSQL $(<"$PGDATA/PG_VERSION")): skipping initialization"
  exec "$@"
fi

if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
  die "POSTGRES_INITDB_WALDIR is not emulated by this stand-in (see .ci/README.md)"
fi
if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
  die "the database is uninitialized and no superuser password is given: set POSTGRES_PASSWORD" \
    "or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust, which lets anyone in)"
fi
if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
  log "WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every connection gets in without a password" >&2
fi
ls /docker-entrypoint-initdb.d/ >/dev/null  # unreadable: fail before initdb, not half-way

# Shell words, as in the official entrypoint: quoting inside the value is honoured.
initdb_args=()
eval "initdb_args=( $POSTGRES_INITDB_ARGS )"
initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${initdb_args[@]}"

server_options=("${@:2}")
method=${POSTGRES_HOST_AUTH_METHOD:-$(postgres -C password_encryption "${server_options[@]}")}
{
  printf '\n'
  if [ "$method" = trust ]; then printf '# trust: every connection gets in without a password\n'; fi
  printf 'host all all all %s\n' "$method"
} >>"$PGDATA/pg_hba.conf"

# A server for the set-up, on the socket only.
export PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
PGUSER=${PGUSER:-$POSTGRES_USER} pg_ctl -D "$PGDATA" -w start \
  -o "$(printf '%q ' "${server_options[@]}" -c listen_addresses='' -p "${PGPORT:-5432}")"
if [ -z "$(run_psql --dbname postgres --set db="$POSTGRES_DB" --tuples-only --no-align \
  <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")" ]; then
  run_psql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db"'
fi
run_init_files
PGUSER=${PGUSER:-postgres} pg_ctl -D "$PGDATA" -m fast -w stop
unset PGPASSWORD
log "PostgreSQL init process complete; ready for start up."

exec "$@"
