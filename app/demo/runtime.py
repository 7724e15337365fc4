"""What is serving this request: read from the running process, not from configuration."""

import os
import platform
import sys

import django
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest


def server_software() -> str:
    if "gunicorn" in sys.modules:
        return f"gunicorn {sys.modules['gunicorn'].__version__}"
    return "unknown"


def describe(request: HttpRequest) -> dict[str, str]:
    return {
        "interface": "asgi" if isinstance(request, ASGIRequest) else "wsgi",
        "server": server_software(),
        # Set by the post_worker_init hook in config/gunicorn.py, in the worker process itself.
        "worker_class": os.environ.get("GUNICORN_WORKER_CLASS", "unknown"),
        "python": platform.python_version(),
        "django": django.get_version(),
    }
