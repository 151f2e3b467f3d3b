"""The endpoint directory, client side: what ``directory()`` and ``orbit endpoints`` show
of a user's grants (written as the provisioner writes them), on the memory broker."""

from __future__ import annotations

import json

import pytest

from orbit_amqp import connect, declare_at
from orbit_broker import directory
from orbit_client import AsyncOrbitClient, DirectoryEntry
from orbit_protocol import NotFound, naming, topology
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
