"""SIGKILL of an endpoint while 20 PSI/J jobs run; after the restart every job is
re-attached, none is submitted twice, and all output and final states are delivered."""

from __future__ import annotations

import asyncio
import re
from importlib.util import find_spec
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient
from orbit_plugins.psij.client import AsyncJobs, JobHandle
from orbit_plugins.psij.schema import JobSpec
from tests.testkit.eventually import eventually

from .conftest import StartEndpoint

pytestmark = [
    pytest.mark.rabbit,
    pytest.mark.slow,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]
N = 20
LINES = 6
REATTACHED = re.compile(r"re-attached job (\S+) \(native id (\S+)\)")


def script(n: int, runs: Path, go: Path) -> JobSpec:
    """Job ``n``: records that it started, prints half its lines, waits for ``go``, prints
    the rest and exits ``n % 4``."""
    half = LINES // 2
    body = (
        f'echo "job {n}" >> {runs}; '
        f'for i in $(seq 1 {half}); do echo "job {n} line $i"; done; '
        f"while [ ! -f {go} ]; do sleep 0.2; done; "
        f'for i in $(seq {half + 1} {LINES}); do echo "job {n} line $i"; sleep 0.2; done; '
        f"exit {n % 4}"
    )
    return JobSpec(executable="bash", arguments=["-c", body])


def expected_output(n: int) -> str:
    return "".join(f"job {n} line {i}\n" for i in range(1, LINES + 1))


