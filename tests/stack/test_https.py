"""The HTTPS variant (compose.https.yaml) with Pebble as its ACME CA (.ci/compose.acme-test.yaml).

Skipped unless STACK_HTTPS_DOMAIN names the site's domain: scripts/test.sh sets it for its HTTPS
stage. The client connects to 127.0.0.1 and says the domain (SNI, Host), as a browser would once
DNS points there. The restart and down/up tests run last: they end with the stack up again.
"""

import json
import os
import re
import socket
import ssl
import tempfile
import uuid
import warnings
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from waiting import wait_until

from helpers import compose, container_ids, inspect

DOMAIN = os.environ.get("STACK_HTTPS_DOMAIN", "")
HTTPS_PORT = int(os.environ.get("PUBLIC_HTTPS_PORT", "443"))
HTTP_PORT = int(os.environ.get("PUBLIC_HTTP_PORT", "80"))
PEBBLE_MANAGEMENT_PORT = int(os.environ.get("PEBBLE_MANAGEMENT_PORT", "15000"))
SITE = f"https://127.0.0.1:{HTTPS_PORT}"

pytestmark = pytest.mark.skipif(
    not DOMAIN, reason="not the HTTPS stack: STACK_HTTPS_DOMAIN is unset (scripts/test.sh sets it)"
)


def service_logs(service: str) -> str:
    return compose("logs", "--no-color", "--no-log-prefix", service).stdout


@pytest.fixture(scope="module")
def pebble_root() -> str:
    """The root Pebble signs with, fetched from its management API (itself verified against the
    CA of Pebble's own TLS certificate). Pebble makes a new root each time it starts: fetched
    once, before the tests that restart the stack."""
    with tempfile.TemporaryDirectory() as directory:
        api_ca = Path(directory, "pebble-api-ca.pem")
        compose("cp", "pebble:/test/certs/pebble.minica.pem", str(api_ca))
        context = ssl.create_default_context(cafile=str(api_ca))
        response = httpx.get(
            f"https://localhost:{PEBBLE_MANAGEMENT_PORT}/roots/0", verify=context, timeout=10
        )
    response.raise_for_status()
    assert "BEGIN CERTIFICATE" in response.text
    return response.text


@pytest.fixture(scope="module")
def tls(pebble_root) -> ssl.SSLContext:
    """Trusts Pebble's root only."""
    return ssl.create_default_context(cadata=pebble_root)


def handshake(context: ssl.SSLContext, server_name: str | None = DOMAIN) -> dict:
    """A TLS handshake with the front: the verified certificate, protocol, cipher and ALPN."""
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as connection,
    ):
        return {
            "certificate": connection.getpeercert(),
            "der": connection.getpeercert(binary_form=True),
            "version": connection.version(),
            "cipher": connection.cipher()[0],
            "alpn": connection.selected_alpn_protocol(),
        }


def client(tls: ssl.SSLContext, **options) -> httpx.Client:
    """A client of https://DOMAIN/ that connects to 127.0.0.1: SNI and Host say the domain."""

    def say_the_domain(request: httpx.Request) -> None:
        request.extensions["sni_hostname"] = DOMAIN

    return httpx.Client(
        base_url=SITE,
        headers={"Host": DOMAIN},
        verify=tls,
        timeout=10,
        event_hooks={"request": [say_the_domain]},
        **options,
    )


@pytest.fixture(scope="module")
def issued(tls) -> bytes:
    """The certificate served for DOMAIN at the start (DER), and the number of orders so far."""
    return handshake(tls)["der"]


def orders_placed() -> int:
    """How many certificates were requested from the Pebble instance now running."""
    return service_logs("pebble").count("POST /order-plz")


def test_certificate_is_pebbles_for_the_domain(tls, issued):
    seen = handshake(tls)  # verified against Pebble's root, for the name DOMAIN
    assert ("DNS", DOMAIN) in seen["certificate"]["subjectAltName"]
    issuer = dict(pair[0] for pair in seen["certificate"]["issuer"])
    assert issuer["commonName"].startswith("Pebble Intermediate CA")
    assert seen["der"] == issued


