"""Endpoint SIGKILL in the middle of a batch submit (the fake ``sbatch``/``qsub`` hangs).

After the restart the job is found by its name ``orbit-<request id>`` and adopted: one job,
complete output, true exit code. A submit that never reached the scheduler is marked FAILED
with a clear message and not submitted again (it cannot be told apart from one that did)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import pytest

from orbit_client import AsyncJobs, AsyncOrbitClient, job_spec

from .conftest import StartEndpoint
from .endpoints import EndpointProcess
from .test_psij_pbs import PSIJ, SETTINGS, fake_scheduler

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]


FAKES = Path(__file__).resolve().parents[1] / "fakes"


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def kill_hung(command: str, under: Path) -> None:
    """Kill the hung fake ``command`` processes of this test (found by their script path)."""
    import psutil  # a dependency of psij-python

    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(str(under) in part and part.endswith(command) for part in cmdline):
            os.kill(proc.info["pid"], signal.SIGKILL)


async def restart(ep: EndpointProcess) -> None:
    ep.kill()
    await asyncio.sleep(0.5)
    await ep.start()


@pytest.mark.parametrize("kind", ["slurm", "pbs", "lsf"])
async def test_crash_mid_submit_adopts_the_job(
    kind: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    state = fake_scheduler(monkeypatch, kind, tmp_path)
    go, runs = tmp_path / "go", tmp_path / "runs"
    (state / "hang").touch()  # sbatch/qsub creates the job, then hangs before printing its id
    ep = await start_endpoint(f"adopt-{kind}", plugins=PSIJ, plugin_settings=SETTINGS)
    script = f"echo run >> {runs}; echo start; while [ ! -f {go} ]; do sleep 0.1; done; exit 6"
    rid = await client.send(
        ep.name,
        "psij.submit_job",
        {"spec": job_spec("bash", "-c", script), "executor": kind},
        timeout=120,
    )
    reply = asyncio.create_task(client.collect(rid, timeout=90))  # replies are not kept
    await wait_for(lambda: runs.exists(), "the job to start")
    await restart(ep)  # SIGKILL while sbatch/qsub has not returned
    (state / "hang").unlink()
    go.touch()

    info = (await reply).unwrap()
    native = "1001.pbs01" if kind == "pbs" else "1001"
    assert (info["job_id"], info["native_id"]) == (rid, native)
    job = AsyncJobs(client, ep.name).handle(rid)
    text = "".join([c.data async for c in job.stream(poll=1.0)])
    assert text == "start\n"
    assert job.final is not None and (job.final.state, job.final.exit_code) == ("FAILED", 6)
    assert runs.read_text() == "run\n", "the job ran twice"
    assert (state / "counter").read_text().strip() == "1001", "submitted twice"
    assert f"adopted job {rid} (native id {native})" in ep.log()


async def test_submit_that_never_reached_slurm_fails_clearly(
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    state = fake_scheduler(monkeypatch, "slurm", tmp_path)
    (state / "hang-before").touch()  # sbatch hangs before the scheduler knows the job
    ep = await start_endpoint("adopt-never", plugins=PSIJ, plugin_settings=SETTINGS)
    rid = await client.send(
        ep.name,
        "psij.submit_job",
        {"spec": job_spec("bash", "-c", "echo should-not-run"), "executor": "slurm"},
        timeout=120,
    )
    reply = asyncio.create_task(client.collect(rid, timeout=90))
    await wait_for(lambda: any(ep.state_dir.rglob(f"jobs/{rid}/submitting")), "the submit to start")
    await asyncio.sleep(1)  # PSI/J writes its script and runs sbatch
    ep.kill()
    kill_hung("sbatch", FAKES)
    (state / "hang-before").unlink()
    await asyncio.sleep(0.5)
    await ep.start()

    info = (await reply).unwrap()
    assert (info["state"], info["native_id"]) == ("FAILED", None)
    assert "was not submitted again" in info["message"]
    assert "slurm lists no job named" in info["message"]
    assert not (state / "counter").exists(), "sbatch created a job"
    st = await AsyncJobs(client, ep.name).status(rid)
    assert st.state == "FAILED"
