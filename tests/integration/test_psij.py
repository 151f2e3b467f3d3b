"""The psij plugin end to end: real PSI/J local jobs through a real endpoint and broker."""

from __future__ import annotations

import asyncio
import time
from importlib.util import find_spec

import pytest

from orbit_client import AsyncOrbitClient, InvalidArgs, NotFound, Unavailable
from orbit_plugins.psij.client import AsyncJobs, JobHandle
from orbit_plugins.psij.schema import JobSpec

from .conftest import StartEndpoint

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]
FAST = {"psij": {"poll_interval": 0.1}}


def bash(script: str) -> JobSpec:
    return JobSpec(executable="bash", arguments=["-c", script])


async def collect(job: JobHandle) -> tuple[str, str]:
    out: dict[str, str] = {"stdout": "", "stderr": ""}
    async for chunk in job.stream(poll=1.0):
        out[chunk.stream] += chunk.data
    return out["stdout"], out["stderr"]


async def test_output_streams_live_and_exit_code(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("jobs1", plugins=PSIJ, plugin_settings=FAST)
    jobs = AsyncJobs(client, "jobs1")
    job = await jobs.submit(bash("for i in 1 2 3; do echo $i; sleep 0.4; done; echo oops >&2"))
    seen: list[tuple[float, str]] = []
    t0 = time.monotonic()
    async for chunk in job.stream(poll=1.0):
        seen.append((time.monotonic() - t0, chunk.data))
    assert "".join(d for _, d in seen) == "1\n2\n3\noops\n"
    assert seen[-1][0] - seen[0][0] > 0.6, f"output arrived in one burst: {seen}"
    assert job.final is not None and job.final.state == "COMPLETED"
    assert job.final.exit_code == 0

    failing = await jobs.submit(bash("echo partial; exit 3"))
    final = await failing.wait(poll=1.0)
    assert (final.state, final.exit_code) == ("FAILED", 3)
    status = await jobs.status(failing.job_id, max_bytes=1024)
    assert status.stdout == "partial\n"


async def test_cancel_list_and_ownership(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, amqp_url: str
) -> None:
    await start_endpoint("jobs2", plugins=PSIJ, plugin_settings=FAST)
    jobs = AsyncJobs(client, "jobs2")
    job = await jobs.submit(bash("echo started; sleep 60"))
    async for chunk in job.stream(poll=1.0):
        assert chunk.data == "started\n"
        break
    result = await job.cancel()
    assert result.state == "CANCELED"
    final = await job.wait(poll=1.0)
    assert (final.state, final.exit_code) == ("CANCELED", None)
    listed = await jobs.list()
    assert [j.job_id for j in listed] == [job.job_id]
    with pytest.raises(NotFound, match="no job 'nope'"):
        await jobs.status("nope")


async def test_bad_specs(start_endpoint: StartEndpoint, client: AsyncOrbitClient) -> None:
    await start_endpoint("jobs3", plugins=PSIJ, plugin_settings=FAST)
    call = client.call
    with pytest.raises(InvalidArgs, match="not on the endpoint's PATH"):
        await call("jobs3", "psij.submit_job", spec={"executable": "no-such-program-xyz"})
    with pytest.raises(InvalidArgs, match=r"submit_job: spec\.executable: Field required"):
        await call("jobs3", "psij.submit_job", spec={"arguments": ["x"]})
    with pytest.raises(InvalidArgs, match=r"spec\.executable: String should have at least 1"):
        await call("jobs3", "psij.submit_job", spec={"executable": ""})
    with pytest.raises(
        InvalidArgs,
        match=r"spec\.resources\.node_count: Input should be greater than or equal to 1",
    ):
        await call(
            "jobs3",
            "psij.submit_job",
            spec={"executable": "true", "resources": {"node_count": -1}},
        )
    with pytest.raises(
        InvalidArgs,
        match=r"executor: Input should be 'local', 'slurm', 'pbs', 'lsf', 'cobalt' or 'flux'",
    ):
        await call("jobs3", "psij.submit_job", spec={"executable": "true"}, executor="condor")
    with pytest.raises(Unavailable, match="executor 'slurm' needs 'sbatch', which is not on"):
        await call("jobs3", "psij.submit_job", spec={"executable": "true"}, executor="slurm")
    with pytest.raises(NotFound, match="no job 'missing' of user 'guest' on this endpoint"):
        await call("jobs3", "psij.cancel_job", job_id="missing")
    with pytest.raises(NotFound, match="no job 'missing'"):
        await call("jobs3", "psij.get_job_status", job_id="missing")
    assert await client.plugin("jobs3", "psij").list_jobs() == {"jobs": []}, "a bad spec ran"


async def test_resubmit_with_same_request_id_runs_once(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("jobs4", plugins=PSIJ, plugin_settings=FAST)
    args = {"spec": bash("echo once").model_dump(), "executor": "local"}
    first = await client.request("jobs4", "psij.submit_job", args, request_id="req-fixed-1")
    again = await client.request("jobs4", "psij.submit_job", args, request_id="req-fixed-1")
    assert first.unwrap()["job_id"] == again.unwrap()["job_id"] == "req-fixed-1"
    jobs = AsyncJobs(client, "jobs4")
    final = await jobs.handle("req-fixed-1").wait(poll=1.0)
    assert final.state == "COMPLETED"
    assert len(await jobs.list()) == 1
    await asyncio.sleep(0)
