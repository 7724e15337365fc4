"""A real browser: headless Chromium, driven by Playwright, loads the site through nginx.

Playwright only drives a Chromium that is already installed (Debian's `chromium`, or Chrome on
GitHub's runners); it never downloads one. Without a Chromium the module is skipped, unless
STACK_REQUIRE_BROWSER is set (.ci/run and the GitHub workflow set it): then it fails.
"""

import pytest

from helpers import computed, create_superuser

pytestmark = pytest.mark.no_5xx


def test_admin_login_through_the_form_is_styled(page):
    username, password = create_superuser("browser")
    page.goto("/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("text=Site administration")
    # The admin's stylesheet is applied: its header has a background colour.
    assert computed(page, "#header", "backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
