"""The endpoint's own Orbit client: how plugins call other endpoints (``ctx.client()``).

It connects with the endpoint's broker URL, so every call it makes carries the endpoint's
broker-stamped ``user_id``: a target sees this endpoint calling, never the user whose request
made a plugin call out (acting for a caller needs a grant of its own; see
docs/plugins/orchestration.md). One client per endpoint process, shared by its plugins,
connected on first use (or at start when a plugin follows topology), closed after the
plugins stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from orbit_client import AsyncOrbitClient, EndpointInfo
from orbit_plugins.base import Plugin

log = logging.getLogger(__name__)


class Outbound:
    """Lazily connected :class:`AsyncOrbitClient` plus the topology hooks of the plugins."""

    def __init__(
        self, url: str, spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]
    ) -> None:
        self._url, self._spawn = url, spawn
        self._client: AsyncOrbitClient | None = None
        self._lock = asyncio.Lock()
        self._followers: list[Plugin] = []

    def follow(self, plugin: Plugin) -> None:
        """Call ``plugin.on_topology_change`` on every presence change from now on."""
        self._followers.append(plugin)

    @property
    def wanted_at_start(self) -> bool:
        """Some plugin follows topology: connect when the endpoint starts, not on first use."""
        return bool(self._followers)

    async def client(self) -> AsyncOrbitClient:
        async with self._lock:
            if self._client is None:
                client = AsyncOrbitClient(url=self._url)
                await client.connect()
                client.register_topology_callback(self._changed)
                self._client = client
            return self._client

    def topology(self) -> dict[str, EndpointInfo]:
        return self._client.endpoints() if self._client else {}

    def _changed(self, endpoint: str, info: EndpointInfo) -> None:
        for plugin in self._followers:
            try:
                result = plugin.on_topology_change(endpoint, info)
            except Exception:
                log.exception("plugin %s failed in on_topology_change", plugin.name)
                continue
            if asyncio.iscoroutine(result):
                self._spawn(_logged(plugin.name, result))

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None


async def _logged(plugin: str, coro: Coroutine[Any, Any, Any]) -> None:
    try:
        await coro
    except Exception:
        log.exception("plugin %s failed in on_topology_change", plugin)


__all__ = ["Outbound"]
