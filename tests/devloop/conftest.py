"""The development loop (compose.dev.yaml) in a temporary copy of the repository.

One `docker compose watch` for the whole session, under the compose project DEV_PROJECT_NAME
(default dev-loop-check) on DEV_HTTP_PORT (default 18091). The copy's app/ belongs to a non-root
uid (DEV_TEST_UID, default 12345), as a developer's checkout belongs to them, so that file
ownership means something even when the tests run as root. Edit-to-served latencies are printed
at the end, not asserted.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("DEV_HTTP_PORT", "18091"))
URL = f"http://127.0.0.1:{PORT}"
PROJECT = os.environ.get("DEV_PROJECT_NAME", "dev-loop-check")
HOST_UID = int(os.environ.get("DEV_TEST_UID", "12345"))
LATENCIES: dict[str, float] = {}


def copy_repository(target: Path) -> None:
    """The files git knows of, as they are in the work tree (like tests/template.sh)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())


class DevStack:
    def __init__(self, root: Path, environment: dict[str, str]):
        self.root, self.environment = root, environment

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["docker", "compose", *args],
            cwd=self.root,
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{result.stderr}")
        return result

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args),
            cwd=self.root,
            env=self.environment | extra_env,
            capture_output=True,
            text=True,
            check=False,
        )

    def edit(self, path: str, old: str, new: str) -> float:
        """Replaces old by new in app/PATH (once, and it must be there); returns the time."""
        file = self.root / "app" / path
        text = file.read_text()
        assert old in text, f"{old!r} not in {path}"
        file.write_text(text.replace(old, new, 1))
        return time.monotonic()

    def container_id(self, service: str) -> str:
        return self.compose("ps", "--quiet", service).stdout.strip()


@pytest.fixture(scope="session")
def dev_stack():
    root = Path(tempfile.mkdtemp(prefix="dev-loop-check-"))
    copy_repository(root)
    os.chown(root, HOST_UID, HOST_UID)
    for path in [root / "app", *(root / "app").rglob("*")]:
        os.chown(path, HOST_UID, HOST_UID)
    overlay = os.environ.get("COMPOSE_OVERLAY", "")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("COMPOSE_FILE", "STACK_URL", "HTTP_PORT")
    } | {"COMPOSE_PROJECT_NAME": PROJECT, "HTTP_PORT": str(PORT)}
    environment["COMPOSE_FILE"] = "compose.dev.yaml" + (f":{overlay}" if overlay else "")
    stack = DevStack(root, environment)
    log = (root / "watch.log").open("w")
    stack.compose("build", "--quiet")
    watch = subprocess.Popen(
        ["docker", "compose", "watch"],
        cwd=root,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: (
                "Watch enabled" in (root / "watch.log").read_text()
                and httpx.get(f"{URL}/readyz", timeout=5).status_code == 200
            ),
            timeout=180,
            what="dev stack watching and ready",
            interval=0.5,
            not_yet=(httpx.HTTPError,),
        )
        yield stack
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait(timeout=30)
        log.close()
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
        shutil.rmtree(root, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    if LATENCIES:
        measured = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in LATENCIES.items())
        terminalreporter.write_line(f"edit-to-served latency ({os.cpu_count()} cores): {measured}")
