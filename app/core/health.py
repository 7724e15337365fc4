"""Probes for Docker and load balancers, answered before any other middleware.

/healthz: liveness, the process serves requests; touches nothing else.
/readyz: readiness, Postgres, Celery's broker and the cache answer and every migration is
applied; otherwise 503 naming the part that failed.
"""

from collections.abc import Callable
from functools import cache as memoize

import redis
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@memoize
def _broker(url: str) -> redis.Redis:
    # One client (and its connection pool) per process and broker URL, not a connection per probe.
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def check_redis() -> None:
    """Celery's broker: without it no task can be enqueued."""
    _broker(settings.CELERY_BROKER_URL).ping()


def check_cache() -> None:
    cache.get("readyz-probe")


_migrations_applied = False


def check_migrations() -> None:
    # Migrations are not un-applied under a running site, so one success per process is enough.
    global _migrations_applied
    if _migrations_applied:
        return
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise RuntimeError(f"{len(pending)} migration(s) not applied")
    _migrations_applied = True


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "cache": check_cache,
    "migrations": check_migrations,
}


def readiness() -> tuple[bool, dict[str, str]]:
    results = {}
    for name, check in READINESS_CHECKS.items():
        if name == "migrations" and results["database"] != "ok":
            results[name] = "unknown: no database"  # asking would only wait for it again
            continue
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            results[name] = f"error: {type(error).__name__}"
    return all(result == "ok" for result in results.values()), results


class HealthCheckMiddleware:
    """Answers the probes itself. Works in both modes, so that under ASGI the rest of the
    middleware chain and async views stay on the event loop (a sync-only middleware would push
    every request into a thread)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        if request.path == "/healthz":
            return _alive()
        if request.path == "/readyz":
            return _ready()
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return _alive()
        if request.path == "/readyz":
            # The checks use Django's sync database and cache APIs: run them in a thread.
            return await sync_to_async(_ready)()
        return await self.get_response(request)


def _alive() -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _ready() -> JsonResponse:
    ready, checks = readiness()
    status = "ok" if ready else "unavailable"
    return JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
