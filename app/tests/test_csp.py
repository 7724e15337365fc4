"""The Content-Security-Policy: DJANGO_CSP_* reach the header; violation reports (core/csp.py)
are logged one WARNING line each, bounded, and the endpoint never answers 5xx."""

import json
import logging

import pytest
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
from django.urls import resolve

from core import csp
from tests.test_settings import run_settings

# The header of a page, as a fresh process with the given variables sends it.
HEADER = """if True:
    import django
    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment
    setup_test_environment()
    response = Client().get("/admin/login/")
    print(response.headers.get("Content-Security-Policy", "-"))
    print(response.headers.get("Content-Security-Policy-Report-Only", "-"))
"""
REPORT = {
    "csp-report": {
        "document-uri": "https://example.com/admin/image/1/change/",
        "referrer": "",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "original-policy": "default-src 'self'; report-uri /csp-report/",
        "disposition": "enforce",
        "blocked-uri": "inline",
        "line-number": 12,
        "source-file": "https://example.com/admin/image/1/change/",
        "status-code": 200,
        "script-sample": "",
    }
}


def directives(header: str) -> dict[str, list[str]]:
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in parts}


def page_policy(**variables: str) -> tuple[dict, dict]:
    result = run_settings(HEADER, DJANGO_SETTINGS_MODULE="config.settings", **variables)
    assert result.returncode == 0, result.stderr
    enforced, report_only = result.stdout.splitlines()
    return directives(enforced.strip("-")), directives(report_only.strip("-"))


def test_a_variable_adds_its_sources_to_the_directive():
    enforced, report_only = page_policy(
        DJANGO_CSP_SCRIPT_SRC="https://cdn.example.com, unsafe-inline",
        DJANGO_CSP_IMG_SRC="https://avatars.example.com,blob:",
        DJANGO_CSP_CONNECT_SRC="'self',https://updates.example.com",
    )
    assert enforced["script-src"] == ["'self'", "https://cdn.example.com", "'unsafe-inline'"]
    assert enforced["img-src"] == ["'self'", "data:", "https://avatars.example.com", "blob:"]
    assert enforced["connect-src"] == ["'self'", "'self'", "https://updates.example.com"]
    assert enforced["default-src"] == ["'self'"]
    assert enforced["report-uri"] == [settings.CSP_REPORT_PATH]
    assert report_only == {}


def test_unset_variables_leave_the_policy_as_it_was():
    enforced, _ = page_policy()
    assert enforced == {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "report-uri": [settings.CSP_REPORT_PATH],
    }


