"""Async views, Server-Sent Events and database connections, through nginx, in both variants."""

import json
import threading
import time

import httpx
import pytest
from demo_tasks import enqueue
from waiting import wait_until

from helpers import STACK_URL, VARIANT, compose

pytestmark = pytest.mark.no_5xx


def test_event_loop_is_read_from_the_running_server(http):
    event_loop = http.get("/api/info/").json()["event_loop"]
    assert event_loop == ("uvloop" if VARIANT == "asgi" else None)


def test_wait_waits_and_validates(http):
    started = time.monotonic()
    assert http.get("/api/wait/?ms=300").json() == {"interface": VARIANT, "waited_ms": 300}
    assert time.monotonic() - started >= 0.3
    refused = http.get("/api/wait/?ms=lots")
    assert refused.status_code == 400
    assert refused.json()["field"] == "ms"


def read_events(lines):
    """Yields the SSE fields of a response as (field, value): retry, event and data (parsed)."""
    for line in lines:
        field, _, value = line.partition(": ")
        if field == "data":
            yield field, json.loads(value)
        elif field in ("retry", "event"):
            yield field, value


def follow(task_id: str, timeout: float = 60) -> tuple[list[tuple[str, dict]], int]:
    """Follows a task's events as a browser's EventSource does, reconnecting after `retry` ms
    when a response ends. Returns the (event, data) pairs until "succeeded", and how many
    responses that took."""
    events: list[tuple[str, dict]] = []
    name, retry_ms, responses = "", 3000, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        responses += 1
        with httpx.stream("GET", f"{STACK_URL}/api/tasks/{task_id}/events/", timeout=30) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            for field, value in read_events(stream.iter_lines()):
                if field == "retry":
                    retry_ms = int(value)
                elif field == "event":
                    name = value
                else:
                    events.append((name, value))
                    if name == "succeeded":
                        return events, responses
        time.sleep(retry_ms / 1000)
    raise AssertionError(f"task {task_id} never succeeded: {events}")


def test_events_follow_a_task_to_its_end(http):
    task_id = enqueue(http, 3)
    events, responses = follow(task_id)
    names = [name for name, _ in events]
    assert names[0] in ("queued", "running")
    assert names[-1] == "succeeded"
    assert any(0 < data.get("progress", 0) < 1 for _, data in events), names
    assert events[-1][1]["result"]["worker"].startswith("celery@")
    if VARIANT == "asgi":
        assert responses == 1, "under ASGI one open stream carries every event"
    else:
        assert responses >= 2, "under WSGI each response is one event; the client polls"


def test_under_wsgi_an_event_response_ends_at_once(http):
    if VARIANT != "wsgi":
        pytest.skip("under ASGI a stream stays open by design")
    task_id = enqueue(http, 5)
    started = time.monotonic()
    response = http.get(f"/api/tasks/{task_id}/events/")
    assert response.status_code == 200
    assert response.text.startswith("retry: ")
    assert response.text.count("event: ") == 1
    assert time.monotonic() - started < 5


def subscribers(task_id: str) -> int:
    command = (
        'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" '
        f"redis-cli --raw PUBSUB NUMSUB demo:task-events:{task_id}"
    )
    output = compose("exec", "-T", "redis", "sh", "-c", command).stdout.split()
    return int(output[1])


def test_a_departed_client_frees_its_subscription(http):
    if VARIANT != "asgi":
        pytest.skip("under WSGI no response holds a subscription (one event, then polling)")
    task_id = enqueue(http, 15)
    with httpx.stream("GET", f"{STACK_URL}/api/tasks/{task_id}/events/", timeout=30) as stream:
        events = read_events(stream.iter_lines())  # kept: closing it would close the stream
        next(events)
        wait_until(lambda: subscribers(task_id) == 1, 10, "the stream subscribed")
    # Gone: the server notices at the latest with its next keep-alive (every 5 s), while the
    # 15 s task is still running.
    wait_until(
        lambda: subscribers(task_id) == 0, 20, "the subscription gone with its client", interval=0.5
    )
    assert http.get(f"/api/tasks/{task_id}/").json()["status"] != "succeeded"


def web_workers() -> int:
    """gunicorn's worker processes in the web container, counted from /proc."""
    code = (
        "import os; print(sum(b'gunicorn' in open(f'/proc/{p}/cmdline', 'rb').read() "
        "for p in os.listdir('/proc') if p.isdigit()) - 1)"
    )
    return int(compose("exec", "-T", "web", "python", "-c", code).stdout.strip())


def web_connections() -> int:
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'web'"
    psql = f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "{query}"'
    output = compose("exec", "-T", "db", "sh", "-c", psql)
    return int(output.stdout.strip())


def test_database_connections_stay_bounded_under_concurrent_load(http):
    task_id = enqueue(http, 0)
    # The documented bound (.env.example): a pool of 8 per ASGI worker, one connection per sync
    # worker.
    per_worker = 8 if VARIANT == "asgi" else 1
    bound = web_workers() * per_worker
    clients, statuses, peak = 64, [], 0

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
