"""Pools (docs/protocol.md): three endpoints serve ``orbit.pool.<pool>`` as competing consumers
(the pool queue has no single-active-consumer); a member SIGKILLed mid-run leaves its
un-acked batches to the others, so every task gets a result."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient, AsyncOrbitExecutor
from tests.testkit.cli import orbit

from .conftest import StartEndpoint

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
TASKS = ["orbit_plugins.tasks.plugin:TasksPlugin"]


async def orbit_cli(*args: str) -> tuple[int, str]:
    ran = await orbit(None, *args)
    return ran.rc, ran.stdout


async def test_pool_members_compete_and_a_killed_member_loses_nothing(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, amqp_url: str, tmp_path: Path
) -> None:
    assert (await orbit_cli("pool", "create", "p1", "--url", amqp_url))[0] == 0
    members = {}
    for name in ("m1", "m2", "m3"):
        members[name] = await start_endpoint(
            name,
            plugins=TASKS,
            pools=["p1"],
            plugin_settings={"tasks": {"workers": 1, "allow_cloudpickle": True}},
        )
    pids = {m.proc.pid: name for name, m in members.items() if m.proc is not None}
    runs = tmp_path / "runs"
    runs.mkdir()

    def work(x: int) -> tuple[int, int]:
        (runs / f"{x}.{os.getpid()}").touch()  # one file per execution
        time.sleep(0.05)
        return x, os.getppid()  # the worker's parent: the member endpoint

    async with AsyncOrbitExecutor(client, pool="p1", batch_size=3) as ex:
        first = await asyncio.wait_for(ex.map(work, range(60)), 120)
        assert [r[0] for r in first] == list(range(60))
        served = {pids[r[1]] for r in first}
        assert served == set(members), served  # competing consumers: every member worked

        futures = [asyncio.ensure_future(ex.submit(work, x)) for x in range(100, 250)]
        while sum(f.done() for f in futures) < 20:
            await asyncio.sleep(0.05)
        victim = "m2"
        members[victim].kill()  # SIGKILL: its un-acked pool deliveries go back to the queue
        _, pending = await asyncio.wait(futures, timeout=120)
    assert not pending, f"{len(pending)} tasks vanished"
    results = [f.result() for f in futures]  # raises if a task was reported failed
    assert [r[0] for r in results] == list(range(100, 250))
    after = {pids[r[1]] for r in results}
    executions = {x: len(list(runs.glob(f"{x}.*"))) for x in range(100, 250)}
    assert all(n >= 1 for n in executions.values())
    twice = [x for x, n in executions.items() if n > 1]
    code, out = await orbit_cli("pool", "status", "p1", "--json", "--url", amqp_url)
    assert code == 0
    status = json.loads(out)
    assert status["pending"] == 0 and status["members"] == 2, status
    print(
        f"pool p1: first map served by {sorted(served)}; second (killing {victim}): results from"
        f" {sorted(after)}; {len(twice)} task(s) ran twice (on {victim} before it died, then"
        " again from the redelivered batch)"
    )
