"""The ``sysinfo`` plugin: home directory, host role and cached system metrics.

A background task refreshes a full snapshot every ``prefetch_interval`` seconds, so
``metrics`` answers from memory; collection itself always runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Collection
from typing import Any

from orbit_plugins.base import Plugin, operation

from .collect import collect_metrics
from .role import detect_host_role
from .schema import (
    ALL_SECTIONS,
    HomedirResult,
    HostRole,
    Metrics,
    MetricsArgs,
    MetricsSummary,
    Section,
    SysinfoSettings,
)


def summarize(snapshot: Metrics) -> MetricsSummary:
    """The small payload of the ``metrics`` event."""
    system, cpu, memory = snapshot.system, snapshot.cpu, snapshot.memory
    return MetricsSummary(
        hostname=system.hostname if system else "",
        collected_at=snapshot.collected_at,
        cpu_percent=cpu.percent if cpu else None,
        memory_percent=memory.percent if memory else None,
        load_avg=system.load_avg if system else None,
        gpu_utilization_percent=[g.utilization_percent for g in snapshot.gpus or []],
    )


def select(snapshot: Metrics, sections: Collection[Section] | None) -> Metrics:
    """``snapshot`` with only ``sections`` kept (all when None)."""
    if sections is None:
        return snapshot
    drop: dict[str, Any] = {s: None for s in ALL_SECTIONS if s not in sections}
    return snapshot.model_copy(update=drop)


class SysinfoPlugin(Plugin):
    """Host hardware, utilisation and role; default on every endpoint."""

    name = "sysinfo"
    version = "0.1.0"
    description = "System information: home dir, host role, CPU/memory/disk/network/GPU metrics."
    settings_model = SysinfoSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self._snapshot: Metrics | None = None
        self._snapshot_started = float("-inf")
        """``time.monotonic()`` when collection of ``_snapshot`` began."""
        self._refresh_lock = asyncio.Lock()
        self._prefetch: asyncio.Task[None] | None = None
        self._role: HostRole | None = None

    @property
    def cfg(self) -> SysinfoSettings:
        """The validated settings."""
        if not isinstance(self.settings, SysinfoSettings):
            raise TypeError("sysinfo settings were not validated")
        return self.settings

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background prefetch (unless ``prefetch_interval`` is 0)."""
        if self.cfg.prefetch_interval > 0 and self._prefetch is None:
            self._prefetch = asyncio.create_task(self._prefetch_loop(), name="sysinfo-prefetch")

    async def stop(self) -> None:
        """Cancel the prefetch task (a collection thread in flight is left to finish)."""
        task, self._prefetch = self._prefetch, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _prefetch_loop(self) -> None:
        while True:
            try:
                snapshot = await self._refresh(time.monotonic())
                if self.cfg.emit_events:
                    self.ctx.emit("metrics", summarize(snapshot).model_dump(mode="json"))
            except Exception:
                self.ctx.logger.warning("sysinfo prefetch failed", exc_info=True)
            await asyncio.sleep(self.cfg.prefetch_interval)

    async def _refresh(self, not_before: float) -> Metrics:
        """A full snapshot begun at or after ``not_before`` (monotonic), collecting if needed.

        Callers queued behind a collection in flight reuse it when it is recent enough.
        """
        async with self._refresh_lock:
            if self._snapshot is not None and self._snapshot_started >= not_before:
                return self._snapshot
            started = time.monotonic()
            snapshot = await asyncio.to_thread(
                collect_metrics, ALL_SECTIONS, self.cfg.cpu_sample_seconds, self.cfg.tool_timeout
            )
            self._snapshot, self._snapshot_started = snapshot, started
            return snapshot

    def _cached(self) -> Metrics | None:
        age = time.monotonic() - self._snapshot_started
        return self._snapshot if age <= self.cfg.prefetch_interval else None

    # ------------------------------------------------------------------ operations

    @operation(idempotent=True)
    def homedir(self) -> HomedirResult:
        """Home directory of the user running the endpoint."""
        return HomedirResult(path=os.path.expanduser("~"))

    @operation(idempotent=True)
    async def host_role(self) -> HostRole:
        """What kind of host this is (login, compute, batch-job, laptop) and why."""
        if self._role is None:
            self._role = await asyncio.to_thread(detect_host_role)
        return self._role

    @operation(idempotent=True)
    async def metrics(self, args: MetricsArgs) -> Metrics:
        """System, CPU, memory, disk, network and GPU metrics (cached unless ``fresh``)."""
        asked, sections = time.monotonic(), args.sections
        if args.fresh and sections is not None and set(sections) != set(ALL_SECTIONS):
            return await asyncio.to_thread(
                collect_metrics, sections, self.cfg.cpu_sample_seconds, self.cfg.tool_timeout
            )
        snapshot = None if args.fresh else self._cached()
        if snapshot is None:
            max_age = 0.0 if args.fresh else self.cfg.prefetch_interval
            snapshot = await self._refresh(asked - max_age)
        return select(snapshot, sections)


__all__ = ["SysinfoPlugin", "select", "summarize"]
