"""Celery through the stack's API, for scripts/bench.sh: round trip latency and tasks per second.

Round trip: POST /api/tasks/ {"seconds": 0}, then follow the task's Server-Sent Events stream
(/api/tasks/<id>/events/) until its "succeeded" event arrives; timed from sending the POST to
reading that event, one task at a time.

Throughput: enqueue --tasks no-op tasks from --clients threads at once, wait until every one has
succeeded, and divide their number by the time from the first POST to the last `finished_at` the
workers recorded (host and containers share one clock).

Usage: python3 scripts/bench/celery_bench.py --port 18101 [--round-trips 200] [--tasks 300]
Prints one JSON object. Standard library only; every request goes to 127.0.0.1.
"""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

HOST = "127.0.0.1"
TIMEOUT_SECONDS = 30


class Api:
    """One keep-alive connection to the stack; reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT_SECONDS)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                return response.status, json.loads(data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def enqueue(self) -> str:
        status, body = self.request("POST", "/api/tasks/", {"seconds": 0})
        if status != 202:
            raise RuntimeError(f"POST /api/tasks/ answered {status}: {body}")
        return body["id"]

    def close(self) -> None:
        self.conn.close()


def follow_events(port: int, task_id: str) -> None:
    """Read the task's SSE stream until its "succeeded" event."""
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT_SECONDS)
    try:
        conn.request(
            "GET", f"/api/tasks/{task_id}/events/", headers={"Accept": "text/event-stream"}
        )
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"events of {task_id} answered {response.status}")
        while line := response.readline():
            if line.strip() == b"event: succeeded":
                return
        raise RuntimeError(f"the events of {task_id} ended before it succeeded")
    finally:
        conn.close()


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def round_trips(port: int, count: int, warmup: int) -> dict:
    api = Api(port)
    timings = []
    try:
        for index in range(warmup + count):
            started = time.perf_counter()
            follow_events(port, api.enqueue())
            if index >= warmup:
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        api.close()
    return {
        "round_trips": count,
        "rt_p50_ms": round(percentile(timings, 50), 2),
        "rt_p99_ms": round(percentile(timings, 99), 2),
        "rt_max_ms": round(max(timings), 2),
    }


def throughput(port: int, tasks: int, clients: int, deadline_seconds: float) -> dict:
    local = threading.local()

    def enqueue(_: int) -> str:
        if not hasattr(local, "api"):
            local.api = Api(port)
        return local.api.enqueue()

    started_wall = time.time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        ids = list(pool.map(enqueue, range(tasks)))
    enqueue_seconds = time.perf_counter() - started

    # Poll the newest pending task only (the queue is first in, first out), then sweep the rest,
    # so that polling adds little load while the workers run.
    api = Api(port)
    pending, finished = list(ids), []
    deadline = started + deadline_seconds
    try:
        while pending and time.perf_counter() < deadline:
            _, body = api.request("GET", f"/api/tasks/{pending[-1]}/")
            if body.get("status") != "succeeded":
                time.sleep(0.05)
                continue
            still = []
            for task_id in pending:
                _, body = api.request("GET", f"/api/tasks/{task_id}/")
                if body.get("status") == "succeeded":
                    finished.append(datetime.fromisoformat(body["result"]["finished_at"]))
                else:
                    still.append(task_id)
            pending = still
    finally:
        api.close()
    if pending:
        raise RuntimeError(f"{len(pending)} of {tasks} tasks unfinished after {deadline_seconds} s")
    elapsed = max(finished).timestamp() - started_wall
    return {
        "tasks": tasks,
        "clients": clients,
        "enqueue_per_s": round(tasks / enqueue_seconds, 1),
        "tasks_per_s": round(tasks / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the stack's port on 127.0.0.1")
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=60, help="seconds for the tasks to end")
    args = parser.parse_args()
    result = round_trips(args.port, args.round_trips, args.warmup)
    result |= throughput(args.port, args.tasks, args.clients, args.deadline)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
