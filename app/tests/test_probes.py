"""The probes every project keeps (core/health.py): /healthz and /readyz."""

import json
import os
import subprocess
import sys

import pytest
from asgiref.sync import iscoroutinefunction
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

from core import health
from core.health import HealthCheckMiddleware

pytestmark = pytest.mark.django_db


def test_healthz_answers_whatever_the_host(client):
    response = client.get("/healthz", HTTP_HOST="not-an-allowed-host.example")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "redis": "ok",
        "cache": "ok",
        "migrations": "ok",
    }


def test_readyz_is_503_naming_the_cache_when_the_cache_server_is_unreachable(client):
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
    assert body["checks"]["cache"].startswith("error")
    assert body["checks"]["database"] == body["checks"]["redis"] == "ok"


def test_readyz_is_503_naming_redis_when_the_broker_is_unreachable(client):
    """The cache answering says nothing about the broker: they are different servers."""
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["database"] == body["checks"]["cache"] == "ok"


def test_readyz_is_503_naming_migrations_when_one_is_pending(client, monkeypatch):
    # A fresh process has not yet seen every migration applied (it remembers a success).
    monkeypatch.setattr(health, "_migrations_applied", False)
    # The test's transaction forgets that a migration of a kept app ran; rolled back afterwards.
    last = MigrationRecorder.Migration.objects.filter(app="sessions").latest("id")
    last.delete()

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["migrations"].startswith("error")
    assert body["checks"]["database"] == body["checks"]["redis"] == body["checks"]["cache"] == "ok"
    assert not health._migrations_applied


def test_probes_answer_plain_http_when_https_redirects_everything_else():
    """With DJANGO_HTTPS=true, Django redirects http:// to https://; the container's own
    healthcheck (plain http, no X-Forwarded-Proto) must still get its answer, not a 301."""
    code = """if True:
        import json, django
        django.setup()
        from django.test import Client
        client = Client(HTTP_HOST="localhost")
        paths = ("/healthz", "/readyz", "/")
        print(json.dumps({path: client.get(path).status_code for path in paths}))
    """
    environment = {**os.environ, "DJANGO_HTTPS": "true"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout.splitlines()[-1])
    assert statuses["/"] == 301, statuses  # the redirect is on
    assert statuses["/healthz"] == 200
    assert statuses["/readyz"] in (200, 503)  # answered by the probe, whatever the state


def test_unknown_host_gets_400(client):
    assert client.get("/", HTTP_HOST="evil.example").status_code == 400


def test_probe_middleware_keeps_an_async_chain_async():
    """A sync-only middleware would push every ASGI request, async views included, into a thread."""

    async def downstream(request):
        return None

    middleware = HealthCheckMiddleware(downstream)
    assert iscoroutinefunction(middleware)
    assert not iscoroutinefunction(HealthCheckMiddleware(lambda request: None))
