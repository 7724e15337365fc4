import json
import math
import uuid

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from demo import runtime
from demo.health import readiness
from demo.models import TaskRun
from demo.tasks import BEAT_TICK_CACHE_KEY, sleep_task

MAX_TASK_SECONDS = 60


@require_GET
def status_page(request: HttpRequest):
    ready, checks = readiness()
    context = {
        "info": runtime.describe(request),
        "checks": checks,
        "ready": ready,
        "beat_last_tick": _beat_last_tick(),
        "max_task_seconds": MAX_TASK_SECONDS,
    }
    return render(request, "demo/status.html", context)


def _beat_last_tick() -> str | None:
    try:
        return cache.get(BEAT_TICK_CACHE_KEY)
    except Exception:  # noqa: BLE001 - the page shows Redis' state separately
        return None


@require_GET
def info(request: HttpRequest) -> JsonResponse:
    return JsonResponse(runtime.describe(request))


def _bad_request(message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=400)


# No session or cookie authorises this endpoint, so there is nothing for CSRF to protect and
# API clients need no token.
@csrf_exempt
@require_POST
def create_task(request: HttpRequest) -> JsonResponse:
    try:
        payload = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
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


@require_GET
def task_detail(request: HttpRequest, task_id: str) -> JsonResponse:
    try:
        run = TaskRun.objects.get(pk=uuid.UUID(task_id))
    except (ValueError, TaskRun.DoesNotExist):
        return JsonResponse({"error": "No task with this id."}, status=404)
    return JsonResponse(run.as_json())
