"""psij plugin without a broker: ledger, idempotent submit, recovery, helpers."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from orbit_plugins.base import Call
from orbit_plugins.psij import launch
from orbit_plugins.psij import plugin as plugin_module
from orbit_plugins.psij.plugin import PsijPlugin
from orbit_plugins.psij.schema import JobIdArgs, JobSpec, StatusArgs, SubmitArgs
from orbit_plugins.testing import FakeContext
from orbit_protocol import Conflict, NotFound
from tests.testkit.eventually import eventually_sync

pytestmark = pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed")


@pytest.fixture(autouse=True, scope="module")
def _restore_sigchld() -> Iterator[None]:
    """Importing PSI/J installs a SIGCHLD handler; give the test process its own back."""
    yield
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def exists(path: Path) -> bool:
    return path.exists()


def write_pid(path: Path, pid: int) -> None:
    path.write_text(f"{pid}\n")


async def make(tmp_path: Path) -> tuple[PsijPlugin, FakeContext]:
    plugin = PsijPlugin({"poll_interval": 0.05})
    ctx = FakeContext(tmp_path / "state")
    await plugin.setup(ctx)
    return plugin, ctx


def wait_terminal(plugin: PsijPlugin, job_id: str, call: Call) -> Any:
    def ended() -> Any:
        plugin._tick()
        st = plugin.get_job_status(StatusArgs(job_id=job_id, max_bytes=1024), call)
        return st if st.state in ("COMPLETED", "FAILED", "CANCELED") else None

    return eventually_sync(ended, interval=0.05, what=f"job {job_id} ends")


async def test_submit_twice_with_one_request_id_runs_once(tmp_path: Path) -> None:
    plugin, ctx = await make(tmp_path)
    marks = tmp_path / "marks"
    spec = JobSpec(executable="bash", arguments=["-c", f"echo run >> {marks}; echo out; exit 5"])
    alice = Call("req-1", "alice", "ep")
    first = plugin.submit_job(SubmitArgs(spec=spec), alice)
    again = plugin.submit_job(SubmitArgs(spec=spec), alice)
    assert first.job_id == again.job_id == "req-1"
    assert first.native_id == again.native_id
    st = wait_terminal(plugin, "req-1", alice)
    assert (st.state, st.exit_code, st.stdout) == ("FAILED", 5, "out\n")
    assert marks.read_text() == "run\n"
    events = [(t, d) for t, d in ctx.events if d["job_id"] == "req-1"]
    # all output before the final state: the chunk comes in the final tick or, when the job
    # wrote it a tick before it exited (seen under load in CI), in an earlier one
    assert events[-1][0] == "job_status" and events[-1][1]["state"] == "FAILED"
    assert [d["data"] for t, d in events if t == "job_output"] == ["out\n"]
    assert all(d["state"] != "FAILED" for t, d in events[:-1] if t == "job_status")
    with pytest.raises(Conflict):
        plugin.submit_job(SubmitArgs(spec=spec), Call("req-1", "bob", "ep"))
    with pytest.raises(NotFound):
        plugin.get_job_status(StatusArgs(job_id="req-1"), Call("x", "bob", "ep"))
    admin = Call("x", "root", "ep", is_admin=True)
    assert plugin.get_job_status(StatusArgs(job_id="req-1"), admin).user == "alice"
    await plugin.stop()


async def test_restart_keeps_exit_code_and_adopts_interrupted_submit(tmp_path: Path) -> None:
    plugin, _ = await make(tmp_path)
    alice = Call("req-2", "alice", "ep")
    spec = JobSpec(executable="bash", arguments=["-c", "sleep 1; exit 7"])
    info = plugin.submit_job(SubmitArgs(spec=spec), alice)
    await plugin.stop()  # the "endpoint" goes away while the job runs

    plugin2, _ = await make(tmp_path)
    await plugin2.start()
    st = wait_terminal(plugin2, info.job_id, alice)
    assert (st.state, st.exit_code) == ("FAILED", 7)  # PSI/J's attach alone would say 0

    # a crash between ledger write and native id: the wrapper's pid file is adopted
    rec = plugin2._new_record(SubmitArgs(spec=spec), Call("req-3", "alice", "ep"))
    plugin2.store.insert(rec)
    write_pid(Path(rec.job_dir, plugin_module.SUBMITTING), 1)
    write_pid(Path(rec.job_dir, "pid"), 999999)
    adopted = plugin2.submit_job(SubmitArgs(spec=spec), Call("req-3", "alice", "ep"))
    assert adopted.native_id == "999999"
    st = wait_terminal(plugin2, "req-3", alice)
    assert (st.state, st.exit_code) == ("FAILED", None) and "without recording" in (
        st.message or ""
    )
    plugin2.cancel_job(JobIdArgs(job_id="req-3"), alice)  # no-op on a finished job
    await plugin2.stop()


def test_whole_chars_keeps_split_utf8_for_later(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes("aé€".encode())
    text, end = launch.read_text(str(path), 0, 4, final=False)  # cuts € after 1 of 3 bytes
    assert (text, end) == ("aé", 3)
    text, end = launch.read_text(str(path), end, 100, final=False)
    assert (text, end) == ("€", 6)


def test_final_reads_split_utf8_only_at_the_end_of_the_file(tmp_path: Path) -> None:
    """A finished job's output is sent in chunks too: a chunk that stops inside a character
    leaves it for the next chunk; only bytes that end the file undecodable are replaced."""
    path = tmp_path / "out"
    path.write_bytes("aé€".encode() + "€".encode()[:2])
    text, end = launch.read_text(str(path), 0, 4, final=True)  # cuts € after 1 of 3 bytes
    assert (text, end) == ("aé", 3)
    text, end = launch.read_text(str(path), end, 3, final=True)
    assert (text, end) == ("€", 6)
    text, end = launch.read_text(str(path), end, 3, final=True)  # truncated for good
    assert (text, end) == ("\ufffd", 8)


def test_duration_and_exit_code_mapping() -> None:
    from orbit_cli.parsing import parse_duration
    from orbit_plugins.psij.cli import exit_code_of

    assert parse_duration("90") == 90
    assert parse_duration("1:30") == 90
    assert parse_duration("1:00:05") == 3605
    assert exit_code_of("CANCELED", None) == 130
    assert exit_code_of("FAILED", 4) == 4


def test_cli_spec_errors_name_the_flag() -> None:
    from orbit_cli.errors import UsageError
    from orbit_plugins.psij.cli import build_spec

    kw: dict[str, Any] = {"directory": None, "env": [], "queue": None, "account": None}
    assert build_spec(["true"], nodes=2, duration="1:00", **kw).attributes.duration == 60
    with pytest.raises(UsageError, match="--nodes: Input should be greater than or equal to 1"):
        build_spec(["true"], nodes=0, duration=None, **kw)
    with pytest.raises(UsageError, match="--env 'X': use KEY=VALUE"):
        build_spec(["true"], nodes=None, duration=None, **(kw | {"env": ["X"]}))


async def test_never_submitted_row_is_submitted_at_start(tmp_path: Path) -> None:
    """A ledger row without the ``submitting`` marker never reached PSI/J: start() runs it."""
    plugin, _ = await make(tmp_path)
    marks = tmp_path / "marks"
    spec = JobSpec(executable="bash", arguments=["-c", f"echo run >> {marks}"])
    alice = Call("req-4", "alice", "ep")
    plugin.store.insert(plugin._new_record(SubmitArgs(spec=spec), alice))
    await plugin.stop()
    plugin2, _ = await make(tmp_path)
    await plugin2.start()
    st = wait_terminal(plugin2, "req-4", alice)
    assert (st.state, st.exit_code) == ("COMPLETED", 0)
    assert plugin2.submit_job(SubmitArgs(spec=spec), alice).job_id == "req-4"  # journal re-run
    assert marks.read_text() == "run\n"
    await plugin2.stop()


FAKES = Path(__file__).resolve().parents[1] / "fakes"


def test_batch_lookup_by_name_and_pbs_user_without_tty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = ":".join(str(FAKES / k) for k in ("pbs", "slurm", "lsf"))
    monkeypatch.setenv("PATH", f"{fakes}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LSF_DIR", str(tmp_path / "lsf"))
    monkeypatch.setenv("FAKE_PBS_DIR", str(tmp_path / "pbs"))
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "slurm"))
    (tmp_path / "pbs").mkdir()
    script = tmp_path / "job.sh"
    script.write_text(
        '#!/bin/bash\n#PBS -N "orbit-r1"\n#SBATCH --job-name="orbit-r1"\n'
        '#BSUB -J "orbit-r1"\nsleep 30\n'
    )
    pbs = subprocess.run(["qsub", str(script)], capture_output=True, text=True, check=True)
    slurm = subprocess.run(["sbatch", str(script)], capture_output=True, text=True, check=True)
    subprocess.run(["bsub", str(script)], capture_output=True, check=True)
    try:
        assert launch.find_batch_job("pbs", "orbit-r1") == pbs.stdout.strip() == "1001.pbs01"
        assert launch.find_batch_job("slurm", "orbit-r1") == slurm.stdout.split()[-1]
        assert launch.find_batch_job("pbs", "orbit-r2") is None
        assert launch.find_batch_job("slurm", "orbit-r2") is None
        assert launch.find_batch_job("lsf", "orbit-r1") == "1001"
        # PSI/J's batch executors ask os.getlogin(), which fails without a terminal
        executor = launch.Executors(["pbs"], 1).get("pbs")
        assert executor._current_user() == getpass.getuser()
    finally:
        subprocess.run(["qdel", "1001.pbs01"], check=False)
        subprocess.run(["scancel", slurm.stdout.split()[-1]], check=False)
        subprocess.run(["bkill", "1001"], capture_output=True, check=False)


async def test_prune_at_start_forgets_old_finished_jobs_only(tmp_path: Path) -> None:
    plugin, _ = await make(tmp_path)
    alice = Call("req-old", "alice", "ep")
    plugin.submit_job(SubmitArgs(spec=JobSpec(executable="true")), alice)
    wait_terminal(plugin, "req-old", alice)
    old_dir = Path(plugin.store.get("req-old").job_dir)  # type: ignore[union-attr]
    plugin.store.update("req-old", finished_at=time.time() - 8 * 86400)  # default: 7 days
    # an active job submitted long ago (its ledger row only: nothing runs)
    active = plugin._new_record(SubmitArgs(spec=JobSpec(executable="true")), Call("a", "u", "ep"))
    active.state, active.native_id, active.submitted_at = "ACTIVE", "77", time.time() - 9e5
    active.executor = "slurm"  # no sbatch here: its re-attach fails and is only logged
    plugin.store.insert(active)
    await plugin.stop()

    plugin2, _ = await make(tmp_path)
    await plugin2.start()  # prunes
    assert plugin2.store.get("req-old") is None
    assert not exists(old_dir)
    assert plugin2.store.get("a") is not None  # unfinished jobs are never pruned
    assert plugin2._prune() == 0
    await plugin2.stop()
