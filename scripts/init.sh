#!/usr/bin/env bash
# Usage: scripts/init.sh NAME [--no-demo]
# Makes this clone your project: names the compose project, the Django image (APP_IMAGE's
# default), the Docker label and the Python project NAME. With --no-demo it also removes the demo
# app (app/demo/ and the lines marked "# demo" in app/config/), its stack tests (tests/stack/demo/)
# and page (docs/demo.md), and the benchmark that measures it (bench/, docs/bench/). Safe to run
# again; a NAME that is not a valid name changes nothing.
# NAME: lowercase letters, digits and dashes, starting with a letter, at most 40 characters.
set -Eeuo pipefail

usage() { sed -n '2,8s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
name='' demo=keep
for arg in "$@"; do
  case $arg in
    --no-demo) demo=remove ;;
    -h | --help) usage ;;
    -*) echo "error: unknown option $arg" >&2; usage 2 ;;
    *) [ -z "$name" ] || usage 2; name=$arg ;;
  esac
done
[ -n "$name" ] || usage 2
if ! [[ $name =~ ^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$ ]]; then
  echo "error: '$name' is not a valid NAME: use lowercase letters, digits and dashes, starting with a letter, at most 40 characters" >&2
  exit 2
fi
cd "$(dirname "$0")/.."

old=$(sed -n 's/^name: //p' compose.yaml)
if [ "$old" != "$name" ]; then
  # Every variant names the same project (the dev stack its own, NAME-dev), so that switching
  # between them keeps the data.
  sed -i -e "s/^name: $old\(-dev\)\?\$/name: $name\1/" -e "s/$old-app:local/$name-app:local/" compose*.yaml compose/*.yaml
  sed -i "s/^APP_IMAGE=$old-app:local\$/APP_IMAGE=$name-app:local/" .env.example
  # The project's own entry in the lock file carries its name too (uv sync --locked checks it).
  sed -i "s/^name = \"$old\"\$/name = \"$name\"/" app/pyproject.toml app/uv.lock
  sed -i "s/org.opencontainers.image.title=\"$old\"/org.opencontainers.image.title=\"$name\"/" app/Dockerfile
  echo "renamed $old -> $name: compose project, APP_IMAGE default, Docker label, pyproject"
else
  echo "already named $name"
fi

if [ "$demo" = remove ]; then
  if [ -d app/demo ]; then
    rm -rf app/demo
    sed -i '/# demo\(:.*\)\?$/d' app/config/settings.py app/config/urls.py
    # The demo's URLs were the only include(); your own apps will bring it back.
    sed -i 's/^from django.urls import include, path$/from django.urls import path/' app/config/urls.py
    # Its tests and page, and the benchmark, which measures its views and tasks, go with it.
    rm -rf tests/stack/demo docs/demo.md bench docs/bench
    # And the passages of the docs that describe them: from a "<!-- demo -->" line to the next
    # "<!-- /demo -->" line, and the blank line after it.
    sed -i -e '/^<!-- demo[ :].*-->$/,/^<!-- \/demo -->$/{' -e '/^<!-- \/demo -->$/{N;/\n$/d;s/^[^\n]*\n//;b}' \
      -e 'd;}' README.md docs/*.md
    echo "removed the demo app: app/demo/ and its lines in app/config/settings.py and urls.py; tests/stack/demo/, docs/demo.md, bench/, the docs' demo passages"
  else
    echo "the demo app is already gone"
  fi
fi
