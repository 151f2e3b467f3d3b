"""queue_info and PSI/J's real Slurm executor against fake Slurm commands on PATH."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest

from orbit_client import AsyncOrbitClient, NotAuthorized, NotFound, Unavailable
from orbit_plugins.psij.client import AsyncJobs
from orbit_plugins.psij.schema import JobSpec
from tests.testkit.eventually import eventually

from .conftest import StartEndpoint
from .test_psij_cli import cli_env, run
from .test_psij_pbs import fake_scheduler

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

FAKES = Path(__file__).resolve().parents[1] / "fakes"
PLUGINS = [
    "orbit_plugins.psij.plugin:PsijPlugin",
    "orbit_plugins.queue_info.plugin:QueueInfoPlugin",
]
SETTINGS = {"psij": {"poll_interval": 0.2, "slurm_polling_interval": 1}}


def on_path(monkeypatch: pytest.MonkeyPatch, kind: str, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", f"{FAKES / kind}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "fake-slurm"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # PSI/J's ~/.psij/work
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("PBS_JOBID", raising=False)


async def test_slurm_queue_info_and_psij_jobs(
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    on_path(monkeypatch, "slurm", tmp_path)
    await start_endpoint("hpc-slurm", plugins=PLUGINS, plugin_settings=SETTINGS)
    qi = client.plugin("hpc-slurm", "queue_info")
    assert (await qi.backend())["backend"] == "slurm"
    info = await qi.get_info()
    assert info["queues"]["debug"]["default"] is True
    assert info["queues"]["regular"]["nodes_total"] == 100
    jobs = await qi.list_jobs(queue="regular", user="*")
    assert [j["job_id"] for j in jobs["jobs"]] == ["4243", "4250"]
    mine = await qi.list_all_jobs(user="alice")
    assert {j["user"] for j in mine["jobs"]} == {"alice"}
    allocs = await qi.list_allocations(user="alice")
    assert [a["account"] for a in allocs["allocations"]] == ["m1234", "m1234_g"]
    assert (await qi.job_allocation())["allocation"] is None
    with pytest.raises(NotAuthorized):
        await qi.cancel_job(job_id="4242")

    psij = AsyncJobs(client, "hpc-slurm")
    spec = JobSpec(
        executable="bash",
        arguments=["-c", "echo on $SLURM_JOB_ID; exit 4"],
        attributes={"queue_name": "debug", "account": "m1234", "duration": 600},
    )
    job = await psij.submit(spec, "slurm")
    assert job.info is not None and job.info.native_id == "1001"
    final = await job.wait(poll=1.0)
    assert (final.state, final.exit_code) == ("FAILED", 4)
    out = await psij.status(job.job_id, max_bytes=1000)
    assert out.stdout == "on 1001\n"
    script = (tmp_path / "fake-slurm" / "jobs" / "1001.job").read_text()
    assert '#SBATCH --partition="debug"' in script and '#SBATCH --account="m1234"' in script
    assert f"orbit-{job.job_id}" in script  # the request id is in the job name

    long = await psij.submit(JobSpec(executable="sleep", arguments=["60"]), "slurm")
    assert (await long.cancel()).state in ("CANCELED", "ACTIVE", "QUEUED")
    assert (await long.wait(poll=1.0)).state == "CANCELED"


async def test_pbs_queue_info(
    start_endpoint: StartEndpoint,
    amqp_url: str,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    on_path(monkeypatch, "pbs", tmp_path)
    await start_endpoint("hpc-pbs", plugins=PLUGINS[1:])
    qi = client.plugin("hpc-pbs", "queue_info")
    assert (await qi.backend())["backend"] == "pbs"
    info = await qi.get_info()
    assert sorted(info["queues"]) == ["debug", "workq"]
    assert [j["job_id"] for j in (await qi.list_all_jobs(user="*"))["jobs"]] == [
        "101.pbs01",
        "102.pbs01",
    ]
    with pytest.raises(Unavailable, match="PBS keeps no allocation"):
        await qi.list_allocations()

    rc, out, err = await run(cli_env(amqp_url, tmp_path), "queues", "hpc-pbs", "--jobs", "-u", "*")
    assert rc == 0, err
    assert "pbs queues on hpc-pbs" in out and "workq" in out and "101.pbs01" in out
    env = cli_env(amqp_url, tmp_path)
    rc, out, err = await run(env, "queues", "hpc-pbs", "--jobs", "-u", "*", "--json")
    assert rc == 0, err
    shown = json.loads(out)
    assert sorted(shown["info"]["queues"]) == ["debug", "workq"]
    assert [j["job_id"] for j in shown["jobs"]["jobs"]] == ["101.pbs01", "102.pbs01"]


async def sh(*cmd: str) -> str:
    """Run a fake scheduler command (as the scheduler's user would) and return its stdout."""
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, check=True)
    return done.stdout


