"""Login throttling with django-axes (settings: AXES_*; docs/security.md): the client address it
counts failures by, the answer to a locked-out login, and one log line per failed login."""

import logging
import math

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

log = logging.getLogger("core.auth")


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, which the server already set to the visitor's address from nginx's
    X-Forwarded-For (config/forwarded.py under WSGI, uvicorn's proxy headers under ASGI).

    Never a header read here: a client could put any address in one, and each made-up address
    would get a fresh count of failures.
    """
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """429 saying what happened and for how long, with Retry-After in seconds.

    django-axes 8.3 calls this with (request, credentials) under ASGI and (request, response,
    credentials) under WSGI: nothing here depends on the arguments after the request.
    """
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    minutes = math.ceil(seconds / 60)
    message = (
        f"Too many failed logins: logging in as this user from your address is locked for "
        f"{minutes} minute{'s' if minutes != 1 else ''} after "
        f"{settings.AXES_FAILURE_LIMIT} failed attempts. Other users and other addresses are "
        "not affected. Wait, then try again.\n"
    )
    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response


@receiver(user_login_failed)
def log_failed_login(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    """One WARNING line per failed login, with the username tried and the client's address.

    Connected after django-axes' own receiver (INSTALLED_APPS lists axes first), which has just
    counted the failure on the request.
    """
    username = credentials.get(get_user_model().USERNAME_FIELD, "")
    log.warning(
        "login failed",
        extra={
            "event": "login_failed",
            "username": str(username)[:150],
            "client_address": client_address(request) if request is not None else None,
            "path": request.path[:200] if request is not None else None,
            "failures": getattr(request, "axes_failures_since_start", None),
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "locked_out": bool(getattr(request, "axes_locked_out", False)),
        },
    )
