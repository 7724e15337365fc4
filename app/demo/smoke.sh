# The demo's smoke checks, sourced by scripts/smoke.sh (url and variant set, check/json defined).
# shellcheck shell=bash disable=SC2154
page=$(curl -fsS "$url/" || true)
check "/ status page" "no status page" grep -q "Django stack" <<<"$page"
interface=$(curl -fsS "$url/api/info/" | json interface)
check "/api/info/ interface: $variant" "interface is '$interface'" test "$interface" = "$variant"
task_id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"seconds": 0.2}' \
  "$url/api/tasks/" | json id)
status='' worker=''
for _ in $(seq 100); do
  task=$(curl -fsS "$url/api/tasks/$task_id/" || true)
  status=$(json status <<<"$task")
  [ "$status" = succeeded ] && { worker=$(json result.worker <<<"$task"); break; }
  sleep 0.2
done
check "celery round trip: task ran on ${worker:-no worker}" "task '$task_id' is '$status' after 20 s" \
  test -n "$worker"
