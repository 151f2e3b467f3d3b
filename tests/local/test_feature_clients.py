"""The typed feature clients (sysinfo, queue_info): pydantic models back, async and blocking."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient, NotAuthorized, OrbitClient
from orbit_plugins.queue_info.client import AsyncQueueInfo, QueueInfo
from orbit_plugins.queue_info.schema import InfoResult, JobAllocation
from orbit_plugins.sysinfo.client import AsyncSysinfo, Sysinfo
from orbit_plugins.sysinfo.schema import HostRole, Metrics
from tests.testkit.local import Local

FAKES = Path(__file__).resolve().parents[1] / "fakes"


async def test_sysinfo_async_and_blocking(local: Local, local_client: AsyncOrbitClient) -> None:
    await local.endpoint("ep1", plugins=["sysinfo"])
    info = AsyncSysinfo(local_client, "ep1")
    metrics = await info.metrics(["cpu", "memory"], fresh=True)
    assert isinstance(metrics, Metrics) and metrics.cpu is not None
    assert metrics.memory is not None and metrics.memory.total > 0
    assert metrics.disks is None  # not asked for
    assert (await info.homedir()) == str(Path.home())
    assert repr(info) == "<AsyncSysinfo sysinfo on ep1>"

    def blocking() -> tuple[HostRole, Metrics]:
        with OrbitClient(url=local.url()) as client:
            sysinfo = Sysinfo(client, "ep1")
            return sysinfo.host_role(), sysinfo.metrics(["system"])

    role, system = await asyncio.to_thread(blocking)
    assert isinstance(role, HostRole) and role.role in (
        "login",
        "compute",
        "batch-job",
        "laptop",
        "unknown",
    )
    assert system.system is not None and system.cpu is None


async def test_queue_info_on_fake_slurm(
    local: Local, local_client: AsyncOrbitClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{FAKES / 'slurm'}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    await local.endpoint("hpc", plugins=["queue_info"], allowed_users=["guest", "bob"])
    qi = AsyncQueueInfo(local_client, "hpc")
    assert await qi.backend() == "slurm"
    info = await qi.get_info("alice")
    assert isinstance(info, InfoResult) and info.queues["debug"].default
    assert info.queues["debug"].max_jobs_per_user == 50  # alice's associations' MaxJobs
    assert (await qi.get_info("bob")).queues["debug"].max_jobs_per_user is None
    allocation = await qi.job_allocation()
    assert isinstance(allocation, JobAllocation)
    assert (allocation.n_nodes, allocation.gpus_per_node, allocation.runtime) == (2, 4, 73)
    jobs = await qi.list_jobs("regular", "*")
    assert [j.job_id for j in jobs] == ["4243", "4250"]
    assert [a.account for a in await qi.list_allocations("alice")] == ["m1234", "m1234_g"]

    def blocking() -> list[str]:
        with OrbitClient(url=local.url(user="bob")) as client:
            sync = QueueInfo(client, "hpc")
            names = [j.user for j in sync.list_all_jobs("*")]
            with pytest.raises(NotAuthorized):  # cancelling is for the endpoint's admins
                sync.cancel_job("4243")
            return names

    assert set(await asyncio.to_thread(blocking)) >= {"alice"}
