"""Celery from inside the stack's network: enqueue -> recorded done, and tasks a second.

Run in the web container (it has the code, the secrets and the backend network), so that no
HTTP, nginx or port proxy is measured, only what the view does to enqueue and the worker does:
    docker compose exec -T web python -c "$(cat bench/celery_probe.py)" ROUND_TRIPS TASKS </dev/null
Once Django is set up it prints "ready" and waits for a line on stdin (or its end): bench/measure.py
starts counting CPU there, so the probe's own start is not counted as the tasks' cost.
Round trip: the view's enqueue (the row inserted and committed, the message published), then the
task's "succeeded" event, which the worker publishes after it has recorded the run as done; one
task at a time. Throughput: TASKS enqueued by 8 threads at once, from the first enqueue to the
last task's recorded finish (the worker's clock, which is the host's). Prints one JSON line.
"""

import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from demo.models import TaskRun  # noqa: E402
from demo.tasks import sleep_task  # noqa: E402

CLIENTS = 8


def enqueue() -> str:
    """What POST /api/tasks/ does (demo/views.py: create_task)."""
    run = TaskRun.objects.create(seconds=0)
    sleep_task.apply_async((str(run.id),), task_id=str(run.id))
    return str(run.id)


def round_trips(count: int) -> list[float]:
    client = redis.Redis.from_url(f"{settings.REDIS_URL}/0")
    pubsub = client.pubsub()
    # Every task's channel, subscribed before any task exists: no event can be missed.
    pubsub.psubscribe("demo:task-events:*")
    timings = []
    for index in range(10 + count):  # the first 10 warm up
        started = time.perf_counter()
        task_id = enqueue()
        deadline = started + 30
        while True:
            message = pubsub.get_message(timeout=max(deadline - time.perf_counter(), 0))
            if message is None and time.perf_counter() > deadline:
                raise RuntimeError(f"no event from task {task_id} within 30 s")
            if message is None or message["type"] != "pmessage":
                continue
            state = json.loads(message["data"])
            if state["id"] == task_id and state["status"] == "succeeded":
                break
        if index >= 10:
            timings.append((time.perf_counter() - started) * 1000)
    pubsub.close()
    return timings


def throughput(count: int) -> dict:
    def enqueue_in_thread(_) -> str:
        try:
            return enqueue()
        finally:
            close_old_connections()

    started_wall, started = time.time(), time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        ids = list(pool.map(enqueue_in_thread, range(count)))
    enqueue_seconds = time.perf_counter() - started
    while TaskRun.objects.filter(pk__in=ids).exclude(status="succeeded").exists():
        if time.perf_counter() - started > 120:
            raise RuntimeError("tasks unfinished after 120 s")
        time.sleep(0.05)
    last = max(TaskRun.objects.filter(pk__in=ids).values_list("finished_at", flat=True))
    return {
        "clients": CLIENTS,
        "enqueue_per_s": count / enqueue_seconds,
        "tasks_per_s": count / (last.timestamp() - started_wall),
    }


def main() -> None:
    trips, tasks = int(sys.argv[1]), int(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()
    timings = round_trips(trips)
    out = {
        "round_trips": trips,
        "rt_p50_ms": statistics.median(timings),
        "rt_p99_ms": statistics.quantiles(timings, n=100, method="inclusive")[98],
        "tasks": tasks,
    } | throughput(tasks)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