def test_report_only_reports_the_same_policy_without_enforcing_it():
    enforced, report_only = page_policy(DJANGO_CSP_REPORT_ONLY="true")
    assert enforced == {}
    assert report_only["default-src"] == ["'self'"]
    assert report_only["report-uri"] == [settings.CSP_REPORT_PATH]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_CSP_IMG_SRC", "https://ok.example.com;script-src *"),
        ("DJANGO_CSP_SCRIPT_SRC", "https://cdn.example.com unsafe-eval"),
        ("DJANGO_CSP_STYLE_SRC", "'nonce-fixed'"),
        ("DJANGO_CSP_FONT_SRC", "nonce"),
        ("DJANGO_CSP_FRAME_SRC", "none"),
    ],
)
def test_a_bad_source_stops_startup_naming_the_variable(variable, value):
    result = run_settings("import config.settings", **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "is not a CSP source" in result.stderr or "has no place here" in result.stderr


def test_nonce_is_sent_when_a_page_uses_it():
    code = """if True:
        import django
        django.setup()
        from django.conf import settings
        from django.http import HttpResponse
        from django.middleware.csp import ContentSecurityPolicyMiddleware
        from django.template import engines
        from django.test import RequestFactory
        template = engines["django"].from_string('<script nonce="{{ csp_nonce }}"></script>')
        def view(request):
            return HttpResponse(template.render({}, request))
        response = ContentSecurityPolicyMiddleware(view)(RequestFactory().get("/"))
        print(response.content.decode())
        print(response.headers["Content-Security-Policy"])
    """
    result = run_settings(code, DJANGO_SETTINGS_MODULE="config.settings",
                          DJANGO_CSP_SCRIPT_SRC="nonce")  # fmt: skip
    assert result.returncode == 0, result.stderr
    body, header = result.stdout.splitlines()
    nonce = body.split('"')[1]
    assert len(nonce) >= 16
    assert directives(header)["script-src"] == ["'self'", f"'nonce-{nonce}'"]


# The report endpoint.


@pytest.fixture(autouse=True)
def fresh_budget(monkeypatch):
    monkeypatch.setattr(csp, "budget", csp.LogBudget())


@pytest.fixture
def reports(caplog):
    caplog.set_level(logging.INFO, logger="core.csp")

    def logged() -> list[logging.LogRecord]:
        return [record for record in caplog.records if record.name == "core.csp"]

    return logged


def post(body, content_type: str = "application/csp-report", client: Client | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (client or Client()).post(
        settings.CSP_REPORT_PATH, data, content_type=content_type, REMOTE_ADDR="192.0.2.4"
    )


def test_the_header_points_at_the_endpoint():
    assert resolve(settings.CSP_REPORT_PATH).func is csp.report
    header = Client().get("/admin/login/").headers["Content-Security-Policy"]
    assert directives(header)["report-uri"] == [settings.CSP_REPORT_PATH]


def test_a_report_uri_report_is_one_warning_line(reports):
    # As browsers send it: no CSRF token, no cookie.
    response = post(REPORT, client=Client(enforce_csrf_checks=True))
    assert response.status_code == 204
    assert response.content == b""
    [record] = reports()
    assert record.levelno == logging.WARNING
    assert record.event == "csp_violation"
    assert record.effective_directive == "script-src-elem"
    assert record.blocked_uri == "inline"
    assert record.document_uri == REPORT["csp-report"]["document-uri"]
    assert record.line_number == 12
    assert record.client_address == "192.0.2.4"
    assert not hasattr(record, "original_policy")  # only the fields named in core/csp.py


def test_reporting_api_reports_are_one_line_each(reports):
    body = [
        {
            "type": "csp-violation",
            "url": "https://example.com/",
            "body": {
                "documentURL": "https://example.com/",
                "effectiveDirective": "img-src",
                "blockedURL": "https://avatars.example.net/1.png",
                "disposition": "enforce",
            },
        },
        {"type": "deprecation", "body": {"id": "something"}},
        {
            "type": "csp-violation",
            "body": {"effectiveDirective": "connect-src", "blockedURL": "https://x.example"},
        },
    ]
    assert post(body, "application/reports+json").status_code == 204
    assert [(r.effective_directive, r.blocked_uri) for r in reports()] == [
        ("img-src", "https://avatars.example.net/1.png"),
        ("connect-src", "https://x.example"),
    ]


def test_long_fields_are_cut(reports):
    report = {
        "csp-report": {**REPORT["csp-report"], "blocked-uri": "https://x.example/" + "a" * 9000}
    }
    assert post(report).status_code == 204
    assert len(reports()[0].blocked_uri) == csp.MAX_FIELD


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/csp-report", 400),
        (b"\xff\xfe", "application/csp-report", 400),
        (b"[" * 8000 + b"]" * 8000, "application/reports+json", 400),
        (b'{"a": ' * 2000 + b"{}" + b"}" * 2000, "application/csp-report", 400),
        (b"[1, 2]", "application/reports+json", 400),
        (b'"a string"', "application/csp-report", 400),
        (b'{"csp-report": "not an object"}', "application/csp-report", 400),
        (b'[{"type": "csp-violation", "body": 7}]', "application/reports+json", 400),
        (json.dumps(REPORT).encode(), "text/plain", 415),
        (json.dumps(REPORT).encode(), "multipart/form-data; boundary=x", 415),
        (b" " * (csp.MAX_BODY + 1), "application/csp-report", 413),
    ],
)
def test_bad_bodies_get_a_4xx_and_log_nothing(reports, body, content_type, status):
    assert post(body, content_type).status_code == status
    assert reports() == []


def test_only_post():
    assert Client().get(settings.CSP_REPORT_PATH).status_code == 405


def test_a_body_with_many_reports_logs_a_bounded_number(reports):
    body = [{"type": "csp-violation", "body": {"effectiveDirective": "img-src"}}] * 100
    assert post(body, "application/reports+json").status_code == 204
    assert len(reports()) == csp.MAX_REPORTS


@override_settings(CSP_REPORTS_PER_MINUTE=3)
def test_lines_a_minute_are_bounded_and_the_rest_counted(reports):
    statuses = [post(REPORT).status_code for _ in range(10)]
    assert statuses == [204] * 10
    assert len(reports()) == 3
    csp.budget.window -= 61  # the minute is over
    assert post(REPORT).status_code == 204
    dropped = [record for record in reports() if record.event == "csp_reports_dropped"]
    assert [record.dropped for record in dropped] == [7]
    assert len(reports()) == 3 + 2
