"""The :class:`~orbit_plugins.base.PluginContext` an endpoint hands each plugin."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from orbit_client import AsyncOrbitClient, EndpointInfo

from .outbound import Outbound
from .publisher import Publisher

log = logging.getLogger(__name__)
MAX_PENDING_EVENTS = 10_000


class EventOutbox:
    """Bounded, thread-safe queue of events, drained by one task onto the publisher."""

    def __init__(self, publisher: Publisher, loop: asyncio.AbstractEventLoop) -> None:
        self._publisher = publisher
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, str, dict[str, Any], bool]] = asyncio.Queue(
            MAX_PENDING_EVENTS
        )
        self.dropped = 0

    def put(self, plugin: str, topic: str, data: dict[str, Any], persistent: bool) -> None:
        """Callable from any thread; drops (and counts) when the queue is full."""

        def enqueue() -> None:
            try:
                self._queue.put_nowait((plugin, topic, data, persistent))
            except asyncio.QueueFull:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("event outbox full: %d events dropped", self.dropped)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            enqueue()
        else:
            self._loop.call_soon_threadsafe(enqueue)

    async def drain(self) -> None:
        while True:
            plugin, topic, data, persistent = await self._queue.get()
            await self._publisher.event(plugin, topic, data, persistent=persistent)

    async def flush(self, timeout: float) -> None:
        """Publish what is queued, for at most ``timeout`` seconds (used at shutdown)."""
        async with asyncio.timeout(timeout):
            while not self._queue.empty():
                plugin, topic, data, persistent = self._queue.get_nowait()
                await self._publisher.event(plugin, topic, data, persistent=persistent)


class EndpointContext:
    """Per-plugin view of the endpoint."""

    def __init__(
        self, endpoint: str, plugin: str, state_root: Path, outbox: EventOutbox, outbound: Outbound
    ) -> None:
        self._endpoint = endpoint
        self._plugin = plugin
        self._state_dir = state_root / "plugins" / plugin
        self._outbox = outbox
        self._outbound = outbound
        self._logger = logging.getLogger(f"orbit.plugin.{plugin}")

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @property
    def state_dir(self) -> str:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        return str(self._state_dir)

    def emit(self, topic: str, data: dict[str, Any], *, persistent: bool = False) -> None:
        self._outbox.put(self._plugin, topic, data, persistent)

    async def client(self) -> AsyncOrbitClient:
        return await self._outbound.client()

    def topology(self) -> dict[str, EndpointInfo]:
        return self._outbound.topology()


__all__ = ["EndpointContext", "EventOutbox"]
