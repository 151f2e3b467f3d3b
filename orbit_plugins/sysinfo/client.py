"""Typed clients of the ``sysinfo`` plugin: :class:`AsyncSysinfo` and its blocking twin
:class:`Sysinfo`.

    info = AsyncSysinfo(client, "hpc1")
    metrics = await info.metrics(sections=["cpu", "memory"])
    print(metrics.cpu.percent, metrics.memory.available)

With ``OrbitClient``: ``Sysinfo(client, "hpc1").host_role().role``.
"""

from __future__ import annotations

from collections.abc import Sequence

from orbit_client.feature import AsyncFeatureClient, SyncFeatureClient

from .schema import HomedirResult, HostRole, Metrics, Section


class AsyncSysinfo(AsyncFeatureClient):
    """The host an endpoint runs on: metrics, host role, home directory."""

    plugin = "sysinfo"

    async def metrics(
        self, sections: Sequence[Section] | None = None, *, fresh: bool = False
    ) -> Metrics:
        """A snapshot of ``sections`` (all when ``None``); ``fresh`` collects it now instead
        of returning the endpoint's background snapshot (at most ``prefetch_interval`` old)."""
        chosen = list(sections) if sections is not None else None
        return await self._get(Metrics, "metrics", sections=chosen, fresh=fresh)

    async def host_role(self) -> HostRole:
        """Login node, compute node, inside a batch job or a laptop, with the evidence."""
        return await self._get(HostRole, "host_role")

    async def homedir(self) -> str:
        """The home directory of the user running the endpoint."""
        return (await self._get(HomedirResult, "homedir")).path


class Sysinfo(SyncFeatureClient[AsyncSysinfo]):
    """Blocking :class:`AsyncSysinfo` on an :class:`~orbit_client.OrbitClient`."""

    feature = AsyncSysinfo

    def metrics(self, sections: Sequence[Section] | None = None, *, fresh: bool = False) -> Metrics:
        return self._run(lambda s: s.metrics(sections, fresh=fresh))

    def host_role(self) -> HostRole:
        return self._run(lambda s: s.host_role())

    def homedir(self) -> str:
        return self._run(lambda s: s.homedir())


__all__ = ["AsyncSysinfo", "Sysinfo"]