async def test_sigkill_while_jobs_run(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    ep = await start_endpoint(
        "jobs-kill", plugins=PSIJ, plugin_settings={"psij": {"poll_interval": 0.2}}
    )
    jobs = AsyncJobs(client, "jobs-kill")
    terminal: dict[str, dict[str, object]] = {}
    sub = await client.subscribe("jobs-kill", "psij", "job_status")

    async def watch() -> None:
        async for event in sub:
            if event.data["state"] in ("COMPLETED", "FAILED", "CANCELED"):
                terminal[str(event.data["job_id"])] = event.data

    watcher = asyncio.create_task(watch())
    handles = [await jobs.submit(script(n, runs, go)) for n in range(N)]
    ids = [h.job_id for h in handles]
    assert len(set(ids)) == N

    # all 20 jobs run (and wait for `go`) before the endpoint is killed

    async def all_active() -> dict[str, str | None] | None:
        states = await asyncio.gather(*(jobs.status(i) for i in ids))
        started = runs.read_text().splitlines() if runs.exists() else []
        if len(started) == N and all(s.state == "ACTIVE" for s in states):
            return {s.job_id: s.native_id for s in states}
        return None

    natives = await eventually(all_active, timeout=60, interval=0.2, what=f"all {N} jobs run")
    assert None not in natives.values() and len(set(natives.values())) == N

    ep.kill()
    await asyncio.sleep(1)
    await ep.start()
    log = ep.log_path.read_text(errors="replace")  # the whole log: ep.log() is its tail
    reattached = REATTACHED.findall(log)
    assert len(reattached) == N, log[-3000:]
    assert dict(reattached) == natives, "a job was re-attached under another native id"
    go.touch()  # the jobs finish only now, while they are re-attached

    outputs = await asyncio.gather(*(collect(h) for h in handles))
    for n, (h, out) in enumerate(zip(handles, outputs, strict=True)):
        assert out == expected_output(n), h.job_id
        assert h.final is not None
        assert h.final.exit_code == n % 4, (n, h.final)
        assert h.final.state == ("COMPLETED" if n % 4 == 0 else "FAILED")
        assert h.final.native_id == natives[h.job_id]
    started = runs.read_text().splitlines()
    assert sorted(started) == sorted(f"job {n}" for n in range(N)), "a job ran twice or not at all"
    listed = await jobs.list()
    assert sorted(j.job_id for j in listed) == sorted(ids), "the journal holds other jobs"

    await eventually(lambda: len(terminal) == N, what="every job's terminal event")
    assert set(terminal) == set(ids)
    for n, h in enumerate(handles):
        event = terminal[h.job_id]
        assert (event["native_id"], event["exit_code"]) == (natives[h.job_id], n % 4), event
        assert event["stdout_size"] == len(expected_output(n)), event
    assert len(REATTACHED.findall(ep.log_path.read_text(errors="replace"))) == N
    watcher.cancel()
    await sub.close()


async def test_submits_in_flight_during_sigkill(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    """Submits still in the endpoint's queue (or being handled) when it dies are answered
    after the restart, and each job runs exactly once."""
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    go.touch()
    ep = await start_endpoint(
        "jobs-kill2", plugins=PSIJ, plugin_settings={"psij": {"poll_interval": 0.2}}
    )
    jobs = AsyncJobs(client, "jobs-kill2")
    handles = [await jobs.submit(script(n, runs, go)) for n in range(2)]
    late = [
        asyncio.create_task(jobs.submit(script(n, runs, go), timeout=60, wait_for_endpoint=True))
        for n in range(2, 6)
    ]
    await asyncio.sleep(0.1)
    ep.kill()
    await asyncio.sleep(1.5)
    await ep.start()
    handles += await asyncio.gather(*late)
    assert len({h.job_id for h in handles}) == 6
    outputs = await asyncio.gather(*(collect(h) for h in handles))
    for n, (h, out) in enumerate(zip(handles, outputs, strict=True)):
        assert out == expected_output(n), h.job_id
        assert h.final is not None and h.final.exit_code == n % 4, (n, h.final)
    started = runs.read_text().splitlines()
    assert sorted(started) == sorted(f"job {n}" for n in range(6)), "a job ran twice or not at all"


async def collect(job: JobHandle) -> str:
    text = ""
    async for chunk in job.stream(poll=1.0):
        if chunk.stream == "stdout":
            text += chunk.data
    return text


@pytest.mark.parametrize("kind", ["slurm", "pbs", "lsf"])
async def test_sigkill_while_batch_jobs_run(
    kind: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Batch jobs (PSI/J's real executors on fake schedulers) re-attached after a SIGKILL."""
    from .test_psij_pbs import PSIJ as BATCH_PSIJ
    from .test_psij_pbs import SETTINGS, fake_scheduler

    state = fake_scheduler(monkeypatch, kind, tmp_path)
    go, runs = tmp_path / "go", tmp_path / "runs"
    ep = await start_endpoint(f"batch-kill-{kind}", plugins=BATCH_PSIJ, plugin_settings=SETTINGS)
    jobs = AsyncJobs(client, ep.name)
    body = (
        f'echo "job $0" >> {runs}; echo "job $0 before"; '
        f'while [ ! -f {go} ]; do sleep 0.1; done; echo "job $0 after"; exit $0'
    )
    handles = [
        await jobs.submit(JobSpec(executable="bash", arguments=["-c", body, str(n)]), kind)
        for n in range(5)
    ]
    await eventually(
        lambda: runs.exists() and len(runs.read_text().splitlines()) == 5,
        timeout=30,
        what="five jobs run",
    )
    ep.kill()
    go.touch()  # the jobs finish while the endpoint is down
    await asyncio.sleep(1)
    await ep.start()
    outputs = await asyncio.gather(*(collect(h) for h in handles))
    for n, (h, out) in enumerate(zip(handles, outputs, strict=True)):
        assert out == f"job {n} before\njob {n} after\n", h.job_id
        assert h.final is not None and h.final.exit_code == n, (n, h.final)
        assert h.final.state == ("COMPLETED" if n == 0 else "FAILED")
    assert sorted(runs.read_text().splitlines()) == [f"job {n}" for n in range(5)]
    assert (state / "counter").read_text().strip() == "1005", "a job was submitted twice"
    assert ep.log().count("re-attached job") == 5
