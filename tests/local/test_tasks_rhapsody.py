"""The tasks plugin with backend="rhapsody" in an endpoint on the memory broker."""

from __future__ import annotations

import base64
import os
from typing import Any

import cloudpickle
import pytest

from orbit_client import AsyncOrbitClient
from tests.local.conftest import StartEndpoint

pytest.importorskip("rhapsody", reason="rhapsody-py is not installed (pip install rhapsody-py)")
TASKS = "orbit_plugins.tasks.plugin:TasksPlugin"
SYSINFO = "orbit_plugins.sysinfo.plugin:SysinfoPlugin"
RHAPSODY = {"backend": "rhapsody", "workers": 1, "allow_cloudpickle": True}


async def test_rhapsody_backend_runs_tasks_and_describe_names_it(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("ep1", plugins=[TASKS], plugin_settings={"tasks": RHAPSODY})
    described = await client.call("ep1", "orbit.describe")
    info = described["plugins"]["tasks"]
    assert info["available"] and "rhapsody-py" in info["description"]

    def where(x: int) -> tuple[int, int]:
        return x * 2, os.getpid()

    blob = base64.b64encode(cloudpickle.dumps((where, (21,), {}))).decode()
    tasks: list[dict[str, Any]] = [
        {"uid": "fact", "function": "math:factorial", "args": [10]},
        {"uid": "pick", "pickled": blob},
        {"uid": "echo", "executable": "/bin/echo", "arguments": ["hi"]},
        {"uid": "slow", "function": "time:sleep", "args": [30], "timeout": 0.5},
    ]
    records = await client.call("ep1", "tasks.run_tasks", tasks=tasks)
    by = {r["uid"]: r for r in records}
    assert (by["fact"]["state"], by["fact"]["return_value"]) == ("DONE", 3628800)
    value, pid = cloudpickle.loads(base64.b64decode(by["pick"]["return_value"]))
    assert value == 42 and pid != os.getpid()
    assert by["echo"]["stdout"] == "hi\n"
    assert by["slow"]["state"] == "FAILED" and by["slow"]["exception"] == "TimeoutError"
