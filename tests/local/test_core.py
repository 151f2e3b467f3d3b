"""The core message path in one process: client → memory broker → endpoint task → reply.

The same client and endpoint code as production; ``tests/integration`` keeps the cases
whose subject is the real broker.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from orbit_client import AsyncOrbitClient, EndpointOffline, OrbitClient
from orbit_protocol import Event
from tests.testkit.eventually import eventually
from tests.testkit.local import Local, declare_queue


async def test_round_trip_and_describe(local: Local, local_client: AsyncOrbitClient) -> None:
    await local.endpoint("ep1")
    client = local_client
    assert await client.call("ep1", "testkit.echo", value={"a": [1, 2]}) == {"value": {"a": [1, 2]}}
    pong = await client.plugin("ep1", "orbit").ping()
    assert pong["pong"] is True and pong["endpoint"] == "ep1"
    described = await client.call("ep1", "orbit.describe")
    ops = described["plugins"]["testkit"]["operations"]
    assert ops["sleep"]["args"]["properties"]["seconds"]["type"] == "number"
    assert described["protocol"] == 1 and described["versions"]["python"]
    assert described["host_role"] is None  # no sysinfo plugin on this endpoint


async def test_100_concurrent_calls(local: Local, local_client: AsyncOrbitClient) -> None:
    await local.endpoint("ep1")
    results = await asyncio.gather(
        *(local_client.call("ep1", "testkit.echo", value=i, delay=0.05) for i in range(100))
    )
    assert [r["value"] for r in results] == list(range(100))


async def test_blocking_operation_does_not_block_endpoint(
    local: Local, local_client: AsyncOrbitClient
) -> None:
    await local.endpoint("ep1")
    slow = asyncio.create_task(local_client.call("ep1", "testkit.blocking_sleep", seconds=1))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await local_client.call("ep1", "orbit.ping")
    assert time.monotonic() - started < 0.5
    assert await slow == {"slept": 1}


async def test_events_flow_back(local: Local, local_client: AsyncOrbitClient) -> None:
    await local.endpoint("ep1")
    sub = await local_client.subscribe("ep1", "testkit", "tick")
    seen: list[Event] = []
    await local_client.register_callback(seen.append, endpoint="ep1", plugin="testkit")
    assert await local_client.call("ep1", "testkit.emit", topic="tick", count=3) == {"emitted": 3}
    events = [await sub.get(timeout=10) for _ in range(3)]
    assert [e.data["i"] for e in events] == [0, 1, 2]
    assert {(e.endpoint, e.plugin, e.topic) for e in events} == {("ep1", "testkit", "tick")}
    await eventually(lambda: len(seen) == 3, what="the callback saw 3 events")


async def test_closed_subscriptions_give_their_channels_back(
    local: Local, local_client: AsyncOrbitClient
) -> None:
    """A long-lived client that subscribes and closes in a loop must not pile up channels
    (provisioned users have a per-user channel limit)."""
    (conn,) = local.broker.connections
    before = len(conn._channels)
    for _ in range(20):
        async with await local_client.subscribe("ep1", "testkit", "tick"):
            pass
    assert len(conn._channels) == before
    assert len(local_client._subscriptions) == 1  # only the client's own presence subscription


async def test_presence_online_and_offline(local: Local) -> None:
    changes: list[tuple[str, str]] = []
    async with AsyncOrbitClient(url=local.url()) as watcher:
        watcher.register_topology_callback(
            lambda ep, info: changes.append((ep, info.presence.state))
        )
        ep = await local.endpoint("ep1")
        await eventually(lambda: ("ep1", "online") in changes)
        info = watcher.endpoints()["ep1"]
        assert info.online and "testkit" in info.presence.plugins and info.user == "guest"
        await ep.stop()
        await eventually(lambda: changes[-1] == ("ep1", "offline"))
        assert not watcher.endpoints()["ep1"].online


async def test_offline_endpoint_fails_fast(local: Local, local_client: AsyncOrbitClient) -> None:
    await declare_queue(local.url(), "sleeper")  # provisioned, but nobody consumes
    for endpoint, fragment in (("sleeper", "offline"), ("ghost", "does not exist")):
        started = time.monotonic()
        with pytest.raises(EndpointOffline, match=fragment):
            await local_client.call(endpoint, "orbit.ping")
        assert time.monotonic() - started < 1


async def test_sync_client_on_its_own_loop_thread(local: Local) -> None:
    await local.endpoint("ep1")

    def use_sync() -> tuple[object, object]:
        with OrbitClient(url=local.url()) as sync:
            value = sync.call("ep1", "testkit.echo", value="hi")
            pong = sync.plugin("ep1", "orbit").ping()
            with sync.subscribe("ep1", "testkit") as sub:
                sync.call("ep1", "testkit.emit", topic="sync", count=1)
                event = sub.get(timeout=10)
            return value, (pong["pong"], event.topic)

    value, rest = await asyncio.to_thread(use_sync)
    assert value == {"value": "hi"} and rest == (True, "sync")


async def test_client_and_endpoint_ride_out_a_lost_connection(
    local: Local, local_client: AsyncOrbitClient
) -> None:
    """Both sides reconnect through their links; a call made while they do still lands."""
    ep = await local.endpoint("ep1")
    assert await local_client.call("ep1", "testkit.echo", value=1) == {"value": 1}
    local.broker.drop_connections()
    assert await local_client.call("ep1", "testkit.echo", value=2, timeout=10) == {"value": 2}
    assert ep.endpoint is not None and ep.endpoint.consumer_link.connects == 2


async def test_a_blocked_broker_fails_calls_fast_and_sends_nothing(
    local: Local, local_client: AsyncOrbitClient
) -> None:
    """``connection.blocked`` (a memory or disk alarm): calls fail at once with
    ``ENDPOINT_BUSY`` (reason ``broker_blocked``) and nothing is queued to run later."""
    from orbit_client import EndpointBusy

    await local.endpoint("ep1")
    local.broker.set_alarm(True)
    try:
        with pytest.raises(EndpointBusy) as refused:
            await local_client.call("ep1", "testkit.echo", value=1, timeout=2)
        assert refused.value.details["reason"] == "broker_blocked"
        assert len(local.broker.vhost().queue("orbit.ep.ep1").ready) == 0
    finally:
        local.broker.set_alarm(False)
    assert await local_client.call("ep1", "testkit.echo", value=2) == {"value": 2}


async def test_after_a_reconnect_subscriptions_come_back_and_a_refused_one_ends(
    local: Local,
) -> None:
    """The client re-attaches its subscriptions on the new connection; one whose binding the
    broker now refuses (the user's rights changed meanwhile) ends, and the client goes on."""
    from orbit_amqp.memory import Permissions, TopicPermissions

    broker = local.broker
    for user, password in (("guest", "guest"), ("alice", "pw")):
        broker.add_user(user, password)
        broker.set_permissions(user, "orbit", Permissions())
    await local.endpoint("ep1", allowed_users=["alice"])
    async with AsyncOrbitClient(url=broker.url("alice", "pw"), reconnect_interval=0.1) as alice:
        kept = await alice.subscribe("ep1", "testkit", "kept")
        gone = await alice.subscribe("ep1", "testkit", "gone")
        rows = TopicPermissions(write=".*", read=r"^ep1\.(orbit|testkit)\.(presence|kept)$")
        broker.set_topic_permissions("alice", "orbit", "orbit.events", rows)
        broker.drop_connections("alice")
        await eventually(lambda: gone.closed, what="the refused subscription ended")
        with pytest.raises(StopAsyncIteration):
            await gone.get(timeout=1)
        await alice.call("ep1", "testkit.emit", topic="kept", count=1, timeout=10)
        assert (await kept.get(timeout=5)).topic == "kept"
