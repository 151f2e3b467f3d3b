"""The tasks plugin after its endpoint process is SIGKILLed and restarted, on a real broker
(the rest is tested in tests/local/test_tasks_plugin.py)."""

from __future__ import annotations

import pytest

from orbit_client import AsyncOrbitClient
from tests.local.test_tasks_plugin import start, until_running, wait

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit


async def test_restart_keeps_results_and_runs_queued_tasks(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    ep = await start(start_endpoint, workers=1)
    await client.call(
        "ep1",
        "tasks.submit_tasks",
        tasks=[{"uid": "first", "function": "operator:mul", "args": [6, 7]}],
    )
    await wait(client, "ep1", ["first"], 20)
    tasks = [{"uid": "long", "function": "time:sleep", "args": [60]}] + [
        {"uid": f"q{i}", "function": "operator:add", "args": [i, i]} for i in range(3)
    ]
    await client.call("ep1", "tasks.submit_tasks", tasks=tasks)
    await until_running(client, "ep1", "long")
    ep.kill()
    await ep.start()
    uids = ["first", "long", "q0", "q1", "q2"]
    records = await wait(client, "ep1", uids, 20)
    by = {r["uid"]: r for r in records}
    assert by["first"]["return_value"] == 42
    assert by["long"]["state"] == "FAILED" and "interrupted" in by["long"]["error"]
    assert [by[f"q{i}"]["return_value"] for i in range(3)] == [0, 2, 4]
