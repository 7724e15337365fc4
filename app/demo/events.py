"""A task's progress, published by the worker and streamed to browsers as Server-Sent Events.

The worker publishes each state on a Redis channel and also keeps the latest one in a key, so a
stream that starts late still begins with the current state. Streams read Redis only and await
it on the event loop: an open stream holds no thread and no database connection.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import redis
import redis.asyncio
from django.conf import settings

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5
# How long the browser's EventSource waits before it reconnects to a stream that ended.
RETRY_MS = 1000
STATE_TTL_SECONDS = 3600
FINAL_STATUSES = {"succeeded"}
# Once a run is done the database has its outcome: its last state stays in Redis only for the
# streams that read the database just before it finished. Kept an hour, every task's would
# pile up (a 30-minute soak at 30 tasks a second grew Redis by 0.7 MB a minute).
FINAL_STATE_TTL_SECONDS = 60

_client: redis.Redis | None = None


def _channel(run_id: str) -> str:
    return f"demo:task-events:{run_id}"


def _state_key(run_id: str) -> str:
    return f"demo:task-state:{run_id}"


def _redis() -> redis.Redis:
    global _client
    if _client is None:  # created lazily, in each process after the fork
        _client = redis.Redis.from_url(f"{settings.REDIS_URL}/0")
    return _client


def publish(run_id: str, state: dict) -> None:
    """Record and announce a task's new state (called by the worker).

    Best effort: progress is a courtesy to listeners, so a Redis hiccup must not fail the task.
    """
    message = json.dumps(state)
    final = state["status"] in FINAL_STATUSES
    try:
        # Both in one round trip (no MULTI: a listener may see the message before the key).
        pipe = _redis().pipeline(transaction=False)
        pipe.set(
            _state_key(run_id), message, ex=FINAL_STATE_TTL_SECONDS if final else STATE_TTL_SECONDS
        )
        pipe.publish(_channel(run_id), message)
        pipe.execute()
    except redis.RedisError as error:
        logger.warning("task %s: progress not published: %s", run_id, error)


def latest(run_id: str, recorded: dict) -> dict:
    """The latest state the worker published (with its progress), else the recorded one."""
    try:
        message = _redis().get(_state_key(run_id))
    except redis.RedisError:
        return recorded
    return json.loads(message) if message else recorded


def _sse(state: dict) -> str:
    return f"event: {state['status']}\ndata: {json.dumps(state)}\n\n"


def snapshot(state: dict) -> str:
    """SSE text of one state, telling the browser to ask again in a second (polling)."""
    return f"retry: {RETRY_MS}\n{_sse(state)}"


async def stream(run_id: str, first_state: dict, max_seconds: float) -> AsyncIterator[str]:
    """SSE text for a task, from first_state until it finishes or max_seconds pass.

    When the stream ends early, the browser's EventSource reconnects after `retry` ms.
    """
    yield snapshot(first_state)
    if first_state["status"] in FINAL_STATUSES:
        return
    client = redis.asyncio.Redis.from_url(f"{settings.REDIS_URL}/0")
    pubsub = client.pubsub()
    try:
        # Subscribe first, then read the latest state: no update can fall between the two.
        await pubsub.subscribe(_channel(run_id))
        if (latest := await client.get(_state_key(run_id))) is not None:
            state = json.loads(latest)
            if state != first_state:
                yield _sse(state)
            if state["status"] in FINAL_STATUSES:
                return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while loop.time() < deadline:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=KEEPALIVE_SECONDS
            )
            if message is None:
                # A comment line: keeps proxies from timing out, and finds departed clients.
                yield ": keep-alive\n\n"
                continue
            state = json.loads(message["data"])
            yield _sse(state)
            if state["status"] in FINAL_STATUSES:
                return
    finally:
        # Runs when the task ends, and when the client goes away (the stream is cancelled).
        await pubsub.aclose()
        await client.aclose()
