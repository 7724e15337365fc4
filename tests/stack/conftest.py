"""Stack tests: run against a stack that scripts/smoke.sh --keep started (scripts/test.sh does).

They talk to it as a user would, through nginx's published port, and use `docker compose` for
what only an operator can see.
"""

import httpx
import pytest

from helpers import STACK_URL


@pytest.fixture(scope="session")
def http():
    with httpx.Client(base_url=STACK_URL, timeout=10) as client:
        yield client
