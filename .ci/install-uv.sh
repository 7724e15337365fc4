#!/usr/bin/env bash
# Usage: .ci/install-uv.sh [DIRECTORY]
# Installs uv, the version app/Dockerfile builds with, into a venv at DIRECTORY (default
# /opt/uv); its binary is DIRECTORY/bin/uv. Does nothing if that version is already there.
set -Eeuo pipefail

case ${1:-} in -h | --help) sed -n '2,4s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
target=${1:-/opt/uv}
uv_version=$(sed -n 's/^ARG UV_VERSION=//p' "$(dirname "$0")/../app/Dockerfile")
if ! "$target/bin/uv" --version 2>/dev/null | grep -q "^uv $uv_version"; then
  python3 -m venv "$target"
  "$target/bin/pip" install --quiet --disable-pip-version-check "uv==$uv_version"
fi
