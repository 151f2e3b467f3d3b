"""PSI/J's Cobalt executor through the psij plugin against a fake Cobalt (``qsub``, ``qstat``,
``qdel`` on PATH, tests/fakes/cobalt), and the Flux executor refused with what it needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient, Unavailable
from orbit_plugins.psij.client import AsyncJobs, job_spec
from tests.testkit.eventually import eventually
from tests.testkit.local import Local

FAKES = Path(__file__).resolve().parents[1] / "fakes"
SETTINGS = {"psij": {"poll_interval": 0.2, "slurm_polling_interval": 1}}


@pytest.fixture
def cobalt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    state = tmp_path / "fake-cobalt"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{FAKES / 'cobalt'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_COBALT_DIR", str(state))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # PSI/J's ~/.psij/work
    return state


async def test_cobalt_job_streams_ends_and_cancels(
    local: Local, local_client: AsyncOrbitClient, cobalt: Path
) -> None:
    await local.endpoint("theta", plugins=["psij"], plugin_settings=SETTINGS)
    jobs = AsyncJobs(local_client, "theta")
    body = "echo one on $COBALT_JOBID; echo two; exit 3"
    spec = job_spec("bash", "-c", body, queue="debug-cache-quad", account="proj1", nodes=2)
    job = await jobs.submit(spec, "cobalt")
    assert job.info is not None and job.info.native_id == "1001"
    out = "".join([chunk.data async for chunk in job.stream(poll=0.5)])
    assert out == "one on 1001\ntwo\n"
    assert job.final is not None and (job.final.state, job.final.exit_code) == ("FAILED", 3)
    script = (cobalt / "jobs" / "1001.job").read_text()
    for line in (
        "#COBALT --queue=debug-cache-quad",
        "#COBALT --project=proj1",
        "#COBALT --nodecount=2",
        f'#COBALT --jobname="orbit-{job.job_id}"',
    ):
        assert line in script, script
    listed = {j.job_id: j for j in await jobs.list()}
    assert (listed[job.job_id].queue_name, listed[job.job_id].node_count) == ("debug-cache-quad", 2)

    long = await jobs.submit(job_spec("sleep", "60"), "cobalt")

    async def active() -> bool:
        return (await long.status()).state == "ACTIVE"

    await eventually(active, timeout=20, interval=0.3, what="the Cobalt job runs")
    assert (await long.cancel()).state in ("CANCELED", "ACTIVE")
    assert (await long.wait(poll=0.5)).state == "CANCELED"


async def test_flux_is_refused_with_what_it_needs(
    local: Local, local_client: AsyncOrbitClient
) -> None:
    await local.endpoint("flux-ep", plugins=["psij"], plugin_settings=SETTINGS)
    with pytest.raises(Unavailable, match="Flux's Python bindings"):
        await AsyncJobs(local_client, "flux-ep").submit(job_spec("true"), "flux")
