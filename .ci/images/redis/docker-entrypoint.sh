#!/usr/bin/env bash
# Entrypoint of the redis stand-in, written to the official redis:8 image's entrypoint contract:
#   - a first argument that is an option or ends in .conf means `redis-server` with those arguments;
#   - redis-server started as root *and* holding CAP_SETUID and CAP_SETGID (and no SKIP_DROP_PRIVS):
#     the data directory's entries go to redis (unless SKIP_FIX_PERMS, or unless it holds files
#     other than *.rdb and appendonlydir), then it runs itself again as redis (999). Without those
#     capabilities (cap_drop: [ALL]) it stays the user it was started as, root included: only
#     compose's `user:` makes it 999;
#   - umask 0077 when it is still the default 0022;
#   - redis-server gets `--loadmodule FILE` for each non-empty, readable, executable
#     /usr/local/lib/redis/modules/*.so, after the configuration file and before the other
#     arguments (this image has none there; the official one has four).
# What the official entrypoint does and this one does not is refused, not ignored
# (REDIS_PASSWORD, REDIS_PASSWORD_FILE, sentinel), or listed in .ci/README.md.
set -Eeuo pipefail

me=${0##*/}
modules_dir=/usr/local/lib/redis/modules
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }

# has_capabilities NUMBER...: each capability (linux/capability.h numbering) is in the effective set.
has_capabilities() {
  local effective number
  effective=$(awk '$1 == "CapEff:" {print $2}' /proc/self/status)
  for number; do
    (((16#$effective >> number) & 1)) || return 1
  done
}

# Gives the data directory (the working directory) to redis, in the simple case only.
own_data_directory() {
  local unknown
  unknown=$(find . -mindepth 1 -maxdepth 1 \! \( -name '*.rdb' -o \( -type d -name appendonlydir \) \) -print -quit)
  if [ -n "$unknown" ]; then
    echo "$me: notice: $PWD holds $unknown: leaving ownership as it is (SKIP_FIX_PERMS=1 silences this)"
    return 0
  fi
  find . \! -user redis -exec chown redis '{}' + \
    || echo "$me: warning: cannot give $PWD to redis"
}

first=${1:-}
if [ "${first#-}" != "$first" ] || [ "${first%.conf}" != "$first" ]; then
  set -- redis-server "$@"
fi
# The server's path, not what it links to: Debian's redis-server is a link to redis-check-rdb.
command_path=$(command -v "${1:-}" 2>/dev/null || true)
is_server=
if [ "$command_path" = /usr/bin/redis-server ]; then is_server=1; fi

if [ -n "$is_server" ]; then
  for name in REDIS_PASSWORD REDIS_PASSWORD_FILE; do
    [ -z "${!name:-}" ] || die "$name is not emulated by this stand-in (see .ci/README.md)"
  done
  for arg; do
    [ "$arg" != --sentinel ] || die "sentinel mode is not emulated by this stand-in"
  done
fi

CAP_SETGID=6
CAP_SETUID=7
if [ -n "$is_server" ] && [ -z "${SKIP_DROP_PRIVS:-}" ] && [ "$(id -u)" = 0 ] \
  && has_capabilities "$CAP_SETGID" "$CAP_SETUID"; then
  if [ -z "${SKIP_FIX_PERMS:-}" ]; then own_data_directory; fi
  exec setpriv --reuid=redis --regid=redis --clear-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$(umask)" = 0022 ]; then umask 0077; fi

if [ -n "$is_server" ]; then
  echo "Starting Redis Server"
  # The command, and the configuration file if one comes first; then the modules; then the rest.
  head=("$1")
  shift
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    head+=("$1")
    shift
  fi
  for module in "$modules_dir"/*.so; do
    [ -e "$module" ] || continue
    if [ -d "$module" ] || [ ! -s "$module" ] || [ ! -r "$module" ]; then
      echo "$me: skipping module $module: not a readable, non-empty file"
    elif [ ! -x "$module" ]; then
      echo "$me: warning: module $module is not executable: skipped"
    else
      head+=(--loadmodule "$module")
    fi
  done
  set -- "${head[@]}" "$@"
fi

exec "$@"
