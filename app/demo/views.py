import asyncio
import uuid

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe
from kombu.exceptions import OperationalError

from core.health import readiness
from demo import events, runtime
from demo.api import BadInput, is_json, json_object, number_in_range, whole_number_in_range
from demo.models import TaskRun
from demo.tasks import BEAT_TICK_CACHE_KEY, sleep_task

MAX_TASK_SECONDS = 60
# Below gunicorn's 30 s worker timeout, above Docker's 10 s default stop timeout (so a
# graceful-stop test can hold requests past it).
MAX_WAIT_MS = 15_000
# Under ASGI a stream lasts as long as the longest task, and then some.
STREAM_SECONDS = MAX_TASK_SECONDS + 30


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "No task with this id."}, status=404)


@require_safe
async def status_page(request: HttpRequest) -> HttpResponse:
    ready, checks = await sync_to_async(readiness)()
    try:
        beat_last_tick = await cache.aget(BEAT_TICK_CACHE_KEY)
    except Exception:  # noqa: BLE001 - the page shows Redis' state separately
        beat_last_tick = None
    context = {
        "info": runtime.describe(request),
        "checks": checks,
        "ready": ready,
        "beat_last_tick": beat_last_tick,
        "max_task_seconds": MAX_TASK_SECONDS,
    }
    return render(request, "demo/status.html", context)


@require_safe
async def info(request: HttpRequest) -> JsonResponse:
    return JsonResponse(runtime.describe(request))


@require_safe
async def wait(request: HttpRequest) -> JsonResponse:
    """Wait `ms` milliseconds of pure I/O. Under ASGI no thread is held while waiting; under
    WSGI the whole worker is."""
    try:
        milliseconds = whole_number_in_range(request.GET.get("ms", ""), "ms", 0, MAX_WAIT_MS)
    except BadInput as error:
        return error.response()
    await asyncio.sleep(milliseconds / 1000)
    return JsonResponse({"interface": runtime.interface(request), "waited_ms": milliseconds})


# No session or cookie authorises this endpoint, so there is nothing for CSRF to protect and
# API clients need no token. It takes JSON only: a cross-site form or a "simple" fetch() cannot
# send that without a CORS preflight, which this site never grants.
@csrf_exempt
@require_POST
def create_task(request: HttpRequest) -> JsonResponse:
    if not is_json(request):
        return JsonResponse({"error": "Send the body as application/json."}, status=415)
    try:
        payload = json_object(request.body)
        seconds = number_in_range(payload.get("seconds"), "seconds", 0, MAX_TASK_SECONDS)
    except BadInput as error:
        return error.response()

    # Committed before it is enqueued (Django autocommits the INSERT), so the worker always finds
    # the row. With ATOMIC_REQUESTS on, enqueue in transaction.on_commit() instead.
    try:
        run = TaskRun.objects.create(seconds=seconds)
    except DatabaseError:
        return _unavailable("The database is unavailable; try again.")
    try:
        # Waits out a Redis restart (CELERY_TASK_PUBLISH_RETRY_POLICY, about 15 s).
        sleep_task.apply_async((str(run.id),), task_id=str(run.id))
    except OperationalError:
        # No broker, or a full one (it refuses writes rather than drop queued tasks; kombu
        # raises the same error): nothing was queued, so no row may say it was.
        run.delete()
        return _unavailable("The task queue is unavailable; try again.")
    return JsonResponse({"id": str(run.id), "status": run.status}, status=202)


def _unavailable(message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=503)
    response["Retry-After"] = "10"
    return response


def _get_run(task_id: str) -> TaskRun | None:
    try:
        return TaskRun.objects.get(pk=uuid.UUID(task_id))
    except (ValueError, TaskRun.DoesNotExist):
        return None


@require_safe
def task_detail(request: HttpRequest, task_id: str) -> JsonResponse:
    run = _get_run(task_id)
    return JsonResponse(run.as_json()) if run else _not_found()


def _task_state(task_id: str, release_connection: bool) -> dict | None:
    """The task's state, for its event stream.

    With release_connection the database connection is given back at once: Django gives it back
    only when the response ends, so each open stream would hold one of the worker's few pooled
    connections, and a handful of listeners would starve every other request.
    """
    try:
        run = _get_run(task_id)
        if run is None:
            return None
        # The database knows no progress, only whether the run is done (its last published state,
        # with the progress, leaves Redis a minute after it finishes).
        done = run.status == TaskRun.Status.SUCCEEDED
        return run.as_json() | ({"progress": 1.0} if done else {})
    finally:
        if release_connection:
            connection.close()


@require_safe
async def task_events(request: HttpRequest, task_id: str) -> HttpResponse:
    """Server-Sent Events: the task's state now, then, under ASGI, each change until it ends.

    Under WSGI a stream would hold a whole sync worker for its life, and a few listeners would
    take the site down. So a sync deployment answers with the current state and a `retry` hint
    and ends the response: the browser's EventSource reconnects a second later, polling.
    """
    asgi = runtime.interface(request) == "asgi"
    state = await sync_to_async(_task_state)(task_id, release_connection=asgi)
    if state is None:
        return _not_found()
    if asgi and request.method != "HEAD":
        response = StreamingHttpResponse(
            events.stream(state["id"], state, STREAM_SECONDS), content_type="text/event-stream"
        )
    else:
        state = await sync_to_async(events.latest)(state["id"], state)
        response = HttpResponse(events.snapshot(state), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # nginx passes each event on as it comes instead of buffering the response.
    response["X-Accel-Buffering"] = "no"
    return response
