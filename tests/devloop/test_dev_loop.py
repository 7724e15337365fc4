"""Edits in the checkout reach the running dev stack without a rebuild; manage.py commands that
write files write them into the checkout, owned by its owner."""

import time

import httpx
import pytest

from conftest import HOST_UID, LATENCIES, REPO, URL, wait_until

# The edits are made to the demo's view, template, stylesheet and task.
pytestmark = pytest.mark.skipif(
    not (REPO / "app" / "demo").is_dir(),
    reason="the demo app was removed (scripts/init.sh --no-demo): nothing to edit",
)


def served(path: str, text: str):
    return lambda: text in httpx.get(f"{URL}{path}", timeout=5).text


def test_view_edit_is_served_without_a_rebuild(dev_stack):
    web = dev_stack.container_id("web")
    edited = dev_stack.edit(
        "demo/views.py",
        "return JsonResponse(runtime.describe(request))",
        'return JsonResponse(runtime.describe(request) | {"edited": "view"})',
    )
    wait_until(served("/api/info/", '"edited": "view"'), 60, "edited view served")
    LATENCIES["view"] = time.monotonic() - edited
    assert dev_stack.container_id("web") == web, "web was recreated, not reloaded"


def test_template_edit_shows_on_the_next_page_load(dev_stack):
    edited = dev_stack.edit("demo/templates/demo/status.html", "<h1>", '<h1 data-edited="yes">')
    wait_until(served("/", 'data-edited="yes"'), 60, "edited template served")
    LATENCIES["template"] = time.monotonic() - edited


def test_stylesheet_edit_is_served_through_nginx(dev_stack):
    edited = dev_stack.edit("demo/static/demo/status.css", "main {", "/* edited */\nmain {")
    wait_until(served("/static/demo/status.css", "/* edited */"), 60, "edited CSS served")
    LATENCIES["css"] = time.monotonic() - edited
    response = httpx.get(f"{URL}/static/demo/status.css")
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["cache-control"] == "no-cache"


def test_task_edit_runs_in_the_restarted_worker(dev_stack):
    edited = dev_stack.edit(
        "demo/tasks.py", "self.request.hostname,", 'self.request.hostname + " (edited)",'
    )

    def edited_task_ran():
        response = httpx.post(f"{URL}/api/tasks/", json={"seconds": 0}, timeout=5)
        task_id = response.json()["id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            body = httpx.get(f"{URL}/api/tasks/{task_id}/", timeout=5).json()
            if body["status"] == "succeeded":
                return body["result"]["worker"].endswith("(edited)")
            time.sleep(0.1)
        return False

    wait_until(edited_task_ran, 60, "edited task run by the worker", interval=0.2)
    LATENCIES["task"] = time.monotonic() - edited


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


def test_makemigrations_writes_into_the_checkout_as_its_owner(dev_stack):
    result = dev_stack.run(
        "scripts/manage.sh",
        "makemigrations",
        "demo",
        "--empty",
        "--name",
        "dev_loop_check",
        MANAGE_USER=f"{HOST_UID}:{HOST_UID}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    migration = dev_stack.root / "app/demo/migrations/0002_dev_loop_check.py"
    assert migration.is_file(), result.stdout
    assert (migration.stat().st_uid, migration.stat().st_gid) == (HOST_UID, HOST_UID)
