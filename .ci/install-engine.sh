#!/usr/bin/env bash
# Usage: .ci/install-engine.sh
# Makes a Docker engine with compose v2 and buildx usable on a Debian bookworm machine that has
# no container registry: installs docker.io from Debian, the compose/buildx CLI plugins from
# Debian trixie's .debs, and starts dockerd. Idempotent: does only what is missing.
set -Eeuo pipefail

log() { printf '[engine] %s\n' "$*"; }

# The Debian mirror this machine is configured with (it also serves trixie).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
plugins_dir=/usr/local/lib/docker/cli-plugins

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing docker.io and debootstrap from Debian"
  apt_install docker.io debootstrap ca-certificates curl
fi

# Compose v2 and buildx are not packaged for bookworm; trixie's packages hold static binaries.
install_plugin() {
  local package=$1 binary=$2
  [ -x "$plugins_dir/$binary" ] && return 0
  log "installing $binary from trixie's $package"
  local tmp deb_path
  tmp=$(mktemp -d)
  curl -fsSL "$mirror/dists/trixie/main/binary-amd64/Packages.gz" | gunzip >"$tmp/Packages"
  deb_path=$(awk -v p="$package" '$1 == "Package:" {hit = ($2 == p)} hit && $1 == "Filename:" {print $2; exit}' "$tmp/Packages")
  [ -n "$deb_path" ] || { log "FAIL: $package not found in trixie's index"; return 1; }
  curl -fsSL -o "$tmp/pkg.deb" "$mirror/$deb_path"
  dpkg -x "$tmp/pkg.deb" "$tmp/root"
  mkdir -p "$plugins_dir"
  install -m 0755 "$tmp/root/usr/libexec/docker/cli-plugins/$binary" "$plugins_dir/$binary"
  rm -rf "$tmp"
}
install_plugin docker-compose docker-compose
install_plugin docker-buildx docker-buildx

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "FAIL: dockerd did not come up; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log; exit 1; }
fi

log "ok: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /'), $(docker buildx version | awk '{print "buildx " $2}')"
