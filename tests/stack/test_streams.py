"""Many open event streams, and the rest of the site meanwhile: a few listeners must never take
the site down (no 5xx, probes ready, the database view answering without starving)."""

import asyncio
import time

import httpx
import pytest

from helpers import STACK_URL, VARIANT, enqueue

pytestmark = [pytest.mark.demo, pytest.mark.no_5xx]

# Far above what broke before: 16 streams (ASGI, pooled connections) and 5 (WSGI, sync workers).
STREAMS = 1000 if VARIANT == "asgi" else 500


async def open_stream(client: httpx.AsyncClient, path: str, opened: asyncio.Event, stats: dict):
    """Opens an event stream and reads it until cancelled (ASGI) or until it ends (WSGI)."""
    async with client.stream("GET", path) as response:
        stats[response.status_code] = stats.get(response.status_code, 0) + 1
        first = True
        async for line in response.aiter_lines():
            if first and line.startswith("event: "):
                first = False
                stats["first event"] = stats.get("first event", 0) + 1
                if stats["first event"] == STREAMS:
                    opened.set()
        stats["ended"] = stats.get("ended", 0) + 1


async def meanwhile(client: httpx.AsyncClient, task_id: str) -> dict:
    """The rest of the site while the streams are open: a DB read 200 times, 4 at a time."""
    latencies: list[float] = []
    statuses: list[int] = []

    async def reader() -> None:
        for _ in range(50):
            started = time.monotonic()
            statuses.append((await client.get(f"/api/tasks/{task_id}/")).status_code)
            latencies.append(time.monotonic() - started)

    await asyncio.gather(*(reader() for _ in range(4)))
    return {
        "statuses": statuses,
        "slowest": max(latencies),
        "readyz": (await client.get("/readyz")).status_code,
        "page": (await client.get("/")).status_code,
        "enqueue": (await client.post("/api/tasks/", json={"seconds": 0})).status_code,
    }


async def many_streams(task_id: str) -> tuple[dict, dict]:
    limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=20)
    async with (
        httpx.AsyncClient(base_url=STACK_URL, timeout=60, limits=limits) as streams,
        httpx.AsyncClient(base_url=STACK_URL, timeout=10) as site,
    ):
        opened, stats = asyncio.Event(), {}
        path = f"/api/tasks/{task_id}/events/"
        readers = [
            asyncio.create_task(open_stream(streams, path, opened, stats)) for _ in range(STREAMS)
        ]
        await asyncio.wait_for(opened.wait(), timeout=60)
        site_meanwhile = await meanwhile(site, task_id)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return stats, site_meanwhile


def test_many_open_streams_leave_the_site_answering(http):
    # Long enough for the streams to stay open while the rest of the site is measured (ASGI).
    task_id = enqueue(http, 20 if VARIANT == "asgi" else 0)
    stats, site = asyncio.run(many_streams(task_id))

    assert stats[200] == STREAMS
    assert stats["first event"] == STREAMS
    if VARIANT == "asgi":
        assert stats.get("ended", 0) == 0, "streams ended before the task did"
    assert site["statuses"] == [200] * 200
    # Answered, not starved (before the fix, requests waited 5 s for a pooled connection, then
    # failed). How fast is the benchmark's business: p99 was 0.4 s on a quiet machine, up to
    # 2.3 s with the 2 cores shared with other test runs.
    assert site["slowest"] < 10, f"the slowest database read took {site['slowest']:.2f} s"
    assert (site["readyz"], site["page"], site["enqueue"]) == (200, 200, 202)
