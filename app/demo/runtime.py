"""What is serving this request: read from the running process, not from configuration."""

import asyncio
import os
import platform
import sys

import django
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest


def interface(request: HttpRequest) -> str:
    return "asgi" if isinstance(request, ASGIRequest) else "wsgi"


def server_software() -> str:
    if "gunicorn" in sys.modules:
        return f"gunicorn {sys.modules['gunicorn'].__version__}"
    return "unknown"


def running_event_loop() -> str | None:
    """The module of the event loop running this code ("uvloop", "asyncio"), if any."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return type(loop).__module__.split(".")[0]


def describe(request: HttpRequest) -> dict[str, str | None]:
    """Call from an async view, so that under ASGI the server's own event loop is running."""
    current_interface = interface(request)
    return {
        "interface": current_interface,
        # The container that answered (its host name): with several web containers behind
        # nginx, as under Docker Swarm, it changes from request to request.
        "host": platform.node(),
        # "https" once Django trusts the proxy's X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER).
        "scheme": request.scheme,
        "server": server_software(),
        # Set by the post_worker_init hook in config/gunicorn.py, in the worker process itself.
        "worker_class": os.environ.get("GUNICORN_WORKER_CLASS", "unknown"),
        "python": platform.python_version(),
        "django": django.get_version(),
        # Under WSGI an async view gets a throwaway loop per request: no loop serves the site.
        "event_loop": running_event_loop() if current_interface == "asgi" else None,
        # The visitor's address as Django sees it (nginx's X-Forwarded-For, config/forwarded.py).
        "client_address": request.META.get("REMOTE_ADDR"),
    }
