"""Reads `docker compose config --format json` on stdin, writes a `docker stack deploy` file.

Usage: python3 swarm/stackfile.py SERVICE...   (the services to deploy; the rest are left out)

`docker stack deploy` still reads the older version 3 schema of the compose file. What it
refuses, or what a Swarm service says another way, is translated here, once for every service,
so that compose.yaml stays the one description of the services and swarm/compose.swarm.yaml
holds only what a swarm does differently:
- left out: the project's `name` (the stack has its own), empty (null) values, `profiles`,
  `build` and `pull_policy` (deploy.sh builds and pushes first), `restart` (Swarm
  restarts every task that stops), `security_opt` (a Swarm service cannot set
  no-new-privileges; the containers still run as non-root users without capabilities) and
  `depends_on` (Swarm has no start order: a task restarts until what it needs answers, and the
  healthchecks gate the rolling updates);
- `mem_limit` and `pids_limit` become the service's resource limits;
- each `tmpfs` becomes a tmpfs mount, without the owner compose gives it (a Swarm tmpfs has
  none; it keeps the mode of the directory it covers);
- a volume mounted at /run/secrets (the one-host stack's secrets volume) is left out: Swarm
  mounts the secrets there;
- a published port is a number, not the string compose writes.
"""

import json
import sys
from typing import Any

NOT_FOR_SWARM = ("profiles", "build", "pull_policy", "restart", "security_opt", "depends_on")
SECRETS_DIRECTORY = "/run/secrets"


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def swarm_service(service: dict[str, Any]) -> dict[str, Any]:
    for key in NOT_FOR_SWARM:
        service.pop(key, None)
    limits = service.setdefault("deploy", {}).setdefault("resources", {}).setdefault("limits", {})
    for compose_key, swarm_key in (("mem_limit", "memory"), ("pids_limit", "pids")):
        if compose_key in service:
            limits.setdefault(swarm_key, service.pop(compose_key))
    volumes = [v for v in service.get("volumes", []) if v["target"] != SECRETS_DIRECTORY]
    volumes += [
        {"type": "tmpfs", "target": entry.split(":")[0]} for entry in service.pop("tmpfs", [])
    ]
    service["volumes"] = volumes
    for port in service.get("ports", []):
        port["published"] = int(port["published"])
    return service


def stack_file(config: dict[str, Any], services: list[str]) -> dict[str, Any]:
    stack = without_nulls(config)
    del stack["name"]
    stack["services"] = {
        name: swarm_service(service)
        for name, service in stack["services"].items()
        if name in services
    }
    return stack


if __name__ == "__main__":
    json.dump(stack_file(json.load(sys.stdin), sys.argv[1:]), sys.stdout, indent=2)
