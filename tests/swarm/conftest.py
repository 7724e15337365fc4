"""Swarm tests: the stack deployed by scripts/deploy.sh to a multi-node Docker Swarm.

scripts/test.sh starts the cluster (.ci/swarm.sh: three Docker engines in containers, one
manager and two workers, and a registry) and gives its whereabouts in the environment:
SWARM_CONTEXT (a docker context of the manager), SWARM_REGISTRY, SWARM_NODES (the nodes'
addresses, node1 the manager first) and SWARM_NODE_CONTAINERS (the containers that are the nodes,
in the same order). Requests go to nginx on each node's port 80, as a load balancer's would.
"""

import functools
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import waiting
from load import Load

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
# Which web task answered, tasks to kill a worker under, a migration to break: the demo's.
if not (REPO / "app" / "demo").is_dir():
    pytest.skip(
        "the swarm tests drive the demo app, which scripts/init.sh --no-demo removed",
        allow_module_level=True,
    )


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


@dataclass
class SwarmLoad(Load):
    """The shared load (tests/load.py) behind a load balancer that health-checks each node's
    nginx. /api/info/ names the web task that answered; a failure's message adds what each
    node's nginx logged meanwhile."""

    expected: dict[str, int] = field(default_factory=lambda: {"/readyz": 200, "/api/info/": 200})
    health_path: str | None = "/healthz"
    hosts_from: str | None = "/api/info/"

    def diagnosis(self) -> str:
        return f"nginx's errors meanwhile: {nginx_errors(self.nodes, self.started_at)}"


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
