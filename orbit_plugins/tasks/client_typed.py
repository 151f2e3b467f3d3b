"""Typed clients of the ``tasks`` plugin's operations: :class:`AsyncTasks` and its blocking
twin :class:`Tasks`.

    tasks = AsyncTasks(client, "hpc1")
    [accepted] = await tasks.submit(TaskSpec(executable="hostname"))
    [record] = await tasks.wait([accepted.uid], timeout=60)
    print(record.state, record.stdout)

For Python callables, :class:`~orbit_plugins.tasks.client.AsyncOrbitExecutor` (futures) is
the simpler road; this client is for command lines, records and bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orbit_client.feature import AsyncFeatureClient, SyncFeatureClient

from .schema import CancelAllResult, CancelResult, State, SubmitResult, TaskRecord, TaskSpec

Spec = TaskSpec | Mapping[str, Any]


def _specs(specs: Iterable[Spec]) -> list[dict[str, Any]]:
    # validated here, so a bad spec fails before anything is sent
    return [
        (s if isinstance(s, TaskSpec) else TaskSpec.model_validate(s)).model_dump(
            exclude_defaults=True
        )
        for s in specs
    ]


class AsyncTasks(AsyncFeatureClient):
    """Tasks (commands, importable functions, pickled callables) on one endpoint."""

    plugin = "tasks"

    async def submit(self, *specs: Spec) -> list[SubmitResult]:
        """Hand over a batch; a spec with a known ``uid`` is not run again (idempotent)."""
        return await self._get_list(SubmitResult, "submit_tasks", tasks=_specs(specs))

    async def wait(self, uids: Iterable[str], *, timeout: float | None = None) -> list[TaskRecord]:
        """The records of ``uids`` once all are final, or when ``timeout`` seconds passed
        (``0``: a snapshot now); bounded by the client's call timeout as well."""
        return await self._get_list(TaskRecord, "wait_tasks", uids=list(uids), timeout=timeout)

    async def get(self, uid: str) -> TaskRecord:
        return await self._get(TaskRecord, "get_task", uid=uid)

    async def list(self, state: State | None = None, limit: int = 100) -> list[TaskRecord]:
        """Your most recent tasks, newest first (admins: everybody's)."""
        return await self._get_list(TaskRecord, "list_tasks", state=state, limit=limit)

    async def cancel(self, uid: str) -> CancelResult:
        """Cancel a queued or running task (a running one is killed)."""
        return await self._get(CancelResult, "cancel_task", uid=uid)

    async def cancel_all(self) -> int:
        """Cancel all your queued and running tasks; how many were."""
        return (await self._get(CancelAllResult, "cancel_all_tasks")).cancelled


class Tasks(SyncFeatureClient[AsyncTasks]):
    """Blocking :class:`AsyncTasks` on an :class:`~orbit_client.OrbitClient`."""

    feature = AsyncTasks

    def submit(self, *specs: Spec) -> list[SubmitResult]:
        return self._run(lambda t: t.submit(*specs))

    def wait(self, uids: Iterable[str], *, timeout: float | None = None) -> list[TaskRecord]:
        chosen = list(uids)
        return self._run(lambda t: t.wait(chosen, timeout=timeout))

    def get(self, uid: str) -> TaskRecord:
        return self._run(lambda t: t.get(uid))

    def list(self, state: State | None = None, limit: int = 100) -> list[TaskRecord]:
        return self._run(lambda t: t.list(state, limit))

    def cancel(self, uid: str) -> CancelResult:
        return self._run(lambda t: t.cancel(uid))

    def cancel_all(self) -> int:
        return self._run(lambda t: t.cancel_all())


__all__ = ["AsyncTasks", "Tasks"]
