#!/usr/bin/env bash
# Usage: bench/devloop.sh [--rounds N] [--out FILE]
# Edit-to-served latency of the development loop (compose.dev.yaml under `docker compose watch`):
# runs the dev-loop test's edits (tests/devloop/: a view, a template, a stylesheet, a task) N
# times, each in a fresh copy with a fresh dev stack, as a developer's first edits after
# `watch` starts, and prints a table of the latencies with the target (a view served within 2 s).
#   --rounds N   rounds (default 5); each takes about 35 s
#   --out FILE   also write the table there (default docs/bench/devloop.md)
# Needs what scripts/test.sh --dev-loop needs; BUILD_CA_BUNDLE as there.
set -Eeuo pipefail

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
rounds=5 out=docs/bench/devloop.md
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --out) out=$(realpath -m "${2:?--out needs a file}"); shift ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
  shift
done
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"

overlay=''
[ -n "${BUILD_CA_BUNDLE:-}" ] && overlay=.ci/compose.build-ca.yaml:.ci/compose.build-ca.dev.yaml
measured=$(mktemp)
trap 'rm -f "$measured"' EXIT
failed=0
for round in $(seq "$rounds"); do
  printf '[devloop] round %s of %s\n' "$round" "$rounds" >&2
  # The test prints "edit-to-served latency (N cores): view 1.23 s, template 0.61 s, ...".
  if ! output=$(COMPOSE_OVERLAY=$overlay tools pytest -p no:cacheprovider -q tests/devloop \
    -k "view or template or stylesheet or task" 2>&1); then
    failed=$((failed + 1))
    printf '[devloop] round %s failed:\n%s\n' "$round" "$(tail -n 20 <<<"$output")" >&2
  fi
  grep 'edit-to-served latency' <<<"$output" >>"$measured" || true
done
[ -s "$measured" ] || { echo "no round measured anything" >&2; exit 1; }

python3 - "$measured" "$out" "$rounds" "$failed" <<'PYTHON'
import os
import re
import statistics
import sys
from datetime import UTC, datetime

lines = open(sys.argv[1]).read().splitlines()
rounds, failed = int(sys.argv[3]), int(sys.argv[4])
cores = re.search(r"\((\d+) cores\)", lines[0]).group(1)
samples: dict[str, list[float]] = {}
for line in lines:
    for name, seconds in re.findall(r"(\w+) ([\d.]+) s", line):
        samples.setdefault(name, []).append(float(seconds))
view = statistics.median(samples["view"])
table = [
    f"# Development loop: edit-to-served latency\n",
    f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {cores} cores, {rounds} rounds of"
    " `bench/devloop.sh`: each a fresh copy and dev stack, the edits made right after `docker"
    " compose watch` is ready; from saving the file to the first response (or task run) that"
    " shows it. Load average at the end (1, 5, 15 min):"
    f" {' '.join(f'{load:.2f}' for load in os.getloadavg())}: other work on the machine slows"
    " the reload and the restart.\n",
    "| edit | median s | min s | max s |",
    "|------|---------:|------:|------:|",
    *(
        f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        for name, values in samples.items()
    ),
    "",
    f"Target: a view edit served within 2 s (median): {view:.2f} s,"
    f" {'met' if view <= 2 else 'not met'}. Rounds that failed a check: {failed} of {rounds}"
    " (a failed round's edits that were served still count above).",
]
text = "\n".join(table) + "\n"
print(text)
with open(sys.argv[2], "w") as out:
    out.write(text)
PYTHON
