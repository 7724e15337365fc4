"""config/asgi.py: Django's stock middleware called on the event loop (core/middleware.py), one
reused thread a request; the responses are the ones Django's own handler gives.

The requests go to views of the tests' own (tests/asgi_urls.py) through the project's whole
settings.MIDDLEWARE, so the tests hold whatever URLs and middleware the project has.
"""

import asyncio
import contextlib
import json
from unittest import mock

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.db import connections
from django.middleware.common import CommonMiddleware
from django.test import override_settings
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from config.asgi import ASGIHandler, application
from core.middleware import RESPONSE_IO, run_hooks_on_event_loop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.asgi_urls")]


@pytest.fixture(autouse=True)
def close_thread_connections():
    """The database connections the request threads opened, closed before the test database
    is dropped."""
    yield
    for executor in application.idle:
        executor.submit(connections.close_all).result()


@contextlib.contextmanager
def djangos_own_hooks():
    """Django's MiddlewareMixin.__acall__ again, while the block runs."""
    with contextlib.ExitStack() as stack:
        for cls in RESPONSE_IO:
            stack.enter_context(mock.patch.object(cls, "__acall__", MiddlewareMixin.__acall__))
        yield


def asgi_request(app, method: str, path: str, body: bytes = b"", headers=()) -> tuple:
    """(status, headers as a list of (name, value) strings, body) of one request through app."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *((k.encode(), v.encode()) for k, v in headers)],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }

    async def run() -> tuple[dict, bytes]:
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start, chunks = await communicator.receive_output(timeout=10), []
        while True:
            message = await communicator.receive_output(timeout=10)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await communicator.wait()
        return start, b"".join(chunks)

    start, content = asyncio.run(run())
    names = [(k.decode().lower(), v.decode()) for k, v in start["headers"]]
    return start["status"], names, content


def header_names(headers: list) -> set[str]:
    return {name for name, _ in headers}


def cookie(headers: list, name: str) -> str | None:
    """The value a response's Set-Cookie gives the named cookie, or None."""
    for key, value in headers:
        if key == "set-cookie" and value.startswith(f"{name}="):
            return value.split(";")[0].split("=", 1)[1]
    return None


@contextlib.contextmanager
def where_hooks_run(cls: type) -> list[str]:
    """Records, for each call of cls.process_response, "loop" (called on the event loop) or
    "thread" (called from a thread, through sync_to_async)."""
    calls: list[str] = []
    original = cls.process_response

    def process_response(self, request, response):
        try:
            asyncio.get_running_loop()
            calls.append("loop")
        except RuntimeError:
            calls.append("thread")
        return original(self, request, response)

    with mock.patch.object(cls, "process_response", process_response):
        yield calls


def test_same_response_as_djangos_handler():
    """A page with a form sets the CSRF cookie and every security header: the same under both."""
    ours = asgi_request(application, "GET", "/form/")
    with djangos_own_hooks():
        django = asgi_request(DjangoASGIHandler(), "GET", "/form/")
    assert ours[0] == django[0] == 200
    assert header_names(ours[1]) == header_names(django[1])
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert name in header_names(ours[1])
    assert cookie(ours[1], "csrftoken")


def hooks_of_stock_middleware() -> int:
    """How many process_request/process_response hooks the middleware of RESPONSE_IO have in
    settings.MIDDLEWARE: the thread hops Django's handler takes for them and ours does not."""
    classes = [import_string(name) for name in settings.MIDDLEWARE]
    return sum(
        hasattr(cls, hook)
        for cls in classes
        if cls in RESPONSE_IO
        for hook in ("process_request", "process_response")
    )


@pytest.mark.parametrize("added", [[], ["tests.asgi_urls.ThirdPartyMiddleware"]])
def test_no_thread_hop_for_the_stock_middlewares_hooks(added):
    """Django's handler hops to a thread for every hook of a MiddlewareMixin middleware; ours
    calls the stock ones' hooks directly: exactly their number of hops fewer, whatever other
    middleware the project adds (theirs hop in both)."""

    def count(app) -> int:
        call = SyncToAsync.__call__
        with mock.patch.object(SyncToAsync, "__call__", autospec=True, side_effect=call) as hops:
            asgi_request(app, "GET", "/form/")
        return hops.call_count

    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, *added]):
        ours = count(ASGIHandler())
        with djangos_own_hooks():
            djangos = count(DjangoASGIHandler())
    saved = hooks_of_stock_middleware()
    assert saved >= 10, "the stock middleware are no longer in settings.MIDDLEWARE"
    assert djangos - ours == saved


def test_a_requests_thread_serves_later_requests():
    """A finished request's thread runs the next request's sync view (Django's own handler
    starts a new thread for each)."""
    served = [json.loads(asgi_request(application, "GET", "/thread/")[2]) for _ in range(3)]
    assert [count["served"] for count in served] == [1, 2, 3]
    with djangos_own_hooks():
        django = [json.loads(asgi_request(DjangoASGIHandler(), "GET", "/thread/")[2])]
    assert django == [{"served": 1}]


def test_a_modified_session_is_saved_in_a_thread():
    """Saving a modified session is a database write: it runs in a thread (on the event loop
    Django would refuse it, SynchronousOnlyOperation); a request that leaves the session alone
    stays on the loop."""
    with where_hooks_run(SessionMiddleware) as calls:
        status, headers, body = asgi_request(application, "GET", "/visit/")
        assert (status, body) == (200, b"1")
        session = cookie(headers, "sessionid")
        status, _, body = asgi_request(
            application, "GET", "/visit/", headers=[("cookie", f"sessionid={session}")]
        )
        assert (status, body) == (200, b"2")
        asgi_request(application, "GET", "/form/")
    assert calls == ["thread", "thread", "loop"]
    assert Session.objects.get(pk=session).get_decoded() == {"visits": 2}


def test_stored_messages_go_to_a_thread():
    """Messages added in a request are stored on the way out, possibly in the session (a
    database write): that hook runs in a thread; without messages it stays on the loop."""
    with where_hooks_run(MessageMiddleware) as calls:
        status, headers, _ = asgi_request(application, "GET", "/message/")
        asgi_request(application, "GET", "/form/")
    assert status == 200
    assert cookie(headers, "messages"), "the message was not stored"
    assert calls == ["thread", "loop"]


def test_start_up_stops_when_django_changes_the_method_we_mirror():
    """A Django upgrade that changes MiddlewareMixin.__acall__ fails loudly, naming the version,
    instead of leaving core/middleware.py's copy to diverge from it unseen."""

    async def changed_acall(self, request):
        return await self.get_response(request)

    changed = mock.patch.object(MiddlewareMixin, "__acall__", changed_acall)
    with changed, pytest.raises(ImproperlyConfigured, match=r"Django 6\.\d+\.\d+ changed"):
        run_hooks_on_event_loop()
    own = mock.patch.object(CommonMiddleware, "__acall__", changed_acall, create=True)
    with own, pytest.raises(ImproperlyConfigured, match="CommonMiddleware an __acall__ of its"):
        run_hooks_on_event_loop()
    run_hooks_on_event_loop()  # as Django is: no complaint, and calling it twice is harmless
