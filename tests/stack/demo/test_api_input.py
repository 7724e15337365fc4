"""Hostile input to the demo's API, through nginx: each gets the right 4xx, never a 5xx."""

import json
import uuid

import pytest

from helpers import raw_request

pytestmark = pytest.mark.no_5xx
JSON = {"Content-Type": "application/json"}


def test_body_over_djangos_memory_limit_gets_400(http):
    body = json.dumps({"seconds": 1, "padding": "x" * (3 * 1024 * 1024)})
    assert http.post("/api/tasks/", content=body, headers=JSON).status_code == 400


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"a string"', b"\xff\xfe\x00"])
def test_malformed_json_gets_400(http, body):
    response = http.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize("seconds", ["ten", None, True, -5, 1e308, [1], {"a": 1}])
def test_wrong_types_get_400_naming_the_field(http, seconds):
    response = http.post("/api/tasks/", json={"seconds": seconds})
    assert response.status_code == 400
    assert response.json()["field"] == "seconds"


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


# Each is a short task: the worker has two slots, and later tests need them.
@pytest.mark.parametrize("number", ["-0", "-0.0", "2e-1", "0.05E1", "1e-400"])
def test_neighbours_of_valid_numbers_are_accepted(http, number):
    body = ('{"seconds": ' + number + "}").encode()
    response = http.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 202, response.text[:200]


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


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_task_api_takes_json_only(http, content_type):
    """A cross-site page can POST these types without a preflight: they must not enqueue."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post("/api/tasks/", content=b'{"seconds": 0}', headers=headers)
    assert response.status_code == 415


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


def test_deeply_nested_json_gets_400(http):
    assert (
        http.post("/api/tasks/", content=b"[" * 100_000 + b"]" * 100_000, headers=JSON).status_code
        == 400
    )


def test_invalid_utf8_in_query_gets_400_naming_the_field(http):
    response = http.get("/api/wait/?ms=%ff%fe")
    assert response.status_code == 400
    assert response.json()["field"] == "ms"


def test_wrong_methods_get_405(http):
    assert http.delete("/api/tasks/").status_code == 405
    assert http.put("/api/tasks/").status_code == 405
    # Unsafe methods on CSRF-protected views are refused before the view is reached.
    assert http.post("/api/info/").status_code == 403
    assert raw_request(b"TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n") == 405


def test_unknown_task_id_gets_404(http):
    assert http.get(f"/api/tasks/{uuid.uuid4()}/").status_code == 404
    assert http.get(f"/api/tasks/{uuid.uuid4()}/events/").status_code == 404
