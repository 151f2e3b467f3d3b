"""Broker behaviour Orbit relies on, run on the in-memory broker and on a real RabbitMQ node.

Each case names the part of Orbit that depends on it. A failure on ``rabbitmq`` means the
broker version behaves differently from what Orbit assumes; a failure on ``memory`` means
the model used for fast tests drifted from the real broker.
"""

from __future__ import annotations

import asyncio

import pytest

from orbit_amqp import (
    AccessRefused,
    ConnectionLost,
    EntityNotFound,
    Message,
    PreconditionFailed,
    Properties,
    Unroutable,
)
from orbit_protocol import naming
from orbit_protocol.topology import QueueSpec, Topology, client_queue_arguments, endpoint
from tests.contract.transports import Harness, Inbox
from tests.testkit.eventually import eventually

pytestmark = pytest.mark.rabbit


def _queue(name: str, binding_keys: tuple[str, ...], exchange: str, **args: object) -> Topology:
    from orbit_protocol.topology import BindingSpec

    return Topology(
        queues=(QueueSpec(name, tuple(args.items())),),
        bindings=tuple(BindingSpec(exchange, name, key) for key in binding_keys),
    )


async def _drain(transport: Harness, queue: str, *, timeout: float = 0.5) -> list[bytes]:
    consumer = await transport.consume(queue)
    bodies = []
    while (d := await consumer.next(timeout)) is not None:
        bodies.append(d.body)
        await d.ack()
    await consumer.cancel()
    return bodies


async def test_request_reaches_only_the_addressed_endpoint(transport: Harness) -> None:
    """Endpoint intake: routing key = endpoint name on the topic exchange ``orbit.requests``."""
    await transport.declare(endpoint("alpha") + endpoint("beta"))
    assert await transport.publish(naming.REQUEST_EXCHANGE, "alpha", b"for-alpha")
    assert await transport.publish(
        naming.REQUEST_EXCHANGE, "gamma", b"nobody"
    )  # unroutable: dropped
    assert await _drain(transport, naming.request_queue("alpha")) == [b"for-alpha"]
    assert await _drain(transport, naming.request_queue("beta")) == []


async def test_mandatory_request_to_an_unknown_endpoint_comes_back(transport: Harness) -> None:
    """Client fail-fast: ``mandatory`` + ``basic.return`` → ``EndpointOffline`` at once."""
    await transport.declare(endpoint("alpha"))
    with pytest.raises(Unroutable):
        await transport.publish(naming.REQUEST_EXCHANGE, "gamma", b"lost", mandatory=True)
    assert await transport.publish(naming.REQUEST_EXCHANGE, "alpha", b"kept", mandatory=True)
    assert await _drain(transport, naming.request_queue("alpha")) == [b"kept"]


async def test_event_patterns_select_endpoint_plugin_and_topic(transport: Harness) -> None:
    """Client subscriptions and the gateway: ``<endpoint>.<plugin>.<topic>`` topic patterns."""
    sub = client_queue_arguments(subscription=True)
    await transport.declare(
        _queue("orbit.sub.u.one", ("alpha.#",), naming.EVENT_EXCHANGE, **sub)
        + _queue(
            "orbit.sub.u.two", ("*.sysinfo.*", "*.orbit.presence"), naming.EVENT_EXCHANGE, **sub
        )
    )
    for key in (
        "alpha.sysinfo.metrics",
        "beta.sysinfo.metrics",
        "alpha.psij.job_status",
        "beta.orbit.presence",
        "beta.psij.job_output",
    ):
        assert await transport.publish(naming.EVENT_EXCHANGE, key, key.encode())
    one = await _drain(transport, "orbit.sub.u.one")
    two = await _drain(transport, "orbit.sub.u.two")
    assert one == [b"alpha.sysinfo.metrics", b"alpha.psij.job_status"]
    assert two == [b"alpha.sysinfo.metrics", b"beta.sysinfo.metrics", b"beta.orbit.presence"]


async def test_reply_routing_is_an_exact_queue_name(transport: Harness) -> None:
    """Replies: ``orbit.replies`` routes by the reply queue's own name only."""
    args = client_queue_arguments()
    await transport.declare(
        _queue("orbit.reply.u.aaaa", ("orbit.reply.u.aaaa",), naming.REPLY_EXCHANGE, **args)
        + _queue("orbit.reply.u.bbbb", ("orbit.reply.u.bbbb",), naming.REPLY_EXCHANGE, **args)
    )
    assert await transport.publish(naming.REPLY_EXCHANGE, "orbit.reply.u.aaaa", b"r1")
    assert await _drain(transport, "orbit.reply.u.aaaa") == [b"r1"]
    assert await _drain(transport, "orbit.reply.u.bbbb") == []


