"""orbit_broker against a real RabbitMQ: topology, provisioning, permissions.

Names and arguments: docs/protocol.md; permission rows: docs/security.md.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq.exceptions
import pytest
import pytest_asyncio

from orbit_broker.local import free_port, port_in_use
from orbit_broker.management import ManagementClient
from orbit_broker.provision import (
    ClientSpec,
    Credentials,
    EndpointSpec,
    Provisioner,
    ProvisionSpec,
    client_permissions,
    endpoint_permissions,
)
from orbit_broker.topology import declare_all
from orbit_protocol import naming
from orbit_protocol import topology as spec
from orbit_protocol.errors import BrokerError
from tests.testkit.eventually import eventually
from tests.testkit.nodes import start_node

from .endpoints import EndpointProcess, consumer_count

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

REFUSED = (aiormq.exceptions.ChannelAccessRefused,)


async def listed(broker: Any, user: str, count: int = 1) -> None:
    """Until the management API lists ``count`` connections of ``user`` (stats lag ~1 s)."""
    await eventually(
        lambda: len(broker.management.list_connections(user)) >= count,
        timeout=15,
        interval=0.2,
        what=f"{count} connection(s) of {user} listed",
    )


def _uid() -> str:
    return secrets.token_hex(3)


# -- topology ---------------------------------------------------------------------------------


async def test_topology_declared_with_exact_arguments(
    broker: Any, vhost: str, amqp_url: str
) -> None:
    m: ManagementClient = broker.management
    await declare_all(amqp_url, endpoints=["ep1"], pools=["gpu"])

    for ex in spec.core().exchanges:
        info = m.get_exchange(vhost, ex.name)
        assert info is not None and info.type == ex.kind and info.durable

    ep = m.get_queue(vhost, "orbit.ep.ep1")
    assert ep is not None and ep.type == "quorum" and ep.durable
    assert ep.arguments == dict(spec.work_queue_arguments())
    pool = m.get_queue(vhost, "orbit.pool.gpu")
    assert pool is not None and pool.arguments == dict(spec.pool_queue_arguments())
    dead = m.get_queue(vhost, naming.DEAD_LETTER_QUEUE)
    assert dead is not None and dead.type == "quorum"

    bindings = m.list_all_bindings(vhost)
    assert ("orbit.requests", "orbit.ep.ep1", "ep1") in bindings
    assert ("orbit.requests", "orbit.pool.gpu", "pool.gpu") in bindings
    assert ("orbit.dlx", "orbit.dead", "orbit.dead") in bindings


async def test_redeclare_is_idempotent(broker: Any, vhost: str, amqp_url: str) -> None:
    await declare_all(amqp_url, endpoints=["ep1", "ep2"])
    before = {q.name: q.arguments for q in broker.management.list_queues(vhost)}
    await declare_all(amqp_url, endpoints=["ep1", "ep2"])
    after = {q.name: q.arguments for q in broker.management.list_queues(vhost)}
    assert before == after and "orbit.ep.ep2" in after


async def test_declare_all_takes_the_first_reachable_node_of_a_url_list(
    broker: Any, vhost: str, amqp_url: str
) -> None:
    live = urlsplit(amqp_url)
    dead = live._replace(netloc=f"{live.netloc.rsplit(':', 1)[0]}:{free_port()}").geturl()
    await declare_all(f"{dead},{amqp_url}", pools=["second"])  # the first node is down
    await declare_all(f"{amqp_url},{dead}", pools=["first"])
    names = {q.name for q in broker.management.list_queues(vhost)}
    assert {naming.pool_queue("first"), naming.pool_queue("second")} <= names


async def test_inequivalent_arguments_are_reported(broker: Any, vhost: str, amqp_url: str) -> None:
    await declare_all(amqp_url, endpoints=["ep1"], max_length=10)
    with pytest.raises(BrokerError) as caught:
        await declare_all(amqp_url, endpoints=["ep1"])
    text = str(caught.value)
    assert "orbit.ep.ep1" in text and "x-max-length" in text
    assert "re-create" in text and "policy" in text

    # provisioning finds the same difference before touching anything
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    plan = prov.plan(ProvisionSpec(endpoints=[EndpointSpec("ep1")], responder=False))
    assert len(plan.conflicts) == 1
    assert "orbit.ep.ep1" in plan.conflicts[0] and "x-max-length: is 10" in plan.conflicts[0]
    with pytest.raises(BrokerError, match="refused"):
        await prov.apply(plan)


# -- provisioning -----------------------------------------------------------------------------


@dataclass
class World:
    vhost: str
    url: str  # admin URL of the vhost
    prov: Provisioner
    ep_a: str
    ep_b: str
    alice: str
    responder: str
    creds: dict[str, Credentials]

    def url_of(self, user: str) -> str:
        return self.creds[user].url(self.url, self.vhost)


@pytest.fixture
def cleanup_users(broker: Any) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        broker.management.delete_user(name)


@pytest_asyncio.fixture
async def world(broker: Any, vhost: str, cleanup_users: list[str]) -> AsyncIterator[World]:
    """Endpoints A and B, client alice allowed to call A only, all provisioned."""
    u = _uid()
    ep_a, ep_b, alice, responder = f"epa-{u}", f"epb-{u}", f"alice-{u}", f"responder-{u}"
    cleanup_users += [ep_a, ep_b, alice, responder]
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    result = await prov.provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(ep_a), EndpointSpec(ep_b)],
            clients=[ClientSpec(alice, [ep_a])],
            responder_user=responder,
        )
    )
    assert result.applied and set(result.credentials) == {ep_a, ep_b, alice, responder}
    yield World(
        vhost, broker.amqp_url(vhost), prov, ep_a, ep_b, alice, responder, result.credentials
    )


async def test_dry_run_plans_without_changing(
    broker: Any, vhost: str, cleanup_users: list[str]
) -> None:
    m: ManagementClient = broker.management
    u = _uid()
    ep, bob, responder = f"ep-{u}", f"bob-{u}", f"responder-{u}"
    cleanup_users += [ep, bob, responder]
    prov = Provisioner(m, broker.amqp_url(), vhost)
    spec_ = ProvisionSpec(
        endpoints=[EndpointSpec(ep, pools=["gpu"])],
        clients=[ClientSpec(bob, [ep])],
        responder_user=responder,
    )
    result = await prov.provision(spec_, dry_run=True)
    plan = result.plan
    assert not result.applied and not result.credentials
    text = str(plan)
    for expected in (
        f"create-user          {ep}",
        f"create-user          {bob}",
        f"declare-queue        orbit.ep.{ep}",
        "declare-queue        orbit.pool.gpu",
        f"bind                 orbit.ep.{ep}",
    ):
        assert expected in text, text
    # 3 users x 3 topic exchanges
    assert plan.kinds().count("set-topic-permission") == 9
    assert plan.kinds().count("set-user-limit") == 6  # 3 users x (connections, channels)
    assert "declare-exchange" not in plan.kinds()  # the vhost fixture declared the core
    assert not m.user_exists(ep) and m.get_queue(vhost, f"orbit.ep.{ep}") is None
    assert f"create-user          {responder}" in text

    applied = await prov.provision(spec_)
    assert set(applied.credentials) == {ep, bob, responder}
    secret = applied.credentials[ep].password
    assert len(secret) >= 24 and secret not in repr(applied) and secret not in str(applied.plan)
    again = prov.plan(spec_)
    assert again.empty, str(again)
    assert str(again).endswith("nothing to do")
    assert m.get_permissions(ep, vhost) == endpoint_permissions(ep, ["gpu"])
    assert m.get_permissions(bob, vhost) == client_permissions(bob)
    assert m.get_user_limits(ep) == {"max-connections": 5, "max-channels": 200}
    assert m.get_user_limits(bob) == {"max-connections": 50, "max-channels": 200}


async def test_permission_rows_match_design(broker: Any, world: World) -> None:
    m: ManagementClient = broker.management
    a, alice = world.ep_a, world.alice
    assert m.get_permissions(a, world.vhost) == endpoint_permissions(a)
    assert endpoint_permissions(a).read == rf"^orbit\.ep\.{a}$"
    rows = m.get_topic_permissions(alice, world.vhost)
    assert {k: (r.write, r.read) for k, r in rows.items()} == {
        "orbit.requests": (f"^({a})$", "^$"),
        "orbit.events": ("^$", rf"^({a})\."),
        "orbit.replies": ("^$", rf"^orbit\.reply\.{alice}\."),
    }
    ep_rows = m.get_topic_permissions(a, world.vhost)
    assert {k: (r.write, r.read) for k, r in ep_rows.items()} == {
        "orbit.requests": ("^$", "^$"),
        "orbit.events": (rf"^{a}\.", "^$"),
        "orbit.replies": (r"^orbit\.reply\.", "^$"),
    }


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    return None


async def _consume_once(url: str, queue: str) -> None:
    async with await aio_pika.connect(url) as conn:
        channel = await conn.channel()
        q = await channel.get_queue(queue, ensure=False)
        tag = await q.consume(_ignore)
        await q.cancel(tag)


async def test_endpoint_reads_only_its_own_queue(world: World) -> None:
    url_a = world.url_of(world.ep_a)
    await _consume_once(url_a, f"orbit.ep.{world.ep_a}")
    with pytest.raises(REFUSED):
        await _consume_once(url_a, f"orbit.ep.{world.ep_b}")
    with pytest.raises(REFUSED):
        await _consume_once(url_a, naming.DEAD_LETTER_QUEUE)


async def _publish(url: str, exchange: str, routing_key: str) -> None:
    async with await aio_pika.connect(url) as conn:
        channel = await conn.channel(publisher_confirms=True)
        ex = (
            channel.default_exchange
            if exchange == ""
            else await channel.get_exchange(exchange, ensure=False)
        )
        user = conn.url.user
        await ex.publish(
            aio_pika.Message(b'{"v": 1}', user_id=user, content_type="application/json"),
            routing_key=routing_key,
            mandatory=True,
        )


async def test_client_publishes_only_to_granted_endpoints(broker: Any, world: World) -> None:
    url = world.url_of(world.alice)
    await _publish(url, naming.REQUEST_EXCHANGE, world.ep_a)
    with pytest.raises(REFUSED):
        await _publish(url, naming.REQUEST_EXCHANGE, world.ep_b)
    with pytest.raises(REFUSED):  # the default exchange is never writable
        await _publish(url, "", f"orbit.ep.{world.ep_a}")
    with pytest.raises(REFUSED):  # clients cannot fake events or replies
        await _publish(url, naming.EVENT_EXCHANGE, f"{world.ep_a}.orbit.presence")
    await eventually(
        lambda: broker.management.get_queue(world.vhost, f"orbit.ep.{world.ep_a}").messages >= 1,
        interval=0.2,
        what=f"a message in orbit.ep.{world.ep_a}",
    )
    b = broker.management.get_queue(world.vhost, f"orbit.ep.{world.ep_b}")
    assert b is not None and b.messages == 0


async def test_client_reply_queue_and_presence_check(world: World) -> None:
    alice = world.alice
    async with await aio_pika.connect(world.url_of(alice)) as conn:
        channel = await conn.channel()
        name = naming.reply_queue(alice)
        queue = await channel.declare_queue(
            name, durable=True, arguments=spec.client_queue_arguments()
        )
        await queue.bind(naming.REPLY_EXCHANGE, routing_key=name)
        sub = await channel.declare_queue(
            naming.subscription_queue(alice),
            durable=True,
            arguments=spec.client_queue_arguments(subscription=True),
        )
        await sub.bind(naming.EVENT_EXCHANGE, routing_key=naming.event_pattern(world.ep_a))
        # passive declare of an allowed endpoint's queue: the cheap "online?" check
        passive = await channel.declare_queue(f"orbit.ep.{world.ep_a}", passive=True)
        assert passive.declaration_result.consumer_count == 0
    async with await aio_pika.connect(world.url_of(alice)) as conn:
        channel = await conn.channel()
        with pytest.raises(REFUSED):  # another user's reply key
            other = await channel.get_queue(name, ensure=False)
            await other.bind(naming.REPLY_EXCHANGE, routing_key=f"orbit.reply.bob.{_uid()}")
    async with await aio_pika.connect(world.url_of(alice)) as conn:
        channel = await conn.channel()
        with pytest.raises(REFUSED):  # events of an endpoint it may not call
            sub2 = await channel.get_queue(sub.name, ensure=False)
            await sub2.bind(naming.EVENT_EXCHANGE, routing_key=f"{world.ep_b}.*.*")
    async with await aio_pika.connect(world.url_of(alice)) as conn:
        channel = await conn.channel()
        with pytest.raises(REFUSED):  # someone else's queue name
            await channel.declare_queue(f"orbit.reply.bob.{_uid()}", durable=True)


async def test_endpoint_replies_and_emits_events(world: World) -> None:
    url_a = world.url_of(world.ep_a)
    await _publish(url_a, naming.REPLY_EXCHANGE, f"orbit.reply.{world.alice}.x")
    await _publish(url_a, naming.EVENT_EXCHANGE, naming.presence_routing_key(world.ep_a))
    with pytest.raises(REFUSED):  # events only under its own name
        await _publish(url_a, naming.EVENT_EXCHANGE, naming.presence_routing_key(world.ep_b))
    with pytest.raises(REFUSED):  # endpoints do not send requests
        await _publish(url_a, naming.REQUEST_EXCHANGE, world.ep_b)


async def test_responder_user(world: World) -> None:
    url = world.url_of(world.responder)
    await _consume_once(url, naming.DEAD_LETTER_QUEUE)
    await _publish(url, naming.REPLY_EXCHANGE, f"orbit.reply.{world.alice}.x")
    with pytest.raises(REFUSED):
        await _consume_once(url, f"orbit.ep.{world.ep_a}")


async def test_grant_revoke_round_trip(world: World) -> None:
    prov, alice, b = world.prov, world.alice, world.ep_b
    url = world.url_of(alice)
    granted = prov.grant(alice, b)
    assert granted.changed and granted.endpoints == tuple(sorted([world.ep_a, b]))
    assert granted.hint == f"allowed_users: [{alice}]"
    assert not prov.grant(alice, b).changed
    await _publish(url, naming.REQUEST_EXCHANGE, b)
    assert prov.allowed_users(b) == [alice]

    pool = prov.grant(alice, "gpu", pool=True)
    assert pool.changed and pool.pools == ("gpu",)
    assert prov.grants(alice) == ({world.ep_a, b}, {"gpu"})

    revoked = prov.revoke(alice, b)
    assert revoked.changed and revoked.endpoints == (world.ep_a,)
    assert revoked.hint == "allowed_users: []"
    assert not prov.revoke(alice, b).changed
    with pytest.raises(REFUSED):
        await _publish(url, naming.REQUEST_EXCHANGE, b)
    await _publish(url, naming.REQUEST_EXCHANGE, world.ep_a)
    # re-provisioning keeps grants made since (provisioning never revokes)
    again = prov.plan(
        ProvisionSpec(
            endpoints=[EndpointSpec(world.ep_a), EndpointSpec(b)],
            clients=[ClientSpec(alice, [world.ep_a])],
            responder_user=world.responder,
        )
    )
    assert again.empty, str(again)
    # an endpoint may be granted too (an orchestrator: docs/plugins/orchestration.md) ...
    assert prov.grant(world.ep_a, b).changed and prov.grants(world.ep_a) == ({b}, set())
    assert prov.plan(  # ... and provisioning keeps its grant and its orchestrator rights
        ProvisionSpec(endpoints=[EndpointSpec(world.ep_a)], responder_user=world.responder)
    ).empty
    with pytest.raises(BrokerError, match="not an Orbit client or endpoint"):
        prov.grant(world.responder, b)  # the dead-letter responder is neither


async def test_revoke_user_closes_connections(broker: Any, world: World) -> None:
    conn = await aio_pika.connect(world.url_of(world.alice))
    closed = asyncio.Event()
    # a broker-side close clears ``connected`` and runs the close callbacks (``is_closed``
    # only turns True on a local close() in aio-pika 10)
    conn.close_callbacks.add(lambda *_: closed.set())
    try:
        await listed(broker, world.alice)
        assert world.prov.revoke_user(world.alice) == 1
        await asyncio.wait_for(closed.wait(), timeout=5)
        assert not conn.connected.is_set()
        assert not broker.management.user_exists(world.alice)
    finally:
        await conn.close()


async def cli_revoke(user: str, management_url: str, vhost: str) -> tuple[int, str]:
    """Run ``orbit broker revoke USER`` as a subprocess: (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orbit_cli",
        "broker",
        "revoke",
        user,
        "--management-url",
        management_url,
        "--vhost",
        vhost,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await proc.communicate())[0].decode()
    assert proc.returncode is not None
    return proc.returncode, out


