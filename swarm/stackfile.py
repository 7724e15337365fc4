"""Reads `docker compose config --format json` on stdin, writes a `docker stack deploy` file.

`docker stack deploy` still reads the older version 3 schema of the compose file, which refuses a
few things compose writes: the project's `name`, empty (null) values, a published port as a
string, and `profiles` (compose has applied them already). What Swarm does not apply is left out
rather than warned about at every deploy: `build` (the images are built and pushed first),
`restart` (Swarm restarts every task that stops) and `security_opt` (a Swarm service cannot set
no-new-privileges; its containers still run as a non-root user without capabilities).
Everything else is compose's own rendering, unchanged.
"""

import json
import sys
from typing import Any

NOT_FOR_SWARM = ("profiles", "build", "restart", "security_opt")


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def stack_file(config: dict[str, Any]) -> dict[str, Any]:
    stack = without_nulls(config)
    del stack["name"]
    for service in stack["services"].values():
        for key in NOT_FOR_SWARM:
            service.pop(key, None)
        for port in service.get("ports", []):
            port["published"] = int(port["published"])
    return stack


if __name__ == "__main__":
    json.dump(stack_file(json.load(sys.stdin)), sys.stdout, indent=2)
