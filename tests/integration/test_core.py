"""The core message path on a real broker: client → RabbitMQ → endpoint process → reply."""

from __future__ import annotations

import asyncio
import time

import pytest

from orbit_client import AsyncOrbitClient, EndpointOffline, OrbitClient
from orbit_protocol import Event

from .conftest import StartEndpoint
from .endpoints import declare_endpoint

pytestmark = pytest.mark.rabbit


async def test_round_trip_and_describe(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("ep1")
    assert await client.call("ep1", "testkit.echo", value={"a": [1, 2]}) == {"value": {"a": [1, 2]}}
    pong = await client.plugin("ep1", "orbit").ping()
    assert pong["pong"] is True and pong["endpoint"] == "ep1"
    described = await client.call("ep1", "orbit.describe")
    ops = described["plugins"]["testkit"]["operations"]
    assert ops["sleep"]["args"]["properties"]["seconds"]["type"] == "number"
    assert described["protocol"] == 1 and described["versions"]["python"]
    assert described["host_role"] is None  # no sysinfo plugin on this endpoint


async def test_100_concurrent_calls(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("ep1")
    results = await asyncio.gather(
        *(client.call("ep1", "testkit.echo", value=i, delay=0.05) for i in range(100))
    )
    assert [r["value"] for r in results] == list(range(100))


async def test_blocking_operation_does_not_block_endpoint(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("ep1")
    slow = asyncio.create_task(client.call("ep1", "testkit.blocking_sleep", seconds=2))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await client.call("ep1", "orbit.ping")
    assert time.monotonic() - started < 1.5
    assert await slow == {"slept": 2}


async def test_events_flow_back(start_endpoint: StartEndpoint, client: AsyncOrbitClient) -> None:
    await start_endpoint("ep1")
    sub = await client.subscribe("ep1", "testkit", "tick")
    seen: list[Event] = []
    await client.register_callback(seen.append, endpoint="ep1", plugin="testkit")
    assert await client.call("ep1", "testkit.emit", topic="tick", count=3) == {"emitted": 3}
    events = [await sub.get(timeout=10) for _ in range(3)]
    assert [e.data["i"] for e in events] == [0, 1, 2]
    assert {(e.endpoint, e.plugin, e.topic) for e in events} == {("ep1", "testkit", "tick")}
    for _ in range(50):
        if len(seen) >= 3:
            break
        await asyncio.sleep(0.1)
    assert len(seen) == 3


async def test_closed_subscriptions_give_their_channels_back(client: AsyncOrbitClient) -> None:
    """A long-lived client that subscribes and closes in a loop must not pile up channels
    (provisioned users have a per-user channel limit)."""
    amqp = client._connection.transport.connection  # type: ignore[union-attr]
    before = len(amqp.channels)
    for _ in range(20):
        async with await client.subscribe("ep1", "testkit", "tick"):
            pass
    await asyncio.sleep(0.1)
    assert len(amqp.channels) == before
    assert len(client._subscriptions) == 1  # only the client's own presence subscription


async def test_presence_online_and_offline(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    changes: list[tuple[str, str]] = []
    async with AsyncOrbitClient(url=amqp_url) as watcher:
        watcher.register_topology_callback(
            lambda ep, info: changes.append((ep, info.presence.state))
        )
        proc = await start_endpoint("ep1")
        for _ in range(100):
            if ("ep1", "online") in changes:
                break
            await asyncio.sleep(0.1)
        info = watcher.endpoints()["ep1"]
        assert info.online and "testkit" in info.presence.plugins and info.user == "guest"
        assert await proc.stop() == 0
        for _ in range(100):
            if ("ep1", "offline") in changes:
                break
            await asyncio.sleep(0.1)
        assert changes[-1] == ("ep1", "offline")
        assert not watcher.endpoints()["ep1"].online


async def test_offline_endpoint_fails_fast(amqp_url: str, client: AsyncOrbitClient) -> None:
    await declare_endpoint(amqp_url, "sleeper")  # provisioned, but nobody consumes
    for endpoint, fragment in (("sleeper", "offline"), ("ghost", "does not exist")):
        started = time.monotonic()
        with pytest.raises(EndpointOffline, match=fragment):
            await client.call(endpoint, "orbit.ping")
        assert time.monotonic() - started < 3


async def test_sync_client(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    await start_endpoint("ep1")

    def use_sync() -> tuple[object, object]:
        with OrbitClient(url=amqp_url) as sync:
            value = sync.call("ep1", "testkit.echo", value="hi")
            pong = sync.plugin("ep1", "orbit").ping()
            with sync.subscribe("ep1", "testkit") as sub:
                sync.call("ep1", "testkit.emit", topic="sync", count=1)
                event = sub.get(timeout=10)
            return value, (pong["pong"], event.topic)

    value, rest = await asyncio.to_thread(use_sync)
    assert value == {"value": "hi"} and rest == (True, "sync")
