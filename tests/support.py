"""Small helpers shared by the test packages: free ports and polling with a clear failure message."""

import socket
import time
from collections.abc import Callable
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(
    condition: Callable[[], Any], timeout: float, what: Callable[[], str] | str, interval: float = 0.1
) -> Any:
    """Poll `condition` until it returns something truthy; else fail with `what` (text or a function)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except AssertionError:
            raise
        except Exception as error:  # not up yet: connection refused, a file being written, ...
            last_error = error
        time.sleep(interval)
    message = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}\nlast error: {last_error!r}")
