"""config/gunicorn.py: the worker count it derives from the container's CPUs, its logging, and
the networks it trusts."""

import importlib.util
import json
import logging.config
import os
import pathlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from config import environment

CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "gunicorn.py"


def load_config(monkeypatch, **environment):
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_config", CONFIG_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def machine(monkeypatch):
    """An 8-CPU machine whose cgroup files say what the test writes into `files`.

    The real paths the config reads are faked (not passed in), so a wrong path fails the tests.
    """
    files: dict[str, str] = {}
    real_read_text = pathlib.Path.read_text

    def read_text(path, *args, **kwargs):
        if str(path).startswith("/sys/fs/cgroup/"):
            if str(path) not in files:
                raise FileNotFoundError(str(path))
            return files[str(path)]
        return real_read_text(path, *args, **kwargs)

    monkeypatch.setattr(os, "process_cpu_count", lambda: 8)
    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    return files


CGROUP_V2_QUOTA = {"/sys/fs/cgroup/cpu.max": "150000 100000\n"}
CGROUP_V1_QUOTA = {
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "150000\n",
    "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
}
CGROUP_V2_NO_QUOTA = {"/sys/fs/cgroup/cpu.max": "max 100000\n"}
CGROUP_V1_NO_QUOTA = {
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
    "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
}


@pytest.mark.parametrize(
    ("cgroup_files", "wsgi_workers", "asgi_workers"),
    [
        # 8 CPUs, a quota of 1.5 CPUs: 2 CPUs' worth of workers.
        pytest.param(CGROUP_V2_QUOTA, 5, 2, id="cgroup-v2-quota"),
        pytest.param(CGROUP_V1_QUOTA, 5, 2, id="cgroup-v1-quota"),
        # No quota: every CPU counts.
        pytest.param(CGROUP_V2_NO_QUOTA, 17, 8, id="cgroup-v2-unlimited"),
        pytest.param(CGROUP_V1_NO_QUOTA, 17, 8, id="cgroup-v1-unlimited"),
        pytest.param({}, 17, 8, id="no-cgroup-files"),
    ],
)
def test_worker_count_follows_the_cpus_and_the_cpu_quota(
    monkeypatch, machine, cgroup_files, wsgi_workers, asgi_workers
):
    machine.update(cgroup_files)
    wsgi = load_config(monkeypatch, SERVER_INTERFACE=None, WEB_CONCURRENCY=None)
    assert (wsgi.worker_class, wsgi.workers) == ("sync", wsgi_workers)
    asgi = load_config(monkeypatch, SERVER_INTERFACE="asgi", WEB_CONCURRENCY=None)
    assert (asgi.worker_class, asgi.workers) == ("uvicorn_worker.UvicornWorker", asgi_workers)


def test_web_concurrency_overrides_the_derived_count(monkeypatch, machine):
    machine.update(CGROUP_V2_QUOTA)
    assert load_config(monkeypatch, SERVER_INTERFACE=None, WEB_CONCURRENCY="3").workers == 3


def test_wsgi_by_default_asgi_on_request(monkeypatch):
    wsgi = load_config(monkeypatch, SERVER_INTERFACE=None)
    assert (wsgi.wsgi_app, wsgi.worker_class) == ("config.wsgi:application", "sync")
    asgi = load_config(monkeypatch, SERVER_INTERFACE="asgi")
    assert asgi.wsgi_app == "config.asgi:application"


def test_unknown_interface_is_refused_by_name(monkeypatch):
    with pytest.raises(Exception, match="SERVER_INTERFACE"):
        load_config(monkeypatch, SERVER_INTERFACE="cgi")


def test_graceful_timeout_and_keepalive_bounds(monkeypatch):
    config = load_config(monkeypatch)
    # In-flight requests get less than compose's 30 s stop_grace_period to finish (checked
    # against the real compose file in tests/stack/).
    assert 0 < config.graceful_timeout < 30
    # nginx keeps idle upstream connections 60 s (its default keepalive_timeout).
    assert config.keepalive > 60


