"""``orbit job …`` as a user runs it, against a real endpoint with the psij plugin."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import pytest

from .conftest import StartEndpoint

pytestmark = [
    pytest.mark.rabbit,
    pytest.mark.slow,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]


def cli_env(amqp_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBIT_")}
    return env | {
        "ORBIT_URL": amqp_url,
        "ORBIT_PROFILE": str(tmp_path / "no-profile.json"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


def argv(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("orbit")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "orbit_cli"]
    return [*base, *args]


async def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv(*args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_job_submit_streams_live_and_exits_with_job_code(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path
) -> None:
    await start_endpoint("cli-jobs", plugins=PSIJ, plugin_settings={"psij": {"poll_interval": 0.1}})
    env = cli_env(amqp_url, tmp_path)
    script = "for i in 1 2 3; do echo $i; sleep 0.5; done"
    proc = await asyncio.create_subprocess_exec(
        *argv("job", "submit", "cli-jobs", "--", "bash", "-c", script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[tuple[float, str]] = []
    while line := await asyncio.wait_for(proc.stdout.readline(), 30):
        lines.append((time.monotonic(), line.decode().strip()))
    assert await proc.wait() == 0
    assert [text for _, text in lines] == ["1", "2", "3"]
    assert lines[2][0] - lines[0][0] > 0.7, "output was not streamed live"

    rc, out, err = await run(env, "job", "submit", "cli-jobs", "--", "bash", "-c", "echo x; exit 3")
    assert (rc, out) == (3, "x\n"), err
    assert "FAILED (exit code 3)" in err

    rc, job_id, _ = await run(env, "job", "submit", "cli-jobs", "--detach", "--", "sleep", "60")
    job_id = job_id.strip()
    rc, out, _ = await run(env, "job", "list", "cli-jobs")
    assert rc == 0 and job_id in out and "ACTIVE" in out
    rc, out, _ = await run(env, "job", "cancel", "cli-jobs", job_id)
    assert rc == 0 and "CANCELED" in out
    rc, out, _ = await run(env, "job", "status", "cli-jobs", job_id, "--json")
    assert rc == 0 and '"state":"CANCELED"' in out.replace(" ", "")
    rc, _, err = await run(env, "job", "logs", "cli-jobs", "no-such-job")
    assert rc == 1 and "NOT_FOUND" in err


async def test_job_submit_to_slurm_with_batch_options_then_logs(
    start_endpoint: StartEndpoint,
    amqp_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``orbit job submit --executor slurm --queue … --account … --nodes … --time …`` through
    PSI/J's real Slurm executor (fake ``sbatch`` on the endpoint's PATH): the options land in
    the job script's ``#SBATCH`` lines; ``orbit job logs`` prints a finished job's output."""
    from .test_psij_pbs import fake_scheduler

    state = fake_scheduler(monkeypatch, "slurm", tmp_path)
    await start_endpoint(
        "cli-slurm",
        plugins=PSIJ,
        plugin_settings={"psij": {"poll_interval": 0.2, "slurm_polling_interval": 1}},
    )
    env = cli_env(amqp_url, tmp_path)
    options = ["--executor", "slurm", "--queue", "debug", "--account", "m1234"]
    options += ["--nodes", "1", "--time", "10:00"]
    body = "echo one on $SLURM_JOB_ID; echo two; echo warn >&2; exit 2"
    rc, out, err = await run(env, "job", "submit", "cli-slurm", *options, "--", "bash", "-c", body)
    assert rc == 2, err
    assert out == "one on 1001\ntwo\n"
    assert "warn\n" in err and "FAILED (exit code 2)" in err
    match = re.search(r"job (\S+) submitted to cli-slurm", err)
    assert match, err
    job_id = match.group(1)

    sbatch = (state / "jobs" / "1001.job").read_text()
    lines = {line.strip() for line in sbatch.splitlines() if line.startswith("#SBATCH")}
    for expected in (
        f'#SBATCH --job-name="orbit-{job_id}"',
        '#SBATCH --partition="debug"',
        '#SBATCH --account="m1234"',
        "#SBATCH --nodes=1",
        "#SBATCH --time=0:10:0",  # PSI/J's H:M:S for --time 10:00 (600 s)
    ):
        assert expected in lines, (expected, sorted(lines))

    rc, out, err = await run(env, "job", "logs", "cli-slurm", job_id)
    assert (rc, out, err) == (0, "one on 1001\ntwo\n", "warn\n")
    rc, out, err = await run(env, "job", "status", "cli-slurm", job_id, "--json")
    assert rc == 0, err
    status = json.loads(out)
    assert (status["state"], status["exit_code"], status["native_id"]) == ("FAILED", 2, "1001")
    assert status["executor"] == "slurm"
    batch = ("queue_name", "account", "node_count", "duration")
    assert tuple(status[k] for k in batch) == ("debug", "m1234", 1, 600)
    rc, out, err = await run(env, "job", "list", "cli-slurm", "--json")
    [listed] = json.loads(out)
    assert tuple(listed[k] for k in batch) == ("debug", "m1234", 1, 600), err
    rc, out, _ = await run(env, "job", "list", "cli-slurm")
    assert rc == 0 and "debug" in out and "m1234" in out
