"""Probes for Docker and load balancers, answered before any other middleware.

/healthz: liveness, the process serves requests; touches nothing else.
/readyz: readiness, Postgres and Redis answer and every migration is applied; otherwise 503
naming the part that failed.
"""

from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
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
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            ready, checks = readiness()
            status = "ok" if ready else "unavailable"
            return JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
        return self.get_response(request)