class FakeArbiter:
    """What when_ready touches of gunicorn's arbiter: its SIGTERM handler and its log."""

    def __init__(self):
        self.stopped_at = None
        self.log = logging.getLogger("gunicorn.error")

    def handle_term(self):
        self.stopped_at = time.monotonic()


def test_sigterm_stops_at_once_by_default(monkeypatch):
    arbiter = FakeArbiter()
    load_config(monkeypatch, WEB_DRAIN_SECONDS=None).when_ready(arbiter)
    sent = time.monotonic()
    arbiter.handle_term()
    assert arbiter.stopped_at - sent < 0.1


def test_drain_keeps_serving_before_the_graceful_stop(monkeypatch):
    arbiter = FakeArbiter()
    load_config(monkeypatch, WEB_DRAIN_SECONDS="0.3").when_ready(arbiter)
    sent = time.monotonic()
    arbiter.handle_term()
    assert arbiter.stopped_at - sent >= 0.3


@pytest.mark.parametrize("value", ["-1", "21", "soon"])
def test_a_bad_drain_is_refused_by_name(monkeypatch, value):
    with pytest.raises(Exception, match="WEB_DRAIN_SECONDS"):
        load_config(monkeypatch, WEB_DRAIN_SECONDS=value)


def test_json_log_format_makes_gunicorn_log_one_json_object_per_line(monkeypatch, capsys):
    config = load_config(monkeypatch, DJANGO_LOG_FORMAT=None)
    assert config.logconfig_dict, "gunicorn logs plain text by default"
    # gunicorn lays its logconfig_dict over its own defaults, one top-level key at a time.
    from gunicorn.glogging import CONFIG_DEFAULTS

    logging.config.dictConfig({**CONFIG_DEFAULTS, **config.logconfig_dict})
    try:
        logging.getLogger("gunicorn.error").info("Booting worker with pid: %s", 7)
        logging.getLogger("gunicorn.access").info("GET / 200")
        lines = capsys.readouterr().err.splitlines()
    finally:
        logging.config.dictConfig(settings.LOGGING)
        for name in ("gunicorn.error", "gunicorn.access"):
            logging.getLogger(name).handlers.clear()
    assert len(lines) == 1, lines  # the access log stays off
    line = json.loads(lines[0])
    assert line["message"] == "Booting worker with pid: 7"
    assert (line["level"], line["logger"]) == ("INFO", "gunicorn.error")


def test_text_log_format_keeps_gunicorns_own_format(monkeypatch):
    config = load_config(monkeypatch, DJANGO_LOG_FORMAT="text")
    assert not getattr(config, "logconfig_dict", None)


def test_trusted_proxies_are_the_attached_networks(monkeypatch, tmp_path):
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert environment.trusted_proxies(route) == "172.18.0.0/16,192.168.0.0/24"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert environment.trusted_proxies(route) == "10.0.0.0/8"


def test_reload_watches_the_app_by_inotify_and_preloads_no_app_code(tmp_path):
    # In a process of its own: this one has long imported the app and configured its settings.
    probe = f"""
import importlib.util, json, sys
from django.conf import settings
spec = importlib.util.spec_from_file_location("gunicorn_config", {str(CONFIG_PATH)!r})
config = importlib.util.module_from_spec(spec)
spec.loader.exec_module(config)
app_modules = [
    name for name, module in sys.modules.items()
    if (getattr(module, "__file__", None) or "").startswith({str(settings.BASE_DIR)!r})
]
print(json.dumps({{
    "engine": config.reload_engine,
    "extra": config.reload_extra_files,
    "preloaded": all(name in sys.modules for name in config.RELOAD_PRELOADED),
    "settings_configured": settings.configured,
    "app_modules": app_modules,
}}))
"""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("DJANGO_")
    } | {"GUNICORN_RELOAD": "true", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["engine"] == "inotify"
    assert report["extra"] == [f"{settings.BASE_DIR}/**/*.py"]
    assert report["preloaded"]
    # A worker forked from the master imports these itself, as they are when it starts.
    assert not report["settings_configured"]
    assert report["app_modules"] == []
