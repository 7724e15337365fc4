"""Under ASGI, Django's stock middleware run their hooks on the event loop, not in a thread.

Under ASGI, Django calls every process_request and process_response hook of a MiddlewareMixin
middleware through sync_to_async: a hop to a thread and back. With the stock MIDDLEWARE list
that is 14 hops a request, and they made a small JSON view cost five times the CPU under ASGI
that it costs under WSGI (measured with a profiler, on 2 cores).

The hooks of the middleware below only read the request and compute headers, cookies or lazy
attributes: no database, file or network I/O. The exceptions are named and still go to a
thread: saving a modified session, storing messages, and the CSRF secret when it lives in the
session (CSRF_USE_SESSIONS). So config/asgi.py calls run_hooks_on_event_loop(), and under
ASGI these classes call their own hooks directly. Their code and order stay Django's, and
settings.MIDDLEWARE keeps naming them by their own paths (so `check --deploy` still sees them);
WSGI never calls __acall__ and is untouched. A subclass of one of them keeps Django's way: its
hooks may well do I/O.

_acall is MiddlewareMixin.__acall__ with the thread hops taken out. A Django upgrade that
changes Django's method, or gives one of these classes an __acall__ of its own, stops start-up
(ImproperlyConfigured, naming the version) until the copy has been compared with it.
"""

import hashlib
import inspect
import textwrap
from collections.abc import Callable

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.deprecation import MiddlewareMixin


def _never(request: HttpRequest) -> bool:
    return False


def _session_to_save(request: HttpRequest) -> bool:
    # process_response saves the session (a database write) only then.
    session = getattr(request, "session", None)
    return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


def _messages_to_store(request: HttpRequest) -> bool:
    # Messages read or added are written back, possibly into the session (which loads it).
    storage = getattr(request, "_messages", None)
    return storage is not None and (storage.used or storage.added_new)


# Each class, and when its process_response must still run in a thread.
RESPONSE_IO: dict[type, Callable[[HttpRequest], bool]] = {
    SecurityMiddleware: _never,
    SessionMiddleware: _session_to_save,
    CommonMiddleware: _never,
    CsrfViewMiddleware: _never,
    AuthenticationMiddleware: _never,
    MessageMiddleware: _messages_to_store,
    XFrameOptionsMiddleware: _never,
    ContentSecurityPolicyMiddleware: _never,
}


async def _acall(self: MiddlewareMixin, request: HttpRequest) -> HttpResponse:
    """MiddlewareMixin.__acall__, with the hooks called directly unless they do I/O."""
    response_io = RESPONSE_IO.get(type(self))
    if response_io is None:  # a subclass: Django's own way, every hook in a thread
        return await MiddlewareMixin.__acall__(self, request)
    response = None
    if hasattr(self, "process_request"):
        response = self.process_request(request)
    response = response or await self.get_response(request)
    if hasattr(self, "process_response"):
        if response_io(request):
            hook = sync_to_async(self.process_response, thread_sensitive=True)
            response = await hook(request, response)
        else:
            response = self.process_response(request, response)
    return response


# The SHA-256 of MiddlewareMixin.__acall__'s source (dedented) that _acall mirrors: Django 6.1.3.
REVIEWED_ACALL_SHA256 = "5c839eda8e41012076de9a8cad6a3811dfe630cbfd1e829736741b6cd09d8522"


def check_djangos_acall_is_the_reviewed_one() -> None:
    source = textwrap.dedent(inspect.getsource(MiddlewareMixin.__acall__))
    digest = hashlib.sha256(source.encode()).hexdigest()
    if digest != REVIEWED_ACALL_SHA256:
        raise ImproperlyConfigured(
            f"Django {django.get_version()} changed MiddlewareMixin.__acall__, which "
            "core/middleware.py's _acall mirrors: compare the two, then set "
            f"REVIEWED_ACALL_SHA256 to {digest}."
        )
    for cls in RESPONSE_IO:
        if cls.__dict__.get("__acall__") not in (None, _acall):
            raise ImproperlyConfigured(
                f"Django {django.get_version()} gives {cls.__qualname__} an __acall__ of its "
                "own: core/middleware.py must no longer replace it (remove it from RESPONSE_IO)."
            )


def run_hooks_on_event_loop() -> None:
    """Call once, in the ASGI entry point, before the first request."""
    check_djangos_acall_is_the_reviewed_one()
    for cls in RESPONSE_IO:
        # The CSRF secret kept in the session: reading it loads the session.
        if cls is CsrfViewMiddleware and settings.CSRF_USE_SESSIONS:
            continue
        cls.__acall__ = _acall
