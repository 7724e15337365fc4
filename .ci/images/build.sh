#!/usr/bin/env bash
# Usage: .ci/images/build.sh
# Builds stand-ins for the official images this stack names (python, postgres, redis, nginx,
# caddy), for the ACME test server of the HTTPS tests (pebble), and for the swarm harness's
# Docker-in-Docker node and registry (dind, registry; .ci/swarm.sh) from Debian packages, for
# machines that cannot reach a container registry. Each keeps its official image's contract
# (entrypoint variables, ports, paths, users, and no USER: the uid is compose's) and refuses what
# it does not emulate; .ci/README.md lists every difference and .ci/images/test.sh checks the
# contract. Builds are cached (STANDIN_PREFIX names the images).
# Prints the POSTGRES_IMAGE=... lines that select them; the product files never name them.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=${STANDIN_PREFIX:-stack-standin}
base="$prefix/debian:trixie"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

log() { printf '[standin] %s\n' "$*" >&2; }

# A registry-free Debian 13 base: debootstrap a minimal root file system and import it.
if ! docker image inspect "$base" >/dev/null 2>&1; then
  log "debootstrap trixie -> $base"
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase trixie "$rootfs" "$mirror" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$base" >/dev/null
fi

build() {
  local name=$1 tag=$2
  log "build $prefix/$name:$tag"
  docker build --quiet --build-arg "BASE=$base" --build-arg "MIRROR=$mirror" --tag "$prefix/$name:$tag" "$here/$name" >/dev/null
}
build python 3.13
build postgres 17
build redis 8
build nginx 1.30
build caddy 2
build pebble 2
build dind 26
build registry 2

cat <<ENV
PYTHON_IMAGE=$prefix/python:3.13
POSTGRES_IMAGE=$prefix/postgres:17
REDIS_IMAGE=$prefix/redis:8
NGINX_IMAGE=$prefix/nginx:1.30
CADDY_IMAGE=$prefix/caddy:2
PEBBLE_IMAGE=$prefix/pebble:2
DIND_IMAGE=$prefix/dind:26
REGISTRY_IMAGE=$prefix/registry:2
ENV
