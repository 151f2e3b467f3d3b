"""The tasks plugin with backend="rhapsody" (real rhapsody-py, fake context, no broker)."""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from orbit_plugins.base import Call
from orbit_plugins.tasks.plugin import TasksPlugin
from orbit_plugins.tasks.rhapsody_backend import RhapsodyPool
from orbit_plugins.tasks.schema import SubmitArgs, TaskRecord, TaskSpec, UidArgs, WaitArgs
from orbit_plugins.testing import FakeContext
from tests.testkit.eventually import eventually, eventually_sync

pytest.importorskip("rhapsody", reason="rhapsody-py is not installed (pip install rhapsody-py)")
cloudpickle = pytest.importorskip("cloudpickle")

ALICE = Call(request_id="r", user="alice", endpoint="ep")


@pytest.fixture
async def plugin(tmp_path: Path) -> AsyncIterator[TasksPlugin]:
    p = TasksPlugin(
        {"backend": "rhapsody", "workers": 1, "allow_cloudpickle": True, "notify_window": 0.01}
    )
    await p.setup(FakeContext(tmp_path))
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def run(plugin: TasksPlugin, *specs: TaskSpec, timeout: float = 60) -> list[TaskRecord]:
    results = await plugin.submit_tasks(SubmitArgs(tasks=list(specs)), ALICE)
    uids = [r.uid for r in results]
    return await plugin.wait_tasks(WaitArgs(uids=uids, timeout=timeout), ALICE)


async def running(plugin: TasksPlugin, uid: str) -> None:
    async def started() -> bool:
        return (await plugin.get_task(UidArgs(uid=uid), ALICE)).state == "RUNNING"

    await eventually(started, timeout=30, interval=0.05, what=f"task {uid} runs")


def pickled(func: Any, *args: Any) -> str:
    return base64.b64encode(cloudpickle.dumps((func, args, {}))).decode()


async def test_import_path_function_runs_in_a_rhapsody_worker_process(
    plugin: TasksPlugin, tmp_path: Path
) -> None:
    assert isinstance(plugin._pool, RhapsodyPool)
    assert "rhapsody-py" in plugin.description and "'concurrent'" in plugin.description
    add, pid, ppid = await run(
        plugin,
        TaskSpec(function="operator:add", args=[2, 40]),
        TaskSpec(function="os:getpid"),
        TaskSpec(function="os:getppid"),
    )
    assert (add.state, add.return_value, add.return_encoding) == ("DONE", 42, "json")
    assert add.started is not None and add.finished is not None
    assert pid.state == "DONE" and pid.return_value != os.getpid()  # not in this process
    assert ppid.return_value == os.getpid()  # a child process of the endpoint
    assert any((tmp_path / "rhapsody").glob("rhapsody.session.*"))  # in state_dir, not cwd


async def test_cloudpickled_function_and_its_result_encoding(plugin: TasksPlugin) -> None:
    [rec] = await run(plugin, TaskSpec(pickled=pickled(lambda x: (x * 2, os.getpid()), 21)))
    assert rec.state == "DONE" and rec.return_encoding == "cloudpickle"
    value, pid = cloudpickle.loads(base64.b64decode(rec.return_value))
    assert value == 42 and pid != os.getpid()
    [scalar] = await run(plugin, TaskSpec(pickled=pickled(lambda: "hi")))
    assert (scalar.return_value, scalar.return_encoding) == ("hi", "json")


async def test_exception_comes_back_with_its_traceback(plugin: TasksPlugin) -> None:
    [rec] = await run(plugin, TaskSpec(function="operator:truediv", args=[1, 0]))
    assert rec.state == "FAILED" and rec.exception == "ZeroDivisionError"
    assert rec.error is not None and rec.error.startswith("ZeroDivisionError")
    assert rec.traceback is not None and "ZeroDivisionError" in rec.traceback

    def boom() -> None:
        raise KeyError("nope")

    [pick] = await run(plugin, TaskSpec(pickled=pickled(boom)))
    assert pick.state == "FAILED" and pick.exception == "KeyError"
    assert pick.exception_pickled is not None
    assert isinstance(cloudpickle.loads(base64.b64decode(pick.exception_pickled)), KeyError)


async def test_executable_task(plugin: TasksPlugin) -> None:
    [rec] = await run(plugin, TaskSpec(executable="/bin/echo", arguments=["hi"]))
    assert rec.state == "DONE" and rec.exit_code == 0 and rec.stdout == "hi\n"


async def test_timeout_interrupts_the_task_and_the_worker_serves_the_next(
    plugin: TasksPlugin,
) -> None:
    t0 = time.monotonic()
    [slow] = await run(plugin, TaskSpec(function="time:sleep", args=[30], timeout=0.5))
    assert time.monotonic() - t0 < 10
    assert slow.state == "FAILED" and slow.exception == "TimeoutError"
    assert slow.error is not None and "timed out after 0.5 s; interrupted" in slow.error
    [after] = await run(plugin, TaskSpec(function="operator:mul", args=[6, 7]))
    assert (after.state, after.return_value) == ("DONE", 42)


