"""Hostile requests through nginx: each gets the right 4xx, never a 5xx, never a hang."""

import contextlib
import json
import select
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from waiting import wait_until

from helpers import HOST, PORT, STACK_URL, compose, log_lines, raw_get, raw_request

pytestmark = pytest.mark.no_5xx


def test_oversized_body_gets_413(http):
    body = b"x" * (11 * 1024 * 1024)
    assert http.post("/admin/login/", content=body).status_code == 413


def test_unknown_host_gets_400(http):
    response = http.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "Traceback" not in response.text


@pytest.mark.parametrize("host", [b"localhost:notaport", b"local host", b"localhost:80:80"])
def test_malformed_host_header_gets_400(host):
    assert raw_request(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n") == 400


def test_a_bad_host_is_logged_as_one_warning_without_a_traceback(http):
    since = datetime.now(UTC).isoformat()
    host = f"evil-{uuid.uuid4().hex[:8]}.example"
    assert http.get("/", headers={"Host": host}).status_code == 400
    lines = wait_until(
        lambda: [line for line in log_lines("web", since) if host in line], 10, "bad Host logged"
    )
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["level"] == "WARNING"
    assert not any("Traceback" in line for line in log_lines("web", since))


def web_log(since: str) -> list[str]:
    return compose(
        "logs", "--no-color", "--no-log-prefix", "--since", since, "web"
    ).stdout.splitlines()


def test_huge_header_gets_400():
    assert raw_get("/", headers=f"X-Big: {'a' * 20_000}\r\n") == 400


def test_too_many_headers_get_400():
    headers = "".join(f"X-Header-{n}: {'v' * 30}\r\n" for n in range(2000))
    assert raw_get("/", headers=headers) == 400


def test_overlong_url_gets_414():
    assert raw_get("/" + "a" * 20_000) == 414


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/media/..%2f..%2f..%2fetc/passwd",
        "/static/..%252f..%252fetc/passwd",
    ],
)
def test_path_traversal_never_escapes(path):
    with socket.create_connection((HOST, PORT), timeout=10) as connection:
        request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    status = int(response.split(b" ", 2)[1])
    assert 400 <= status < 500
    assert b"root:" not in response


@pytest.mark.parametrize("path", ["/%ff%fe/", "/api/tasks/%c3%28/", "/%00", "/api/info/%00"])
def test_invalid_utf8_or_null_in_path_is_a_client_error(path):
    assert 400 <= raw_get(path) < 500


def test_request_smuggling_headers_are_refused():
    request = (
        b"POST /admin/login/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /admin/ HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    assert raw_request(request) == 400


def test_garbage_request_line_gets_400():
    assert raw_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n") == 400


def test_uploaded_html_is_never_run_as_a_page(http):
    compose(
        "exec", "-T", "web", "sh", "-c",
        "printf '<script>alert(1)</script>' > /srv/media/hostile.html",
    )  # fmt: skip
    response = http.get("/media/hostile.html")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


# nginx's client_header_timeout (nginx/nginx.conf): the whole header must arrive within it.
HEADER_TIMEOUT = 10


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server has closed the connection (end of file, a reset, or a 408 before
    closing); False while it is still open and silent."""
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    with contextlib.suppress(OSError):  # a reset
        connection.recv(4096)  # b"" at end of file, or what came before it (a 408)
    return True


def test_slow_clients_do_not_starve_others():
    """Slowloris: hundreds of connections trickling a header line every second. A normal visitor
    is still served meanwhile, and nginx cuts each of them off once its header has taken longer
    than client_header_timeout, however steadily it trickles."""
    stop = threading.Event()
    sockets: list[socket.socket] = []
    opened = time.monotonic()
    for _ in range(300):
        slow = socket.create_connection((HOST, PORT), timeout=5)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        sockets.append(slow)
    all_open = time.monotonic()
    closed: set[int] = set()

    def trickle() -> None:
        while not stop.wait(1):
            for number, slow in enumerate(sockets):
                if number in closed:
                    continue
                if closed_by_server(slow):
                    closed.add(number)
                    continue
                with contextlib.suppress(OSError):  # closed since: seen on the next pass
                    slow.sendall(b"X-a: b\r\n")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(1)
        response = httpx.get(f"{STACK_URL}/healthz", timeout=5)
        assert response.status_code == 200
        assert not closed, f"{len(closed)} slow connections gone before a normal request"
        # Past the timeout for the last one opened, with time for a busy machine to notice.
        deadline = all_open + HEADER_TIMEOUT + 4
        while len(closed) < len(sockets) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.set()
        trickler.join()
        for slow in sockets:
            slow.close()
    still_open = len(sockets) - len(closed)
    waited = deadline - opened
    assert still_open == 0, (
        f"{still_open} of {len(sockets)} slow clients still open at {waited:.0f} s"
    )
