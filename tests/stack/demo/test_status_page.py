"""The demo's status page, info and task API, through nginx."""

import re
import uuid

from demo_tasks import wait_for_task
from waiting import wait_until

from helpers import VARIANT


def test_status_page_shows_the_stack_and_its_checks(http):
    page = http.get("/").text
    assert "Django stack" in page
    assert f">{VARIANT}<" in page
    for check in ("database", "redis", "cache", "migrations"):
        assert re.search(rf'class="ok" data-check="{check}"', page), check


def test_info_reports_the_running_server(http):
    info = http.get("/api/info/").json()
    assert info["interface"] == VARIANT
    assert info["server"].startswith("gunicorn ")
    # The public names users configure and read about, not private module paths.
    expected = {"wsgi": "gunicorn.workers.sync.SyncWorker", "asgi": "uvicorn_worker.UvicornWorker"}
    assert info["worker_class"] == expected[VARIANT]
    assert info["scheme"] == "http"
    assert info["python"].startswith("3.13.")


def test_tasks_run_on_the_workers_and_are_recorded(http):
    created = [http.post("/api/tasks/", json={"seconds": 1}) for _ in range(4)]
    assert all(response.status_code == 202 for response in created)
    ids = [response.json()["id"] for response in created]
    results = [wait_for_task(http, task_id)["result"] for task_id in ids]
    assert all(result["worker"].startswith("celery@") for result in results)
    assert all(result["seconds"] == 1 for result in results)


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


def test_beat_runs_its_periodic_task(http):
    wait_until(
        lambda: 'data-check="beat"' in (page := http.get("/").text) and "last tick" in page,
        60,
        "beat's periodic task ran",
        interval=2,
    )
