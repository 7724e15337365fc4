"""Where browsers report what the Content-Security-Policy blocked (SECURE_CSP's report-uri).

Each violation becomes one WARNING line, so a policy that breaks a page shows in the logs
instead of failing silently. Anyone can post here, so what comes in is bounded: the body
(MAX_BODY bytes), the reports a body may carry (MAX_REPORTS), the fields kept and their length,
and the lines a process logs a minute (settings.CSP_REPORTS_PER_MINUTE; the rest are counted in
one line when the minute is over). The answer is always empty: nothing is sent back or on.
"""

import json
import logging
import threading
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

log = logging.getLogger("core.csp")

# One report is well under 2 KB; Chrome batches a few in one body (application/reports+json).
MAX_BODY = 16 * 1024
MAX_REPORTS = 20
MAX_FIELD = 500
# report-uri sends application/csp-report, the Reporting API (report-to) application/reports+json.
CONTENT_TYPES = {"application/csp-report", "application/reports+json", "application/json"}
# What is logged of a report, under one name whichever format it came in: report-uri's
# kebab-case keys, and the Reporting API's camelCase ones.
FIELDS = {
    "document-uri": "document_uri",
    "documentURL": "document_uri",
    "referrer": "referrer",
    "violated-directive": "violated_directive",
    "effective-directive": "effective_directive",
    "effectiveDirective": "effective_directive",
    "blocked-uri": "blocked_uri",
    "blockedURL": "blocked_uri",
    "source-file": "source_file",
    "sourceFile": "source_file",
    "line-number": "line_number",
    "lineNumber": "line_number",
    "column-number": "column_number",
    "columnNumber": "column_number",
    "script-sample": "sample",
    "sample": "sample",
    "disposition": "disposition",
    "status-code": "status_code",
    "statusCode": "status_code",
}


class BadReport(ValueError):
    pass


class LogBudget:
    """At most `limit` lines a minute in this process (a fixed one-minute window)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # ASGI runs sync views in many threads
        self.window = time.monotonic()
        self.used = 0
        self.dropped = 0

    def take(self, limit: int) -> tuple[bool, int]:
        """(whether this line may be logged, lines dropped in the window that just ended)."""
        with self.lock:
            now, dropped_before = time.monotonic(), 0
            if now - self.window >= 60:
                self.window, dropped_before = now, self.dropped
                self.used = self.dropped = 0
            if self.used < limit:
                self.used += 1
                return True, dropped_before
            self.dropped += 1
            return False, dropped_before


budget = LogBudget()


def parse(body: bytes) -> list[dict]:
    """The violation bodies in a report-uri or Reporting API body; BadReport if it is neither."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise BadReport("not JSON") from error
    if isinstance(document, dict) and "csp-report" in document:
        reports = [document["csp-report"]]
    elif isinstance(document, list):
        if not all(isinstance(entry, dict) for entry in document):
            raise BadReport("a list with an entry that is not a report")
        reports = [entry.get("body") for entry in document if entry.get("type") == "csp-violation"]
    else:
        raise BadReport("neither a csp-report object nor a list of reports")
    if not all(isinstance(report, dict) for report in reports):
        raise BadReport("a report that is not an object")
    return reports[:MAX_REPORTS]


def fields(report: dict) -> dict:
    kept = {}
    for key, name in FIELDS.items():
        value = report.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        kept[name] = value if isinstance(value, int) else value[:MAX_FIELD]
    return kept


@csrf_exempt  # browsers post reports without a token
@require_POST
def report(request: HttpRequest) -> HttpResponse:
    if request.content_type not in CONTENT_TYPES:
        return HttpResponse(status=415)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:  # refused before it is read
        return HttpResponse(status=413)
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return HttpResponse(status=413)
    try:
        reports = parse(body)
    except BadReport as error:
        return HttpResponse(f"Not a CSP report: {error}.\n", status=400, content_type="text/plain")
    for violation in reports:
        allowed, dropped = budget.take(settings.CSP_REPORTS_PER_MINUTE)
        if dropped:
            log.warning(
                "csp reports not logged",
                extra={"event": "csp_reports_dropped", "dropped": dropped},
            )
        if not allowed:
            continue
        log.warning(
            "csp violation",
            extra={
                "event": "csp_violation",
                **fields(violation),
                "client_address": request.META.get("REMOTE_ADDR"),
                "user_agent": request.headers.get("user-agent", "")[:200],
            },
        )
    return HttpResponse(status=204)
