"""gunicorn settings, read from the environment. Sync WSGI workers unless SERVER_INTERFACE=asgi.

https://docs.gunicorn.org/en/stable/settings.html
"""

import math
import os
import socket
import struct
from pathlib import Path

from environs import Env

env = Env(expand_vars=False)


def available_cpus() -> int:
    """The CPUs this container may use: its CPU set, capped by a cgroup CPU quota if one is set."""
    cpus = os.process_cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(cpus, 1)


def attached_networks() -> str:
    """The networks this container is attached to, as CIDRs, read from its routing table.

    nginx reaches us on one of them, so these are the peers whose X-Forwarded-* headers we trust.
    """
    networks = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        interface, destination, gateway, _, _, _, _, mask, *_ = line.split()
        if interface == "lo" or gateway != "00000000" or destination == "00000000":
            continue
        address = socket.inet_ntoa(struct.pack("<L", int(destination, 16)))
        prefix = bin(int(mask, 16)).count("1")
        networks.append(f"{address}/{prefix}")
    return ",".join(networks) or "127.0.0.1"


interface = env.str("SERVER_INTERFACE", "wsgi", validate=lambda value: value in {"wsgi", "asgi"})
if interface == "asgi":
    wsgi_app = "config.asgi:application"
    worker_class = "uvicorn_worker.UvicornWorker"
else:
    wsgi_app = "config.wsgi:application"
    worker_class = "sync"

bind = f"0.0.0.0:{env.int('PORT', 8000)}"
# gunicorn's rule of thumb: (2 x CPUs) + 1, from the CPUs this container may use.
workers = env.int("WEB_CONCURRENCY", 2 * available_cpus() + 1)
timeout = env.int("GUNICORN_TIMEOUT", 30)
# Shorter than compose's stop_grace_period, so in-flight requests finish before a SIGKILL.
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = env.int("GUNICORN_KEEPALIVE", 5)
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", "") or attached_networks()
# Workers' heartbeat files in memory, not on a disk that may stall them.
worker_tmp_dir = "/dev/shm"
# nginx logs every request; gunicorn logs errors only.
accesslog = None
errorlog = "-"
loglevel = env.str("GUNICORN_LOG_LEVEL", "info")


def post_worker_init(worker) -> None:
    # Lets the app report the worker class that really serves it (see demo/runtime.py).
    os.environ["GUNICORN_WORKER_CLASS"] = f"{type(worker).__module__}.{type(worker).__qualname__}"
