"""What the web server (config/gunicorn.py) and Django (config/settings.py, config/wsgi.py)
both read from the container, read here once: the interface served, the log format, the CPUs,
and the networks whose proxies are trusted.

Standard library and environs only: config/gunicorn.py runs this file by path (runpy), because
importing the `config` package would import the app into gunicorn's master.
"""

import math
import os
import socket
import struct
from pathlib import Path

from environs import Env
from marshmallow.validate import OneOf

env = Env(expand_vars=False)

CGROUP = Path("/sys/fs/cgroup")
ROUTE_TABLE = Path("/proc/net/route")

# One JSON object per line, for Django's LOGGING and gunicorn's logconfig_dict alike.
JSON_LOG_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
}


def server_interface() -> str:
    """SERVER_INTERFACE: "wsgi" (gunicorn's sync workers, the default) or "asgi" (uvicorn's)."""
    return env.str("SERVER_INTERFACE", "wsgi", validate=OneOf(["wsgi", "asgi"]))


def log_format() -> str:
    """DJANGO_LOG_FORMAT: "json" (the default) or "text", for Django's lines and gunicorn's."""
    return env.str("DJANGO_LOG_FORMAT", "json", validate=OneOf(["json", "text"]))


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """The container's CPU quota in CPUs (1.5 for "--cpus 1.5"), or None if it has none.

    cgroup v2 keeps it in cpu.max ("<quota> <period>" or "max <period>"); cgroup v1 in the cpu
    controller's cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
    """
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def available_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs this container may use: its CPU set, capped by its CPU quota (rounded up)."""
    cpus = os.process_cpu_count() or 1
    if (quota := cpu_quota(cgroup)) is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(cpus, 1)


def attached_networks(route_table: Path = ROUTE_TABLE) -> str:
    """The networks this container is attached to, as comma-separated CIDRs, read from its
    routing table."""
    networks = []
    for line in route_table.read_text().splitlines()[1:]:
        interface, destination, gateway, _, _, _, _, mask, *_ = line.split()
        if interface == "lo" or gateway != "00000000" or destination == "00000000":
            continue
        address = socket.inet_ntoa(struct.pack("<L", int(destination, 16)))
        prefix = bin(int(mask, 16)).count("1")
        networks.append(f"{address}/{prefix}")
    return ",".join(networks) or "127.0.0.1"


def trusted_proxies(route_table: Path = ROUTE_TABLE) -> str:
    """FORWARDED_ALLOW_IPS, or else the attached networks: nginx reaches the app on one of them,
    so these are the peers whose X-Forwarded-* headers are believed."""
    return env.str("FORWARDED_ALLOW_IPS", "") or attached_networks(route_table)