async def test_full_request_queue_nacks_the_publish(transport: Harness) -> None:
    """``ENDPOINT_BUSY``: ``x-overflow=reject-publish`` refuses, keeps the queued requests.

    A quorum queue checks the limit before it enqueues, so it holds ``x-max-length + 1``
    requests before it refuses (measured on 3.10.8); the ENDPOINT_BUSY error and the
    documented limit are therefore "about" ``x-max-length``, never fewer.
    """
    await transport.declare(endpoint("busy", max_length=2))
    results = [
        await transport.publish(naming.REQUEST_EXCHANGE, "busy", b"%d" % i) for i in range(5)
    ]
    assert results == [True, True, True, False, False]
    assert await _drain(transport, naming.request_queue("busy")) == [b"0", b"1", b"2"]


async def test_expired_request_is_dead_lettered_with_its_reply_address(
    transport: Harness,
) -> None:
    """Dead-letter responder: reason ``expired`` → ``ENDPOINT_OFFLINE`` to the kept ``reply_to``."""
    await transport.declare(endpoint("sleepy"))
    assert await transport.publish(
        naming.REQUEST_EXCHANGE,
        "sleepy",
        b"late",
        expiration="100",
        correlation_id="c-1",
        reply_to="orbit.reply.u.x",
    )
    await asyncio.sleep(0.5)
    intake = await transport.consume(naming.request_queue("sleepy"))
    assert await intake.next(1.0) is None  # never delivered after its deadline
    dead = await transport.consume(naming.DEAD_LETTER_QUEUE)
    letter = await dead.next(5.0)
    assert letter is not None
    assert (letter.body, letter.correlation_id, letter.reply_to) == (
        b"late",
        "c-1",
        "orbit.reply.u.x",
    )
    death = letter.headers["x-death"][0]
    assert (death["reason"], death["queue"]) == ("expired", naming.request_queue("sleepy"))
    await letter.ack()


async def test_rejected_request_is_dead_lettered(transport: Harness) -> None:
    """Endpoint refusals that must not loop: reject without requeue → reason ``rejected``."""
    await transport.declare(endpoint("strict"))
    await transport.publish(naming.REQUEST_EXCHANGE, "strict", b"bad", correlation_id="c-2")
    intake = await transport.consume(naming.request_queue("strict"))
    delivery = await intake.next()
    assert delivery is not None
    await delivery.reject(requeue=False)
    dead = await transport.consume(naming.DEAD_LETTER_QUEUE)
    letter = await dead.next(5.0)
    assert letter is not None and letter.correlation_id == "c-2"
    assert letter.headers["x-death"][0]["reason"] == "rejected"


async def test_poison_request_is_delivered_limit_plus_one_times(transport: Harness) -> None:
    """``POISON_MESSAGE``: quorum ``x-delivery-limit`` counts returns, then dead-letters."""
    await transport.declare(endpoint("crashy", delivery_limit=2))
    await transport.publish(naming.REQUEST_EXCHANGE, "crashy", b"poison", correlation_id="c-3")
    intake = await transport.consume(naming.request_queue("crashy"))
    counts = []
    while (d := await intake.next(1.5)) is not None:
        counts.append(d.headers.get("x-delivery-count", 0))
        await d.reject(requeue=True)  # as if the handler crashed each time
    assert counts == [0, 1, 2]
    dead = await transport.consume(naming.DEAD_LETTER_QUEUE)
    letter = await dead.next(5.0)
    assert letter is not None and letter.correlation_id == "c-3"
    assert letter.headers["x-death"][0]["reason"] == "delivery_limit"


async def _until_consumed(transport: Harness, queue: str) -> None:
    """Wait until the broker counts an active consumer on ``queue``."""
    channel = await transport.connection.channel()

    async def counted() -> bool:
        return (await channel.declare_queue(queue, passive=True)).consumers == 1

    await eventually(counted, timeout=5, what=f"a consumer on {queue}")


