"""The endpoint directory, client side: what ``directory()`` and ``orbit endpoints`` show
of a user's grants (written as the provisioner writes them), on the memory broker."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from orbit_amqp import Message, Properties, connect, declare_at
from orbit_broker import directory
from orbit_client import AsyncOrbitClient, DirectoryEntry
from orbit_protocol import NotFound, Presence, naming, topology
from tests.testkit.eventually import eventually
from tests.testkit.local import Local, local_env, orbit_inprocess


async def _grant(local: Local, user: str, endpoints: list[str], pools: list[str]) -> bool:
    conn = await connect(local.url(), name="test provisioner")
    try:
        return await directory.write(directory.AmqpStore(conn), user, endpoints, pools)
    finally:
        await conn.close()


def _by_name(entries: list[DirectoryEntry]) -> dict[str, DirectoryEntry]:
    return {e.name: e for e in entries}


async def test_directory_lists_every_grant_online_or_not(local: Local) -> None:
    await declare_at(local.url(), topology.pool("gpu"), name="test")
    await declare_at(local.url(), topology.endpoint("quiet"), name="test")
    assert await _grant(local, "alice", ["live", "quiet", "ghost"], ["gpu"])
    assert not await _grant(local, "alice", ["ghost", "live", "quiet"], ["gpu"])  # same grants
    live = await local.endpoint("live")
    async with AsyncOrbitClient(url=local.url("alice"), timeout=10) as client:
        entries = await client.directory()
        assert [e.name for e in entries] == ["ghost", "live", "quiet", "gpu"]
        found = _by_name(entries)
        assert found["live"].state == "online" and found["live"].presence is not None
        assert found["live"].presence.host and found["live"].user == "guest"
        assert found["quiet"].state == "unknown" and found["quiet"].provisioned
        assert found["ghost"].state == "unknown" and not found["ghost"].provisioned
        assert (found["gpu"].kind, found["gpu"].state) == ("pool", "offline")

        await live.stop()  # a clean stop leaves its offline presence as the last seen

        async def stopped() -> bool:
            return _by_name(await client.directory())["live"].state == "offline"

        await eventually(stopped, timeout=5, what="live shown offline")
        gone = _by_name(await client.directory())["live"]
        assert gone.last_seen is not None and gone.as_dict()["age"] >= 0

        assert await _grant(local, "alice", ["quiet"], [])  # a revoke
        assert [e.name for e in await client.directory()] == ["quiet"]
    conn = await connect(local.url(), name="test")
    channel = await conn.channel()
    with pytest.raises(Exception, match="NOT_FOUND"):
        await channel.declare_queue(naming.last_seen_queue("alice", "live"), passive=True)
    await conn.close()


async def test_a_user_without_a_directory_is_told_so(local: Local) -> None:
    async with AsyncOrbitClient(url=local.url("bob"), timeout=10) as client:
        with pytest.raises(NotFound, match="no endpoint directory for 'bob'"):
            await client.directory()


async def test_orbit_endpoints_shows_the_directory_at_once(local: Local) -> None:
    await _grant(local, "alice", ["live", "never"], [])
    await local.endpoint("live")
    env = local_env(local.url("alice"), local.tmp)
    listed = await orbit_inprocess(env, "endpoints", "--json")
    assert listed.exit_code == 0, listed.stderr
    rows = {row["endpoint"]: row for row in json.loads(listed.stdout)}
    assert rows["live"]["state"] == "online" and "testkit" in rows["live"]["plugins"]
    assert rows["never"]["state"] == "unknown" and rows["never"]["provisioned"] is False
    text = await orbit_inprocess(env, "endpoints")
    assert text.exit_code == 0, text.stderr
    assert "● online" in text.stdout and "never" in text.stdout  # any terminal width
    one = await orbit_inprocess(env, "endpoints", "never", "--json")
    assert [row["endpoint"] for row in json.loads(one.stdout)] == ["never"]


async def _forge_reply(local: Local, forger: str, queue: str, corr: str) -> None:
    """``forger`` answers first, with the pending call's correlation id and its own user_id."""
    conn = await connect(local.url(forger), name="forger")
    try:
        channel = await conn.channel(confirms=True)
        props = Properties(
            content_type="application/json",
            correlation_id=corr,
            user_id=forger,
            headers={"x-orbit-v": 1},
        )
        body = json.dumps({"v": 1, "ok": True, "result": {"value": "forged"}}).encode()
        await channel.publish(naming.REPLY_EXCHANGE, queue, Message(body, props))
    finally:
        await conn.close()


async def _forged_call(local: Local, user: str) -> tuple[Any, int]:
    """A call to ``live`` that ``mallory`` answers first, before any presence reached the
    client (heartbeat 60 s: the endpoint announced itself before the client existed)."""
    async with AsyncOrbitClient(url=local.url(user), timeout=10) as client:
        call = asyncio.ensure_future(client.call("live", "testkit.echo", value="real", delay=1.0))
        await eventually(lambda: bool(client._inbox._pending), what="the call is pending")
        corr = next(iter(client._inbox._pending))
        assert client.presence.expected_user("live") is None  # no presence heard yet
        await _forge_reply(local, "mallory", client.reply_queue, corr)
        return await call, client.dropped_replies


async def test_forged_reply_before_presence_is_dropped_by_the_directory(local: Local) -> None:
    """The client learns the endpoint's user from the last presence its directory keeps, so
    a reply from another user is dropped (and counted) even before the first presence."""
    await _grant(local, "alice", ["live"], [])
    await local.endpoint("live", heartbeat=60, allowed_users=["alice", "bob"])
    async with AsyncOrbitClient(url=local.url("alice"), timeout=10) as client:

        async def kept() -> bool:
            return _by_name(await client.directory())["live"].user == "guest"

        await eventually(kept, timeout=5, what="the last presence kept for alice")
    assert await _forged_call(local, "alice") == ({"value": "real"}, 1)
    # the control: a user with no directory has nothing to check the first reply against
    assert await _forged_call(local, "bob") == ({"value": "forged"}, 0)


def test_a_stale_entry_says_stale_not_what_its_last_presence_said() -> None:
    said = Presence(state="online", plugins={}, version="x", host="h", heartbeat=2.0)
    entry = DirectoryEntry("quiet", "endpoint", True, 0, 0, said, time.time() - 60, "quiet")
    shown = entry.as_dict()
    assert (shown["state"], shown["online"], shown["host"]) == ("stale", False, "h")
