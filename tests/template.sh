#!/usr/bin/env bash
# Usage: tests/template.sh
# Proves scripts/init.sh on a temporary copy of the repository (the files git knows of, as they
# are in the work tree): a bad NAME changes nothing; `init.sh template-check --no-demo` renames
# the project and removes the demo, and a second run changes nothing more; then the renamed
# project passes lint, its unit tests and scripts/smoke.sh (up --wait; /healthz, /readyz and the
# styled /admin/ through nginx); the README's "Your own app" is followed as written; and the
# stack tests pass for the result. Uses the compose project template-check on port 18090.
set -Eeuo pipefail

case ${1:-} in -h | --help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
# shellcheck source=../scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"

copy=$(mktemp -d)
export COMPOSE_PROJECT_NAME=template-check HTTP_PORT=18090
cleanup() {
  (cd "$copy" && docker compose --profile test down --volumes --remove-orphans >/dev/null 2>&1) || true
  (cd "$copy" && COMPOSE_PROJECT_NAME=template-check-dev COMPOSE_FILE=compose.dev.yaml docker compose down --volumes >/dev/null 2>&1) || true
  rm -rf "$copy"
}
trap cleanup EXIT

# The files git knows of (committed or new), as they are in the work tree; deleted ones not.
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done \
  | xargs -0 cp --parents -t "$copy"
cd "$copy"
git init --quiet && git add --all  # lint.sh lists the files to check with git
snapshot() { find . -path ./.git -prune -o -type f -print0 | sort -z | xargs -0 sha256sum; }

# The files that carry the project's name: every compose file that names it, the dev stack's too.
mapfile -t named < <(grep -l django-stack compose*.yaml compose/*.yaml .env.example app/pyproject.toml app/uv.lock app/Dockerfile)
before=$(snapshot)
if scripts/init.sh 'Bad Name!' >/dev/null 2>&1; then fail "init.sh refuses a bad NAME" "it accepted 'Bad Name!'"; fi
check "a bad NAME changes nothing" "files changed" test "$before" = "$(snapshot)"

scripts/init.sh template-check --no-demo
check "demo removed" "app/demo/ is still there" test ! -e app/demo
# Kept code, configuration, scripts, tests and docs name neither the demo nor its benchmark
# (init.sh, which removes them, aside; and the template's own suite reference, docs/testing.md).
kept=(app compose.yaml compose.*.yaml compose nginx swarm tests/stack .env.example
  .pre-commit-config.yaml README.md docs scripts)
named_demo() { grep -rniE --exclude=init.sh --exclude=testing.md 'demo|bench' "${kept[@]}"; }
no_demo_named() { ! named_demo >/dev/null; }
check "no demo or benchmark named in ${kept[*]}" "$(named_demo | head -5)" no_demo_named
for file in "${named[@]}"; do
  check "renamed in $file" "still says django-stack" sh -c "grep -q template-check $file && ! grep -q django-stack $file"
done
check "the dev stack is named template-check-dev" "$(grep '^name:' compose.dev.yaml)" \
  grep -qx 'name: template-check-dev' compose.dev.yaml
after=$(snapshot)
scripts/init.sh template-check --no-demo >/dev/null
check "a second run changes nothing" "files changed" test "$after" = "$(snapshot)"
[ "$failures" -eq 0 ] || exit 1

# The renamed project, as its owner would test it: its own documented defaults (APP_IMAGE's
# new one among them), not the template's.
unset APP_IMAGE
export COMPOSE_ENV_FILES=$copy/.env.example
COMPOSE_FILE=$(compose_files wsgi)
export COMPOSE_FILE
scripts/lint.sh
docker compose --profile test build --quiet
docker compose --profile test run --rm test
docker compose --profile test down --volumes --remove-orphans >/dev/null 2>&1
scripts/smoke.sh
label=$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.title"}}' template-check-app:local)
check "the image is template-check-app:local, labelled template-check" "label '$label'" test "$label" = template-check
[ "$failures" -eq 0 ] || exit 1

# The README's "Your own app", as written there: startapp, the files it shows (each code block
# whose first line names a file under app/), INSTALLED_APPS and the URLs, makemigrations, up.
step "template: the README's own app example"
# manage.sh runs the dev stack, under a project of its own (which needs the CA for its builds
# as the dev loop's does, behind a TLS-intercepting proxy).
manage() {
  COMPOSE_PROJECT_NAME=template-check-dev \
    COMPOSE_OVERLAY=${COMPOSE_OVERLAY:+$COMPOSE_OVERLAY:.ci/compose.build-ca.dev.yaml} \
    scripts/manage.sh "$@"
}
manage startapp catalog
python3 - <<'PY'
import re
from pathlib import Path

readme = Path("README.md").read_text()
for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL):
    first, _, code = block.partition("\n")
    if first.startswith("# app/"):
        Path(first[2:]).write_text(code)
settings = Path("app/config/settings.py")
settings.write_text(settings.read_text().replace('    "core",\n', '    "core",\n    "catalog",\n'))
urls = Path("app/config/urls.py")
text = urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
urls.write_text(text.replace('    path("admin/", admin.site.urls),\n', '    path("admin/", admin.site.urls),\n    path("catalog/", include("catalog.urls")),\n'))
PY
manage makemigrations catalog
(COMPOSE_PROJECT_NAME=template-check-dev COMPOSE_FILE=compose.dev.yaml docker compose down --volumes >/dev/null 2>&1)
check "makemigrations wrote the migration" "no app/catalog/migrations/0001_initial.py" \
  test -f app/catalog/migrations/0001_initial.py
url="http://127.0.0.1:$HTTP_PORT/catalog/"
up_healthy || exit 1
check "GET /catalog/ through nginx: the new view" "$(curl -s "$url" | head -c 200)" \
  sh -c "curl -fsS '$url' | grep -qx 'Products: none yet'"
docker compose exec -T web python manage.py shell -c \
  "from catalog.models import Product; Product.objects.create(name='Tea')" >/dev/null
check "the model's table is migrated and read" "$(curl -s "$url" | head -c 200)" \
  sh -c "curl -fsS '$url' | grep -qx 'Products: Tea'"
# An edit, then the README's `docker compose up --wait` again (up_healthy runs it): up builds,
# so the edit is served.
sed -i 's/Products: /In stock: /' app/catalog/views.py
up_healthy || exit 1
check "after an edit, docker compose up --wait serves it" "$(curl -s "$url" | head -c 200)" \
  sh -c "curl -fsS '$url' | grep -qx 'In stock: Tea'"
[ "$failures" -eq 0 ] || exit 1

# The stack tests, against the project as its owner now has it (its own app, no demo): the
# hardening, hostile-request, fault, rolling-restart and backup tests use the kept endpoints
# (/healthz, /readyz, the admin); the demo's own went with it (tests/stack/demo/).
step "template: the stack tests, on the renamed project with its own app"
STACK_URL="http://127.0.0.1:$HTTP_PORT" STACK_VARIANT=wsgi \
  tools pytest -p no:cacheprovider --strict-markers -q -rs tests/stack
docker compose down --volumes >/dev/null 2>&1
