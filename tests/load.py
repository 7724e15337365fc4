"""Steady load through nginx while a test breaks or replaces something, shared by the one-host
fault tests (tests/stack/) and the Swarm tests (tests/swarm/): what visitors would notice is
counted in one place, the same way.
"""

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpcore
import httpx
from waiting import wait_until


class _Wire(httpcore.NetworkBackend):
    """One HTTP client's sockets: how many it opened and how many bytes came back on them.

    Read before and after a request, they say whether the request went out on a connection kept
    alive from an earlier one, and whether any byte of an answer had arrived when it failed.
    """

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()
        self.opened = 0
        self.received = 0

    def connect_tcp(self, *args, **kwargs) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(*args, **kwargs)
        self.opened += 1
        return _CountedStream(stream, self)

    def connect_unix_socket(self, *args, **kwargs) -> httpcore.NetworkStream:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _CountedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, wire: _Wire) -> None:
        self._stream, self._wire = stream, wire

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, timeout)
        self._wire.received += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, *args, **kwargs) -> httpcore.NetworkStream:
        return _CountedStream(self._stream.start_tls(*args, **kwargs), self._wire)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


def _client_with_wire(node: str, timeout: float) -> tuple[httpx.Client, _Wire]:
    wire = _Wire()
    transport = httpx.HTTPTransport()
    transport._pool._network_backend = wire  # httpx takes no backend of its own
    return httpx.Client(base_url=f"http://{node}", transport=transport, timeout=timeout), wire


HEALTH_INTERVAL = 0.25


