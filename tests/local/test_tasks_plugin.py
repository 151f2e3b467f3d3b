"""The tasks plugin in an endpoint on the memory broker: executables, functions, worker
processes, events, cloudpickle opt-in, timeouts, dying workers, cancel."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from orbit_client import AsyncOrbitClient, InvalidArgs, NotAuthorized, NotFound
from orbit_protocol import Event
from tests.local.conftest import StartEndpoint
from tests.testkit.eventually import eventually

TASKS = "orbit_plugins.tasks.plugin:TasksPlugin"


def pickled(func: Any, *args: Any, **kwargs: Any) -> str:
    return base64.b64encode(cloudpickle.dumps((func, args, kwargs))).decode()


def unpickle(data: str) -> Any:
    return cloudpickle.loads(base64.b64decode(data))


async def wait(client: AsyncOrbitClient, ep: str, uids: list[str], timeout: float) -> Any:
    """``wait_tasks`` (args as a dict: ``timeout`` is also a keyword of ``call``)."""
    reply = await client.request(ep, "tasks.wait_tasks", {"uids": uids, "timeout": timeout})
    return reply.unwrap()


async def until_running(client: AsyncOrbitClient, ep: str, uid: str) -> None:
    async def running() -> bool:
        return bool((await client.call(ep, "tasks.get_task", uid=uid))["state"] == "RUNNING")

    await eventually(running, interval=0.1, what=f"task {uid} runs")


async def start(start_endpoint: StartEndpoint, name: str = "ep1", **tasks: Any) -> Any:
    return await start_endpoint(
        name, plugins=[TASKS], plugin_settings={"tasks": {"workers": 2, **tasks}}
    )


async def test_batch_of_every_kind_with_events(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start(start_endpoint, allow_cloudpickle=True, notify_window=0.05)
    sub = await client.subscribe("ep1", "tasks")
    host_pid = os.getpid()

    def where(x: int) -> tuple[int, int]:
        return x * 2, os.getpid()

    def boom() -> None:
        raise KeyError("nope")

    tasks = [
        {"uid": "t-echo", "executable": "/bin/sh", "arguments": ["-c", "echo hi $FOO; exit 3"],
         "environment": {"FOO": "bar"}},
        {"uid": "t-fact", "function": "math:factorial", "args": [10]},
        {"uid": "t-pick", "pickled": pickled(where, 21)},
        {"uid": "t-boom", "pickled": pickled(boom)},
        {"uid": "t-missing", "function": "no_such_module:f"},
    ]  # fmt: skip
    accepted = await client.call("ep1", "tasks.submit_tasks", tasks=tasks)
    assert [a["uid"] for a in accepted] == [t["uid"] for t in tasks]
    uids = [t["uid"] for t in tasks]
    records = await wait(client, "ep1", uids, 20)
    by = {r["uid"]: r for r in records}
    assert by["t-echo"]["state"] == "FAILED" and by["t-echo"]["exit_code"] == 3
    assert by["t-echo"]["stdout"] == "hi bar\n"
    assert by["t-fact"] == by["t-fact"] | {"state": "DONE", "return_value": 3628800}
    value, pid = unpickle(by["t-pick"]["return_value"])
    assert value == 42 and pid != host_pid
    assert by["t-boom"]["exception"] == "KeyError" and "in boom" in by["t-boom"]["traceback"]
    assert isinstance(unpickle(by["t-boom"]["exception_pickled"]), KeyError)
    assert by["t-missing"]["state"] == "FAILED" and "no_such_module" in by["t-missing"]["error"]
    # events: RUNNING and a final state for every task, without results
    seen: dict[str, list[str]] = {}
    while sum(s[-1:] != ["RUNNING"] and len(s) >= 2 for s in seen.values()) < len(uids):
        event: Event = await sub.get(timeout=10)
        changes = event.data["tasks"] if event.topic == "task_status_batch" else [event.data]
        for change in changes:
            assert "return_value" not in change and change["owner"] == client.user
            seen.setdefault(change["uid"], []).append(change["state"])
    assert seen["t-fact"] == ["RUNNING", "DONE"] and seen["t-echo"] == ["RUNNING", "FAILED"]
    # resubmitting a known uid runs nothing and reports its state
    again = await client.call("ep1", "tasks.submit_tasks", tasks=tasks[1:2])
    assert again == [{"uid": "t-fact", "state": "DONE"}]
    listed = await client.call("ep1", "tasks.list_tasks", state="DONE")
    assert {r["uid"] for r in listed} == {"t-fact", "t-pick"}
    with pytest.raises(NotFound):
        await client.call("ep1", "tasks.get_task", uid="nope")


async def test_cloudpickle_refused_unless_enabled(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    """A malicious pickle is refused unread; where enabled it runs in a worker, not the endpoint."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"echo $PPID $$ > {marker}",))

    payload = base64.b64encode(cloudpickle.dumps(Evil())).decode()
    ep = await start(start_endpoint)
    with pytest.raises(NotAuthorized, match="allow_cloudpickle"):
        await client.call("ep1", "tasks.submit_tasks", tasks=[{"pickled": payload}])
    assert not marker.exists()
    assert await client.call("ep1", "tasks.list_tasks") == []
    await ep.stop()
    ep = await start(start_endpoint, "ep2", allow_cloudpickle=True)
    await client.call("ep2", "tasks.submit_tasks", tasks=[{"uid": "evil", "pickled": payload}])
    [record] = await wait(client, "ep2", ["evil"], 20)
    assert record["state"] == "FAILED" and "unpickle" in record["error"]
    parent = int(marker.read_text().split()[0])
    assert parent != os.getpid()  # the shell's parent is a worker process, not the endpoint


