"""Helpers for unit-testing plugins without an endpoint or a broker."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient, EndpointInfo


class FakeContext:
    """A :class:`~orbit_plugins.base.PluginContext` that records the events it is given."""

    def __init__(self, state_dir: Path, endpoint: str = "ep") -> None:
        self._state_dir = Path(state_dir)
        self._endpoint = endpoint
        self.events: list[tuple[str, dict[str, Any]]] = []

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger("orbit.plugin.test")

    @property
    def state_dir(self) -> str:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        return str(self._state_dir)

    def emit(self, topic: str, data: dict[str, Any], *, persistent: bool = False) -> None:
        self.events.append((topic, data))

    async def client(self) -> AsyncOrbitClient:
        raise RuntimeError(
            "FakeContext has no broker: test a plugin that calls out with"
            " orbit_endpoint.testing.memory_endpoint"
        )

    def topology(self) -> dict[str, EndpointInfo]:
        return {}


__all__ = ["FakeContext"]
