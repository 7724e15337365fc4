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

from helpers import STACK_URL, compose, log_lines

HOST, PORT = httpx.URL(STACK_URL).host, httpx.URL(STACK_URL).port
pytestmark = pytest.mark.no_5xx
demo = pytest.mark.demo
JSON = {"Content-Type": "application/json"}


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


def get(path: str, headers: str = "") -> int:
    return raw_request(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n".encode())


@demo
def test_oversized_body_gets_413(http):
    assert (
        http.post("/api/tasks/", content=b"x" * (11 * 1024 * 1024), headers=JSON).status_code == 413
    )


@demo
def test_body_over_djangos_memory_limit_gets_400(http):
    body = json.dumps({"seconds": 1, "padding": "x" * (3 * 1024 * 1024)})
    assert http.post("/api/tasks/", content=body, headers=JSON).status_code == 400


def test_unknown_host_gets_400(http):
    response = http.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "Traceback" not in response.text


@pytest.mark.parametrize("host", [b"localhost:notaport", b"local host", b"localhost:80:80"])
def test_malformed_host_header_gets_400(host):
    assert raw_request(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n") == 400


@demo
@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"a string"', b"\xff\xfe\x00"])
def test_malformed_json_gets_400(http, body):
    response = http.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]


@demo
@pytest.mark.parametrize("seconds", ["ten", None, True, -5, 1e308, [1], {"a": 1}])
def test_wrong_types_get_400_naming_the_field(http, seconds):
    response = http.post("/api/tasks/", json={"seconds": seconds})
    assert response.status_code == 400
    assert response.json()["field"] == "seconds"


@demo
@pytest.mark.parametrize(
    "number",
    [
        "1" + "0" * 400,  # a huge integer: float() of it overflows
        "9" * 5000,  # past Python's 4,300-digit limit for int()
        "-" + "9" * 5000,
        "1e400",
        "-1E400",
        "0." + "1" * 5000,
        "1" * 40 + ".5e-30",
        "NaN",
        "Infinity",
        "-Infinity",
        "61",
        "-0.5",
    ],
)
def test_hostile_numbers_get_400(http, number):
    body = ('{"seconds": ' + number + "}").encode()
    response = http.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 400, response.text[:200]
    assert response.json()["error"]


@demo
# Each is a short task: the worker has two slots, and later tests need them.
@pytest.mark.parametrize("number", ["-0", "-0.0", "2e-1", "0.05E1", "1e-400"])
def test_neighbours_of_valid_numbers_are_accepted(http, number):
    body = ('{"seconds": ' + number + "}").encode()
    response = http.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 202, response.text[:200]


@demo
@pytest.mark.parametrize(
    "ms",
    [
        "9" * 4301,  # past Python's int() digit limit (under WSGI gunicorn may answer 414 first)
        "9" * 50,
        "-0",
        "+1",
        "1e3",
        " 1",
        "\u0661\u0662",  # Arabic-Indic digits
        "\uff11",  # fullwidth 1
        "\u00b2",  # superscript two
    ],
)
def test_hostile_query_numbers_get_a_4xx(http, ms):
    response = http.get("/api/wait/", params={"ms": ms})
    assert response.status_code in (400, 414), response.text[:200]
    if response.status_code == 400:
        assert response.json()["field"] == "ms"


@demo
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_task_api_takes_json_only(http, content_type):
    """A cross-site page can POST these types without a preflight: they must not enqueue."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post("/api/tasks/", content=b'{"seconds": 0}', headers=headers)
    assert response.status_code == 415


@demo
@pytest.mark.parametrize(
    "header",
    [
        "X-Forwarded-Proto: https",
        "X-Forwarded-Ssl: on",
        "X-Forwarded-Protocol: ssl",
        "Forwarded: proto=https",
        "X-Url-Scheme: https",
    ],
)
def test_nginx_replaces_client_forwarding_headers(http, header):
    """Only nginx says how the client connected: a client claiming HTTPS over plain HTTP is
    believed by neither gunicorn nor Django."""
    name, value = header.split(": ")
    response = http.get("/api/info/", headers={name: value})
    assert response.status_code == 200
    assert response.json()["scheme"] == "http"


def test_a_bad_host_is_logged_as_one_warning_without_a_traceback(http):
    since = datetime.now(UTC).isoformat()
    host = f"evil-{uuid.uuid4().hex[:8]}.example"
    assert http.get("/", headers={"Host": host}).status_code == 400
    deadline = time.monotonic() + 10
    while not (lines := [line for line in log_lines("web", since) if host in line]):
        assert time.monotonic() < deadline, "the bad Host was never logged"
        time.sleep(0.2)
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["level"] == "WARNING"
    assert not any("Traceback" in line for line in log_lines("web", since))


def web_log(since: str) -> list[str]:
    return compose(
        "logs", "--no-color", "--no-log-prefix", "--since", since, "web"
    ).stdout.splitlines()


@demo
def test_head_works_wherever_get_does(http):
    task_id = http.post("/api/tasks/", json={"seconds": 0}).json()["id"]
    for path in (
        "/",
        "/api/info/",
        "/api/wait/?ms=1",
        f"/api/tasks/{task_id}/",
        f"/api/tasks/{task_id}/events/",
        "/healthz",
        "/readyz",
        "/favicon.ico",
    ):
        response = http.head(path)
        assert response.status_code == 200, path
        assert response.content == b"", path


@demo
def test_deeply_nested_json_gets_400(http):
    assert (
        http.post("/api/tasks/", content=b"[" * 100_000 + b"]" * 100_000, headers=JSON).status_code
        == 400
    )


def test_huge_header_gets_400():
    assert get("/", headers=f"X-Big: {'a' * 20_000}\r\n") == 400


def test_too_many_headers_get_400():
    headers = "".join(f"X-Header-{n}: {'v' * 30}\r\n" for n in range(2000))
    assert get("/", headers=headers) == 400


def test_overlong_url_gets_414():
    assert get("/" + "a" * 20_000) == 414


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
    assert 400 <= get(path) < 500


@demo
def test_invalid_utf8_in_query_gets_400_naming_the_field(http):
    response = http.get("/api/wait/?ms=%ff%fe")
    assert response.status_code == 400
    assert response.json()["field"] == "ms"


@demo
def test_wrong_methods_get_405(http):
    assert http.delete("/api/tasks/").status_code == 405
    assert http.put("/api/tasks/").status_code == 405
    # Unsafe methods on CSRF-protected views are refused before the view is reached.
    assert http.post("/api/info/").status_code == 403
    assert raw_request(b"TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n") == 405


@demo
def test_request_smuggling_headers_are_refused():
    request = (
        b"POST /api/tasks/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /admin/ HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    assert raw_request(request) == 400


def test_garbage_request_line_gets_400():
    assert raw_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n") == 400


@demo
def test_unknown_task_id_gets_404(http):
    assert http.get(f"/api/tasks/{uuid.uuid4()}/").status_code == 404
    assert http.get(f"/api/tasks/{uuid.uuid4()}/events/").status_code == 404


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
