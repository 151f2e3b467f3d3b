"""PSI/J's real PBS executor through the broker, against fake PBS Pro commands on PATH
(``qsub`` really runs the script with ``PBS_JOBID`` set; ``qstat -f -F json -x`` prints the
real JSON, ``Exit_status`` 265 for a deleted job)."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import pytest

from orbit_client import AsyncJobs, AsyncOrbitClient, job_spec

from .conftest import StartEndpoint

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

FAKES = Path(__file__).resolve().parents[1] / "fakes"
PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]
SETTINGS = {"psij": {"poll_interval": 0.2, "slurm_polling_interval": 1}}


def fake_scheduler(monkeypatch: pytest.MonkeyPatch, kind: str, tmp_path: Path) -> Path:
    """Put ``tests/fakes/<kind>`` first on PATH; returns the fake's state dir."""
    state = tmp_path / f"fake-{kind}"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{FAKES / kind}:{os.environ['PATH']}")
    monkeypatch.setenv(f"FAKE_{kind.upper()}_DIR", str(state))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # PSI/J's ~/.psij/work
    for var in ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID"):
        monkeypatch.delenv(var, raising=False)
    return state


async def test_pbs_submit_stream_exit_code_cancel(
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    state = fake_scheduler(monkeypatch, "pbs", tmp_path)
    await start_endpoint("hpc-pbs-jobs", plugins=PSIJ, plugin_settings=SETTINGS)
    jobs = AsyncJobs(client, "hpc-pbs-jobs")
    spec = job_spec(
        "bash",
        "-c",
        "for i in 1 2 3; do echo $i on $PBS_JOBID; sleep 0.3; done; echo bad >&2; exit 4",
        queue="workq",
        account="proj1",
        duration=600,
    )
    job = await jobs.submit(spec, "pbs")
    assert job.info is not None and job.info.native_id == "1001.pbs01"
    out = {"stdout": "", "stderr": ""}
    async for chunk in job.stream(poll=1.0):
        out[chunk.stream] += chunk.data
    assert out == {"stdout": "".join(f"{i} on 1001.pbs01\n" for i in (1, 2, 3)), "stderr": "bad\n"}
    assert job.final is not None and (job.final.state, job.final.exit_code) == ("FAILED", 4)
    script = (state / "jobs" / "1001.pbs01.job").read_text()
    assert "#PBS -q workq" in script and "#PBS -A proj1" in script
    assert f'#PBS -N "orbit-{job.job_id}"' in script  # the request id is in the job name

    ok = await jobs.submit(job_spec("true"), "pbs")
    assert ((await ok.wait(poll=1.0)).state, ok.final and ok.final.exit_code) == ("COMPLETED", 0)

    long = await jobs.submit(job_spec("bash", "-c", "echo up; sleep 60"), "pbs")
    async for chunk in long.stream(poll=1.0):
        assert chunk.data == "up\n"
        break
    assert (await long.cancel()).state in ("CANCELED", "ACTIVE", "QUEUED")
    final = await long.wait(poll=1.0)
    assert (final.state, final.exit_code) == ("CANCELED", None)
    assert (state / "jobs" / f"{long.info and long.info.native_id}.cancel").exists()