def test_tls_is_modern_and_offers_http2(tls, pebble_root):
    seen = handshake(tls)
    assert seen["version"] == "TLSv1.3"
    assert seen["alpn"] == "h2"
    # A TLS 1.2 client gets a forward-secret AEAD cipher.
    tls12 = ssl.create_default_context(cadata=pebble_root)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    cipher = handshake(tls12)["cipher"]
    assert cipher.startswith("ECDHE-"), cipher
    assert "GCM" in cipher or "CHACHA20" in cipher, cipher


def old_protocol_client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers every protocol up to maximum: OpenSSL's default security level
    forbids TLS 1.0 and 1.1 (the handshake would fail in the client, never reaching the
    server); level 0 lets it offer them, so that a refusal is the server's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the protocol is under test here, not the certificate
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings(action="ignore", category=DeprecationWarning):
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    return context


def test_tls_1_1_and_below_are_refused():
    # The same client setup gets through with TLS 1.2: it can connect, and it offers old ones.
    assert handshake(old_protocol_client(ssl.TLSVersion.TLSv1_2))["version"] == "TLSv1.2"
    tls11 = old_protocol_client(ssl.TLSVersion.TLSv1_1)
    # The server's alert, not the client's own "no protocols available".
    with pytest.raises(ssl.SSLError, match="alert protocol version"):
        handshake(tls11)


def test_http2_is_negotiated(tls):
    with client(tls, http2=True) as https:
        response = https.get("/api/info/")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"


def test_http_redirects_to_https():
    response = httpx.get(
        f"http://127.0.0.1:{HTTP_PORT}/admin/?next=1", headers={"Host": DOMAIN}, timeout=10
    )
    assert response.status_code in (301, 308)
    assert response.headers["location"] == f"https://{DOMAIN}/admin/?next=1"


@pytest.mark.parametrize("path", ["/api/info/", "/static/admin/css/base.css", "/no-such-page/"])
def test_hsts_on_every_answer(tls, path):
    with client(tls) as https:
        response = https.get(path)
    assert response.status_code < 500
    assert re.fullmatch(r"max-age=\d+", response.headers["strict-transport-security"])


def cookies_set(response: httpx.Response) -> dict:
    """Each cookie the response sets, with its attributes, parsed from its Set-Cookie header."""
    jar = SimpleCookie()
    for value in response.headers.get_list("set-cookie"):
        jar.load(value)
    return dict(jar)


def test_admin_login_over_https(tls):
    password = uuid.uuid4().hex
    username = f"admin-{uuid.uuid4().hex[:8]}"
    compose(
        "exec", "-T", "-e", f"DJANGO_SUPERUSER_PASSWORD={password}", "web",
        "python", "manage.py", "createsuperuser", "--noinput",
        "--username", username, "--email", f"{username}@example.com",
    )  # fmt: skip
    with client(tls) as https:
        login_page = https.get("/admin/login/")
        assert login_page.status_code == 200
        assert cookies_set(login_page)["csrftoken"]["secure"] is True
        token = https.cookies["csrftoken"]
        response = https.post(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
            headers={"Referer": f"https://{DOMAIN}/admin/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        session_cookie = cookies_set(response)["sessionid"]
        assert (session_cookie["secure"], session_cookie["httponly"]) == (True, True)
        assert "Site administration" in https.get("/admin/").text


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        (False, {"Referer": f"https://{DOMAIN}/admin/login/"}),
        (True, {"Referer": "https://evil.example/admin/login/"}),
        (True, {"Origin": "https://evil.example", "Referer": f"https://{DOMAIN}/admin/login/"}),
    ],
    ids=["no-token", "foreign-referer", "foreign-origin"],
)
def test_csrf_is_enforced_over_https(tls, token, headers):
    """A login POST without the token, or with it but from another site, is refused (a wrong
    password would get 200: the refusal is CSRF's)."""
    with client(tls) as https:
        https.get("/admin/login/")  # the csrftoken cookie, sent back with the POST
        data = {"username": "nobody", "password": "wrong"}
        if token:
            data["csrfmiddlewaretoken"] = https.cookies["csrftoken"]
        response = https.post("/admin/login/?next=/admin/", data=data, headers=headers)
    assert response.status_code == 403, response.text[:300]
    assert "CSRF verification failed" in response.text


