"""Attribute-style plugin helpers: ``client.plugin("hpc1", "sysinfo").metrics(fresh=True)``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._async import AsyncOrbitClient
    from ._sync import OrbitClient


class AsyncPluginProxy:
    """Each attribute is an async function calling ``<plugin>.<attribute>``."""

    def __init__(self, client: AsyncOrbitClient, endpoint: str, plugin: str) -> None:
        self._client, self._endpoint, self._plugin = client, endpoint, plugin

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def invoke(**args: Any) -> Any:
            return await self._client.call(self._endpoint, f"{self._plugin}.{method}", **args)

        invoke.__name__ = method
        return invoke


class PluginProxy:
    """Blocking twin of :class:`AsyncPluginProxy`."""

    def __init__(self, client: OrbitClient, endpoint: str, plugin: str) -> None:
        self._client, self._endpoint, self._plugin = client, endpoint, plugin

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def invoke(**args: Any) -> Any:
            return self._client.call(self._endpoint, f"{self._plugin}.{method}", **args)

        invoke.__name__ = method
        return invoke


__all__ = ["AsyncPluginProxy", "PluginProxy"]