async def test_a_task_that_ignores_the_interrupt_is_reported_not_killed(
    plugin: TasksPlugin,
) -> None:
    def stubborn() -> str:
        import signal

        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(4)
        return "late"

    t0 = time.monotonic()
    [rec] = await run(plugin, TaskSpec(pickled=pickled(stubborn), timeout=0.5))
    took = time.monotonic() - t0
    assert rec.state == "FAILED" and rec.exception == "TimeoutError"
    assert rec.error is not None and "cannot kill one task" in rec.error
    assert 2 <= took < 4  # timeout + GRACE, not the task's end
    [after] = await run(plugin, TaskSpec(function="operator:add", args=[1, 2]))
    assert (after.state, after.return_value) == ("DONE", 3)  # once the worker is free again
    [again] = await run(plugin, TaskSpec(uid=rec.uid, pickled=pickled(stubborn)))
    assert again.state == "FAILED"  # the late result was dropped: the record is unchanged


async def test_a_dead_worker_fails_its_task_and_a_new_pool_takes_the_next(
    plugin: TasksPlugin,
) -> None:
    [dead] = await run(plugin, TaskSpec(pickled=pickled(lambda: os.kill(os.getpid(), 9))))
    assert dead.state == "FAILED" and dead.exception == "WorkerDied"
    [after] = await run(plugin, TaskSpec(function="operator:add", args=[2, 2]))
    assert (after.state, after.return_value) == ("DONE", 4)


async def test_cancel_drops_a_queued_task_and_says_no_for_a_running_one(
    plugin: TasksPlugin,
) -> None:
    results = await plugin.submit_tasks(
        SubmitArgs(
            tasks=[
                TaskSpec(uid="busy", function="time:sleep", args=[1.5]),
                TaskSpec(uid="waiting", function="operator:add", args=[1, 1]),
            ]
        ),
        ALICE,
    )
    assert [r.state for r in results] == ["QUEUED", "QUEUED"]
    await running(plugin, "busy")
    waiting = await plugin.cancel_task(UidArgs(uid="waiting"), ALICE)
    assert waiting.cancelled and waiting.state == "CANCELED"
    busy = await plugin.cancel_task(UidArgs(uid="busy"), ALICE)
    assert not busy.cancelled and busy.state == "RUNNING"  # rhapsody cannot stop it
    [rec] = await plugin.wait_tasks(WaitArgs(uids=["busy"], timeout=30), ALICE)
    assert rec.state == "DONE"


async def test_not_installed_is_a_clear_setup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rhapsody", None)
    p = TasksPlugin({"backend": "rhapsody"})
    with pytest.raises(RuntimeError, match=r"needs rhapsody-py.*pip install rhapsody-py"):
        await p.setup(FakeContext(tmp_path))


async def test_backends_that_are_not_wired_are_refused_at_setup(tmp_path: Path) -> None:
    for name in ("dragon", "dask", "noop"):
        p = TasksPlugin({"backend": "rhapsody", "rhapsody_backend": name})
        with pytest.raises(RuntimeError, match=rf"rhapsody_backend='{name}' is not supported"):
            await p.setup(FakeContext(tmp_path))


async def test_stop_kills_the_running_task_and_keeps_the_queued_one(tmp_path: Path) -> None:
    settings = {"backend": "rhapsody", "workers": 1}
    first = TasksPlugin(settings)
    await first.setup(FakeContext(tmp_path))
    await first.start()
    specs = [
        TaskSpec(uid="long", function="os:getpid"),
        TaskSpec(uid="sleep", function="time:sleep", args=[30]),
        TaskSpec(uid="next", function="operator:add", args=[1, 1]),
    ]
    await first.submit_tasks(SubmitArgs(tasks=specs), ALICE)
    await running(first, "sleep")
    worker_pid = (await first.get_task(UidArgs(uid="long"), ALICE)).return_value
    t0 = time.monotonic()
    await first.stop()
    assert time.monotonic() - t0 < 10
    with pytest.raises(ProcessLookupError):  # the pool's process is gone (reaped)
        os.kill(worker_pid, 0)
    again = TasksPlugin(settings)
    await again.setup(FakeContext(tmp_path))
    await again.start()
    try:
        done = await again.wait_tasks(WaitArgs(uids=["sleep", "next"], timeout=30), ALICE)
        assert done[0].state == "FAILED" and "stopped while it ran" in (done[0].error or "")
        assert done[1].state == "DONE" and done[1].return_value == 2
    finally:
        await again.stop()


SCRIPT = """
import asyncio, os, signal, sys
from pathlib import Path
from orbit_plugins.base import Call
from orbit_plugins.tasks.plugin import TasksPlugin
from orbit_plugins.tasks.schema import SubmitArgs, TaskSpec, UidArgs
from orbit_plugins.testing import FakeContext

async def main() -> None:
    alice = Call(request_id="r", user="alice", endpoint="ep")
    p = TasksPlugin({"backend": "rhapsody", "workers": 1})
    await p.setup(FakeContext(Path(sys.argv[1])))
    await p.start()
    specs = [
        TaskSpec(uid="pid", function="os:getpid"),
        TaskSpec(uid="s", function="time:sleep", args=[60]),
    ]
    await p.submit_tasks(SubmitArgs(tasks=specs), alice)
    while (await p.get_task(UidArgs(uid="s"), alice)).state != "RUNNING":
        await asyncio.sleep(0.05)
    print((await p.get_task(UidArgs(uid="pid"), alice)).return_value, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_pool_processes_exit_when_the_endpoint_is_killed(tmp_path: Path) -> None:
    import subprocess

    script = tmp_path / "endpoint.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        timeout=30,  # stdout stays open (and this times out) while a pool process lives on
    )
    assert proc.returncode == -9
    worker_pid = int(proc.stdout.split()[-1])
    # the pool process ran a 60 s sleep: its parent watchdog ends it
    eventually_sync(lambda: not psutil.pid_exists(worker_pid), interval=0.1, what="pool ends")
