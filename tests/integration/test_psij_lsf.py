"""PSI/J's real LSF executor through the broker, against fake ``bsub``/``bjobs``/``bkill`` on
PATH (the fake ``bsub`` runs the script with ``LSB_JOBID`` set; ``bjobs -json`` prints the
real record format)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest

from orbit_client import AsyncJobs, AsyncOrbitClient, job_spec

from .conftest import StartEndpoint
from .test_psij_pbs import PSIJ, SETTINGS, fake_scheduler

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]


async def test_lsf_submit_stream_exit_code_cancel(
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    state = fake_scheduler(monkeypatch, "lsf", tmp_path)
    await start_endpoint("hpc-lsf-jobs", plugins=PSIJ, plugin_settings=SETTINGS)
    jobs = AsyncJobs(client, "hpc-lsf-jobs")
    spec = job_spec(
        "bash", "-c", "echo on $LSB_JOBID; echo bad >&2; exit 3", queue="batch", account="p1"
    )
    job = await jobs.submit(spec, "lsf")
    assert job.info is not None and job.info.native_id == "1001"
    out = {"stdout": "", "stderr": ""}
    async for chunk in job.stream(poll=1.0):
        out[chunk.stream] += chunk.data
    assert out == {"stdout": "on 1001\n", "stderr": "bad\n"}
    assert job.final is not None and (job.final.state, job.final.exit_code) == ("FAILED", 3)
    script = (state / "jobs" / "1001.job").read_text()
    assert '#BSUB -q "batch"' in script and '#BSUB -P "p1"' in script
    assert f'#BSUB -J "orbit-{job.job_id}"' in script

    ok = await jobs.submit(job_spec("true"), "lsf")
    final = await ok.wait(poll=1.0)
    assert (final.state, final.exit_code) == ("COMPLETED", 0)

    long = await jobs.submit(job_spec("bash", "-c", "echo up; sleep 60"), "lsf")
    async for chunk in long.stream(poll=1.0):
        assert chunk.data == "up\n"
        break
    await long.cancel()
    final = await long.wait(poll=1.0)
    assert (final.state, final.exit_code) == ("CANCELED", None)
    assert (state / "jobs" / "1003.cancel").exists()