async def test_second_consumer_is_a_hot_standby(transport: Harness) -> None:
    """Standby endpoints: single active consumer; unacked work moves when the active one goes."""
    await transport.declare(endpoint("ha"))
    active = await transport.consume(naming.request_queue("ha"), prefetch=1)
    await _until_consumed(transport, naming.request_queue("ha"))  # the first one is active
    standby = await transport.consume(naming.request_queue("ha"), prefetch=1)
    for i in range(3):
        await transport.publish(naming.REQUEST_EXCHANGE, "ha", b"%d" % i)
    first = await active.next()
    assert first is not None and first.body == b"0"
    assert await standby.next(0.5) is None  # the standby gets nothing while the active lives
    await active.cancel()  # the active instance dies with request 0 unacknowledged
    taken = []
    while (d := await standby.next(1.5)) is not None:
        taken.append((d.body, d.redelivered))
        await d.ack()
    assert taken == [(b"0", True), (b"1", False), (b"2", False)]


async def test_forged_user_id_is_refused_and_the_channel_closes(transport: Harness) -> None:
    """Reply check and the endpoint's authorization: the broker validates ``user_id``."""
    await transport.declare(endpoint("alpha"))
    url = transport.users.add("mallory")
    conn = await transport.connect_as(url)
    channel = await conn.channel(confirms=True)
    forged = Message(b"x", Properties(user_id="alice"))
    with pytest.raises(PreconditionFailed, match="user_id"):
        await channel.publish(naming.REQUEST_EXCHANGE, "alpha", forged)
    await _eventually_closed(channel)
    honest = await conn.channel(confirms=True)
    await honest.publish(
        naming.REQUEST_EXCHANGE, "alpha", Message(b"y", Properties(user_id="mallory"))
    )
    inbox = await transport.consume(naming.request_queue("alpha"))
    got = await inbox.next()
    assert got is not None and (got.body, got.user_id) == (b"y", "mallory")
    await got.ack()
    assert await inbox.next(0.3) is None  # the forged one never arrived


async def _eventually_closed(channel: object) -> None:
    await eventually(lambda: channel.is_closed, timeout=2, what="the broker closes the channel")


async def test_topic_permissions_limit_publish_and_bind_keys(transport: Harness) -> None:
    """Client grants: topic write on ``orbit.requests`` and topic read on ``orbit.events``
    decide which endpoints a user may call and follow; no row means any key."""
    await transport.declare(endpoint("alpha") + endpoint("beta"))
    url = transport.users.add(
        "carol",
        topics={
            naming.REQUEST_EXCHANGE: ("^alpha$", "^$"),
            naming.EVENT_EXCHANGE: ("^$", "^alpha\\."),
        },
    )
    conn = await transport.connect_as(url)
    channel = await conn.channel(confirms=True)
    await channel.publish(naming.REQUEST_EXCHANGE, "alpha", Message(b"ok"))
    with pytest.raises(AccessRefused):
        await channel.publish(naming.REQUEST_EXCHANGE, "beta", Message(b"no"))
    await _eventually_closed(channel)
    queue = "orbit.sub.carol.t1"
    sub = await conn.channel()
    await sub.declare_queue(queue, durable=False, auto_delete=False)
    await sub.bind(queue, naming.EVENT_EXCHANGE, "alpha.#")
    with pytest.raises(AccessRefused):
        await sub.bind(queue, naming.EVENT_EXCHANGE, "#")
    replies = await conn.channel()
    await replies.declare_queue("orbit.reply.carol.r1", durable=False)
    await replies.bind("orbit.reply.carol.r1", naming.REPLY_EXCHANGE, "anything")  # no row
    assert await _drain(transport, naming.request_queue("alpha")) == [b"ok"]
    assert await _drain(transport, naming.request_queue("beta")) == []


async def test_resource_permissions_guard_declare_publish_and_consume(transport: Harness) -> None:
    """Provisioned endpoints declare passively only and read only their own queue."""
    await transport.declare(endpoint("alpha") + endpoint("beta"))
    url = transport.users.add(
        "ep-alpha", configure="^$", write="^orbit\\.(replies|events)$", read="^orbit\\.ep\\.alpha$"
    )
    conn = await transport.connect_as(url)
    channel = await conn.channel()
    state = await channel.declare_queue(naming.request_queue("beta"), passive=True)
    assert state.consumers == 0  # a passive declare needs no permission
    with pytest.raises(AccessRefused):
        await channel.declare_queue("orbit.ep.mine", durable=True)

    async def noop(_: object) -> None:
        return None

    channel = await conn.channel()
    await channel.consume(naming.request_queue("alpha"), noop)
    with pytest.raises(AccessRefused):
        await channel.consume(naming.request_queue("beta"), noop)
    confirm = await conn.channel(confirms=True)
    await confirm.publish(naming.EVENT_EXCHANGE, "alpha.x.y", Message(b"e"))
    with pytest.raises(AccessRefused):
        await confirm.publish(naming.REQUEST_EXCHANGE, "beta", Message(b"r"))


