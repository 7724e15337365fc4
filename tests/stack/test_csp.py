"""Content-Security-Policy violations reach web's log: from a real browser, and as posted."""

import json
import secrets
from datetime import UTC, datetime

import pytest
from waiting import wait_until

from helpers import STACK_URL, log_lines

pytestmark = pytest.mark.no_5xx

REPORT_PATH = "/csp-report/"


def violations(since: str, marker: str, timeout: float = 30) -> list[dict]:
    """web's csp_violation lines whose document URI carries the marker, once there are any."""

    def found() -> list[dict]:
        entries = [json.loads(line) for line in log_lines("web", since) if line.startswith("{")]
        return [
            entry
            for entry in entries
            if entry.get("event") == "csp_violation" and marker in entry.get("document_uri", "")
        ]

    what = f"a csp_violation line in web's log for {marker}"
    return wait_until(found, timeout, what, interval=0.5)


def test_the_page_header_names_the_report_endpoint(http):
    header = http.get("/admin/login/").headers["content-security-policy"]
    assert f"report-uri {REPORT_PATH}" in header


def test_a_posted_report_is_one_warning_line(http):
    since, marker = datetime.now(UTC).isoformat(), secrets.token_hex(8)
    report = {
        "csp-report": {
            "document-uri": f"{STACK_URL}/?{marker}",
            "effective-directive": "img-src",
            "blocked-uri": "https://avatars.example.com/1.png",
        }
    }
    response = http.post(
        REPORT_PATH, content=json.dumps(report), headers={"Content-Type": "application/csp-report"}
    )
    assert response.status_code == 204
    [entry] = violations(since, marker)
    assert entry["level"] == "WARNING"
    assert entry["blocked_uri"] == "https://avatars.example.com/1.png"


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"x" * 20_000, 413), (b"{", 400), (b"[" * 10_000 + b"]" * 5000, 400)],
)
def test_a_bad_report_is_refused_with_a_4xx(http, body, status):
    response = http.post(
        REPORT_PATH, content=body, headers={"Content-Type": "application/csp-report"}
    )
    assert response.status_code == status


def test_the_browser_reports_an_inline_script_the_policy_blocked(browser):
    """The site has no inline script of its own: the test adds one to a real page as it arrives,
    under the policy Django sent with it. Chromium refuses to run it and reports that to
    report-uri, through nginx, and web logs it."""
    since, marker = datetime.now(UTC).isoformat(), secrets.token_hex(8)
    page_url = f"{STACK_URL}/admin/login/?{marker}"
    context = browser.new_context()
    page = context.new_page()

    def add_inline_script(route):
        response = route.fetch()
        body = response.text().replace("</body>", "<script>document.title = 'ran';</script></body>")
        route.fulfill(response=response, body=body)

    page.route(page_url, add_inline_script)
    page.goto(page_url)
    assert page.title() != "ran", "the inline script ran: the policy did not block it"
    found = violations(since, marker)
    context.close()
    assert found[0]["effective_directive"] == "script-src-elem"
    assert found[0]["blocked_uri"] == "inline"
    assert found[0]["level"] == "WARNING"
