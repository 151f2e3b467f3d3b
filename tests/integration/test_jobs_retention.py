"""Finished jobs are forgotten (ledger row and job dir) after ``psij.retention`` seconds, by the
endpoint's periodic pruning; running jobs are kept."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from orbit_client import AsyncJobs, AsyncOrbitClient, NotFound, job_spec
from tests.testkit.eventually import eventually

from .conftest import StartEndpoint

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]
SHORT = {"psij": {"poll_interval": 0.1, "retention": 1, "prune_interval": 0.5}}


async def test_finished_jobs_are_pruned_periodically(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    ep = await start_endpoint("jobs-prune", plugins=PSIJ, plugin_settings=SHORT)
    jobs = AsyncJobs(client, ep.name)
    done = await jobs.submit(job_spec("bash", "-c", "echo bye"))
    assert (await done.wait(poll=0.5)).state == "COMPLETED"
    running = await jobs.submit(job_spec("bash", "-c", "echo up; sleep 60"))
    job_dirs = [p for p in ep.state_dir.rglob(done.job_id) if p.parent.name == "jobs"]
    assert len(job_dirs) == 1 and (job_dirs[0] / "stdout").read_text() == "bye\n"

    async def pruned() -> bool:
        return [j.job_id for j in await jobs.list()] == [running.job_id]

    await eventually(pruned, timeout=30, interval=0.1, what="only the running job is listed")
    assert not job_dirs[0].exists()
    with pytest.raises(NotFound):
        await done.status()
    assert "pruned 1 job(s)" in ep.log()
    assert (await running.cancel()).state == "CANCELED"
