"""The probes every project keeps (core/health.py): /healthz and /readyz."""

import pytest
from asgiref.sync import iscoroutinefunction
from django.test import override_settings

from core.health import HealthCheckMiddleware

pytestmark = pytest.mark.django_db


def test_healthz_answers_whatever_the_host(client):
    response = client.get("/healthz", HTTP_HOST="not-an-allowed-host.example")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok"}


def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client):
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/1",
        }
    }
    with override_settings(CACHES=unreachable):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["database"] == "ok"


def test_unknown_host_gets_400(client):
    assert client.get("/", HTTP_HOST="evil.example").status_code == 400


def test_probe_middleware_keeps_an_async_chain_async():
    """A sync-only middleware would push every ASGI request, async views included, into a thread."""

    async def downstream(request):
        return None

    middleware = HealthCheckMiddleware(downstream)
    assert iscoroutinefunction(middleware)
    assert not iscoroutinefunction(HealthCheckMiddleware(lambda request: None))
