"""The parts of config/gunicorn.py that read the container: CPU limits and attached networks."""

import importlib.util
from pathlib import Path

import pytest

CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "gunicorn.py"


def load_config(monkeypatch, **environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_config", CONFIG_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wsgi_by_default_with_sync_workers(monkeypatch):
    monkeypatch.delenv("SERVER_INTERFACE", raising=False)
    config = load_config(monkeypatch, WEB_CONCURRENCY="3")
    assert config.wsgi_app == "config.wsgi:application"
    assert config.worker_class == "sync"
    assert config.workers == 3


def test_asgi_uses_uvicorns_worker(monkeypatch):
    config = load_config(monkeypatch, SERVER_INTERFACE="asgi")
    assert config.wsgi_app == "config.asgi:application"
    assert config.worker_class == "uvicorn_worker.UvicornWorker"
    assert config.workers == config.available_cpus()


def test_unknown_interface_is_refused_by_name(monkeypatch):
    with pytest.raises(Exception, match="SERVER_INTERFACE"):
        load_config(monkeypatch, SERVER_INTERFACE="cgi")


def test_cpu_quota_caps_the_cpu_count(monkeypatch, tmp_path):
    config = load_config(monkeypatch)
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")  # half a CPU
    assert config.available_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert config.available_cpus(cpu_max) >= 1


def test_trusted_proxies_are_the_attached_networks(monkeypatch, tmp_path):
    config = load_config(monkeypatch)
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert config.attached_networks(route) == "172.18.0.0/16,192.168.0.0/24"
