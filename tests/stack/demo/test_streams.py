"""Many event streams, followed as a browser's EventSource follows them, and the rest of the site
meanwhile: listeners must never take the site down (no 5xx, probes ready, the database view
answering in under a second at p99).

Under ASGI each stream stays open until its task ends. Under WSGI the events URL answers one
snapshot with a `retry` hint and closes, and EventSource reconnects after `retry` ms: 200
listeners are then 200 requests a second, for as long as they listen. The listeners run in a
process of their own, so that the site's latency is measured on a client that is not busy with
them.
"""

import asyncio
import contextlib
import math
import multiprocessing
import ssl
import time
from collections import Counter

import httpx
import pytest
from demo_tasks import enqueue

from helpers import STACK_URL, VARIANT

pytestmark = pytest.mark.no_5xx

# Far above what broke before: 16 streams (ASGI, pooled connections) and 5 (WSGI, sync workers).
# Under WSGI each listener is a request a second, and each costs web about 3 ms of CPU: 500 would
# need 1.4 of the test machine's 2 cores for web alone (measured: the site saturated, p99 2.5 to
# 5 s), 200 leave it room, as a site sized for its visitors has.
STREAMS = 1000 if VARIANT == "asgi" else 200
# How long the rest of the site is measured while the listeners listen (and, under WSGI,
# reconnect about once a second each).
MEASURE_SECONDS = 12
# What EventSource waits before reconnecting when the server sent no `retry` field (browsers
# choose; Chromium and Firefox wait about 3 s).
DEFAULT_RETRY_MS = 3000
# Under ASGI every stream should stay open for the whole measurement, which starts once all
# are open (seconds; tens of seconds on a busy machine); under WSGI the listeners poll a
# running task, as the status page does while it waits. Not longer: the task holds one of the
# worker's two slots into the tests that follow.
TASK_SECONDS = 40
# The documented bound (docs/testing.md): the database view's p99 while the streams are open.
P99_BOUND_SECONDS = 1.0


async def follow(path: str, stop: asyncio.Event, log: dict, tls: ssl.SSLContext) -> None:
    """One listener, as EventSource does it: read the stream until it ends, wait `retry` ms (the
    last value the server sent), connect again (on the same connection if it is still open);
    until stopped."""
    # A client each, as each browser has its own: in one pool of hundreds of connections, httpx
    # spends time quadratic in their number, and the listeners stall on it for seconds.
    async with httpx.AsyncClient(base_url=STACK_URL, timeout=60, verify=tls) as client:
        while not stop.is_set():
            await listen_once(client, path, log)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=log["retry"] / 1000)


async def listen_once(client: httpx.AsyncClient, path: str, log: dict) -> None:
    last_event = None
    try:
        async with client.stream("GET", path, headers={"Accept": "text/event-stream"}) as reply:
            log["statuses"][reply.status_code] += 1
            async for line in reply.aiter_lines():
                if line.startswith("retry:") and line[6:].strip().isdigit():
                    log["retry"] = int(line[6:].strip())
                    log["retry_ms"][log["retry"]] += 1
                elif line.startswith("event: "):
                    last_event = line.removeprefix("event: ")
                    log["events"].append((time.monotonic(), last_event))
    except httpx.HTTPError as error:
        log["errors"].append((time.monotonic(), f"{type(error).__name__}: {error}"))
    log["ends"].append((time.monotonic(), last_event))


async def listen(path: str, pipe) -> list[dict]:
    stop = asyncio.Event()
    logs = [
        {
            "retry": DEFAULT_RETRY_MS,
            **{"statuses": Counter(), "retry_ms": Counter()},
            **{"events": [], "ends": [], "errors": []},
        }
        for _ in range(STREAMS)
    ]
    tls = ssl.create_default_context()  # plain HTTP: made once instead of once per client
    listeners = [asyncio.create_task(follow(path, stop, log, tls)) for log in logs]
    while not all(log["events"] for log in logs):
        await asyncio.sleep(0.1)
    pipe.send("open")
    await asyncio.to_thread(pipe.poll, 600)  # until the test says stop
    stop.set()
    for listener in listeners:  # an open stream (ASGI) is left as a closed tab leaves it
        listener.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    return logs


def listeners_process(path: str, pipe) -> None:
    """The listeners' process: "open" once every listener got its first event, then, when told,
    every listener's log."""
    pipe.send(asyncio.run(listen(path, pipe)))


