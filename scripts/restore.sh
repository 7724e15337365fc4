#!/usr/bin/env bash
# Usage: scripts/restore.sh BACKUP_DIRECTORY
# Restores a backup made by scripts/backup.sh into the running stack: the database is replaced
# object by object (pg_restore --clean), the media files are replaced whole.
# Uses the stack that COMPOSE_FILE / COMPOSE_PROJECT_NAME select, like docker compose itself.
set -Eeuo pipefail

usage() { sed -n '2,5s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && usage
[ $# -eq 1 ] || usage 2
backup=$1
for file in db.dump media.tar.gz; do
  [ -f "$backup/$file" ] || { echo "error: $backup/$file is missing" >&2; exit 1; }
done

docker compose exec -T db sh -c \
  'exec pg_restore --clean --if-exists --no-owner --single-transaction --username="$POSTGRES_USER" --dbname="$POSTGRES_DB"' \
  <"$backup/db.dump"
docker compose exec -T web sh -c 'find /srv/media -mindepth 1 -delete && tar -C /srv/media -xzf -' \
  <"$backup/media.tar.gz"

echo "restored $backup"
