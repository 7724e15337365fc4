"""A real browser: headless Chromium, driven by Playwright, loads the site through nginx.

Playwright only drives a Chromium that is already installed (Debian's `chromium`, or Chrome on
GitHub's runners); it never downloads one. Without a Chromium the module is skipped, unless
STACK_REQUIRE_BROWSER is set (.ci/run and the GitHub workflow set it): then it fails.
"""

import time

import pytest

from helpers import STACK_URL, create_superuser

pytestmark = [pytest.mark.demo, pytest.mark.no_5xx]

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


def computed(page, selector: str, prop: str) -> str:
    return page.evaluate(
        "([selector, prop]) => getComputedStyle(document.querySelector(selector))[prop]",
        [selector, prop],
    )


def test_status_page_is_styled_and_every_check_is_ok(page):
    deadline = time.monotonic() + 60
    while True:
        page.goto("/")
        # The Celery round trip runs from the page's script; beat's tick is rendered.
        # Locators, not wait_for_function: that evaluates a string, which the page's CSP
        # (no 'unsafe-eval') rightly refuses.
        page.locator("#celery-check:not(.pending)").wait_for(timeout=30_000)
        states = page.eval_on_selector_all(
            ".checks li", "items => items.map(item => [item.dataset.check, item.className])"
        )
        if all(state == "ok" for _, state in states):
            break
        assert time.monotonic() < deadline, f"checks not all ok: {states}"
        time.sleep(1)
    assert {name for name, _ in states} >= {"database", "redis", "celery", "beat"}
    # status.css is applied: the page's card has its white background and rounded corners.
    assert computed(page, "main", "borderTopLeftRadius") == "12px"
    assert computed(page, "main", "backgroundColor") == "rgb(255, 255, 255)"


def test_task_form_enqueues_a_task_that_succeeds(page):
    page.goto("/")
    page.fill("#task-form input[name=seconds]", "0.5")
    page.click("#task-form button[type=submit]")
    page.locator("#task-output", has_text='"succeeded"').wait_for(timeout=30_000)
    assert '"worker": "celery@' in page.text_content("#task-output")


def test_admin_login_through_the_form_is_styled(page):
    username, password = create_superuser("browser")
    page.goto("/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("text=Site administration")
    # The admin's stylesheet is applied: its header has a background colour.
    assert computed(page, "#header", "backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