async def wait_dead(pid: int) -> None:
    await eventually(lambda: not psutil.pid_exists(pid), what=f"batch job process {pid} ends")


@pytest.mark.parametrize("kind", ["slurm", "pbs"])
async def test_cancel_job_and_job_allocation(
    kind: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """An admin's ``cancel_job`` really cancels the scheduler's job (the fake's state says
    so); an unknown job id is NOT_FOUND; ``job_allocation`` inside a job reads the job."""
    state = fake_scheduler(monkeypatch, kind, tmp_path)
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\nsleep 120\n")
    native = (await sh("sbatch" if kind == "slurm" else "qsub", str(script))).split()[-1]
    assert native == ("1001" if kind == "slurm" else "1001.pbs01")
    pid = int((state / "jobs" / f"{native}.pid").read_text())
    assert psutil.pid_exists(pid)

    if kind == "slurm":
        monkeypatch.setenv("SLURM_JOB_ID", "77")
    else:
        nodefile = tmp_path / "nodefile"
        nodefile.write_text("node01\nnode01\nnode02\n")
        monkeypatch.setenv("PBS_JOBID", "101.pbs01")
        monkeypatch.setenv("PBS_NODEFILE", str(nodefile))
    ep = await start_endpoint(f"qi-cancel-{kind}", plugins=PLUGINS[1:], admins=["guest"])
    qi = client.plugin(ep.name, "queue_info")

    alloc = (await qi.job_allocation())["allocation"]
    assert alloc is not None
    if kind == "slurm":
        assert (alloc["job_id"], alloc["nodelist"], alloc["account"]) == (
            "77",
            ["nid001", "nid002"],
            "m1234",
        )
    else:
        assert (alloc["job_id"], alloc["nodelist"], alloc["account"]) == (
            "101.pbs01",
            ["node01", "node02"],
            "proj1",
        )
        assert (alloc["queue"], alloc["n_nodes"], alloc["cpus_per_node"]) == ("workq", 2, 64)

    assert (await qi.cancel_job(job_id=native))["job_id"] == native
    assert (state / "jobs" / f"{native}.cancel").exists()
    await wait_dead(pid)
    if kind == "slurm":  # what PSI/J's Slurm executor polls: the job is CANCELLED
        out = await sh("squeue", "-O", "JobArrayID,StateCompact,Reason", "-t", "all", "--me")
        assert out.split()[3:5] == [native, "CA"], out
    else:  # PBS Pro reports a deleted job with Exit_status 265
        out = await sh("qstat", "-f", "-F", "json", "-x", native)
        assert json.loads(out)["Jobs"][native]["Exit_status"] == 265, out

    unknown = "4999" if kind == "slurm" else "4999.pbs01"
    message = "Invalid job id" if kind == "slurm" else "Unknown Job Id"
    with pytest.raises(NotFound, match=f"no batch job '{unknown}' here: .*{message}"):
        await qi.cancel_job(job_id=unknown)