@dataclass
class Load:
    """Steady requests from a few clients to nginx on one or more nodes (host:port each).

    The visitors' part: connections kept alive, as browsers do, and a browser's one retry: a
    request that went out on a kept-alive connection which the server closed before a byte of
    the answer arrived is sent again once, on a new connection (the server closes idle
    connections whenever it likes; it had not seen that request). Every other outcome than the
    expected status is a failure: another status (a 404 from a wrong route, a 400 from a host
    it does not serve), a reset or a timeout on a new connection, a second failure, a refused
    connection that no other node took, an answer to HOSTS_FROM that is not the JSON asked for.

    The load balancer's part, in front of several nodes (HEALTH_PATH set): a health check of
    each node every 0.25 s, new requests only to the nodes that pass it, and a request whose
    connection is refused sent to the next node (it never reached a server). Without a
    HEALTH_PATH, as on one host where nginx is the edge, every node is always in service.
    """

    nodes: list[str]
    expected: dict[str, int] = field(default_factory=lambda: {"/readyz": 200})
    # Steady, well below what the web containers can serve on this machine: a saturated site
    # queues requests for seconds, and a stopping container resets the ones still queued.
    clients: int = 2
    pause: float = 0.05
    timeout: float = 10.0
    health_path: str | None = None
    # A path whose JSON answer names the web container that served it (counted in `hosts`).
    hosts_from: str | None = None
    failures: list[tuple[float, str]] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    retried: list[str] = field(default_factory=list)
    hosts: Counter = field(default_factory=Counter)
    # Each node's health as the balancer saw it, at each change: (time, "in", "failing" or
    # "refused").
    health: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    phases: list[tuple[str, float]] = field(default_factory=list)
    ended: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def phase(self, name: str) -> float:
        """Starts a phase of the test: answers must keep arriving in each."""
        now = time.monotonic()
        self.phases.append((name, now))
        return now

    def in_service(self) -> list[str]:
        if not self.health_path:
            return self.nodes
        with self._lock:
            return [n for n in self.nodes if self.health.get(n) and self.health[n][-1][1] == "in"]

    def _health_check(self, node: str) -> None:
        # A new connection for each check, as balancers do: a node that refuses is seen at once.
        with httpx.Client(timeout=5, headers={"Connection": "close"}) as http:
            while not self._stop.is_set():
                try:
                    status = http.get(f"http://{node}{self.health_path}").status_code
                    state = "in" if status == 200 else "failing"
                except httpx.ConnectError:
                    state = "refused"
                except httpx.HTTPError:
                    state = "failing"
                with self._lock:
                    seen = self.health.setdefault(node, [])
                    if not seen or seen[-1][1] != state:
                        seen.append((time.monotonic(), state))
                self._stop.wait(HEALTH_INTERVAL)

    def _client(self, offset: int) -> None:
        connections = {node: _client_with_wire(node, self.timeout) for node in self.nodes}
        paths = list(self.expected)
        turn = offset
        try:
            while not self._stop.is_set():
                turn += 1
                path = paths[turn % len(paths)]
                try:
                    self._request(connections, turn, path)
                except Exception as error:  # noqa: BLE001 - whatever it is, it is a failure
                    self._record(f"{path}: {type(error).__name__} {error}")
                time.sleep(self.pause)
        finally:
            for http, _ in connections.values():
                http.close()

    def _request(self, connections: dict, turn: int, path: str) -> None:
        nodes = self.in_service()
        if not nodes:
            self._record(f"{path}: no node passes the health check")
            return
        for attempt in range(len(nodes)):
            node = nodes[(turn + attempt) % len(nodes)]
            http, wire = connections[node]
            for retry in (False, True):
                opened, received = wire.opened, wire.received
                try:
                    response = http.get(path)
                except httpx.ConnectError:
                    with self._lock:
                        self.refused[node] += 1
                    break  # to the next node
                except httpx.TransportError as error:
                    if not retry and wire.opened == opened and wire.received == received:
                        with self._lock:
                            self.retried.append(f"{node}{path}: {type(error).__name__} {error}")
                        continue
                    self._record(f"{node}{path}: {type(error).__name__} {error}")
                    return
                self._check(node, path, response)
                return
        self._record(f"{path}: every node in service refused the connection")

    def _check(self, node: str, path: str, response: httpx.Response) -> None:
        if response.status_code != self.expected[path]:
            self._record(f"{node}{path}: {response.status_code} {response.text[:80]!r}")
            return
        host = response.json()["host"] if path == self.hosts_from else None
        with self._lock:
            self.answers.append(time.monotonic())
            if host:
                self.hosts[host] += 1

    def _record(self, failure: str) -> None:
        with self._lock:
            self.failures.append((time.monotonic(), f"{time.strftime('%H:%M:%S')} {failure}"))

    def __enter__(self) -> "Load":
        self.started_at = datetime.now(UTC).isoformat()
        self._threads = []
        if self.health_path:
            self._threads += [
                threading.Thread(target=self._health_check, args=(node,), daemon=True)
                for node in self.nodes
            ]
            for thread in self._threads:
                thread.start()
            wait_until(lambda: len(self.health) == len(self.nodes), 10, "a first health check")
        clients = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.clients)
        ]
        for thread in clients:
            thread.start()
        self._threads += clients
        self.phase("start")
        return self

    def __exit__(self, *exc_info) -> None:
        self.ended = time.monotonic()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a client hangs"

    @property
    def answered(self) -> int:
        return len(self.answers)

    def wait_for_answers(self, count: int, what: str, timeout: float = 30) -> None:
        """Waits until COUNT more requests were answered as expected from now on."""
        target = self.answered + count
        wait_until(lambda: self.answered >= target, timeout, f"{count} requests answered {what}")

    def failures_since(self, since: float) -> list[str]:
        return [text for at, text in self.failures if at >= since]

    def check_answers(self, min_answers: int = 2, max_gap: float = 5.0, gaps_from: float = 0.0):
        """Answers kept arriving: at least MIN_ANSWERS in each phase, and from GAPS_FROM on never
        MAX_GAP seconds without one (from a phase's start to its first, between two, from the
        last to the end)."""
        bounds = [*self.phases, ("end", self.ended)]
        for (name, start), (_, end) in itertools.pairwise(bounds):
            inside = [at for at in self.answers if start <= at < end]
            assert len(inside) >= min_answers, f"{len(inside)} answers in {name}: {self.summary()}"
        times = [max(self.phases[0][1], gaps_from)]
        times += [at for at in self.answers if at >= times[0]] + [self.ended]
        gap = max(later - earlier for earlier, later in itertools.pairwise(times))
        assert gap <= max_gap, f"{gap:.1f} s without an answer: {self.summary()}"

    def out_of_service(self, node: str, state: str | None = None) -> list[float]:
        """How long each time NODE was out of service (STATE: only the times it was in it)."""
        changes = [*self.health.get(node, []), (self.ended, "end")]
        return [
            later - at
            for (at, seen), (later, _) in itertools.pairwise(changes)
            if (seen == state if state else seen != "in")
        ]

    def assert_no_node_left_service(self) -> None:
        """Where nginx is not replaced: every node passed every health check, and no connection
        was refused (a node refusing all along would otherwise just be skipped)."""
        assert not self.refused, self.summary()
        assert not any(self.out_of_service(node) for node in self.nodes), self.summary()

    def diagnosis(self) -> str:
        """More for a failure's message, from where the load went (a subclass says what)."""
        return ""

    def summary(self) -> str:
        start = self.phases[0][1]
        health = {
            node: [f"{at - start:+.1f}s {state}" for at, state in self.health[node]]
            for node in self.health
        }
        phases = [f"{at - start:+.1f}s {name}" for name, at in self.phases]
        diagnosis = self.diagnosis()
        return (
            f"{self.answered} answered, {len(self.failures)} failed, refused (sent to the next "
            f"node): {dict(self.refused)}, retried on a new connection: {len(self.retried)} "
            f"{self.retried[:3]}; phases: {phases}; health: {health}; "
            f"first failures: {[text for _, text in self.failures[:5]]}"
            f"{'; ' + diagnosis if diagnosis else ''}"
        )