async def meanwhile(task_id: str) -> dict:
    """The rest of the site while the listeners listen: the database view, 4 readers at a time,
    for MEASURE_SECONDS; then the probe, the status page and enqueueing."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    async with httpx.AsyncClient(base_url=STACK_URL, timeout=10) as site:
        deadline = time.monotonic() + MEASURE_SECONDS

        async def status(method: str, path: str, **options) -> int | str:
            try:
                return (await site.request(method, path, **options)).status_code
            except httpx.HTTPError as error:  # counted, its wait measured
                return type(error).__name__

        async def reader() -> None:
            while time.monotonic() < deadline:
                started = time.monotonic()
                statuses[await status("GET", f"/api/tasks/{task_id}/")] += 1
                latencies.append(time.monotonic() - started)

        await asyncio.gather(*(reader() for _ in range(4)))
        return {
            "statuses": statuses,
            "latencies": sorted(latencies),
            "readyz": await status("GET", "/readyz"),
            "page": await status("GET", "/"),
            "enqueue": await status("POST", "/api/tasks/", json={"seconds": 0}),
        }


def p99(sorted_values: list[float]) -> float:
    """The 99th percentile, nearest rank."""
    return sorted_values[math.ceil(0.99 * len(sorted_values)) - 1]


def test_many_listeners_leave_the_site_answering(http):
    task_id = enqueue(http, TASK_SECONDS)
    enqueued = time.monotonic()
    context = multiprocessing.get_context("spawn")
    pipe, child_pipe = context.Pipe()
    listeners = context.Process(
        target=listeners_process, args=(f"/api/tasks/{task_id}/events/", child_pipe)
    )
    listeners.start()
    try:
        assert pipe.poll(90), f"{STREAMS} listeners did not all get a first event in 90 s"
        assert pipe.recv() == "open"
        started = time.monotonic()
        site = asyncio.run(meanwhile(task_id))
        ended = time.monotonic()
        pipe.send("stop")
        assert pipe.poll(120), "the listeners did not stop"
        logs = pipe.recv()
    finally:
        listeners.join(timeout=10)
        if listeners.is_alive():
            listeners.kill()

    latencies = site["latencies"]
    in_window = [[t for t, _ in log["events"] if started <= t <= ended] for log in logs]
    measured = (
        f"{len(latencies)} reads, p50 {latencies[len(latencies) // 2]:.3f} s, "
        f"p99 {p99(latencies):.3f} s, max {latencies[-1]:.3f} s; "
        f"{sum(map(len, in_window)) / (ended - started):.0f} events/s to {STREAMS} listeners"
    )
    print(f"database view while listening: {measured}; open after {started - enqueued:.1f} s")

    statuses = sum((log["statuses"] for log in logs), Counter())
    errors = sorted(error for log in logs for error in log["errors"])
    assert set(statuses) == {200}, statuses
    assert not errors, [(f"{when - started:+.1f} s", what) for when, what in errors[:5]]
    if VARIANT == "asgi":
        finals = [t for log in logs for t, event in log["events"] if event == "succeeded"]
        done = min(finals, default=math.inf)
        assert done > ended, (
            f"the task ended before the measurement did: the listeners took "
            f"{started - enqueued:.0f} s to open"
        )
        ended_early = sum(1 for log in logs if any(t <= ended for t, _ in log["ends"]))
        assert ended_early == 0, f"{ended_early} streams ended before the task did"
    else:
        # The snapshot tells EventSource to ask again in a second (docs/demo.md's API table).
        assert set(sum((log["retry_ms"] for log in logs), Counter())) == {1000}
        # Every listener kept reconnecting for the whole measurement: an event in each third
        # of it (a second's retry plus the answer's time apart, when the site keeps up).
        third = (ended - started) / 3
        for part in range(3):
            start, end = started + part * third, started + (part + 1) * third
            quiet = sum(1 for events in in_window if not any(start <= t < end for t in events))
            assert quiet == 0, f"{quiet} listeners got no event in seconds {part * third:.0f}+"

    assert site["statuses"] == {200: len(latencies)}, site["statuses"]
    assert (site["readyz"], site["page"], site["enqueue"]) == (200, 200, 202)
    # Answered, not starved: before the fixes, requests waited 5 s for a pooled connection and
    # failed (ASGI), or every sync worker was held by a listener (WSGI).
    assert p99(latencies) < P99_BOUND_SECONDS, measured
