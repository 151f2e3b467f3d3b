"""Pools (DESIGN §1): two endpoints serve ``orbit.pool.<pool>``. The queue is declared with
``x-single-active-consumer=true`` ("same arguments" as endpoint queues), so the members are
one active consumer plus hot standbys, not competing consumers: this test pins that down."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import aio_pika
import pytest

from orbit_client import AsyncOrbitClient
from orbit_client._async import _Pending
from orbit_protocol import Reply, Request, naming

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit
TASKS = ["orbit_plugins.tasks.plugin:TasksPlugin"]


async def pool_call(client: AsyncOrbitClient, pool: str, operation: str, **args: Any) -> Any:
    """Publish a request with routing key ``pool.<pool>`` (the client has no pool API yet)."""
    plugin, _, method = operation.partition(".")
    corr = uuid.uuid4().hex
    future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
    client._pending[corr] = _Pending(future, pool)
    body = Request(plugin=plugin, method=method, args=args).to_bytes()
    try:
        await client._publish(naming.pool_routing_key(pool), operation, body, corr, None, 30, False)
        return (await asyncio.wait_for(future, 30)).unwrap()
    finally:
        client._pending.pop(corr, None)


async def pool_consumers(url: str, pool: str) -> tuple[int, int]:
    connection = await aio_pika.connect(url)
    async with connection:
        queue = await (await connection.channel()).declare_queue(
            naming.pool_queue(pool), passive=True
        )
        result = queue.declaration_result
        return result.consumer_count or 0, result.message_count or 0


async def test_pool_members_are_active_plus_standby(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, amqp_url: str
) -> None:
    create = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbit_cli", "pool", "create", "p1", "--url", amqp_url
    )  # fmt: skip
    assert await create.wait() == 0
    members = {}
    for name in ("m1", "m2"):
        members[name] = await start_endpoint(
            name, plugins=TASKS, pools=["p1"], plugin_settings={"tasks": {"workers": 1}}
        )
    consumers, _ = await pool_consumers(amqp_url, "p1")
    for i in range(10):
        await pool_call(
            client,
            "p1",
            "tasks.submit_tasks",
            tasks=[{"uid": f"a{i}", "function": "operator:neg", "args": [i]}],
        )
    counts = {m: len(await client.call(m, "tasks.list_tasks")) for m in members}
    # single active consumer: every request went to one member, the other idled
    assert sorted(counts.values()) == [0, 10], counts
    active = max(counts, key=lambda m: counts[m])
    standby = min(counts, key=lambda m: counts[m])
    members[active].kill()
    for i in range(5):  # the standby takes over the pool queue
        await pool_call(
            client,
            "p1",
            "tasks.submit_tasks",
            tasks=[{"uid": f"b{i}", "function": "operator:neg", "args": [i]}],
        )
    taken = await client.call(standby, "tasks.list_tasks")
    assert sorted(r["uid"] for r in taken) == [f"b{i}" for i in range(5)]
    status = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbit_cli", "pool", "status", "p1", "--json", "--url", amqp_url,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await status.communicate()
    assert json.loads(out) == {
        "pool": "p1", "queue": "orbit.pool.p1", "pending": 0, "active_consumers": 1,
    }  # fmt: skip
    print(f"pool p1: consumer_count with 2 members = {consumers}; {counts}; {standby} took over")