async def test_cli_revoke_user_closes_connections_within_5_s(broker: Any, world: World) -> None:
    """``orbit broker revoke NAME``: the user is deleted, its open connection closed."""
    conn = await aio_pika.connect(world.url_of(world.alice))
    closed = asyncio.Event()
    conn.close_callbacks.add(lambda *_: closed.set())
    mgmt = broker.management_url.replace("://", f"://{broker.user}:{broker.password}@", 1)
    try:
        await listed(broker, world.alice)
        returncode, out = await cli_revoke(world.alice, mgmt, world.vhost)
        started = time.monotonic()
        await asyncio.wait_for(closed.wait(), timeout=5)
        assert returncode == 0, out
        assert f"user {world.alice} deleted; 1 connection(s) closed" in out, out
        assert not broker.management.user_exists(world.alice)
        print(
            f"\nrevoke: connection closed {time.monotonic() - started:.2f} s after the CLI returned"
        )
    finally:
        await conn.close()


async def test_cli_revoke_endpoint_user_closes_its_connections_within_5_s(
    broker: Any, world: World, tmp_path: Path
) -> None:
    """``orbit broker revoke EP``: a running endpoint's connections (consume + publish) are
    closed within 5 s; its reconnect is refused and it exits saying why (code 2)."""
    ep = EndpointProcess(
        world.ep_a, world.url_of(world.ep_a), tmp_path / "ep", allowed_users=[world.alice]
    )
    await ep.start()
    mgmt = broker.management_url.replace("://", f"://{broker.user}:{broker.password}@", 1)
    try:
        await listed(broker, world.ep_a, 2)
        returncode, out = await cli_revoke(world.ep_a, mgmt, world.vhost)
        started = time.monotonic()
        assert returncode == 0, out
        assert f"user {world.ep_a} deleted; 2 connection(s) closed" in out, out
        assert not broker.management.user_exists(world.ep_a)
        # the consumer is gone from its queue (immediate, unlike the management stats)
        while await consumer_count(world.url, world.ep_a) != 0:
            assert time.monotonic() - started < 5, "the endpoint still consumes"
            await asyncio.sleep(0.1)
        closed = time.monotonic() - started
        assert ep.proc is not None
        code = await asyncio.to_thread(ep.proc.wait, 60)
        log = ep.log()
        assert code == 2, log
        assert "refused the credentials" in log, log
        print(
            f"\nrevoke endpoint: consumer gone {closed:.2f} s after the CLI returned;"
            f" endpoint exited {code} after {time.monotonic() - started:.1f} s"
        )
    finally:
        await ep.stop()


