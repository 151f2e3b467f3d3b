"""Broker limits (reliability S7): per-user connections and channels, message size.

A full request queue (``x-max-length`` + ``reject-publish`` → ``EndpointBusy``) is tested in
``test_reliability.py::test_full_queue_is_endpoint_busy``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq.exceptions
import pytest
import pytest_asyncio

from orbit_amqp.aiopika import _ClosedOnFailure
from orbit_amqp.probe import amqp_login_error
from orbit_broker.provision import (
    ClientSpec,
    EndpointSpec,
    Provisioner,
    ProvisionSpec,
    UserLimits,
)
from orbit_client import AsyncOrbitClient

from .endpoints import EndpointProcess

pytestmark = pytest.mark.rabbit

GREEDY_LIMITS = UserLimits(max_connections=5, max_channels=10)
ATTEMPTS = int(os.environ.get("ORBIT_LIMITS_N", "150"))


@dataclass
class World:
    urls: dict[str, str]
    names: dict[str, str]


@pytest_asyncio.fixture
async def world(broker: Any, vhost: str, tmp_path: Path) -> AsyncIterator[World]:
    tag = vhost.removeprefix("test-")[:4]
    names = {"ep": f"ep-{tag}", "alice": f"alice-{tag}", "greedy": f"greedy-{tag}"}
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    first = await prov.provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(names["ep"])],
            clients=[ClientSpec(names["alice"], [names["ep"]])],
            responder=False,
        )
    )
    second = await prov.provision(
        ProvisionSpec(
            clients=[ClientSpec(names["greedy"], [names["ep"]])],
            client_limits=GREEDY_LIMITS,
            responder=False,
        )
    )
    creds = first.credentials | second.credentials
    urls = {role: creds[name].url(broker.amqp_url(), vhost) for role, name in names.items()}
    proc = EndpointProcess(
        names["ep"], urls["ep"], tmp_path / "ep", allowed_users=[names["alice"], names["greedy"]]
    )
    await proc.start()
    try:
        yield World(urls, names)
    finally:
        await proc.stop()
        for name in names.values():
            broker.management.delete_user(name)


async def pings(client: AsyncOrbitClient, endpoint: str, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        await client.call(endpoint, "orbit.ping", timeout=30)
        latencies.append(time.perf_counter() - start)
    return latencies


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.99 * len(values)) - 1)]


async def test_connection_loop_hits_its_limit_others_served(world: World) -> None:
    ep = world.names["ep"]
    held: list[aio_pika.abc.AbstractConnection] = []
    refusals: list[str] = []

    async def storm() -> None:
        for _ in range(ATTEMPTS):
            try:
                # a refused connect leaves aio-pika's object "open": _ClosedOnFailure closes it
                url = world.urls["greedy"]
                held.append(
                    await aio_pika.connect(url, timeout=10, connection_class=_ClosedOnFailure)
                )
            except (aiormq.exceptions.AMQPError, ConnectionError) as exc:
                refusals.append(str(exc))
        # aiormq hides the broker's reason ("Expected Connection.OpenOk, got Close"): ask raw
        parts = urlsplit(world.urls["greedy"])
        reason = amqp_login_error(
            parts.hostname or "127.0.0.1",
            parts.port or 5672,
            unquote(parts.username or ""),
            unquote(parts.password or ""),
            10.0,
            unquote(parts.path[1:]),
        )
        refusals.append(str(reason))

    async with AsyncOrbitClient(url=world.urls["alice"], timeout=30) as alice:
        await pings(alice, ep, 5)  # warm-up
        baseline = await pings(alice, ep, 30)
        task = asyncio.create_task(storm())
        during: list[float] = []
        while not task.done():
            during += await pings(alice, ep, 1)
        await task
        assert await alice.call(ep, "orbit.ping")  # still served after the storm
    try:
        assert len(held) == GREEDY_LIMITS.max_connections, (len(held), refusals[:3])
        assert len(refusals) == ATTEMPTS - GREEDY_LIMITS.max_connections + 1
        assert all("Connection.Close" in r for r in refusals[:-1]), refusals[:3]
        assert "connection limit (5) is reached" in refusals[-1], refusals[-1]
    finally:
        for conn in held:
            await conn.close()
    b50, s50 = statistics.median(baseline), statistics.median(during)
    print(
        f"\nconnection storm: {ATTEMPTS} attempts by one user, {len(held)} admitted, "
        f"{len(refusals) - 1} refused ('{refusals[-1][:110]}'); other user's pings "
        f"baseline p50 {b50 * 1e3:.1f} ms p99 {p99(baseline) * 1e3:.1f} ms, during storm "
        f"n={len(during)} p50 {s50 * 1e3:.1f} ms p99 {p99(during) * 1e3:.1f} ms "
        f"(p50 ratio {s50 / b50:.2f})"
    )
    # not starved: every ping answered (no error above); a loose bound for a shared 2-core box
    assert during and p99(during) < 5.0


async def test_channel_limit(world: World) -> None:
    conn = await aio_pika.connect(world.urls["greedy"])
    opened = 0
    error = ""
    try:
        for _ in range(GREEDY_LIMITS.max_channels + 5):
            try:
                await conn.channel()
            except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                error = str(exc)
                break
            opened += 1
    finally:
        await conn.close()
    print(f"\nchannel limit {GREEDY_LIMITS.max_channels}: opened {opened}, then {error[:100]!r}")
    assert opened == GREEDY_LIMITS.max_channels
    assert "channel" in error.lower()
    async with AsyncOrbitClient(url=world.urls["alice"], timeout=30) as alice:
        assert await alice.call(world.names["ep"], "orbit.ping")


async def test_message_size_cap(broker: Any, amqp_url: str) -> None:
    """A body over the broker's ``max_message_size`` closes only that channel (406)."""
    if broker.node is None:
        pytest.skip("needs the suite's own node (its max_message_size is known)")
    cap = broker.node.max_message_size
    async with await aio_pika.connect(amqp_url) as conn:
        big = await conn.channel(publisher_confirms=True)
        other = await conn.channel(publisher_confirms=True)
        queue = await other.declare_queue("", exclusive=True)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="max size"):
            await big.default_exchange.publish(aio_pika.Message(b"x" * (cap + 1)), "nowhere")
        await other.default_exchange.publish(aio_pika.Message(b"x" * cap), queue.name)
        message = await queue.get(timeout=10)
        assert message is not None and len(message.body) == cap
