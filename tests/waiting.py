"""Polling for a condition, shared by every suite (tests/conftest.py puts this folder on
sys.path): tests wait for what they expect, never for a fixed time."""

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.2,
    *,
    not_yet: tuple[type[Exception], ...] = (),
) -> Any:
    """Polls until the condition returns something true, and returns it; fails naming `what`.

    An exception of a `not_yet` type counts as "not yet" (a server still starting, say).
    `what` may be a function, asked at the failure: it can say what was seen last.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if value := condition():
                return value
        except not_yet:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"not within {timeout:.0f} s: {what() if callable(what) else what}"
            )
        time.sleep(interval)
