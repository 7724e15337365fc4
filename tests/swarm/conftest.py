"""Swarm tests: the stack deployed by scripts/deploy.sh to a multi-node Docker Swarm.

scripts/test.sh starts the cluster (.ci/swarm.sh: three Docker engines in containers, one
manager and two workers, and a registry) and gives its whereabouts in the environment:
SWARM_CONTEXT (a docker context of the manager), SWARM_REGISTRY, SWARM_NODES (the nodes'
addresses, node1 the manager first) and SWARM_NODE_CONTAINERS (the containers that are the nodes,
in the same order). Requests go to nginx on each node's port 80, as a load balancer's would.
"""

import functools
import itertools
import os
import re
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpcore
import httpx
import pytest
import waiting

REPO = Path(__file__).resolve().parents[2]
CONTEXT = os.environ.get("SWARM_CONTEXT", "")
REGISTRY = os.environ.get("SWARM_REGISTRY", "")
NODES = [node for node in os.environ.get("SWARM_NODES", "").split(",") if node]
NODE_CONTAINERS = [name for name in os.environ.get("SWARM_NODE_CONTAINERS", "").split(",") if name]
VARIANT = os.environ.get("STACK_VARIANT", "wsgi")
STACK = f"swarmtest-{VARIANT}"
REPOSITORY = f"{REGISTRY}/{STACK}"

if not (CONTEXT and REGISTRY and len(NODES) == 3 and len(NODE_CONTAINERS) == 3):
    pytest.skip("no swarm: scripts/test.sh starts one (.ci/swarm.sh)", allow_module_level=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "disruptive: stops or kills a node; runs last")


def run(*args: str, check: bool = True, input_text: str | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, input=input_text)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def swarm(*args: str, check: bool = True) -> str:
    """A docker command on the swarm's manager."""
    return run("docker", "--context", CONTEXT, *args, check=check)


def deploy(tag: str, *options: str, check: bool = True) -> subprocess.CompletedProcess:
    """scripts/deploy.sh, as a user runs it, to this variant's stack."""
    variant = ["--asgi"] if VARIANT == "asgi" else []
    result = subprocess.run(
        [
            "scripts/deploy.sh",
            *variant,
            "--context",
            CONTEXT,
            "--stack",
            STACK,
            "--tag",
            tag,
            *options,
            REPOSITORY,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **DEPLOY_ENV},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"deploy.sh failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


# The site answers to the nodes' addresses; a task taken by a worker that died is handed out
# again after 20 s (CELERY_VISIBILITY_TIMEOUT), not the default 5 minutes.
DEPLOY_ENV = {
    "DJANGO_ALLOWED_HOSTS": ",".join(NODES),
    "CELERY_VISIBILITY_TIMEOUT": "20",
    "PUBLIC_HTTP_PORT": "80",
}


def running_tasks(service: str) -> list[tuple[str, str]]:
    """(node host name, image) of each running task of the stack's SERVICE."""
    output = swarm(
        "service",
        "ps",
        f"{STACK}_{service}",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}}\t{{.Image}}\t{{.CurrentState}}",
    )
    return [
        (node, image)
        for node, image, state in (line.split("\t") for line in output.splitlines())
        if state.startswith("Running")
    ]


def on_node(address: str, *args: str, check: bool = True) -> str:
    """A docker command on one node's own engine."""
    return run("docker", "-H", f"tcp://{address}:2375", *args, check=check)


def node_names() -> list[str]:
    """Host names of the swarm's nodes, in SWARM_NODES order (node1, the manager, first)."""
    return [on_node(address, "info", "--format", "{{.Name}}").strip() for address in NODES]


# Each poll asks a node's engine: once a second is enough.
wait_until = functools.partial(waiting.wait_until, interval=1.0)


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


def _client_with_wire(node: str) -> tuple[httpx.Client, _Wire]:
    wire = _Wire()
    transport = httpx.HTTPTransport()
    transport._pool._network_backend = wire  # httpx takes no backend of its own
    return httpx.Client(base_url=f"http://{node}", transport=transport, timeout=10), wire


# What a healthy site answers: anything else (a 404 from a wrong route, a 400 from a host it
# does not serve) is a failure.
EXPECTED_STATUS = {"/readyz": 200, "/api/info/": 200}
HEALTH_INTERVAL = 0.25


