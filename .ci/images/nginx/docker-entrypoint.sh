#!/usr/bin/env bash
# The part of the official nginx entrypoint this stack uses: render templates, then exec nginx.
set -Eeuo pipefail

if [ "${1:-}" = nginx ]; then
  template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
  output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
  suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
  # Only variables that are defined are substituted, so nginx's own $variables survive.
  defined=$(env | awk -F= '{ printf "${%s} ", $1 }')
  for template in "$template_dir"/*"$suffix"; do
    [ -f "$template" ] || continue
    name=$(basename "$template" "$suffix")
    envsubst "$defined" <"$template" >"$output_dir/$name"
    echo "$0: rendered $template to $output_dir/$name"
  done
fi

exec "$@"
