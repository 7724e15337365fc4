"""The visitor's address as REMOTE_ADDR under WSGI, as uvicorn's worker makes it under ASGI."""

import ipaddress
from collections.abc import Callable, Iterable


class ForwardedClient:
    """WSGI middleware: REMOTE_ADDR becomes the last X-Forwarded-For address when the peer is a
    trusted proxy. nginx sends exactly one, the visitor's (or, behind the TLS front, the front's
    word for it); `trusted` is comma-separated CIDRs or "*", as gunicorn's forwarded_allow_ips
    (config.environment.trusted_proxies).
    """

    def __init__(self, application: Callable, trusted: str) -> None:
        self.application = application
        self.trust_all = trusted.strip() == "*"
        self.networks = [
            ipaddress.ip_network(network.strip(), strict=False)
            for network in trusted.split(",")
            if network.strip() and not self.trust_all
        ]

    def trusts(self, address: str) -> bool:
        if self.trust_all:
            return True
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in network for network in self.networks)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded and self.trusts(environ.get("REMOTE_ADDR", "")):
            environ["REMOTE_ADDR"] = forwarded.rsplit(",", 1)[-1].strip()
        return self.application(environ, start_response)
