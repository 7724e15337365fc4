"""One measurement of bench/run.sh as a JSON line: python3 bench/measure.py KIND KEY=VALUE...

KIND wrk (a wrk run, and the CPU each service spent a request), celery (round trip and tasks/s)
or timing (seconds since started=) adds its results to the pairs; any other KIND (meta,
component, image, note) prints them as they are.
A VALUE that is a number is read as one, except a component's (versions). Standard library only.
"""

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from glob import glob
from pathlib import Path

MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def run(*command: str) -> str:
    # Only docker and wrk, with arguments from bench/run.sh.
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603


def cpu_ns(stack: str) -> Counter:
    """CPU nanoseconds each service's containers have used so far, from their cgroups."""
    used: Counter = Counter()
    label = f"label=com.docker.compose.project=django-stack-bench-{stack}"
    fmt = '{{.Label "com.docker.compose.service"}} {{.ID}}'
    for line in run("docker", "ps", "--no-trunc", "--filter", label, "--format", fmt).splitlines():
        service, cid = line.split()
        if v1 := glob(f"/sys/fs/cgroup/cpu*/docker/{cid}/cpuacct.usage"):
            used[service] += int(Path(v1[0]).read_text())
        elif (v2 := Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")).exists():
            used[service] += 1000 * int(re.search(r"usage_usec (\d+)", v2.read_text())[1])
    return used


def wrk(r: dict) -> dict:
    """wrk leaves requests slower than --timeout out of the latencies and counts them as timeout
    socket errors; it prints the lines on errors only when there were some."""
    threads = min(len(os.sched_getaffinity(0)), r["connections"])  # as many as nproc says
    command = ["wrk", f"-t{threads}", f"-c{r['connections']}", "--timeout", "2s", r["url"]]
    if r["warmup"]:  # at the same concurrency, so that connections and caches are warm
        run(*command, f"-d{r['warmup']}s")
    before = cpu_ns(r["stack"])
    text = run(*command, f"-d{r['duration']}s", "--latency")
    used = cpu_ns(r["stack"]) - before

    def find(pattern: str, *default) -> tuple:
        return match.groups() if (match := re.search(pattern, text, re.MULTILINE)) else default

    out = {"rps": float(find(r"^Requests/sec:\s+([\d.]+)")[0])}
    out["requests"] = int(find(r"(\d+) requests in")[0])
    for pct in (50, 99):
        value, unit = find(rf"^\s+{pct}%\s+([\d.]+)(\w+)", None, None)
        # All slower than the timeout: wrk prints zeros, which are no latency.
        out[f"p{pct}_ms"] = (float(value) * MS[unit] or None) if value else None
    out["non2xx"] = int(find(r"Non-2xx or 3xx responses:\s+(\d+)", 0)[0])
    socket = find(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", 0, 0, 0, 0)
    out["timeouts"], out["socket_errors"] = int(socket[3]), sum(map(int, socket))
    out["cpu_ms"] = {s: ns / 1e6 / max(out["requests"], 1) for s, ns in sorted(used.items())}
    cpu, errors = sum(out["cpu_ms"].values()), out["non2xx"] + out["socket_errors"]
    print(
        f"  {r['label']:42} c={r['connections']:<4} {out['rps']:8.1f} req/s  p99 "
        f"{out['p99_ms'] or 0:7.1f} ms  errors {errors}  CPU {cpu:.2f} ms/req",
        file=sys.stderr,
    )
    return out


def call(port: int, method: str, path: str, body: dict | None = None):
    """The response to one request on a new connection (nginx keeps its own to the app)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body and json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status not in (200, 202):
        raise RuntimeError(f"{method} {path} answered {response.status}")
    return response


def enqueue(port: int) -> str:
    return json.load(call(port, "POST", "/api/tasks/", {"seconds": 0}))["id"]


def succeeded(port: int, task_id: str) -> bool:
    """Reads the task's event stream: True at its "succeeded" event, else at its end False, after
    waiting the `retry` it asked for, as a browser's EventSource does (WSGI sends one event)."""
    retry = 0.0
    for line in call(port, "GET", f"/api/tasks/{task_id}/events/"):
        if line.strip() == b"event: succeeded":
            return True
        retry = int(line[6:]) / 1000 if line.startswith(b"retry:") else retry
    time.sleep(retry)
    return False


def celery(r: dict) -> dict:
    port, timings = r["port"], []
    for index in range(10 + r["round_trips"]):  # the first 10 warm up
        started, task_id = time.perf_counter(), enqueue(port)
        if not any(succeeded(port, task_id) for _ in range(60)):
            raise RuntimeError(f"task {task_id} did not succeed within 60 event streams")
        if index >= 10:
            timings.append((time.perf_counter() - started) * 1000)
    # Throughput: 8 clients enqueue at once; the tasks' own finish times (host and containers
    # share one clock) end the measurement, so that polling for them does not count.
    started_wall, started = time.time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: enqueue(port), range(r["tasks"])))
    enqueue_seconds, finished = time.perf_counter() - started, []
    for task_id in ids:  # first in, first out: once one has succeeded, most earlier ones have
        while (task := json.load(call(port, "GET", f"/api/tasks/{task_id}/")))["result"] is None:
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"task {task_id} unfinished after 60 s")
            time.sleep(0.05)
        finished.append(datetime.fromisoformat(task["result"]["finished_at"]).timestamp())
    return {
        "rt_p50_ms": statistics.median(timings),
        "rt_p99_ms": statistics.quantiles(timings, n=100, method="inclusive")[98],
        "clients": 8,
        "enqueue_per_s": r["tasks"] / enqueue_seconds,
        "tasks_per_s": r["tasks"] / (max(finished) - started_wall),
    }


def main() -> None:
    kind, record = sys.argv[1], {"kind": sys.argv[1]}
    for key, _, value in (pair.partition("=") for pair in sys.argv[2:]):
        number = kind != "component" and re.fullmatch(r"-?\d+(\.\d+)?", value)  # not versions
        record[key] = json.loads(value) if number else value
    measures = {"wrk": wrk, "celery": celery}
    measures["timing"] = lambda r: {"seconds": time.time() - r["started"]}
    record |= measures[kind](record) if kind in measures else {}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
