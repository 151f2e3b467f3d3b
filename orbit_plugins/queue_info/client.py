"""Typed clients of the ``queue_info`` plugin: :class:`AsyncQueueInfo` and its blocking twin
:class:`QueueInfo`.

    qi = AsyncQueueInfo(client, "hpc1")
    for queue in (await qi.get_info()).queues.values():
        print(queue.name, queue.nodes_idle, queue.max_jobs_per_user)
    mine = await qi.list_all_jobs()          # the endpoint user's jobs; user="*" for everyone

``force=True`` bypasses the endpoint's cache (``cache_ttl``, 60 s by default).
"""

from __future__ import annotations

from orbit_client.feature import AsyncFeatureClient, SyncFeatureClient

from .schema import (
    Allocation,
    AllocationsResult,
    Backend,
    BackendResult,
    BatchJob,
    CancelResult,
    InfoResult,
    JobAllocation,
    JobAllocationResult,
    JobsResult,
)


class AsyncQueueInfo(AsyncFeatureClient):
    """The batch system (Slurm or PBS) of an endpoint's host: queues, jobs, allocations."""

    plugin = "queue_info"

    async def backend(self) -> Backend:
        """``slurm``, ``pbs`` or ``none``."""
        return (await self._get(BackendResult, "backend")).backend

    async def job_allocation(self) -> JobAllocation | None:
        """The batch job the endpoint runs inside, ``None`` outside one."""
        return (await self._get(JobAllocationResult, "job_allocation")).allocation

    async def get_info(self, user: str | None = None, *, force: bool = False) -> InfoResult:
        """Every queue (partition) with its nodes, limits and load; ``user`` (default: the
        endpoint's user) decides the per-user limits shown."""
        return await self._get(InfoResult, "get_info", user=user, force=force)

    async def list_jobs(
        self, queue: str, user: str | None = None, *, force: bool = False
    ) -> list[BatchJob]:
        """Jobs in ``queue`` of ``user`` (default: the endpoint's user; ``"*"``: everyone)."""
        return (await self._get(JobsResult, "list_jobs", queue=queue, user=user, force=force)).jobs

    async def list_all_jobs(
        self, user: str | None = None, *, force: bool = False
    ) -> list[BatchJob]:
        """Jobs in every queue of ``user`` (default: the endpoint's user; ``"*"``: everyone)."""
        return (await self._get(JobsResult, "list_all_jobs", user=user, force=force)).jobs

    async def list_allocations(
        self, user: str | None = None, *, force: bool = False
    ) -> list[Allocation]:
        """Accounts ``user`` may charge (Slurm associations; ``Unavailable`` on PBS, which
        keeps no account database)."""
        got = await self._get(AllocationsResult, "list_allocations", user=user, force=force)
        return got.allocations

    async def cancel_job(self, job_id: str) -> CancelResult:
        """Cancel a batch job (``scancel``/``qdel``); admins of the endpoint only."""
        return await self._get(CancelResult, "cancel_job", job_id=job_id)


class QueueInfo(SyncFeatureClient[AsyncQueueInfo]):
    """Blocking :class:`AsyncQueueInfo` on an :class:`~orbit_client.OrbitClient`."""

    feature = AsyncQueueInfo

    def backend(self) -> Backend:
        return self._run(lambda q: q.backend())

    def job_allocation(self) -> JobAllocation | None:
        return self._run(lambda q: q.job_allocation())

    def get_info(self, user: str | None = None, *, force: bool = False) -> InfoResult:
        return self._run(lambda q: q.get_info(user, force=force))

    def list_jobs(
        self, queue: str, user: str | None = None, *, force: bool = False
    ) -> list[BatchJob]:
        return self._run(lambda q: q.list_jobs(queue, user, force=force))

    def list_all_jobs(self, user: str | None = None, *, force: bool = False) -> list[BatchJob]:
        return self._run(lambda q: q.list_all_jobs(user, force=force))

    def list_allocations(self, user: str | None = None, *, force: bool = False) -> list[Allocation]:
        return self._run(lambda q: q.list_allocations(user, force=force))

    def cancel_job(self, job_id: str) -> CancelResult:
        return self._run(lambda q: q.cancel_job(job_id))


__all__ = ["AsyncQueueInfo", "QueueInfo"]
