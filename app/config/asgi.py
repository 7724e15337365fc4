"""ASGI entry point, served by gunicorn with uvicorn's worker (see config/gunicorn.py).

Django's own handler, with two costs of its ASGI mode taken away; both leave what runs, and in
what order, as it was (docs/wsgi-asgi.md has the measurements):
- the stock middleware hop to a thread and back for every hook (core/middleware.py);
- each request's sync code (a sync view, the database connection's set-up and clean-up) runs in
  a thread of its own, which Django starts for the request and then stops, with a second thread
  that waits for the first to end: two thread starts a request. Here a finished request's
  thread serves a later one instead, as a sync worker's thread does under WSGI.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers import asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from core.middleware import run_hooks_on_event_loop  # noqa: E402  (needs the settings)

# Idle request threads kept for later requests; more are started when more requests run at once.
IDLE_THREADS = 64


class ASGIHandler(asgi.ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # One thread at a time per request, as Django's own ThreadSensitiveContext() gives.
        executor = self.idle.pop() if self.idle else ThreadPoolExecutor(max_workers=1)
        async with ThreadSensitiveContext(executor=executor):
            await self.handle(scope, receive, send)
        # Reached only when the request ended normally: every sync call it made has returned,
        # so the thread is idle. (After an error or a cancellation the executor is dropped, and
        # its thread ends once whatever still runs there returns.)
        if len(self.idle) < IDLE_THREADS:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)


run_hooks_on_event_loop()
application = ASGIHandler()