# -- the local node ---------------------------------------------------------------------------


async def test_local_node_kill_restart_keeps_durable_queues(
    broker: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGKILL + start on the same data dir: quorum queue and persistent message survive."""
    if broker.node is None:
        pytest.skip("the session broker is external; this test needs the rabbitmq-server package")
    node = await asyncio.to_thread(start_node, tmp_path_factory.mktemp("killnode"), "orbit-kill")
    try:
        url = node.amqp_url("/")
        await declare_all(url, endpoints=["ep1"])
        await _publish(url, naming.REQUEST_EXCHANGE, "ep1")
        pid = node.pid
        assert pid is not None and node.status().ready
        # RabbitMQ 3.10.8 (ra 2.2): a quorum queue declared less than ~1-2 s before a kill -9
        # comes back without a leader ("leader not known", consume fails with INTERNAL_ERROR);
        # measured: 0 s fails, 5 s recovers. Crash tests must let new queues settle first.
        await asyncio.sleep(5)
        node.kill()
        assert not node.is_running() and node.status().pid is None
        await asyncio.to_thread(node.start)
        assert node.pid not in (None, pid)
        with ManagementClient(node.management_url, node.username, node.password) as m:
            q = m.get_queue("/", "orbit.ep.ep1")
            assert q is not None and q.arguments == dict(spec.work_queue_arguments())
        # management message counts of quorum queues lag by seconds: consume instead
        async with await aio_pika.connect(url) as conn:
            channel = await conn.channel()
            queue = await channel.get_queue("orbit.ep.ep1", ensure=False)
            async with queue.iterator() as messages:
                message = await asyncio.wait_for(anext(aiter(messages)), timeout=15)
                assert message.body == b'{"v": 1}' and message.routing_key == "ep1"
                await message.ack()
    finally:
        await asyncio.to_thread(node.stop)
    assert not node.is_running() and not port_in_use(node.amqp_port)
