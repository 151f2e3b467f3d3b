"""The tasks plugin in-process (fake context, real worker subprocesses) and client helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbit_plugins.base import Call
from orbit_plugins.tasks.client_tasks import (
    RemoteTraceback,
    TaskFailed,
    VersionMismatch,
    check_versions,
    local_versions,
    outcome,
)
from orbit_plugins.tasks.plugin import TasksPlugin
from orbit_plugins.tasks.schema import (
    ListArgs,
    SubmitArgs,
    TaskRecord,
    TaskSpec,
    UidArgs,
    WaitArgs,
)
from orbit_plugins.tasks.store import record_json
from orbit_plugins.testing import FakeContext
from orbit_protocol import Conflict, NotFound
from tests.testkit.eventually import eventually


def call(user: str, admin: bool = False) -> Call:
    return Call(request_id="r", user=user, endpoint="ep", is_admin=admin)


async def test_ownership_and_idempotent_resubmit(tmp_path: Path) -> None:
    plugin = TasksPlugin({"workers": 1, "notify_window": 0.01})
    ctx = FakeContext(tmp_path)
    await plugin.setup(ctx)
    await plugin.start()
    try:
        tasks = SubmitArgs(tasks=[TaskSpec(uid="t1", function="operator:add", args=[1, 2])])
        await plugin.submit_tasks(tasks, call("alice"))
        [rec] = await plugin.wait_tasks(WaitArgs(uids=["t1"], timeout=20), call("alice"))
        assert rec.state == "DONE" and rec.return_value == 3 and rec.owner == "alice"
        with pytest.raises(NotFound):
            await plugin.get_task(UidArgs(uid="t1"), call("bob"))
        assert await plugin.list_tasks(ListArgs(), call("bob")) == []
        assert (await plugin.get_task(UidArgs(uid="t1"), call("root", admin=True))).uid == "t1"
        with pytest.raises(Conflict):
            await plugin.submit_tasks(tasks, call("bob"))
        again = await plugin.submit_tasks(tasks, call("alice"))
        assert [(r.uid, r.state) for r in again] == [("t1", "DONE")]
    finally:
        await plugin.stop()
    states = [(d.get("uid"), d.get("state")) for t, d in ctx.events if t == "task_status"]
    batches = [c for t, d in ctx.events if t == "task_status_batch" for c in d["tasks"]]
    seen = states + [(c["uid"], c["state"]) for c in batches]
    assert ("t1", "RUNNING") in seen and ("t1", "DONE") in seen


def test_task_spec_needs_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TaskSpec(executable="x", function="a:b")
    with pytest.raises(ValueError, match="exactly one"):
        TaskSpec()


def test_version_check() -> None:
    here = local_versions()
    ok = {"versions": here, "plugins": {"tasks": {"available": True}}}
    check_versions("ep", ok)
    bad = {"versions": {"python": "2.7.18", "cloudpickle": None}, "plugins": ok["plugins"]}
    with pytest.raises(VersionMismatch, match=r"Python 2\.7\.18 there.*not installed there"):
        check_versions("ep", bad)
    with pytest.raises(VersionMismatch, match="no available tasks plugin"):
        check_versions("ep", {"versions": here, "plugins": {}})


def test_outcome_rebuilds_failures() -> None:
    ok, exc = outcome({"uid": "u", "state": "FAILED", "error": "E: x", "traceback": "tb"})
    assert not ok and isinstance(exc, TaskFailed) and isinstance(exc.__cause__, RemoteTraceback)
    assert outcome({"uid": "u", "state": "DONE", "kind": "function", "return_value": [1]}) == (
        True,
        [1],
    )


async def test_graceful_stop_reports_running_and_keeps_queued(tmp_path: Path) -> None:

    plugin = TasksPlugin({"workers": 1})
    await plugin.setup(FakeContext(tmp_path))
    await plugin.start()
    specs = [
        TaskSpec(uid="long", function="time:sleep", args=[30]),
        TaskSpec(uid="next", function="operator:add", args=[1, 1]),
    ]
    await plugin.submit_tasks(SubmitArgs(tasks=specs), call("alice"))

    async def running() -> bool:
        return (await plugin.get_task(UidArgs(uid="long"), call("alice"))).state == "RUNNING"

    await eventually(running, timeout=5, interval=0.05, what="task 'long' runs")
    await plugin.stop()
    again = TasksPlugin({"workers": 1})
    await again.setup(FakeContext(tmp_path))
    await again.start()
    try:
        done = await again.wait_tasks(WaitArgs(uids=["long", "next"], timeout=20), call("alice"))
        assert done[0].state == "FAILED" and "stopped while it ran" in (done[0].error or "")
        assert done[1].state == "DONE" and done[1].return_value == 2
    finally:
        await again.stop()


def test_pool_queue_is_an_endpoint_queue_without_single_active_consumer() -> None:
    from orbit_protocol import topology

    pool = dict(topology.pool_queue_arguments())
    work = dict(topology.work_queue_arguments())
    assert "x-single-active-consumer" not in pool
    assert pool == {k: v for k, v in work.items() if k != "x-single-active-consumer"}
    assert work["x-single-active-consumer"] is True  # endpoint queues keep their standbys


def test_mapped_function_is_pickled_once_and_scalars_come_back_as_json() -> None:
    from orbit_plugins.tasks import worker
    from orbit_plugins.tasks.client_tasks import map_specs

    specs = list(map_specs(lambda x, y: x * y, [(2, 3), (4, 5)]))
    assert specs[0]["pickled"] is specs[1]["pickled"]  # one blob for every task
    assert len({s["uid"] for s in specs}) == 2
    outs = [
        worker.run_one(("pickled_fn", s["pickled"], s["pickled_args"], {}, 1 << 20)) for s in specs
    ]
    assert [(o["return_value"], o["return_encoding"]) for o in outs] == [(6, "json"), (20, "json")]
    fails = worker.run_one(
        ("pickled_fn", specs[0]["pickled"], specs[0]["pickled_args"][:-8], {}, 1 << 20)
    )
    assert not fails["ok"] and "could not unpickle" in fails["error"]


def test_map_slots_keep_order_raise_and_time_out() -> None:
    """``OrbitExecutor.map``'s result slots: settled from other threads in any order, read
    in order; a task's exception ends the iteration; a missing result times out."""
    import asyncio
    import concurrent.futures
    import threading
    import time

    from orbit_plugins.tasks.client_sync import _Slots

    slots = _Slots()
    settle = [slots.add() for _ in range(50)]
    threads = [threading.Thread(target=settle[i], args=(True, i * i)) for i in reversed(range(50))]
    for t in threads:
        t.start()
    assert list(slots.results(time.monotonic() + 10)) == [i * i for i in range(50)]
    for t in threads:
        t.join()

    failing = _Slots()
    first, second, _never = failing.add(), failing.add(), failing.add()
    first(True, "ok")
    second(False, ValueError("boom"))
    second(True, "late duplicate is ignored")
    it = failing.results(None)
    assert next(it) == "ok"
    with pytest.raises(ValueError, match="boom"):
        next(it)

    cancelled = _Slots()
    cancelled.add()(False, asyncio.CancelledError())
    with pytest.raises(concurrent.futures.CancelledError):
        list(cancelled.results(None))

    waiting = _Slots()
    waiting.add()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        list(waiting.results(time.monotonic() + 0.2))
    assert time.monotonic() - started < 5


def test_record_json_is_the_json_form_of_a_valid_record() -> None:
    fields = {
        "uid": "t1",
        "owner": "alice",
        "kind": "pickled",
        "state": "DONE",
        "submitted": 1.5,
        "started": 2.0,
        "finished": 2.5,
        "metadata": {"k": [1, "x"]},
        "return_value": "gASVBAAAAAAAAABOLg==",
        "return_encoding": "cloudpickle",
        "ok": True,  # not a record field: dropped
    }
    record = record_json(fields)
    assert "ok" not in record
    assert record == TaskRecord.model_validate(record).model_dump(mode="json")
    assert list(record) == list(TaskRecord.model_fields)  # every field, in schema order