async def test_missing_queue_is_not_found_on_a_passive_declare(transport: Harness) -> None:
    """Client fail-fast: no ``orbit.ep.<name>`` → ``EndpointOffline`` "was it provisioned?"."""
    channel = await transport.connection.channel()
    with pytest.raises(EntityNotFound):
        await channel.declare_queue(naming.request_queue("ghost"), passive=True)
    await _eventually_closed(channel)
    with pytest.raises(ConnectionLost):
        await channel.declare_queue(naming.request_queue("ghost"), passive=True)


async def test_unacked_deliveries_come_back_when_the_connection_dies(transport: Harness) -> None:
    """Endpoint intake before the journal write: a lost connection returns its deliveries,
    marked redelivered, to the next consumer."""
    await transport.declare(endpoint("flaky"))
    for i in range(2):
        await transport.publish(naming.REQUEST_EXCHANGE, "flaky", b"%d" % i)
    url = transport.users.add("worker")
    conn = await transport.connect_as(url)
    got: list[bytes] = []

    async def take(delivery: object) -> None:
        got.append(delivery.body)  # type: ignore[attr-defined]

    channel = await conn.channel()
    await channel.set_prefetch(10)
    await channel.consume(naming.request_queue("flaky"), take)
    await eventually(lambda: len(got) == 2, timeout=2, what="both deliveries")
    assert got == [b"0", b"1"]
    await conn.close()
    inbox = await transport.consume(naming.request_queue("flaky"))
    again = [await inbox.next(), await inbox.next()]
    assert [(d.body, d.redelivered) for d in again if d] == [(b"0", True), (b"1", True)]


async def test_passive_declare_counts_the_active_consumer_only(transport: Harness) -> None:
    """Presence fallback: ``consumer_count`` is 1 with a hot standby attached."""
    await transport.declare(endpoint("ha2"))
    channel = await transport.connection.channel()
    assert (await channel.declare_queue(naming.request_queue("ha2"), passive=True)).consumers == 0
    first = await transport.consume(naming.request_queue("ha2"))
    await _until_consumed(transport, naming.request_queue("ha2"))
    await transport.consume(naming.request_queue("ha2"))
    state = await channel.declare_queue(naming.request_queue("ha2"), passive=True)
    assert state.consumers == 1
    await first.cancel()


async def test_auto_delete_subscription_queue_goes_with_its_consumer(transport: Harness) -> None:
    """Client subscriptions: ``orbit.sub.*`` is auto-deleted when its channel closes."""
    sub = await transport.connection.channel()
    await sub.declare_queue(
        "orbit.sub.u.gone",
        durable=False,
        auto_delete=True,
        arguments=client_queue_arguments(subscription=True),
    )

    async def noop(_: object) -> None:
        return None

    await sub.consume("orbit.sub.u.gone", noop, no_ack=True)
    await sub.close()
    probe = await transport.connection.channel()

    async def gone() -> bool:
        try:
            await probe.declare_queue("orbit.sub.u.gone", passive=True)
        except EntityNotFound:
            return True
        return False

    await eventually(gone, timeout=2.5, interval=0.05, what="the auto-delete queue is deleted")


async def test_a_closed_connection_refuses_new_channels_as_lost(transport: Harness) -> None:
    """Client and endpoint retry on ``ConnectionLost``: a channel asked of a connection that
    is gone must say so, not raise a library's own error."""
    conn = await transport.connect_as(transport.users.add("leaver"))
    await conn.close()
    with pytest.raises(ConnectionLost):
        await conn.channel(confirms=True)


async def test_an_ack_on_a_lost_connection_raises_lost(transport: Harness) -> None:
    """Endpoint intake: an ack that cannot reach the broker must fail (``ConnectionLost``),
    never hang, so the endpoint forgets its journal row and takes the redelivery fresh."""
    await transport.declare(endpoint("acker"))
    await transport.publish(naming.REQUEST_EXCHANGE, "acker", b"work")
    conn = await transport.connect_as(transport.users.add("acker"))
    inbox = await Inbox(await conn.channel()).start(naming.request_queue("acker"), 1)
    delivery = await inbox.next()
    assert delivery is not None and delivery.body == b"work"
    await conn.close()
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(delivery.ack(), 10)
    again = await (await transport.consume(naming.request_queue("acker"))).next()
    assert again is not None and (again.body, again.redelivered) == (b"work", True)
