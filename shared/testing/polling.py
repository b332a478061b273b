"""Poll with a deadline instead of sleeping a fixed time."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1,
               message: str = "condition not met") -> T:
    """Call ``check`` until it returns a truthy value without raising AssertionError; return that value.
    On timeout, re-raise the last AssertionError (or fail with ``message``)."""
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    while True:
        try:
            result = check()
            if result:
                return result
            last_error = None
        except AssertionError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            if last_error is not None:
                raise last_error
            raise AssertionError(f"{message} within {timeout}s")
        time.sleep(interval)
