"""A 3-node RabbitMQ cluster: kill -9 the node leading the endpoint's queue mid-stream.

Three private nodes on this machine (``orbit_broker.cluster.LocalCluster``), the request
queue a quorum queue replicated on all three, an endpoint and a client given all three
URLs and both connected to the node that holds the queue's leader. That node is killed
while requests stream; every request must still get exactly one answer, every
non-idempotent effect must run exactly once, and both sides must be served by the two
remaining nodes. ``ORBIT_CLUSTER_N`` requests (default 1,000).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orbit_broker.cluster import LocalCluster
from orbit_broker.management import ManagementClient, Permissions
from orbit_broker.topology import declare_all
from orbit_client import AsyncOrbitClient
from orbit_protocol import Reply, naming

from .endpoints import EndpointProcess, declare_endpoint

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.timeout(420)]
N = int(os.environ.get("ORBIT_CLUSTER_N", "1000"))
IN_FLIGHT = 32
VHOST = "orbit"


class ClusterEndpoint(EndpointProcess):
    """An endpoint process given every node's URL (``self.url`` is one node, for polling)."""

    def __init__(self, name: str, urls: str, poll_url: str, state_dir: Path) -> None:
        super().__init__(name, poll_url, state_dir, prefetch=32, reconnect_max=2.0)
        self.urls = urls

    def env(self) -> dict[str, str]:
        return super().env() | {"ORBIT_ENDPOINT_URL": self.urls}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = LocalCluster.create(tmp_path_factory.mktemp("cluster"))
    try:
        started = time.monotonic()
        nodes.start()
        print(f"\ncluster: 3 nodes up and joined in {time.monotonic() - started:.1f} s")
        with ManagementClient(nodes.management_url, "guest", "guest") as management:
            management.create_vhost(VHOST, "orbit cluster test")
            management.set_permissions("guest", VHOST, Permissions(".*", ".*", ".*"))
        yield nodes
    finally:
        nodes.stop(graceful=False)


async def wait_for(check: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``check()`` until true; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")


def ours(cluster: LocalCluster) -> list[dict[str, str]]:
    """The endpoint's two connections and the client's (stats lag about a second)."""
    names = ("orbit-endpoint ep1", "orbit-client")
    return [c for c in cluster.connections() if c["name"].startswith(names)]


async def test_leader_node_killed_mid_stream(cluster: LocalCluster, tmp_path: Path) -> None:
    urls = cluster.urls(VHOST)
    await declare_all(urls[0])
    await declare_endpoint(urls[0], "ep1")
    queue = naming.request_queue("ep1")
    row = cluster.queue(VHOST, queue)
    assert row["type"] == "quorum"
    assert cluster.queue_members(VHOST, queue) == sorted(cluster.names)  # replicated on all 3
    leader = cluster.queue_leader(VHOST, queue)
    survivors = [n for n in cluster.nodes if n.nodename != leader]

    # both sides list the leader's node first: they start there and must fail over
    every = cluster.url(VHOST, first=leader)
    proc = ClusterEndpoint("ep1", every, survivors[0].amqp_url(VHOST), tmp_path / "ep1")
    await proc.start()
    ledger = tmp_path / "effects.txt"
    replies: dict[int, Reply] = {}
    answered_at: dict[int, float] = {}
    try:
        async with AsyncOrbitClient(url=every, timeout=120) as client:
            await wait_for(lambda: len(ours(cluster)) == 3, 30, "3 connections listed")
            assert {c["node"] for c in ours(cluster)} == {leader}
            # a client that has heard the endpoint's presence keeps calling through the
            # fail-over; one that has not checks for a consumer and, in the half second the
            # endpoint needs to reconnect, fails fast with EndpointOffline (nothing sent)
            await wait_for(lambda: client.presence.online("ep1"), 30, "presence")
            reply_queue = cluster.queue(VHOST, client.reply_queue)
            assert reply_queue["type"] == "quorum"  # several URLs: replies survive a node

            gate = asyncio.Semaphore(IN_FLIGHT)

            async def one(i: int) -> None:
                async with gate:
                    if i % 2:
                        op = "testkit.effect"
                        args = {"ledger": str(ledger), "token": f"t{i}", "delay": 0.01}
                    else:
                        op, args = "testkit.echo", {"value": i, "delay": 0.01}
                    replies[i] = await client.request("ep1", op, args, timeout=120)
                    answered_at[i] = time.monotonic()

            started = time.monotonic()
            tasks = [asyncio.create_task(one(i)) for i in range(N)]
            await wait_for(lambda: len(replies) >= N // 3, 120, "a third of the replies")
            before = len(replies)
            await asyncio.to_thread(cluster.node(leader).kill)
            killed = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*tasks), 300)
            elapsed = time.monotonic() - started
            resumed = min((t for t in answered_at.values() if t > killed), default=killed)
            drained = max(answered_at.values()) - killed
            await wait_for(lambda: len(ours(cluster)) == 3, 30, "3 connections listed")
            conns = ours(cluster)
            new_leader = cluster.queue_leader(VHOST, queue)
            # the killed node comes back and rejoins; the queue is whole again
            await asyncio.to_thread(cluster.node(leader).start)
            await asyncio.to_thread(cluster.wait_members, 3, 60)
            assert await client.call("ep1", "testkit.echo", value="after") == {"value": "after"}
    except BaseException:
        print(proc.log())
        raise
    finally:
        await proc.stop()

    effects = Counter(line.split()[0] for line in ledger.read_text().splitlines())
    outcome: Counter[str] = Counter()
    for i, reply in replies.items():
        assert reply.ok, (i, reply.error)
        outcome["ok"] += 1
        if i % 2:
            assert reply.result == {"token": f"t{i}"}
            assert effects[f"t{i}"] == 1, f"effect t{i} ran {effects[f't{i}']} times"
        else:
            assert reply.result == {"value": i}
    lost = N - len(replies)
    dup_effects = sum(1 for n in effects.values() if n > 1)
    print(
        f"cluster: {N} requests ({N // 2} non-idempotent), leader {leader} killed after "
        f"{before} replies; {elapsed:.1f} s in all: ok {outcome['ok']}, lost {lost}, "
        f"duplicate effects {dup_effects}; first reply after the kill {resumed - killed:.2f} s, "
        f"last {drained:.2f} s; new leader {new_leader}; connections now on "
        f"{sorted({c['node'] for c in conns})}"
    )
    assert lost == 0 and dup_effects == 0 and len(effects) == N // 2
    assert before < N  # the kill really happened mid-stream
    assert new_leader != leader
    assert leader not in {c["node"] for c in conns}, conns
