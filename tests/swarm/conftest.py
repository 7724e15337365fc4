"""Swarm tests: the stack deployed by scripts/deploy.sh to a multi-node Docker Swarm.

scripts/test.sh starts the cluster (.ci/swarm.sh: three Docker engines in containers, one
manager and two workers, and a registry) and gives its whereabouts in the environment:
SWARM_CONTEXT (a docker context of the manager), SWARM_REGISTRY, SWARM_NODES (the nodes'
addresses, node1 the manager first) and SWARM_NODE_CONTAINERS (the containers that are the nodes,
in the same order). Requests go to nginx on each node's port 80, as a load balancer's would.
"""

import os
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

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


def wait_until(condition, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@dataclass
class Load:
    """Steady requests from a few clients, spread over the nodes as a load balancer would.

    A node whose port refuses the connection (its nginx is being replaced) is skipped for the
    next, as a load balancer's health check would; anything else that is not an answer below
    500 is a failure: a 5xx, a timeout, a connection reset.
    """

    nodes: list[str]
    paths: tuple[str, ...] = ("/readyz", "/api/info/")
    # Steady, well below what the two web tasks can serve on this machine: a saturated site
    # queues requests for seconds, and a stopping task resets the ones still queued.
    clients: int = 2
    failures: list[str] = field(default_factory=list)
    answered: int = 0
    refused: int = 0
    hosts: Counter = field(default_factory=Counter)
    last_failure: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, offset: int) -> None:
        # A new connection for every request: a load balancer's health checks find a stopped
        # nginx; a kept-alive connection would instead fail on it.
        with httpx.Client(timeout=10, headers={"Connection": "close"}) as client:
            turn = offset
            while not self._stop.is_set():
                turn += 1
                path = self.paths[turn % len(self.paths)]
                for attempt in range(len(self.nodes)):
                    node = self.nodes[(turn + attempt) % len(self.nodes)]
                    try:
                        response = client.get(f"http://{node}{path}")
                    except httpx.ConnectError:
                        with self._lock:
                            self.refused += 1
                        continue
                    except httpx.HTTPError as error:
                        self._record(f"{node}{path}: {type(error).__name__} {error}")
                    else:
                        if response.status_code >= 500:
                            self._record(f"{node}{path}: {response.status_code}")
                        else:
                            with self._lock:
                                self.answered += 1
                                if path == "/api/info/":
                                    self.hosts[response.json()["host"]] += 1
                    break
                else:
                    self._record(f"{path}: every node refused the connection")
                time.sleep(0.05)

    def _record(self, failure: str) -> None:
        with self._lock:
            self.failures.append(f"{time.strftime('%H:%M:%S')} {failure}")
            self.last_failure = time.monotonic()

    def __enter__(self) -> "Load":
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def summary(self) -> str:
        return (
            f"{self.answered} answered, {len(self.failures)} failed, {self.refused} refused "
            f"connections skipped; first failures: {self.failures[:5]}"
        )


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
