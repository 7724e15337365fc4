"""The demo's status page in a real browser (headless Chromium, through nginx)."""

import pytest
from waiting import wait_for

from helpers import computed

pytestmark = pytest.mark.no_5xx


def test_status_page_is_styled_and_every_check_is_ok(page):
    def checks() -> list[tuple[str, str]]:
        page.goto("/")
        # The Celery round trip runs from the page's script; beat's tick is rendered.
        # Locators, not wait_for_function: that evaluates a string, which the page's CSP
        # (no 'unsafe-eval') rightly refuses.
        page.locator("#celery-check:not(.pending)").wait_for(timeout=30_000)
        return page.eval_on_selector_all(
            ".checks li", "items => items.map(item => [item.dataset.check, item.className])"
        )

    states = wait_for(
        checks,
        lambda seen: all(state == "ok" for _, state in seen),
        60,
        "every check ok",
        interval=1,
    )
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
