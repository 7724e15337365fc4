#!/bin/sh
# PID 1 of the nginx image: runs the image's entrypoint (which becomes nginx) and, when asked to
# stop (SIGQUIT, the image's stop signal, or SIGTERM), drains before nginx quits.
# nginx's graceful stop closes its listening socket at once, and the kernel resets every
# connection already accepted into that socket's queue but not yet taken by nginx: a visitor's
# request on a new connection fails with "connection reset" although nothing was wrong with it.
# So first /healthz answers 503 (nginx/templates/default.conf.template) while everything else is
# still served, for NGINX_DRAIN_SECONDS (default 0: on one host nothing is in front to notice),
# long enough for the load balancer's health check to take this node out; only then is nginx
# told to quit, when nothing is sent to it any more.
set -eu

draining=/tmp/nginx-draining
# A restarted container keeps its files where /tmp is not a tmpfs.
rm -f "$draining"

"$@" &
child=$!

# shellcheck disable=SC2329 # run by the trap below
drain() {
  trap '' QUIT TERM
  : >"$draining"
  sleep "${NGINX_DRAIN_SECONDS:-0}"
  kill -QUIT "$child" 2>/dev/null || true
}
trap drain QUIT TERM

# `wait` returns early when a trapped signal arrives: wait again until nginx has exited.
status=0
while kill -0 "$child" 2>/dev/null; do
  wait "$child" || status=$?
done
exit "$status"
