"""Faults the stack survives. Each test breaks something for real, checks what a user would see,
and leaves every service healthy again. scripts/test.sh runs this file last.

The stack under test runs with CELERY_VISIBILITY_TIMEOUT=20 (scripts/test.sh), so tasks taken by
a killed worker come back within seconds instead of the production default's minutes.
"""

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from helpers import (
    STACK_URL,
    VARIANT,
    compose,
    containers,
    enqueue,
    inspect,
    wait_for_task,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parents[2]
NGINX_RESOLVE_SECONDS = 4  # nginx asks Docker's DNS for web's addresses every 2 s
only_once = pytest.mark.skipif(
    VARIANT != "wsgi", reason="independent of the web server: run with the WSGI stack only"
)


def container_ids(service: str) -> list[str]:
    return [c["ID"] for c in containers() if c["Service"] == service and c["State"] == "running"]


def started_at(service: str) -> set[str]:
    return {inspect(container_id)["State"]["StartedAt"] for container_id in container_ids(service)}


class Load:
    """Background clients sending GETs through nginx, counting every answer that is not a 200."""

    def __init__(self, path: str, clients: int = 4) -> None:
        self.path, self.stop = path, threading.Event()
        self.ok, self.failures = 0, []
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=STACK_URL, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    status = client.get(self.path).status_code
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(status)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


@only_once
def test_tasks_survive_a_worker_killed_mid_task(http):
    ids = [enqueue(http, 2) for _ in range(6)]
    deadline = time.monotonic() + 20
    while all(http.get(f"/api/tasks/{i}/").json()["status"] == "queued" for i in ids):
        assert time.monotonic() < deadline, "no task started"
        time.sleep(0.2)

    # SIGKILL from outside, as the kernel's OOM killer would: Docker's restart policy applies.
    (worker,) = container_ids("worker")
    pid = inspect(worker)["State"]["Pid"]
    subprocess.run(["kill", "-KILL", str(pid)], check=True)

    results = [wait_for_task(http, task_id, timeout=90) for task_id in ids]
    assert all(result["status"] == "succeeded" for result in results)
    assert inspect(worker)["RestartCount"] >= 1
    wait_healthy()


@only_once
def test_tasks_survive_a_redis_restart_during_a_burst(http):
    accepted: list[str] = []

    def burst() -> None:
        with httpx.Client(base_url=STACK_URL, timeout=60) as client:
            for _ in range(30):
                accepted.append(enqueue(client, 0.1))

    sender = threading.Thread(target=burst)
    sender.start()
    compose("restart", "redis")
    sender.join()

    assert len(accepted) == 30
    for task_id in accepted:
        wait_for_task(http, task_id, timeout=90)
    wait_healthy()


def test_readiness_names_the_database_while_it_is_down_and_recovers(http):
    before = started_at("web") | started_at("worker")
    compose("stop", "db")
    try:
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"].startswith("error")
        assert response.json()["checks"]["redis"] == "ok"
    finally:
        compose("start", "db")
    wait_healthy()

    deadline = time.monotonic() + 20
    while http.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready again 20 s after the database came back"
        time.sleep(0.5)
    wait_for_task(http, enqueue(http, 0))
    assert started_at("web") | started_at("worker") == before, "web or worker was restarted"


def test_in_flight_requests_finish_when_web_is_stopped():
    results: list[int] = []

    def slow_request() -> None:
        results.append(httpx.get(f"{STACK_URL}/api/wait/?ms=3000", timeout=30).status_code)

    requests = [threading.Thread(target=slow_request) for _ in range(4)]
    for request in requests:
        request.start()
    time.sleep(1)
    compose("stop", "web")  # SIGTERM to gunicorn, then up to stop_grace_period
    for request in requests:
        request.join()
    wait_healthy()
    assert results == [200] * 4


def test_rolling_restart_of_two_web_containers_drops_no_request(http):
    task_id = enqueue(http, 0)
    wait_for_task(http, task_id)
    wait_healthy("--scale", "web=2", "--no-recreate")
    # The procedure: one container at a time, and after each (and after scaling) give nginx a
    # DNS refresh (every 2 s) to see the current set of web containers.
    time.sleep(NGINX_RESOLVE_SECONDS)
    try:
        first, second = container_ids("web")
        with Load(f"/api/tasks/{task_id}/") as load:
            for container_id in (first, second):
                subprocess.run(["docker", "restart", container_id], check=True, capture_output=True)
                deadline = time.monotonic() + 60
                while inspect(container_id)["State"]["Health"]["Status"] != "healthy":
                    assert time.monotonic() < deadline, "restarted web container never healthy"
                    time.sleep(0.5)
                time.sleep(NGINX_RESOLVE_SECONDS)
        assert load.ok > 50
        assert load.failures == []
    finally:
        wait_healthy("--scale", "web=1")


def test_bad_gateway_is_a_friendly_page_with_retry_after(http):
    compose("stop", "web")
    try:
        response = http.get("/")
        assert response.status_code in (502, 503, 504)
        assert response.headers["retry-after"] == "30"
        assert "Back in a moment" in response.text
    finally:
        wait_healthy()


def write_media(name: str, content: str) -> None:
    compose("exec", "-T", "web", "sh", "-c", f"cat > /srv/media/{name}", input_text=content)


@only_once
def test_data_and_media_survive_down_and_up(http):
    task = wait_for_task(http, enqueue(http, 0))
    write_media("kept.txt", "still here")

    compose("down")
    wait_healthy()

    assert http.get(f"/api/tasks/{task['id']}/").json() == task
    assert http.get("/media/kept.txt").text == "still here"


@only_once
def test_backup_then_restore_after_a_wipe_gives_identical_data(http):
    tasks = [wait_for_task(http, enqueue(http, 0)) for _ in range(3)]
    write_media("backed-up.txt", "in the backup")
    with tempfile.TemporaryDirectory() as directory:
        backup = run_script("backup.sh", directory).stdout.strip().splitlines()[-1]

        compose("down", "--volumes")  # the wipe: database, media, secrets, all gone
        wait_healthy()
        assert http.get(f"/api/tasks/{tasks[0]['id']}/").status_code == 404

        run_script("restore.sh", backup)

    assert [http.get(f"/api/tasks/{task['id']}/").json() for task in tasks] == tasks
    assert http.get("/media/backed-up.txt").text == "in the backup"


@only_once
def test_switching_between_wsgi_and_asgi_keeps_the_data(http):
    task = wait_for_task(http, enqueue(http, 0))
    wsgi_files = os.environ["COMPOSE_FILE"]
    asgi_files = wsgi_files.replace("compose.yaml", "compose.asgi.yaml", 1)
    try:
        os.environ["COMPOSE_FILE"] = asgi_files
        wait_healthy()
        assert http.get("/api/info/").json()["interface"] == "asgi"
        assert http.get(f"/api/tasks/{task['id']}/").json() == task
    finally:
        os.environ["COMPOSE_FILE"] = wsgi_files
        wait_healthy()
    assert http.get("/api/info/").json()["interface"] == "wsgi"


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ROOT / "scripts" / name, *arguments], capture_output=True, text=True, check=True
    )
