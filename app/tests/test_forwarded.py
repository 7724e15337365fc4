"""REMOTE_ADDR under WSGI: the visitor's address from a trusted proxy, the peer's otherwise."""

from config.forwarded import ForwardedClient


def remote_addr(trusted: str, peer: str, forwarded: str | None) -> str:
    seen = {}

    def application(environ, start_response):
        seen["address"] = environ["REMOTE_ADDR"]
        return []

    environ = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    ForwardedClient(application, trusted)(environ, lambda *args: None)
    return seen["address"]


def test_a_trusted_proxy_names_the_visitor():
    assert remote_addr("172.18.0.0/16,10.0.0.0/8", "172.18.0.5", "203.0.113.9") == "203.0.113.9"


def test_the_last_address_is_the_one_the_proxy_added():
    assert remote_addr("172.18.0.0/16", "172.18.0.5", "198.51.100.1, 203.0.113.9") == "203.0.113.9"


def test_anyone_else_is_not_believed():
    assert remote_addr("172.18.0.0/16", "192.0.2.7", "203.0.113.9") == "192.0.2.7"


def test_no_header_keeps_the_peer():
    assert remote_addr("*", "172.18.0.5", None) == "172.18.0.5"
