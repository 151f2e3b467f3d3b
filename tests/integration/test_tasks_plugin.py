"""The tasks plugin after its endpoint process is SIGKILLed and restarted, on a real broker
(the rest is tested in tests/local/test_tasks_plugin.py)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import cloudpickle
import pytest

from orbit_client import AsyncOrbitClient

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit
TASKS = "orbit_plugins.tasks.plugin:TasksPlugin"


def pickled(func: Any, *args: Any, **kwargs: Any) -> str:
    return base64.b64encode(cloudpickle.dumps((func, args, kwargs))).decode()


def unpickle(data: str) -> Any:
    return cloudpickle.loads(base64.b64decode(data))


async def wait(client: AsyncOrbitClient, ep: str, uids: list[str], timeout: float) -> Any:
    """``wait_tasks`` (args as a dict: ``timeout`` is also a keyword of ``call``)."""
    reply = await client.request(ep, "tasks.wait_tasks", {"uids": uids, "timeout": timeout})
    return reply.unwrap()


async def start(start_endpoint: StartEndpoint, name: str = "ep1", **tasks: Any) -> Any:
    return await start_endpoint(
        name, plugins=[TASKS], plugin_settings={"tasks": {"workers": 2, **tasks}}
    )


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
    for _ in range(100):
        if (await client.call("ep1", "tasks.get_task", uid="long"))["state"] == "RUNNING":
            break
        await asyncio.sleep(0.1)
    ep.kill()
    await ep.start()
    uids = ["first", "long", "q0", "q1", "q2"]
    records = await wait(client, "ep1", uids, 20)
    by = {r["uid"]: r for r in records}
    assert by["first"]["return_value"] == 42
    assert by["long"]["state"] == "FAILED" and "interrupted" in by["long"]["error"]
    assert [by[f"q{i}"]["return_value"] for i in range(3)] == [0, 2, 4]
