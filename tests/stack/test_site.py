"""What a visitor sees through nginx."""

import re
import time
import uuid

import pytest

from helpers import VARIANT, wait_for_task

demo = pytest.mark.demo


def hashed_asset(page: str, pattern: str) -> str:
    match = re.search(pattern, page)
    assert match, f"no {pattern} in the page"
    return match.group(0)


@demo
def test_status_page_shows_the_stack_and_its_checks(http):
    page = http.get("/").text
    assert "Django stack" in page
    assert f">{VARIANT}<" in page
    for check in ("database", "redis", "cache", "migrations"):
        assert re.search(rf'class="ok" data-check="{check}"', page), check


@demo
def test_hashed_static_files_are_cached_for_ever_and_compressed(http):
    css = hashed_asset(http.get("/").text, r"/static/demo/status\.[0-9a-f]{12}\.css")
    response = http.get(css, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    assert "--ok" in response.text  # decompressed: really our stylesheet


@demo
def test_unhashed_static_names_are_not_cached_for_ever(http):
    response = http.get("/static/demo/status.css")
    assert response.status_code == 200
    assert "immutable" not in response.headers.get("cache-control", "")


def test_admin_styles_are_served_by_nginx(http):
    css = hashed_asset(http.get("/admin/login/").text, r"/static/admin/css/base\.[0-9a-f]{12}\.css")
    response = http.get(css)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    # Served from the file by nginx (ETag), not through Django (which adds its COOP header).
    assert "etag" in response.headers
    assert "cross-origin-opener-policy" not in response.headers


def test_favicon_is_served_by_nginx_with_a_long_cache(http):
    response = http.get("/favicon.ico")
    assert response.status_code == 200
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age=31536000" in response.headers["cache-control"]
    assert "etag" in response.headers  # from the file, by nginx


def test_probes(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "redis": "ok",
        "cache": "ok",
        "migrations": "ok",
    }


@demo
def test_info_reports_the_running_server(http):
    info = http.get("/api/info/").json()
    assert info["interface"] == VARIANT
    assert info["server"].startswith("gunicorn ")
    # The public names users configure and read about, not private module paths.
    expected = {"wsgi": "gunicorn.workers.sync.SyncWorker", "asgi": "uvicorn_worker.UvicornWorker"}
    assert info["worker_class"] == expected[VARIANT]
    assert info["scheme"] == "http"
    assert info["python"].startswith("3.13.")


@demo
def test_tasks_run_on_the_workers_and_are_recorded(http):
    created = [http.post("/api/tasks/", json={"seconds": 1}) for _ in range(4)]
    assert all(response.status_code == 202 for response in created)
    ids = [response.json()["id"] for response in created]
    results = [wait_for_task(http, task_id)["result"] for task_id in ids]
    assert all(result["worker"].startswith("celery@") for result in results)
    assert all(result["seconds"] == 1 for result in results)


@demo
def test_bad_task_requests_get_clear_4xx(http):
    bad = http.post("/api/tasks/", json={"seconds": "soon"})
    assert bad.status_code == 400
    assert bad.json()["field"] == "seconds"
    not_json = http.post(
        "/api/tasks/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert http.get(f"/api/tasks/{uuid.uuid4()}/").status_code == 404
    assert http.delete("/api/tasks/").status_code == 405


@demo
def test_beat_runs_its_periodic_task(http):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if 'data-check="beat"' in (page := http.get("/").text) and "last tick" in page:
            return
        time.sleep(2)
    raise AssertionError("beat's periodic task never ran")