@dataclass
class Load:
    """Steady requests from a few clients, spread over the nodes as a load balancer does.

    The balancer's part: a health check of each node's /healthz every 0.25 s, new requests only
    to the nodes that pass it, and a request whose connection is refused sent to the next node
    (it never reached a server). The visitors' part: connections kept alive, as browsers do, and
    a browser's one retry: a request that went out on a kept-alive connection which the server
    closed before a byte of the answer arrived is sent again once, on a new connection (the
    server closes idle connections whenever it likes; it had not seen that request). Every other
    outcome than the expected status with a readable body is a failure: another status, a reset
    or a timeout on a new connection, a second failure, an answer that is not the JSON asked for.
    """

    nodes: list[str]
    paths: tuple[str, ...] = tuple(EXPECTED_STATUS)
    # Steady, well below what the two web tasks can serve on this machine: a saturated site
    # queues requests for seconds, and a stopping task resets the ones still queued.
    clients: int = 2
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
        with self._lock:
            return [n for n in self.nodes if self.health.get(n) and self.health[n][-1][1] == "in"]

    def _health_check(self, node: str) -> None:
        # A new connection for each check, as balancers do: a node that refuses is seen at once.
        with httpx.Client(timeout=5, headers={"Connection": "close"}) as http:
            while not self._stop.is_set():
                try:
                    status = http.get(f"http://{node}/healthz").status_code
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
        connections = {node: _client_with_wire(node) for node in self.nodes}
        turn = offset
        try:
            while not self._stop.is_set():
                turn += 1
                path = self.paths[turn % len(self.paths)]
                try:
                    self._request(connections, turn, path)
                except Exception as error:  # noqa: BLE001 - whatever it is, it is a failure
                    self._record(f"{path}: {type(error).__name__} {error}")
                time.sleep(0.05)
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
        if response.status_code != EXPECTED_STATUS[path]:
            self._record(f"{node}{path}: {response.status_code} {response.text[:80]!r}")
            return
        host = response.json()["host"] if path == "/api/info/" else None
        with self._lock:
            self.answers.append(time.monotonic())
            if host:
                self.hosts[host] += 1

    def _record(self, failure: str) -> None:
        with self._lock:
            self.failures.append((time.monotonic(), f"{time.strftime('%H:%M:%S')} {failure}"))

    def __enter__(self) -> "Load":
        self.started_at = datetime.now(UTC).isoformat()
        self._threads = [
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
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in self._threads), "a client hangs"

    @property
    def answered(self) -> int:
        return len(self.answers)

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

    def summary(self) -> str:
        health = {
            node: [f"{at - self.phases[0][1]:+.1f}s {state}" for at, state in self.health[node]]
            for node in self.health
        }
        phases = [f"{at - self.phases[0][1]:+.1f}s {name}" for name, at in self.phases]
        return (
            f"{self.answered} answered, {len(self.failures)} failed, refused (sent to the next "
            f"node): {dict(self.refused)}, retried on a new connection: {len(self.retried)} "
            f"{self.retried[:3]}; phases: {phases}; health: {health}; "
            f"first failures: {[text for _, text in self.failures[:5]]}; "
            f"nginx's errors meanwhile: {nginx_errors(self.nodes, self.started_at)}"
        )


def nginx_errors(nodes: list[str], since: str) -> dict[str, list[str]]:
    """What each node's nginx logged at level warn or above since a time: why it failed a
    request (its error log goes to stderr; the access log's JSON lines do not match)."""
    errors = {}
    for address in nodes:
        names = on_node(
            address,
            "ps",
            "--all",
            "--quiet",
            "--filter",
            f"label=com.docker.swarm.service.name={STACK}_nginx",
            check=False,
        ).split()
        lines = []
        for name in names:
            result = subprocess.run(
                ["docker", "-H", f"tcp://{address}:2375", "logs", "--since", since, name],
                capture_output=True,
                text=True,
                check=False,
            )
            lines += [
                line[:300]
                for line in (result.stdout + result.stderr).splitlines()
                if re.search(r"\[(warn|error|crit|alert|emerg)\]", line)
            ]
        errors[address] = lines[-10:]
    return errors


@pytest.fixture(scope="session")
def deployed():
    """The stack deployed once, tag v1, every service converged."""
    # Images only this machine has (stand-ins) reach the nodes through the registry.
    for variable in ("POSTGRES_IMAGE", "REDIS_IMAGE"):
        local = os.environ.get(variable)
        if local:
            remote = f"{REGISTRY}/{local.split('/')[-1]}"
            run("docker", "tag", local, remote)
            run("docker", "push", "--quiet", remote)
            DEPLOY_ENV[variable] = remote
    result = deploy("v1")
    yield result
    if os.environ.get("SWARM_KEEP_STACK"):  # to look around after a failure
        return
    swarm("stack", "rm", STACK, check=False)
    # Gone from every node, so the next variant's nginx finds port 80 free.
    wait_until(
        lambda: (
            not any(
                on_node(
                    address,
                    "ps",
                    "--quiet",
                    "--filter",
                    f"label=com.docker.stack.namespace={STACK}",
                    check=False,
                ).strip()
                for address in NODES
            )
        ),
        120,
        f"stack {STACK} removed",
    )
