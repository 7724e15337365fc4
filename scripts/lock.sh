#!/usr/bin/env bash
# Usage: scripts/lock.sh [uv lock options, e.g. --upgrade-package django]
# Updates app/uv.lock with the uv version and Python image the build uses, so no local Python
# 3.13 or uv is needed. Set BUILD_CA_BUNDLE to a CA file when behind a TLS-intercepting proxy.
set -Eeuo pipefail

cd "$(dirname "$0")/../app"
uv_version=$(sed -n 's/^ARG UV_VERSION=//p' Dockerfile)
ca_mount=()
if [ -n "${BUILD_CA_BUNDLE:-}" ]; then
  ca_mount=(-v "$BUILD_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
fi

docker run --rm "${ca_mount[@]}" -v "$PWD:/src" -w /src --user "$(id -u):$(id -g)" \
  -e HOME=/tmp -e UV_SYSTEM_CERTS=1 -e PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
  "${PYTHON_IMAGE:-python:3.13-slim}" \
  sh -c "pip install --quiet --target /tmp/uv 'uv==$uv_version' && /tmp/uv/bin/uv lock $*"
