"""gunicorn settings, read from the environment: sync WSGI workers, or UvicornWorker (ASGI)
when SERVER_INTERFACE=asgi.

https://docs.gunicorn.org/en/stable/settings.html
"""

import importlib
import os
import runpy
import time
from pathlib import Path

from environs import Env
from marshmallow.validate import Range

env = Env(expand_vars=False)
# Run by path, not imported: `import config.environment` would import the config package, and
# with it the app, into the master (see preload_app below).
environment = runpy.run_path(str(Path(__file__).with_name("environment.py")))


def default_workers(interface: str, cpus: int) -> int:
    if interface == "asgi":
        # One event loop per CPU serves many requests at once.
        return cpus
    # gunicorn's rule of thumb for sync workers: (2 x CPUs) + 1.
    return 2 * cpus + 1


interface = environment["server_interface"]()
if interface == "asgi":
    wsgi_app = "config.asgi:application"
    worker_class = "uvicorn_worker.UvicornWorker"
else:
    wsgi_app = "config.wsgi:application"
    worker_class = "sync"

bind = "0.0.0.0:8000"
workers = env.int("WEB_CONCURRENCY", default_workers(interface, environment["available_cpus"]()))
timeout = 30
# Development only (compose.dev.yaml): a worker restarts when a Python file of the app changes.
reload = env.bool("GUNICORN_RELOAD", False)
# Told by inotify (the `inotify` package, in the dev dependency group), not by polling. The
# poller takes a file's mtime as the baseline at its first pass after the module is imported,
# and Django imports views on their first request: an edit that arrived in between was never
# seen, and that worker served the old code until the next edit. inotify reports every change
# in a watched directory, at once.
reload_engine = "inotify"
# The directories of every Python file in the app are watched from the worker's start, not only
# those of the modules imported by then.
reload_extra_files = [str(Path(__file__).resolve().parents[1] / "**" / "*.py")]
# Each restart forks a new worker from the master, which (not preloading the app) has imported
# nothing. Importing the framework and the libraries here, once, leaves a new worker only the
# app's own code to import: about 0.15 s instead of 1.1 s on one CPU. Never the app's modules
# nor its settings, which each worker must read afresh.
RELOAD_PRELOADED = (
    "celery",
    "debug_toolbar",
    "django.contrib.admin",
    "django.contrib.staticfiles.handlers",
    "django.core.handlers.asgi",
    "django.core.handlers.wsgi",
    "psycopg",
    "redis",
)
if reload:
    for module in RELOAD_PRELOADED:
        importlib.import_module(module)
# The app is imported once, by the master, and the workers forked from it share that memory
# (copy-on-write) instead of each importing Django again. Nothing connects at import (Django,
# Celery and the Redis clients connect on first use, in the worker). Not with reload: a worker
# restarted after an edit would be forked from the master's old code.
preload_app = not reload
# Shorter than compose's stop_grace_period, so in-flight requests finish before a SIGKILL.
graceful_timeout = 20
# Seconds web keeps serving after SIGTERM before it stops. An orchestrator that takes a
# container out of its load balancer before stopping it (Docker Swarm: out of DNS, SIGTERM 2 s
# later; swarm/compose.swarm.yaml sets 5) may still have requests queued for it, unaccepted:
# gunicorn's graceful stop would reset them (gunicorn issue #3397). 0: stop at once (compose,
# where a container stays in DNS until it stops).
drain_seconds = env.float("WEB_DRAIN_SECONDS", 0.0, validate=Range(min=0, max=20))
# Longer than nginx keeps idle upstream connections (60 s), so gunicorn never closes one
# that nginx is about to reuse (ASGI; sync workers do not keep connections).
keepalive = 75
forwarded_allow_ips = environment["trusted_proxies"]()
# The one scheme header nginx sets (and Django trusts, SECURE_PROXY_SSL_HEADER); gunicorn's
# default also reads X-Forwarded-Ssl and X-Forwarded-Protocol, which nginx clears.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
# Workers' heartbeat files in memory, not on a disk that may stall them.
# /dev/shm and /tmp are the container's own tmpfs mounts, shared with no other user.
worker_tmp_dir = "/dev/shm"  # noqa: S108  # nosec B108
# For `gunicornc` (worker status, graceful reload) inside the container; the code dir is read-only.
control_socket = "/tmp/gunicorn.ctl"  # noqa: S108  # nosec B108
# nginx logs every request; gunicorn logs errors only.
accesslog = None
errorlog = "-"
loglevel = "info"
# With DJANGO_LOG_FORMAT=json (the default), gunicorn's own lines (and uvicorn's, which its
# worker sends to the same handlers) are one JSON object per line, like Django's: the same
# formatter as LOGGING in config/settings.py.
log_format = environment["log_format"]()
if log_format == "json":
    logconfig_dict = {
        "formatters": {"json": environment["JSON_LOG_FORMATTER"]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            # A logging config turns gunicorn's access log on: it stays off (nginx logs requests).
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def when_ready(server) -> None:
    if drain_seconds <= 0:
        return
    stop = server.handle_term

    def drain_then_stop() -> None:
        server.log.info("SIGTERM: serving %s s more before stopping", drain_seconds)
        time.sleep(drain_seconds)  # the workers serve meanwhile; only the master waits
        stop()

    server.handle_term = drain_then_stop


def post_worker_init(worker) -> None:
    # Lets the app report the worker class that really serves it (GUNICORN_WORKER_CLASS): the public
    # name it was configured by, or the full path of gunicorn's own classes ("sync").
    name = worker.cfg.worker_class_str
    if "." not in name:
        name = f"{type(worker).__module__}.{type(worker).__qualname__}"
    os.environ["GUNICORN_WORKER_CLASS"] = name
