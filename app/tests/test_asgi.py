"""config/asgi.py: Django's stock middleware called on the event loop (core/middleware.py), one
reused thread a request; the responses are the ones Django's own handler gives."""

import asyncio
import contextlib
from unittest import mock
from urllib.parse import urlencode

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth.models import User
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.db import connections
from django.utils.deprecation import MiddlewareMixin

from config.asgi import application
from core.middleware import RESPONSE_IO

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_same_response_as_djangos_handler():
    """The login page sets the CSRF cookie and every security header: the same under both."""
    ours = asgi_request(application, "GET", "/admin/login/")
    with djangos_own_hooks():
        django = asgi_request(DjangoASGIHandler(), "GET", "/admin/login/")
    assert ours[0] == django[0] == 200
    assert header_names(ours[1]) == header_names(django[1])
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert name in header_names(ours[1])
    assert any(v.startswith("csrftoken=") for k, v in ours[1] if k == "set-cookie")


def test_few_thread_hops_a_request():
    """Django's handler hops to a thread for every hook (14 with the stock list); ours for the
    request signals, the CSRF view hook and the sync view only."""

    def count(app) -> int:
        call = SyncToAsync.__call__
        with mock.patch.object(SyncToAsync, "__call__", autospec=True, side_effect=call) as hops:
            asgi_request(app, "GET", "/admin/login/")
        return hops.call_count

    ours = count(application)
    with djangos_own_hooks():
        djangos = count(DjangoASGIHandler())
    assert ours <= 5
    assert djangos >= ours + 12


def test_login_saves_the_session_in_a_thread():
    """A login modifies the session: its save, a database write, still runs in a thread (on the
    event loop Django would refuse it, SynchronousOnlyOperation)."""
    User.objects.create_user("ada", password="a long enough password")  # noqa: S106
    status, headers, _ = asgi_request(application, "GET", "/admin/login/")
    token = next(v.split(";")[0].split("=", 1)[1] for k, v in headers if k == "set-cookie")
    body = urlencode(
        {"username": "ada", "password": "a long enough password", "csrfmiddlewaretoken": token}
    ).encode()
    form = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", f"csrftoken={token}"),
        ("content-length", str(len(body))),
    ]
    status, headers, _ = asgi_request(application, "POST", "/admin/login/", body, form)
    # Not staff, so the admin shows the form again with an error; the session was not needed.
    assert status == 200
    User.objects.filter(username="ada").update(is_staff=True)
    status, headers, _ = asgi_request(application, "POST", "/admin/login/", body, form)
    assert status == 302
    assert any(v.startswith("sessionid=") for k, v in headers if k == "set-cookie")