def logged_line(marker: str, timeout: float = 15) -> str:
    """nginx's access log line of the request whose URL carries marker (logs lag behind)."""
    lines = wait_until(
        lambda: [line for line in service_logs("nginx").splitlines() if marker in line],
        timeout,
        f"an nginx log line for {marker}",
    )
    return lines[0]


def test_django_and_nginx_see_the_clients_address(tls):
    # The test client's address, as the front sees it: Docker's gateway on one of caddy's networks.
    networks = inspect(container_ids("caddy")[0])["NetworkSettings"]["Networks"].values()
    gateways = {network["Gateway"] for network in networks}
    marker = uuid.uuid4().hex
    with client(tls) as https:
        info = https.get(f"/api/info/?{marker}", headers={"X-Forwarded-For": "203.0.113.9"}).json()
    assert info["client_address"] in gateways, (info["client_address"], gateways)
    logged = logged_line(marker)
    assert f'"remote_addr":"{info["client_address"]}"' in logged


def test_a_failed_login_is_counted_for_the_clients_address(tls):
    """Login throttling (docs/security.md) counts the visitor caddy saw, not caddy, nginx or a
    claimed X-Forwarded-For."""
    networks = inspect(container_ids("caddy")[0])["NetworkSettings"]["Networks"].values()
    gateways = {network["Gateway"] for network in networks}
    username = f"nobody-{uuid.uuid4().hex[:8]}"
    with client(tls) as https:
        https.get("/admin/login/")
        response = https.post(
            "/admin/login/",
            data={"csrfmiddlewaretoken": https.cookies["csrftoken"], "username": username,
                  "password": "wrong"},
            headers={"Referer": f"https://{DOMAIN}/admin/login/", "X-Forwarded-For": "203.0.113.9"},
        )  # fmt: skip
    assert response.status_code == 200  # the form again: one failure is no lock-out
    lines = [line for line in service_logs("web").splitlines() if username in line]
    entries = [json.loads(line[line.index("{") :]) for line in lines]  # after any escape code
    assert [entry["event"] for entry in entries] == ["login_failed"]
    assert entries[0]["client_address"] in gateways, (entries[0]["client_address"], gateways)


# Hostile input on the HTTPS port: a clear refusal, never the site under a wrong certificate.


def test_plain_http_to_the_https_port_gets_400():
    with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as connection:
        connection.sendall(f"GET / HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n".encode())
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.0 400"), answer[:200]


@pytest.mark.parametrize("server_name", ["unknown.example.test", None])
def test_unknown_or_missing_sni_is_refused_in_the_handshake(server_name):
    anything = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anything.check_hostname = False
    anything.verify_mode = ssl.CERT_NONE  # accept any certificate: is one served at all?
    with pytest.raises(ssl.SSLError, match="alert"):
        handshake(anything, server_name)


def test_host_other_than_the_certificates_name_gets_421(tls):
    with client(tls) as https:
        response = https.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 421


# State kept across restarts: the same certificate, no new order.


def wait_for_https(tls: ssl.SSLContext, timeout: float = 120) -> None:
    def ready() -> bool:
        with client(tls) as https:
            return https.get("/readyz").status_code == 200

    wait_until(ready, timeout, "answers over HTTPS", interval=1, not_yet=(httpx.HTTPError,))


def test_restart_requests_no_new_certificate(tls, issued):
    assert orders_placed() == 1
    compose("restart")
    compose("up", "--detach", "--wait", "--no-build")
    wait_for_https(tls)
    # Pebble restarted too (with a new root); the site still serves what the old one issued.
    assert handshake(tls)["der"] == issued
    assert orders_placed() == 1  # the one before the restart: logs outlive a restart
    assert service_logs("caddy").count("certificate obtained successfully") == 1


def test_down_and_up_requests_no_new_certificate(tls, issued):
    compose("down")
    compose("up", "--detach", "--wait", "--no-build")
    wait_for_https(tls)
    assert handshake(tls)["der"] == issued
    assert orders_placed() == 0  # a new Pebble: nothing was asked of it
    assert "obtaining certificate" not in service_logs("caddy")


def test_client_address_after_restarts(tls):
    """nginx looked the front's address up again when the front came back."""
    test_django_and_nginx_see_the_clients_address(tls)
