"""``eventually()``: the suite's one way to wait for something instead of sleeping.

``await eventually(check)`` in async tests, ``eventually_sync(check)`` in plain ones; both call
``check`` until it returns something truthy and return that value.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Deadline:
    """The bookkeeping both loops share: the deadline, the last value, the last error."""

    def __init__(self, check: Callable[..., Any], timeout: float, what: str | None) -> None:
        self.end = time.monotonic() + timeout
        self.timeout = timeout
        self.what = what or getattr(check, "__name__", repr(check))
        self.last: Any = None
        self.error: BaseException | None = None

    def give_up(self) -> None:
        """Raise the last error, or an ``AssertionError`` naming ``what``, once past the end."""
        if time.monotonic() < self.end:
            return
        if self.error is not None:
            raise self.error
        raise AssertionError(
            f"not true within {self.timeout} s: {self.what} (last value {self.last!r})"
        )


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str | None = None,
) -> T:
    """Call ``check`` (plain or async) until it returns something truthy; return that.

    An exception from ``check`` counts as "not yet" until the deadline, then it is raised;
    a falsy last value fails with an ``AssertionError`` naming ``what``.
    """
    state = _Deadline(check, timeout, what)
    while True:
        state.error = None
        try:
            value = check()
            state.last = await value if inspect.isawaitable(value) else value
            if state.last:
                return state.last  # type: ignore[no-any-return]
        except Exception as exc:
            state.error = exc
        state.give_up()
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str | None = None,
) -> T:
    """:func:`eventually` for code without an event loop (threads, subprocesses, files)."""
    state = _Deadline(check, timeout, what)
    while True:
        state.error = None
        try:
            state.last = check()
            if state.last:
                return state.last
        except Exception as exc:
            state.error = exc
        state.give_up()
        time.sleep(interval)


__all__ = ["eventually", "eventually_sync"]
