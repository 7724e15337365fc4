"""Stack tests: run against a stack that scripts/smoke.sh --keep started (scripts/test.sh does).

They talk to it as a user would, through nginx's published port, and use `docker compose` for
what only an operator can see.

Markers: in a module marked `no_5xx`, no request may get a 5xx from nginx (its access log is read
when the module ends); `disruptive` modules break the stack on purpose and run last.
"""

import json
import os
import shutil
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import sync_playwright

from helpers import STACK_URL, log_lines


def pytest_configure(config):
    config.addinivalue_line("markers", "no_5xx: no request of the module may get a 5xx")
    config.addinivalue_line("markers", "disruptive: breaks the stack on purpose; runs last")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: "disruptive" in item.keywords)  # stable: file order otherwise


@pytest.fixture(scope="session")
def http():
    with httpx.Client(base_url=STACK_URL, timeout=10) as client:
        yield client


def server_errors(since: str) -> list[dict]:
    """The requests nginx answered with a 5xx since the given time (RFC 3339)."""
    lines = log_lines("nginx", since)
    entries = [json.loads(line) for line in lines if line.startswith('{"time"')]
    return [entry for entry in entries if entry["status"] >= 500]


@pytest.fixture(autouse=True, scope="module")
def no_server_errors(request):
    if not request.node.get_closest_marker("no_5xx"):
        yield
        return
    since = datetime.now(UTC).isoformat()
    yield
    errors = server_errors(since)
    assert not errors, f"{len(errors)} requests got a 5xx from nginx: {errors[:5]}"


# The browser tests' Chromium (test_browser.py, test_csp.py): Debian's `chromium`, or Chrome on
# GitHub's runners; Playwright drives it and never downloads one. Without one they are skipped,
# unless STACK_REQUIRE_BROWSER is set (.ci/run and the GitHub workflow set it): then they fail.
CANDIDATES = (
    "/usr/lib/chromium/chromium",  # Debian's binary, without its wrapper script
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    if path := os.environ.get("CHROMIUM_PATH"):
        return path
    for candidate in CANDIDATES:
        if os.path.isabs(candidate) and os.access(candidate, os.X_OK):
            return candidate
        if not os.path.isabs(candidate) and (found := shutil.which(candidate)):
            return found
    return None


# Per module, as before: Playwright's sync API keeps an event loop running in this thread
# while its browser is open, and later modules may call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    path = find_chromium()
    if path is None:
        if os.environ.get("STACK_REQUIRE_BROWSER"):
            pytest.fail("STACK_REQUIRE_BROWSER is set, but no Chromium was found")
        pytest.skip("no Chromium found: apt-get install chromium (or set CHROMIUM_PATH)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Collects Content-Security-Policy violations, which a page can observe, before any script runs.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def page(browser):
    context = browser.new_context(base_url=STACK_URL)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"console: {message.text}"),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield page
    violations = page.evaluate("window.__cspViolations || []")
    context.close()
    assert not problems, problems
    assert not violations, f"CSP violations: {violations}"
