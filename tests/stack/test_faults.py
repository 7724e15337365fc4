"""Faults the stack survives. Each test breaks something for real, checks what a user would see,
and leaves every service healthy again. scripts/test.sh runs this file last.
"""

import difflib
import json
import os
import re
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from load import Load
from waiting import wait_until

from helpers import (
    HOST,
    PORT,
    STACK_URL,
    admin_login,
    compose,
    container_ids,
    create_superuser,
    inspect,
    log_lines,
    only_once,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.disruptive


def site_load() -> Load:
    """Visitors on /readyz (Django, its database, broker and cache, on every request), straight
    to nginx: on one host it is the edge, with no balancer in front to retry elsewhere."""
    return Load([f"{HOST}:{PORT}"], clients=4, pause=0, timeout=30)


def nginx_has_reached(container_id: str) -> bool:
    """Whether nginx has opened a connection to this web container since it (re)started: its
    network namespace, new at each start, holds one from nginx's address (open, or closed and
    in TIME_WAIT for a minute)."""
    (nginx,) = container_ids("nginx")
    nginx_addresses = {
        network["IPAddress"] for network in inspect(nginx)["NetworkSettings"]["Networks"].values()
    }
    table = subprocess.run(
        ["docker", "exec", container_id, "cat", "/proc/net/tcp"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in table.splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if local.endswith(":1F40") and state != "0A":  # port 8000, not the listening socket
            address = ".".join(str(int(remote[i : i + 2], 16)) for i in (6, 4, 2, 0))
            if address in nginx_addresses:
                return True
    return False


def wait_until_nginx_reaches(container_id: str, timeout: float = 60) -> None:
    """Sends requests through nginx until one of them has reached the container: with no
    traffic of its own the wait would rest on nginx's healthcheck, every 3 s, landing on
    this container or another."""

    def reached() -> bool:
        httpx.get(f"{STACK_URL}/healthz", timeout=10)
        return nginx_has_reached(container_id)

    what = f"nginx sends a request to {container_id[:12]}"
    wait_until(reached, timeout, what, interval=0.5)


def test_rolling_restart_of_two_web_containers_drops_no_request(http):
    wait_healthy("--scale", "web=2", "--no-recreate")
    try:
        first, second = container_ids("web")
        # The procedure: one container at a time, each only once nginx uses the other (nginx
        # asks Docker's DNS every second, so it takes a moment to see a container).
        # /readyz: Django, its database, broker and cache, on every request.
        with site_load() as load:
            for container_id in (first, second):
                wait_until_nginx_reaches(first if container_id == second else second)
                subprocess.run(["docker", "restart", container_id], check=True, capture_output=True)
                wait_until(
                    lambda restarted=container_id: (
                        inspect(restarted)["State"]["Health"]["Status"] == "healthy"
                    ),
                    60,
                    "the restarted web container healthy",
                    interval=0.5,
                )
                wait_until_nginx_reaches(container_id)
        assert load.answered >= 1, "no request was served during the restarts"
        assert load.failures == [], load.summary()
    finally:
        wait_healthy("--scale", "web=1")


def test_scaling_web_down_under_load_drops_no_request(http):
    """A container removed while nginx still has its address (DNS is asked every second):
    nginx's connection to it fails, its list changes meanwhile, and the request is tried once
    more, not answered 502 or 504 (measured before: four of them, each time)."""
    wait_healthy("--scale", "web=2", "--no-recreate")
    try:
        for container_id in container_ids("web"):
            wait_until_nginx_reaches(container_id)
        with site_load() as load:
            load.wait_for_answers(20, "before the scale-down")
            compose("up", "--detach", "--no-build", "--no-recreate", "--scale", "web=1")
            load.wait_for_answers(50, "after the scale-down")
        assert load.failures == [], load.summary()
    finally:
        wait_healthy("--scale", "web=1")


def docker_exec(container_id: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "exec", container_id, *command], capture_output=True, text=True, check=False
    )


def request_inside(container_id: str, path: str) -> str:
    """A request to the container's own gunicorn, bypassing nginx: its status, or the error."""
    code = (
        "import sys, urllib.request\n"
        "try:\n"
        f"    print(urllib.request.urlopen('http://127.0.0.1:8000{path}', timeout=30).status)\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)"
    )
    return docker_exec(container_id, "python", "-c", code).stdout.strip()


def test_a_draining_web_container_serves_on_then_stops(http, monkeypatch):
    """WEB_DRAIN_SECONDS, proven on one host (the Swarm tests prove it where it is set): after
    its SIGTERM a web container accepts and answers requests for that long, then it stops
    cleanly, and nginx goes on serving from the other container. (Requests in flight at the
    signal: test_in_flight_requests_outlast_the_stop_signal_and_finish.)"""
    drain = 6
    monkeypatch.setenv("WEB_DRAIN_SECONDS", str(drain))
    wait_healthy("--scale", "web=2")
    try:
        draining, other = container_ids("web")
        wait_until_nginx_reaches(draining)
        wait_until_nginx_reaches(other)
        with site_load() as load:
            signalled = time.monotonic()
            subprocess.run(["docker", "kill", "--signal", "TERM", draining], check=True)
            # New requests, sent after the signal: answered, not refused, for the whole drain.
            answers = []
            while time.monotonic() - signalled < drain - 2:
                answers.append(request_inside(draining, "/readyz"))
                time.sleep(0.5)
            assert answers, "no request was sent during the drain"
            assert set(answers) == {"200"}, f"requests during the drain: {answers}"
            wait_until(
                lambda: not inspect(draining)["State"]["Running"],
                drain + 30,
                "the draining container stopped",
            )
            state = inspect(draining)["State"]
            assert state["ExitCode"] == 0, state
            assert time.monotonic() - signalled >= drain, "it stopped before its drain ended"
            load.wait_for_answers(20, "after the stop")
        assert load.failures == [], load.summary()
    finally:
        monkeypatch.delenv("WEB_DRAIN_SECONDS")
        wait_healthy("--scale", "web=1")


def test_bad_gateway_is_a_friendly_page_with_retry_after(http):
    compose("stop", "web")
    try:
        response = http.get("/")
        assert response.status_code in (502, 503, 504)
        assert response.headers["retry-after"] == "30"
        assert "Back in a moment" in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
    finally:
        wait_healthy()


def upstream_passes(since: str, request_line: str) -> list[int]:
    """For each request with this request line, how often nginx passed it to Django's upstream
    group: its upstream_time has one entry per pass, " : " between them (an error_page
    redirect starts a new pass; ", " would separate the containers tried within one)."""
    entries = [json.loads(line) for line in log_lines("nginx", since) if line.startswith('{"time"')]
    return [
        len(entry["upstream_time"].split(" : "))
        for entry in entries
        if entry["request"] == request_line
    ]


def test_nginx_tries_a_get_it_could_not_pass_once_more_and_a_post_never(http):
    """With web down: a GET (or HEAD) gets a second try through @django-retry; a POST, which
    must never run twice, gets none. Both end on the friendly page."""
    since = datetime.now(UTC).isoformat()
    marker = uuid.uuid4().hex
    compose("stop", "web")
    try:
        assert http.get(f"/?{marker}").status_code in (502, 504)
        assert http.post(f"/admin/login/?{marker}", data={"x": "1"}).status_code in (502, 504)
    finally:
        wait_healthy()
    assert upstream_passes(since, f"GET /?{marker} HTTP/1.1") == [2]
    assert upstream_passes(since, f"POST /admin/login/?{marker} HTTP/1.1") == [1]


def write_media(name: str, content: str) -> None:
    compose("exec", "-T", "web", "sh", "-c", f"cat > /srv/media/{name}", input_text=content)


@only_once
def test_data_and_media_survive_down_and_up(http):
    username, password = create_superuser("kept")
    write_media("kept.txt", "still here")

    compose("down")
    wait_healthy()

    assert admin_login(username, password), "the user is gone"
    assert http.get("/media/kept.txt").text == "still here"


def database_dump() -> list[str]:
    """The whole database, schema and every row of every table, as pg_dump prints it (without
    the random key of its \\restrict lines)."""
    dump = compose(
        "exec",
        "-T",
        "db",
        "sh",
        "-c",
        'exec pg_dump --no-owner --username="$POSTGRES_USER" "$POSTGRES_DB"',
    ).stdout
    return [
        line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    ]


def media_checksums() -> str:
    listing = "cd /srv/media && find . -type f -exec sha256sum {} + | sort -k 2"
    return compose("exec", "-T", "web", "sh", "-c", listing).stdout


@only_once
def test_backup_then_restore_after_a_wipe_gives_identical_data(http):
    users = [create_superuser("backed-up") for _ in range(3)]
    write_media("backed-up.txt", "in the backup")
    compose(
        "exec",
        "-T",
        "web",
        "sh",
        "-c",
        "mkdir -p '/srv/media/uploads/a b' "
        "&& head -c 100000 /dev/urandom > '/srv/media/uploads/a b/c.bin'",
    )
    before = database_dump(), media_checksums()
    assert "backed-up.txt" in before[1]
    assert "c.bin" in before[1]
    assert sum(line.startswith("COPY ") for line in before[0]) >= 10  # Django's own tables
    with tempfile.TemporaryDirectory() as directory:
        backup = run_script("backup.sh", directory).stdout.strip().splitlines()[-1]

        compose("down", "--volumes")  # the wipe: database, media, secrets, all gone
        wait_healthy()
        assert not admin_login(*users[0]), "the wipe kept the users"
        assert media_checksums() == ""

        run_script("restore.sh", backup)

    after = database_dump(), media_checksums()
    assert after[1] == before[1]
    assert after[0] == before[0], "\n".join(
        list(difflib.unified_diff(before[0], after[0], lineterm="", n=1))[:60]
    )
    assert all(admin_login(*user) for user in users), "a user cannot log in after the restore"
    assert http.get("/media/backed-up.txt").text == "in the backup"


def worker_class() -> str:
    """The worker class gunicorn said it uses when web last started ("sync", "...UvicornWorker")."""
    (container_id,) = container_ids("web")
    started = inspect(container_id)["State"]["StartedAt"]
    lines = [line for line in log_lines("web", started) if "Using worker: " in line]
    assert lines, "gunicorn named no worker class"
    return re.search(r"Using worker: ([\w.]+)", lines[-1])[1]


@only_once
def test_switching_between_wsgi_and_asgi_keeps_the_data(http):
    username, password = create_superuser("switch")
    assert worker_class() == "sync"
    wsgi_files = os.environ["COMPOSE_FILE"]
    asgi_files = wsgi_files.replace("compose.yaml", "compose.asgi.yaml", 1)
    try:
        os.environ["COMPOSE_FILE"] = asgi_files
        wait_healthy()
        assert worker_class().endswith("UvicornWorker")
        assert admin_login(username, password), "the user is gone under ASGI"
    finally:
        os.environ["COMPOSE_FILE"] = wsgi_files
        wait_healthy()
    assert worker_class() == "sync"
    assert admin_login(username, password)


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ROOT / "scripts" / name, *arguments], capture_output=True, text=True, check=True
    )
