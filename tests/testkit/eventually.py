"""``eventually()``: the suite's one way to wait for something instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


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
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        error: BaseException | None = None
        try:
            last = check()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last  # type: ignore[no-any-return]
        except AssertionError as exc:
            error = exc
        except Exception as exc:
            error = exc
        if time.monotonic() >= deadline:
            if error is not None:
                raise error
            raise AssertionError(
                f"not true within {timeout} s: {what or getattr(check, '__name__', check)}"
                f" (last value {last!r})"
            )
        await asyncio.sleep(interval)


__all__ = ["eventually"]
