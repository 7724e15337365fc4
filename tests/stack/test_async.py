"""Async views, Server-Sent Events and database connections, through nginx, in both variants."""

import json
import threading
import time

import httpx
import pytest

from helpers import STACK_URL, VARIANT, compose, enqueue


def test_event_loop_is_read_from_the_running_server(http):
    event_loop = http.get("/api/info/").json()["event_loop"]
    assert event_loop == ("uvloop" if VARIANT == "asgi" else None)


def test_wait_waits_and_validates(http):
    assert http.get("/api/wait/?ms=50").json() == {"interface": VARIANT, "waited_ms": 50}
    refused = http.get("/api/wait/?ms=lots")
    assert refused.status_code == 400
    assert refused.json()["field"] == "ms"


def read_events(lines, until: str):
    """Yields the SSE events (name, data) from a line iterator, stopping after `until`."""
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))
            if name == until:
                return


def test_events_stream_progress_as_it_happens(http):
    task_id = enqueue(http, 3)
    with httpx.stream("GET", f"{STACK_URL}/api/tasks/{task_id}/events/", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = read_events(stream.iter_lines(), until="succeeded")
        first_name, _ = next(events)
        # The first event arrived while the task was still going: nothing buffered it.
        assert http.get(f"/api/tasks/{task_id}/").json()["status"] != "succeeded"
        assert first_name in ("queued", "running")
        rest = list(events)
    names = [name for name, _ in rest]
    assert names[-1] == "succeeded"
    assert any(0 < data.get("progress", 0) < 1 for _, data in rest), names
    assert rest[-1][1]["result"]["worker"].startswith("celery@")


def subscribers(task_id: str) -> int:
    command = (
        'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" '
        f"redis-cli --raw PUBSUB NUMSUB demo:task-events:{task_id}"
    )
    output = compose("exec", "-T", "redis", "sh", "-c", command).stdout.split()
    return int(output[1])


def test_a_departed_client_frees_its_subscription(http):
    task_id = enqueue(http, 15)
    with httpx.stream("GET", f"{STACK_URL}/api/tasks/{task_id}/events/", timeout=30) as stream:
        events = read_events(stream.iter_lines(), until="succeeded")  # kept: it owns the stream
        next(events)
        deadline = time.monotonic() + 10
        while subscribers(task_id) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert subscribers(task_id) == 1
    # Gone: the server notices at the latest with its next keep-alive (every 5 s).
    deadline = time.monotonic() + 20
    while subscribers(task_id) != 0:
        assert time.monotonic() < deadline, "the subscription outlived its client"
        time.sleep(0.5)


def web_workers() -> int:
    code = "from config.gunicorn import workers; print(workers)"
    return int(compose("exec", "-T", "web", "python", "-c", code).stdout.strip())


def web_connections() -> int:
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'web'"
    psql = f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "{query}"'
    output = compose("exec", "-T", "db", "sh", "-c", psql)
    return int(output.stdout.strip())


@pytest.mark.parametrize("clients", [64])
def test_database_connections_stay_bounded_under_concurrent_load(http, clients):
    task_id = enqueue(http, 0)
    per_worker = 8 if VARIANT == "asgi" else 1  # the pool, or one persistent connection
    bound = web_workers() * per_worker
    statuses: list[int] = []
    peak = 0

    def load() -> None:
        with httpx.Client(base_url=STACK_URL, timeout=30) as client:
            for _ in range(10):
                statuses.append(client.get(f"/api/tasks/{task_id}/").status_code)

    threads = [threading.Thread(target=load) for _ in range(clients)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, web_connections())
    for thread in threads:
        thread.join()

    assert statuses.count(200) == clients * 10
    assert 1 <= peak <= bound, f"{peak} connections from web, expected at most {bound}"
