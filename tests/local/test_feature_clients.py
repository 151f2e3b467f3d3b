"""The typed feature clients (sysinfo, queue_info, tasks, staging; globus and iri beside their
fakes in test_globus.py and test_iri.py): pydantic models back, async and blocking."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from orbit_client import AsyncOrbitClient, NotAuthorized, OrbitClient
from orbit_plugins.queue_info.client import AsyncQueueInfo, QueueInfo
from orbit_plugins.queue_info.schema import InfoResult, JobAllocation
from orbit_plugins.staging.client_typed import AsyncStaging, Staging
from orbit_plugins.staging.schema import Transferred
from orbit_plugins.sysinfo.client import AsyncSysinfo, Sysinfo
from orbit_plugins.sysinfo.schema import HostRole, Metrics
from orbit_plugins.tasks.client_typed import AsyncTasks, Tasks
from orbit_plugins.tasks.schema import SubmitResult, TaskRecord, TaskSpec
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


async def test_tasks_async_and_blocking(local: Local, local_client: AsyncOrbitClient) -> None:
    await local.endpoint("ep1", plugins=["tasks"])
    tasks = AsyncTasks(local_client, "ep1")
    accepted = await tasks.submit(
        TaskSpec(executable="echo", arguments=["hi"], uid="typed-1"),
        {"function": "os.path:join", "args": ["a", "b"], "uid": "typed-2"},
    )
    assert [a.uid for a in accepted] == ["typed-1", "typed-2"]
    assert all(isinstance(a, SubmitResult) for a in accepted)
    done = await tasks.wait(["typed-1", "typed-2"], timeout=30)
    assert [(r.state, r.stdout, r.return_value) for r in done] == [
        ("DONE", "hi\n", None),
        ("DONE", None, "a/b"),
    ]
    with pytest.raises(ValidationError):  # checked before anything is sent
        await tasks.submit({"executable": "true", "function": "os:getcwd"})

    def blocking() -> tuple[TaskRecord, list[str], bool, int]:
        with OrbitClient(url=local.url()) as client:
            sync = Tasks(client, "ep1")
            [slow] = sync.submit(TaskSpec(executable="sleep", arguments=["60"]))
            cancelled = sync.cancel(slow.uid).cancelled
            return sync.get("typed-1"), [r.uid for r in sync.list()], cancelled, sync.cancel_all()

    first, listed, cancelled, more = await asyncio.to_thread(blocking)
    assert first.exit_code == 0 and {"typed-1", "typed-2"} <= set(listed)
    assert cancelled and more == 0


async def test_staging_async_and_blocking(
    local: Local, local_client: AsyncOrbitClient, tmp_path: Path
) -> None:
    root = tmp_path / "remote"
    root.mkdir()
    await local.endpoint(
        "st", plugins=["staging"], plugin_settings={"staging": {"roots": [str(root)]}}
    )
    staging = AsyncStaging(local_client, "st")
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(300_000))
    seen: list[int] = []
    put = await staging.upload(
        source, f"{root}/in/data.bin", chunk_size=65536, progress=lambda d, _: seen.append(d)
    )
    assert isinstance(put, Transferred) and (put.size, put.resumed) == (300_000, 0)
    assert seen[-1] == 300_000
    stat = await staging.stat(put.path, checksum=True)
    assert stat.sha256 == put.sha256 and stat.type == "file"
    assert await staging.mkdir(f"{root}/out") == f"{root}/out"

    def blocking() -> tuple[Transferred, list[str], str]:
        with OrbitClient(url=local.url()) as client:
            sync = Staging(client, "st")
            got = sync.download(put.path, tmp_path / "back.bin")
            names = [e.name for e in sync.list(str(root)).entries]
            return got, names, sync.remove(f"{root}/out")

    got, names, removed = await asyncio.to_thread(blocking)
    assert got.sha256 == put.sha256 and (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert sorted(names) == ["in", "out"] and removed == f"{root}/out"
    assert (await staging.uploads()).uploads == []
