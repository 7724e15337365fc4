import asyncio
import json
import math
import uuid

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from core import runtime
from core.health import readiness
from demo import events
from demo.models import TaskRun
from demo.tasks import BEAT_TICK_CACHE_KEY, sleep_task

MAX_TASK_SECONDS = 60
MAX_WAIT_MS = 10_000
# A sync worker is killed after gunicorn's timeout (30 s): end the stream before that and let
# the browser reconnect. Under ASGI a stream can last as long as the longest task.
WSGI_STREAM_SECONDS = 20
ASGI_STREAM_SECONDS = MAX_TASK_SECONDS + 30


def _bad_request(message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=400)


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "No task with this id."}, status=404)


@require_GET
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


@require_GET
async def info(request: HttpRequest) -> JsonResponse:
    return JsonResponse(runtime.describe(request))


@require_GET
async def wait(request: HttpRequest) -> JsonResponse:
    """Wait `ms` milliseconds of pure I/O. Under ASGI no thread is held while waiting; under
    WSGI the whole worker is, which is what the benchmark shows."""
    raw = request.GET.get("ms", "")
    if not raw.isdecimal() or not 0 <= int(raw) <= MAX_WAIT_MS:
        return _bad_request(f"ms must be a whole number from 0 to {MAX_WAIT_MS}.", "ms")
    milliseconds = int(raw)
    await asyncio.sleep(milliseconds / 1000)
    return JsonResponse({"interface": runtime.interface(request), "waited_ms": milliseconds})


# No session or cookie authorises this endpoint, so there is nothing for CSRF to protect and
# API clients need no token.
@csrf_exempt
@require_POST
def create_task(request: HttpRequest) -> JsonResponse:
    try:
        payload = json.loads(request.body)
    # RecursionError: a hostile body nested thousands of levels deep.
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return _bad_request("The body must be a JSON object.")
    if not isinstance(payload, dict):
        return _bad_request("The body must be a JSON object.")
    seconds = payload.get("seconds")
    # bool is an int in Python; true/false are not durations.
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
        or not 0 <= seconds <= MAX_TASK_SECONDS
    ):
        return _bad_request(f"seconds must be a number from 0 to {MAX_TASK_SECONDS}.", "seconds")

    run = TaskRun.objects.create(seconds=seconds)
    # Enqueue only once the row is committed, so the worker always finds it.
    transaction.on_commit(lambda: sleep_task.apply_async((str(run.id),), task_id=str(run.id)))
    return JsonResponse({"id": str(run.id), "status": run.status}, status=202)


def _get_run(task_id: str) -> TaskRun | None:
    try:
        return TaskRun.objects.get(pk=uuid.UUID(task_id))
    except (ValueError, TaskRun.DoesNotExist):
        return None


@require_GET
def task_detail(request: HttpRequest, task_id: str) -> JsonResponse:
    run = _get_run(task_id)
    return JsonResponse(run.as_json()) if run else _not_found()


@require_GET
def task_events(request: HttpRequest, task_id: str) -> HttpResponse:
    """Server-Sent Events: the task's state now, then each change until it finishes."""
    run = _get_run(task_id)
    if run is None:
        return _not_found()
    if runtime.interface(request) == "asgi":
        body = events.stream(str(run.id), run.as_json(), ASGI_STREAM_SECONDS)
    else:
        body = events.stream_sync(str(run.id), run.as_json(), WSGI_STREAM_SECONDS)
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # nginx passes each event on as it comes instead of buffering the response.
    response["X-Accel-Buffering"] = "no"
    return response
