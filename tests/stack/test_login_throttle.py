"""Login throttling through nginx: failures are counted for the visitor's address as nginx saw
it, never for an X-Forwarded-For the visitor sent, and each is one JSON line in web's log."""

import json
import secrets
import subprocess
from datetime import UTC, datetime

import httpx
import pytest

from helpers import STACK_URL, compose, containers, create_superuser, inspect, log_lines

pytestmark = pytest.mark.no_5xx


@pytest.fixture(scope="module")
def limit() -> int:
    code = "from django.conf import settings; print(settings.AXES_FAILURE_LIMIT)"
    output = compose("exec", "-T", "web", "python", "manage.py", "shell", "-c", code).stdout
    return int(output.split()[-1])  # after the shell's note on what it imported


def container(service: str) -> dict:
    return inspect(next(c["ID"] for c in containers() if c["Service"] == service))


def failed_logins(since: str, username: str) -> list[dict]:
    entries = [json.loads(line) for line in log_lines("web", since) if line.startswith("{")]
    return [e for e in entries if e.get("event") == "login_failed" and e["username"] == username]


def nginx_addresses(since: str, marker: str) -> set[str]:
    entries = [json.loads(line) for line in log_lines("nginx", since) if line.startswith("{")]
    return {entry["remote_addr"] for entry in entries if marker in entry["request"]}


def attempt(client: httpx.Client, username: str, password: str, marker: str, **headers):
    client.get("/admin/login/")  # the CSRF cookie, once
    token = client.cookies["csrftoken"]
    return client.post(
        f"/admin/login/?next=/admin/&{marker}",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers=headers,
    )


def test_a_spoofed_forwarded_for_does_not_escape_the_lock_out(limit):
    """Each attempt claims another address in X-Forwarded-For; nginx replaces the header, so
    all count for this client, which is locked out at the limit (429), and web logs nginx's
    address for it, never a claimed one."""
    username, password = create_superuser("throttle")
    since, marker = datetime.now(UTC).isoformat(), secrets.token_hex(8)
    statuses = []
    with httpx.Client(base_url=STACK_URL, timeout=10) as client:
        for number in range(limit):
            spoofed = {"X-Forwarded-For": f"203.0.113.{number + 1}"}
            statuses.append(attempt(client, username, "wrong", marker, **spoofed).status_code)
        locked = attempt(client, username, password, marker)
    assert statuses == [200] * (limit - 1) + [429]
    assert locked.status_code == 429, "the right password is refused while locked out"
    assert "Too many failed logins" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    logged = failed_logins(since, username)
    assert [entry["failures"] for entry in logged] == [*range(1, limit + 1), limit + 1]
    addresses = {entry["client_address"] for entry in logged}
    assert addresses == nginx_addresses(since, marker), "not the client nginx saw"
    nginx_own = {n["IPAddress"] for n in container("nginx")["NetworkSettings"]["Networks"].values()}
    assert not addresses & nginx_own, "nginx's own address: X-Forwarded-For was not read"


# A visitor of its own address: a container on nginx's network, not the host behind Docker's
# published port (which every host client shares: Docker's gateway).
VISITOR = """
import http.cookiejar, json, socket, sys, urllib.error, urllib.parse, urllib.request
username, limit, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
base, headers = "http://nginx:8080/admin/login/", {"Host": "localhost"}
opener.open(urllib.request.Request(base, headers=headers), timeout=10).read()
token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
statuses = []
for number in range(limit):
    form = {"csrfmiddlewaretoken": token, "username": username, "password": "wrong"}
    spoofed = {**headers, "X-Forwarded-For": f"198.51.100.{number + 1}"}
    request = urllib.request.Request(
        f"{base}?{marker}", data=urllib.parse.urlencode(form).encode(), headers=spoofed
    )
    try:
        statuses.append(opener.open(request, timeout=10).status)
    except urllib.error.HTTPError as error:
        statuses.append(error.code)
print(json.dumps({"address": socket.gethostbyname(socket.gethostname()), "statuses": statuses}))
"""


def test_the_visitors_own_address_is_counted_and_the_admin_elsewhere_can_log_in(limit):
    username, password = create_superuser("visitor")
    since, marker = datetime.now(UTC).isoformat(), secrets.token_hex(8)
    nginx = container("nginx")
    [network] = nginx["NetworkSettings"]["Networks"]
    gateway = nginx["NetworkSettings"]["Networks"][network]["Gateway"]
    run = subprocess.run(
        ["docker", "run", "--rm", "-i", "--network", network, "--entrypoint", "python",
         container("web")["Config"]["Image"], "-", username, str(limit), marker],
        input=VISITOR, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    visitor = json.loads(run.stdout)
    assert visitor["statuses"] == [200] * (limit - 1) + [429]
    assert visitor["address"] != gateway
    logged = failed_logins(since, username)
    assert {entry["client_address"] for entry in logged} == {visitor["address"]}
    # Locked out there only: the same user logs in from this host's address.
    with httpx.Client(base_url=STACK_URL, timeout=10) as client:
        assert attempt(client, username, password, marker).status_code == 302
