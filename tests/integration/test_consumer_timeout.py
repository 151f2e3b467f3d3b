"""Long operations never trip the broker's ``consumer_timeout`` (reliability F10/R12).

A private node runs with a short ``consumer_timeout`` (suite: 5 s, checked every second;
``make soak``: 60 s with a 5-minute operation). The endpoint journals and acks a request
before running it (docs/reliability.md), so an operation far longer than the timeout completes once,
on the same consumer connection. A positive control, a plain consumer that holds a delivery
unacked, is closed by the broker with PRECONDITION_FAILED: the timeout is really active.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import aiormq.exceptions
import pytest

from orbit_broker.local import LocalNode
from orbit_broker.management import ManagementClient, Permissions
from orbit_broker.topology import declare_all
from orbit_client import AsyncOrbitClient
from tests.testkit.eventually import eventually
from tests.testkit.nodes import start_node

from .endpoints import EndpointProcess, declare_endpoint

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

TIMEOUT_MS = int(os.environ.get("ORBIT_CT_TIMEOUT_MS", "5000"))
OPERATION_S = float(os.environ.get("ORBIT_CT_OPERATION_S", "15"))
VHOST = "orbit-ct"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    n = start_node(
        tmp_path_factory.mktemp("ct-node"),
        "orbit-ct",
        extra_config={"consumer_timeout": str(TIMEOUT_MS)},
        advanced_config="[{rabbit, [{channel_tick_interval, 1000}]}].",
    )
    try:
        with ManagementClient(n.management_url, n.username, n.password) as m:
            m.create_vhost(VHOST)
            m.set_permissions(n.username, VHOST, Permissions(".*", ".*", ".*"))
        yield n
    finally:
        n.stop(graceful=False)


def journal_rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM requests").fetchone()[0])


@pytest.mark.timeout(int(OPERATION_S) + 240)
async def test_long_operation_outlives_consumer_timeout(node: LocalNode, tmp_path: Path) -> None:
    url = node.amqp_url(VHOST)
    await declare_all(url)
    await declare_endpoint(url, "ep1")
    management = ManagementClient(node.management_url, node.username, node.password)

    # positive control: a consumer that holds a delivery unacked is cut off by the broker
    await declare_endpoint(url, "holder")
    closed: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    async with await aio_pika.connect(url) as conn:
        channel = await conn.channel()

        def on_close(_channel: object, exc: BaseException | None = None) -> None:
            if not closed.done():
                closed.set_result(exc)

        async def hold(_message: aio_pika.abc.AbstractIncomingMessage) -> None:
            """Never acks."""

        channel.close_callbacks.add(on_close)
        queue = await channel.declare_queue("orbit.ep.holder", passive=True)
        await queue.consume(hold)
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), "orbit.ep.holder")
        reason = await asyncio.wait_for(closed, TIMEOUT_MS / 1000 + 30)
    assert isinstance(reason, aiormq.exceptions.ChannelPreconditionFailed), reason
    assert "timed out" in str(reason)

    ledger = tmp_path / "effects.txt"
    proc = await EndpointProcess("ep1", url, tmp_path / "ep1").start()
    try:

        def listed() -> set[str]:  # the endpoint's consume + publish connections (stats lag)
            names = {c.name for c in management.list_connections()}
            return names if len(names) >= 2 else set()

        before = await eventually(listed, interval=0.1, what="the endpoint's connections")
        async with AsyncOrbitClient(url=url, timeout=OPERATION_S + 120) as client:
            if OPERATION_S <= 30:  # a non-idempotent effect: its ledger proves "once"
                reply = await client.request(
                    "ep1",
                    "testkit.effect",
                    {"ledger": str(ledger), "token": "long", "delay": OPERATION_S},
                )
                assert ledger.read_text().split()[::2] == ["long"]
            else:
                reply = await client.request("ep1", "testkit.sleep", {"seconds": OPERATION_S})
        assert reply.ok, reply
        after = {c.name for c in management.list_connections()}
        assert before <= after, "the endpoint's connections were replaced"
        assert journal_rows(tmp_path / "ep1" / "ep1" / "journal.sqlite") == 1
        assert "PRECONDITION_FAILED" not in proc.log()
    finally:
        await proc.stop()
        management.close()
    print(
        f"\nconsumer_timeout {TIMEOUT_MS / 1000:.0f} s: a {OPERATION_S:.0f} s operation completed "
        "once on the same connections (a holding consumer was closed: "
        f"{str(reason)[:70]!r})"
    )
