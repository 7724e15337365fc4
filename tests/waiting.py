"""Polling for a condition, shared by every suite (tests/conftest.py puts this folder on
sys.path): tests wait for what they expect, never for a fixed time."""

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    *,
    not_yet: tuple[type[Exception], ...] = (),
) -> Any:
    """Polls until the condition returns something true, and returns it; fails naming `what`.

    An exception of a `not_yet` type counts as "not yet" (a server still starting, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if value := condition():
                return value
        except not_yet:
            pass
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(interval)


def wait_for(
    fetch: Callable[[], Any],
    accept: Callable[[Any], bool],
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> Any:
    """Polls fetch() until accept() takes what it returned, and returns that; a failure shows the
    last value fetched (a task's record, a page's checks), which says why it was not accepted."""
    seen: list = []

    def accepted() -> bool:
        seen[:] = [fetch()]
        return accept(seen[0])

    try:
        wait_until(accepted, timeout, what, interval)
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen: {seen[0] if seen else None!r}") from None
    return seen[0]
