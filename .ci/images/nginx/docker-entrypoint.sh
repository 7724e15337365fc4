#!/usr/bin/env bash
# Entrypoint of the nginx stand-in, written to the official nginx image's entrypoint contract
# (its /docker-entrypoint.sh and 20-envsubst-on-templates.sh), for `nginx` and `nginx-debug`:
#   - every file NAME.template under NGINX_ENVSUBST_TEMPLATE_DIR (default /etc/nginx/templates,
#     subdirectories included; suffix NGINX_ENVSUBST_TEMPLATE_SUFFIX) is rendered to
#     NGINX_ENVSUBST_OUTPUT_DIR/NAME (default /etc/nginx/conf.d) by envsubst, which replaces only
#     the ${VARIABLES} that are set in the environment (and whose names match the regular
#     expression NGINX_ENVSUBST_FILTER, if given), so nginx's own $variables survive;
#   - an output directory that is not writable is reported and rendering skipped, as there;
#   - NGINX_ENTRYPOINT_QUIET_LOGS silences its messages.
# Then it runs the command as it is. The official image's other start-up scripts (hooks added to
# /docker-entrypoint.d, stream templates, the local-resolvers and worker-autotune options) are
# refused, not ignored; the IPv6 listen script only edits a packaged default.conf, which neither
# image used by this stack has. See .ci/README.md.
set -Eeuo pipefail

me=${0##*/}
log() { if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then echo "$me: $*"; fi; }
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }

render_templates() {
  local template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
  local suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
  local output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
  local filter=${NGINX_ENVSUBST_FILTER:-}
  local name defined='' template relative output
  [ -d "$template_dir" ] || return 0
  if [ -n "$(find "$template_dir" -follow -type f -name '*.stream-template' -print -quit)" ]; then
    die "stream templates are not emulated by this stand-in (see .ci/README.md)"
  fi
  if [ ! -w "$output_dir" ]; then
    log "ERROR: $template_dir exists, but $output_dir is not writable"
    return 0
  fi
  while IFS= read -r name; do
    if [ -z "$filter" ] || [[ $name =~ $filter ]]; then defined+="\${$name} "; fi
  done < <(compgen -e)
  while IFS= read -r template; do
    relative=${template#"$template_dir"/}
    output="$output_dir/${relative%"$suffix"}"
    mkdir -p "$(dirname "$output")"
    log "rendering $template to $output"
    envsubst "$defined" <"$template" >"$output"
  done < <(find "$template_dir" -follow -type f -name "*$suffix" -print | sort)
}

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
  if [ -n "$(find /docker-entrypoint.d -mindepth 1 -print -quit 2>/dev/null)" ]; then
    die "hooks in /docker-entrypoint.d are not emulated by this stand-in (see .ci/README.md)"
  fi
  for name in NGINX_ENTRYPOINT_LOCAL_RESOLVERS NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE; do
    [ -z "${!name:-}" ] || die "$name is not emulated by this stand-in (see .ci/README.md)"
  done
  render_templates
fi

exec "$@"
