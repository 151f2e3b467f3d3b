"""Background work a plugin repeats while the endpoint runs (part of the plugin SDK).

::

    self._poller = Periodic("globus-poller", lambda: self.cfg.poll_interval, self._poll_once)
    async def start(self): self._poller.start(self.ctx.logger)
    async def stop(self): await self._poller.stop()

``func`` is blocking code, run in a worker thread every ``interval()`` seconds; a failure is
logged and the next round runs as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any


class Periodic:
    """Run ``func`` off the event loop every ``interval()`` seconds until :meth:`stop`."""

    def __init__(self, name: str, interval: Callable[[], float], func: Callable[[], Any]) -> None:
        self.name = name
        self._interval = interval
        self._func = func
        self._task: asyncio.Task[None] | None = None

    def start(self, logger: logging.Logger) -> None:
        """Start the loop (once; a second call does nothing)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(logger), name=self.name)

    async def _loop(self, logger: logging.Logger) -> None:
        while True:
            await asyncio.sleep(self._interval())
            try:
                await asyncio.to_thread(self._func)
            except Exception:
                logger.warning("%s failed", self.name, exc_info=True)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["Periodic"]