async def test_timeout_dead_worker_and_cancel(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start(start_endpoint, allow_cloudpickle=True, workers=1)

    def suicide() -> None:
        os.kill(os.getpid(), 9)

    tasks = [
        {"uid": "slow", "function": "time:sleep", "args": [30], "timeout": 0.5},
        {"uid": "dies", "pickled": pickled(suicide)},
        {"uid": "after", "function": "operator:add", "args": [2, 3]},
        {"uid": "sleeper", "executable": "sleep", "arguments": ["30"]},
        {"uid": "fsleeper", "function": "time:sleep", "args": [30]},
        {"uid": "queued", "function": "operator:add", "args": [1, 1]},
    ]
    await client.call("ep1", "tasks.submit_tasks", tasks=tasks)
    done = await wait(client, "ep1", ["slow", "dies", "after"], 30)
    by = {r["uid"]: r for r in done}
    assert by["slow"]["state"] == "FAILED" and "timed out after 0.5 s" in by["slow"]["error"]
    assert by["dies"]["exception"] == "WorkerDied" and "signal 9" in by["dies"]["error"]
    assert by["after"]["return_value"] == 5  # the replacement worker runs the next task
    cancelled = await client.call("ep1", "tasks.cancel_task", uid="sleeper")
    assert cancelled == {"uid": "sleeper", "state": "CANCELED", "cancelled": True}
    await until_running(client, "ep1", "fsleeper")  # the function worker picks it up
    assert await client.call("ep1", "tasks.cancel_all_tasks") == {"cancelled": 2}
    final = await wait(client, "ep1", ["fsleeper", "queued"], 10)
    assert [r["state"] for r in final] == ["CANCELED", "CANCELED"]


async def test_final_task_records_expire_after_retention(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start(start_endpoint, "ep-ret", retention=1.0, prune_interval=0.2)
    specs = [
        {"uid": "old", "executable": "true"},
        {"uid": "long", "executable": "sleep", "arguments": ["30"]},
    ]
    await client.call("ep-ret", "tasks.submit_tasks", tasks=specs)
    [done] = await wait(client, "ep-ret", ["old"], 10)
    assert done["state"] == "DONE"

    async def forgotten() -> bool:
        try:
            await client.call("ep-ret", "tasks.get_task", uid="old")
        except NotFound:
            return True
        return False

    await eventually(forgotten, timeout=10, interval=0.2, what="the finished task is pruned")
    # a task still running is never pruned, however old its submission
    assert (await client.call("ep-ret", "tasks.get_task", uid="long"))["state"] == "RUNNING"
    await client.call("ep-ret", "tasks.cancel_task", uid="long")


async def test_cancel_all_kills_function_tasks_waiting_in_a_workers_chunk(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    """Under a backlog a worker takes tasks in chunks; cancelling one that waits in the chunk
    must stop it when its turn comes, not let it run its full length."""
    await start(start_endpoint, "ep-chunk", workers=1)
    sleepers = [f"s{i}" for i in range(15)]
    tasks = [{"uid": "first", "function": "time:sleep", "args": [0.5]}]
    tasks += [{"uid": uid, "function": "time:sleep", "args": [30]} for uid in sleepers]
    await client.call("ep-chunk", "tasks.submit_tasks", tasks=tasks)
    await wait(client, "ep-chunk", ["first"], 10)

    async def one_running() -> bool:
        listed = await client.call("ep-chunk", "tasks.list_tasks", state="RUNNING")
        return bool(listed)

    await eventually(one_running, interval=0.05, what="a sleeper runs")
    assert (await client.call("ep-chunk", "tasks.cancel_all_tasks"))["cancelled"] == 15
    final = await wait(client, "ep-chunk", sleepers, 15)
    assert {r["state"] for r in final} == {"CANCELED"}, [(r["uid"], r["state"]) for r in final]


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="needs an MPI launcher (openmpi-bin)")
async def test_mpi_task_runs_its_ranks_under_the_launcher(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    """A real Open MPI ``mpiexec`` starts the ranks (root and 2 cores here: the two flags)."""
    launcher = ["mpiexec", "--allow-run-as-root", "--oversubscribe", "-n", "{ranks}"]
    await start(start_endpoint, "ep-mpi", mpi_launcher=launcher)
    report = "echo rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE"
    task = {"uid": "mpi3", "executable": "sh", "arguments": ["-c", report], "type": "mpi"}
    await client.call("ep-mpi", "tasks.submit_tasks", tasks=[{**task, "ranks": 3}])
    [done] = await wait(client, "ep-mpi", ["mpi3"], 60)
    assert done["state"] == "DONE", done
    assert sorted(done["stdout"].splitlines()) == [f"rank {r} of 3" for r in range(3)]


async def test_mpi_task_specs_are_checked(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start(start_endpoint, "ep-mpi2", mpi_launcher=["no-such-mpiexec", "-n", "{ranks}"])
    bad = [
        ({"executable": "hostname", "ranks": 2}, "ranks is for MPI tasks"),
        ({"function": "os:getcwd", "type": "mpi"}, "runs an executable"),
        ({"executable": "hostname", "type": "mpi", "ranks": 0}, "greater than or equal to 1"),
    ]
    for spec, message in bad:
        with pytest.raises(InvalidArgs, match=message):
            await client.call("ep-mpi2", "tasks.submit_tasks", tasks=[spec])
    task = {"uid": "nolauncher", "executable": "hostname", "type": "mpi", "ranks": 2}
    await client.call("ep-mpi2", "tasks.submit_tasks", tasks=[task])
    [failed] = await wait(client, "ep-mpi2", ["nolauncher"], 30)
    assert failed["state"] == "FAILED" and "cannot start 'no-such-mpiexec'" in failed["error"]
