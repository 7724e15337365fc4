"""Edits in the checkout reach the running dev stack without a rebuild; manage.py commands that
write files write them into the checkout, owned by its owner."""

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from waiting import wait_until

from conftest import HOST_UID, LATENCIES, REPO, URL

# The edits are made to the demo's view, template, stylesheet and task.
pytestmark = pytest.mark.skipif(
    not (REPO / "app" / "demo").is_dir(),
    reason="the demo app was removed (scripts/init.sh --no-demo): nothing to edit",
)


# Consecutive answers that must all show an edit: dev web runs several gunicorn workers, each
# reloading by itself, and one left on the old code shows up as a gap in the run.
RUN = 20
# Requests in flight at once while waiting for a run, so that every worker gets some of them.
CONCURRENCY = 4


def wait_for_run(path: str, shows_edit, what: str, timeout: float = 60) -> list[httpx.Response]:
    """RUN consecutive answers to GET path that show the edit (any other answer, or none,
    starts the count again); returns them."""
    run: list[httpx.Response] = []
    with httpx.Client(base_url=URL, timeout=5) as client, ThreadPoolExecutor(CONCURRENCY) as pool:

        def get(_) -> httpx.Response | None:
            try:
                return client.get(path)
            except httpx.HTTPError:  # a worker restarting
                return None

        def a_run_complete() -> bool:
            for response in pool.map(get, range(CONCURRENCY)):
                if response is not None and response.status_code == 200 and shows_edit(response):
                    run.append(response)
                else:
                    run.clear()
            return len(run) >= RUN

        wait_until(a_run_complete, timeout, f"{what}: {RUN} answers in a row showing the edit", 0)
    return run


def web_workers(dev_stack) -> int:
    result = dev_stack.compose("exec", "-T", "web", "printenv", "WEB_CONCURRENCY")
    return int(result.stdout)


def test_view_edit_is_served_by_every_worker_without_a_rebuild(dev_stack):
    web = dev_stack.container_id("web")
    edited = dev_stack.edit(
        "demo/views.py",
        "return JsonResponse(runtime.describe(request))",
        # The worker's pid tells which worker answered.
        'return JsonResponse(runtime.describe(request) | {"edited": "view",'
        ' "pid": __import__("os").getpid()})',
    )
    run = wait_for_run("/api/info/", lambda r: r.json().get("edited") == "view", "view")
    LATENCIES["view"] = time.monotonic() - edited
    workers = web_workers(dev_stack)
    assert len({response.json()["pid"] for response in run}) == workers, (
        f"{RUN} edited answers, not from all {workers} workers"
    )
    assert dev_stack.container_id("web") == web, "web was recreated, not reloaded"


def test_template_edit_shows_on_the_next_page_load(dev_stack):
    web = dev_stack.container_id("web")
    edited = dev_stack.edit("demo/templates/demo/status.html", "<h1>", '<h1 data-edited="yes">')
    wait_for_run("/", lambda r: 'data-edited="yes"' in r.text, "template")
    LATENCIES["template"] = time.monotonic() - edited
    assert dev_stack.container_id("web") == web, "web was recreated"


def test_stylesheet_edit_is_served_through_nginx(dev_stack):
    web, nginx = dev_stack.container_id("web"), dev_stack.container_id("nginx")
    edited = dev_stack.edit("demo/static/demo/status.css", "main {", "/* edited */\nmain {")
    run = wait_for_run("/static/demo/status.css", lambda r: "/* edited */" in r.text, "css")
    LATENCIES["css"] = time.monotonic() - edited
    assert run[-1].headers["content-type"].startswith("text/css")
    assert run[-1].headers["cache-control"] == "no-cache"
    assert (dev_stack.container_id("web"), dev_stack.container_id("nginx")) == (web, nginx)


def run_task(timeout: float = 10) -> str | None:
    """The name of the worker that ran a new instant task (ends with " (edited)" once edited),
    or None if it did not run within timeout (the worker restarting)."""
    task_id = httpx.post(f"{URL}/api/tasks/", json={"seconds": 0}, timeout=5).json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{URL}/api/tasks/{task_id}/", timeout=5).json()
        if body["status"] == "succeeded":
            return body["result"]["worker"]
        time.sleep(0.1)
    return None


def test_task_edit_runs_in_the_restarted_worker(dev_stack):
    worker = dev_stack.container_id("worker")
    edited = dev_stack.edit(
        "demo/tasks.py", "self.request.hostname,", 'self.request.hostname + " (edited)",'
    )
    wait_until(
        lambda: (name := run_task()) and name.endswith("(edited)"),
        90,
        "edited task run",
        interval=0.05,
        not_yet=(httpx.HTTPError,),
    )
    LATENCIES["task"] = time.monotonic() - edited
    # Then every task, on whichever of the worker's processes.
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        names = list(pool.map(lambda _: run_task(), range(RUN)))
    assert all(name and name.endswith("(edited)") for name in names), names
    assert dev_stack.container_id("worker") == worker, "the worker was recreated, not restarted"


def test_debug_toolbar_and_debug_mode(dev_stack):
    page = httpx.get(f"{URL}/").text
    assert 'id="djDebug"' in page
    # Debug mode's 404 page lists the URL patterns.
    assert "Using the URLconf defined in" in httpx.get(f"{URL}/no-such-page/").text


def test_mail_is_written_to_the_log(dev_stack):
    result = dev_stack.compose(
        "exec", "-T", "web", "python", "manage.py", "sendtestemail", "dev@example.com"
    )
    assert "To: dev@example.com" in result.stdout
    assert "Subject: Test email from" in result.stdout


def docker_socket_group() -> list[int]:
    """The group that may use the Docker engine's socket, if it is one."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    socket = Path(host.removeprefix("unix://"))
    if host.startswith("unix://") and socket.exists():
        return [socket.stat().st_gid]
    return []


def test_makemigrations_writes_into_the_checkout_as_its_owner(dev_stack):
    """Run by the checkout's owner, as is, with no MANAGE_USER (the default, not the option)."""
    home = Path(tempfile.mkdtemp(prefix="dev-loop-home-"))
    os.chown(home, HOST_UID, HOST_UID)
    environment = {
        name: value for name, value in dev_stack.environment.items() if name != "MANAGE_USER"
    } | {"HOME": str(home)}
    manage = ["scripts/manage.sh", "makemigrations", "demo", "--empty", "--name", "dev_loop_check"]
    try:
        # The owner is not root: may use Docker (the socket's group), nothing more.
        result = subprocess.run(
            manage,
            user=HOST_UID,
            group=HOST_UID,
            extra_groups=docker_socket_group(),
            cwd=dev_stack.root,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # Numbered after the demo's own migrations, whatever their count.
    written = list((dev_stack.root / "app/demo/migrations").glob("*_dev_loop_check.py"))
    assert len(written) == 1, result.stdout[-2000:]
    (migration,) = written
    assert (migration.stat().st_uid, migration.stat().st_gid) == (HOST_UID, HOST_UID)
