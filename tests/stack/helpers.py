"""Shared by the stack tests: where the stack is, and `docker compose` against it."""

import json
import os
import secrets
import socket
import subprocess
import time

import httpx
import pytest
from waiting import wait_for, wait_until

STACK_URL = os.environ.get("STACK_URL", "http://127.0.0.1:18000")
VARIANT = os.environ.get("STACK_VARIANT", "wsgi")
HOST, PORT = httpx.URL(STACK_URL).host, httpx.URL(STACK_URL).port
only_once = pytest.mark.skipif(
    VARIANT != "wsgi", reason="independent of the web server: run with the WSGI stack only"
)


def compose(
    *args: str, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess:
    """Runs docker compose on the stack that COMPOSE_FILE and COMPOSE_PROJECT_NAME select."""
    result = subprocess.run(
        ["docker", "compose", *args], capture_output=True, text=True, input=input_text, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker compose {' '.join(args)} failed:\n{result.stderr}")
    return result


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def containers() -> list[dict]:
    """`docker compose ps` of the stack, one dict per container."""
    output = compose("ps", "--all", "--format", "json").stdout
    # Compose prints one JSON object per line (or one array, depending on its version).
    if output.lstrip().startswith("["):
        return json.loads(output)
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def container_ids(service: str) -> list[str]:
    return [c["ID"] for c in containers() if c["Service"] == service and c["State"] == "running"]


def inspect(container_id: str) -> dict:
    return json.loads(docker("inspect", container_id))[0]


def wait_healthy(*up_options: str, timeout: float = 120) -> None:
    """Brings every service back up (`docker compose up --detach` with up_options) and waits
    until all are healthy.

    Not `up --wait`: it gives up at once on a container that is still unhealthy from the fault
    just injected (nginx, until its next check finds web back), instead of waiting it out.
    """
    # The images the test command built: `up` alone would build web again (pull_policy: build).
    compose("up", "--detach", "--no-build", *up_options)
    deadline = time.monotonic() + timeout

    def states() -> dict[str, tuple[str, str, int]]:
        return {
            container["Name"]: (
                container["State"],
                container.get("Health", ""),
                container["ExitCode"],
            )
            for container in containers()
        }

    def all_healthy(seen: dict[str, tuple[str, str, int]]) -> bool:
        done = [
            (state == "running" and health in ("healthy", "")) or (state, code) == ("exited", 0)
            for state, health, code in seen.values()
        ]
        return all(done) and any(state == "running" for state, _, _ in seen.values())

    wait_for(states, all_healthy, timeout, "every service healthy", interval=1)
    # A healthcheck status can be seconds old: wait for what a visitor sees, too.
    wait_until(
        lambda: httpx.get(f"{STACK_URL}/readyz", timeout=10).status_code == 200,
        max(1.0, deadline - time.monotonic()),
        "/readyz answers 200",
        interval=0.5,
    )


def log_lines(service: str, since: str) -> list[str]:
    """A service's log lines since a time (RFC 3339), without compose's terminal escapes."""
    output = compose("logs", "--no-color", "--no-log-prefix", "--since", since, service).stdout
    return [line.removeprefix("\x1b[2K") for line in output.splitlines()]


def create_superuser(prefix: str) -> tuple[str, str]:
    """A new admin user in the running stack, made as an operator would; (username, password)."""
    username, password = f"{prefix}-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    email = f"{username}@example.com"
    manage = ["python", "manage.py", "createsuperuser", "--noinput", "--username", username]
    password_variable = f"DJANGO_SUPERUSER_PASSWORD={password}"
    compose("exec", "-T", "-e", password_variable, "web", *manage, "--email", email)
    return username, password


def admin_login(username: str, password: str) -> bool:
    """Whether the user logs in to the admin through nginx, as in a browser (a client of its own:
    no cookie of another test's)."""
    with httpx.Client(base_url=STACK_URL, timeout=10) as client:
        login_page = client.get("/admin/login/")
        response = client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Referer": str(login_page.url)},
            follow_redirects=True,
        )
    return response.status_code == 200 and "Site administration" in response.text


def raw_request(data: bytes, timeout: float = 10) -> int:
    """Sends bytes as they are (no client-side cleanup) and returns the response's status code."""
    with socket.create_connection((HOST, PORT), timeout=timeout) as connection:
        connection.sendall(data)
        response = b""
        while b"\r\n" not in response:
            chunk = connection.recv(4096)
            if not chunk:
                break
            response += chunk
    status_line = response.split(b"\r\n", 1)[0].decode()
    assert status_line.startswith("HTTP/1."), f"no HTTP answer: {response[:200]!r}"
    return int(status_line.split()[1])


def raw_get(path: str, headers: str = "") -> int:
    """A GET sent as it is (raw_request), with the Host header nginx expects."""
    return raw_request(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n".encode())


def computed(page, selector: str, prop: str) -> str:
    """A CSS property of an element in a Playwright page, as the browser computed it."""
    return page.evaluate(
        "([selector, prop]) => getComputedStyle(document.querySelector(selector))[prop]",
        [selector, prop],
    )
