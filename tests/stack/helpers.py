"""Shared by the stack tests: where the stack is, and `docker compose` against it."""

import os
import subprocess

STACK_URL = os.environ.get("STACK_URL", "http://127.0.0.1:18000")
VARIANT = os.environ.get("STACK_VARIANT", "wsgi")


def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs docker compose on the stack that COMPOSE_FILE and COMPOSE_PROJECT_NAME select."""
    return subprocess.run(["docker", "compose", *args], capture_output=True, text=True, check=check)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
