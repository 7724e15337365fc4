#!/usr/bin/env bash
# Usage: scripts/lint.sh
# Every static check, one line each: ruff (lint, format), shellcheck, hadolint (Dockerfiles),
# compose-lint (compose files, accepted findings in .compose-lint.yml), gixy (the rendered nginx
# config) and bandit (the Django code). Exits non-zero if any fails.
set -Eeuo pipefail

case ${1:-} in -h | --help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
cd "$(dirname "$0")/.."

failures=0
run() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    printf 'ok    %s\n' "$name"
  else
    printf 'FAIL  %s\n%s\n' "$name" "$output"
    failures=$((failures + 1))
  fi
}

# gixy reads one configuration tree: the nginx.conf of the image with the site rendered into it.
gixy_rendered() {
  local tree
  tree=$(mktemp -d)
  trap 'rm -rf "$tree"' RETURN
  # shellcheck disable=SC2016 # the variable list is envsubst's argument, not for the shell
  NGINX_CLIENT_MAX_BODY_SIZE=10m NGINX_TRUSTED_PROXY=unix: NGINX_VISITOR_SCHEME=http \
    envsubst '${NGINX_CLIENT_MAX_BODY_SIZE} ${NGINX_TRUSTED_PROXY} ${NGINX_VISITOR_SCHEME}' \
    <nginx/templates/default.conf.template >"$tree/default.conf"
  cp nginx/security-headers.conf "$tree/"
  sed "s|/etc/nginx/conf.d/\*.conf|$tree/default.conf|" nginx/nginx.conf >"$tree/nginx.conf"
  sed -i "s|/etc/nginx/security-headers.conf|$tree/security-headers.conf|" "$tree/default.conf"
  # host_spoofing: Host is passed with its port on purpose; see the template's comment.
  gixy --skips host_spoofing "$tree/nginx.conf"
}

run "ruff check" ruff check .
run "ruff format" ruff format --check .
run "shellcheck" sh -c "git ls-files -z '*.sh' .ci/run | xargs -0 shellcheck"
run "hadolint" sh -c "git ls-files -z '*Dockerfile' | xargs -0 hadolint --failure-threshold warning"
run "compose-lint compose.yaml" compose-lint check --fail-on medium --strict-config compose.yaml
run "compose-lint compose.asgi.yaml" compose-lint check --fail-on medium --strict-config compose.asgi.yaml
run "compose-lint compose.https.yaml" compose-lint check --fail-on medium --strict-config compose.https.yaml
run "gixy nginx" gixy_rendered
run "bandit app" bandit --quiet --recursive app --exclude app/tests,app/demo/tests

[ "$failures" -eq 0 ] || { echo "$failures lint check(s) failed"; exit 1; }
