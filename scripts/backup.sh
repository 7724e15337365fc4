#!/usr/bin/env bash
# Usage: scripts/backup.sh [DIRECTORY]
# Backs up the running stack's database (pg_dump, custom format) and media files into
# DIRECTORY/<UTC timestamp>/ (default DIRECTORY: ./backups) and prints that path.
# Uses the stack that COMPOSE_FILE / COMPOSE_PROJECT_NAME select, like docker compose itself.
# Secrets are not included: set them in .env, or keep a copy of the secrets volume.
set -Eeuo pipefail

case ${1:-} in -h | --help) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
target="${1:-backups}/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$target"

# pg_dump runs inside the db container, as the database's owner over its local socket.
docker compose exec -T db sh -c 'exec pg_dump --format=custom --username="$POSTGRES_USER" "$POSTGRES_DB"' \
  >"$target/db.dump"
docker compose exec -T web tar -C /srv/media -czf - . >"$target/media.tar.gz"

echo "$target"
