"""Broker behaviour Orbit relies on, run against the in-memory model and a real node (DESIGN §6).

Each case names the part of Orbit that depends on it. A failure on ``rabbitmq`` means the
broker version behaves differently from what Orbit assumes; a failure on ``memory`` means
the model used for fast tests drifted from the real broker.
"""

from __future__ import annotations

import asyncio

import pytest

from orbit_protocol import naming
from orbit_protocol.topology import QueueSpec, Topology, client_queue_arguments, endpoint
from tests.contract.transports import Transport
from tests.testkit.memory_broker import Unroutable

pytestmark = pytest.mark.rabbit


def _queue(name: str, binding_keys: tuple[str, ...], exchange: str, **args: object) -> Topology:
    from orbit_protocol.topology import BindingSpec

    return Topology(
        queues=(QueueSpec(name, tuple(args.items())),),
        bindings=tuple(BindingSpec(exchange, name, key) for key in binding_keys),
    )


async def _drain(transport: Transport, queue: str, *, timeout: float = 0.5) -> list[bytes]:
    consumer = await transport.consume(queue)
    bodies = []
    while (d := await consumer.next(timeout)) is not None:
        bodies.append(d.body)
        await d.ack()
    await consumer.cancel()
    return bodies


async def test_request_reaches_only_the_addressed_endpoint(transport: Transport) -> None:
    """Endpoint intake: routing key = endpoint name on the topic exchange ``orbit.requests``."""
    await transport.declare(endpoint("alpha") + endpoint("beta"))
    assert await transport.publish(naming.REQUEST_EXCHANGE, "alpha", b"for-alpha")
    assert await transport.publish(
        naming.REQUEST_EXCHANGE, "gamma", b"nobody"
    )  # unroutable: dropped
    assert await _drain(transport, naming.request_queue("alpha")) == [b"for-alpha"]
    assert await _drain(transport, naming.request_queue("beta")) == []


async def test_mandatory_request_to_an_unknown_endpoint_comes_back(transport: Transport) -> None:
    """Client fail-fast: ``mandatory`` + ``basic.return`` → ``EndpointOffline`` at once."""
    await transport.declare(endpoint("alpha"))
    with pytest.raises(Unroutable):
        await transport.publish(naming.REQUEST_EXCHANGE, "gamma", b"lost", mandatory=True)
    assert await transport.publish(naming.REQUEST_EXCHANGE, "alpha", b"kept", mandatory=True)
    assert await _drain(transport, naming.request_queue("alpha")) == [b"kept"]


async def test_event_patterns_select_endpoint_plugin_and_topic(transport: Transport) -> None:
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


async def test_reply_routing_is_an_exact_queue_name(transport: Transport) -> None:
    """Replies: ``orbit.replies`` routes by the reply queue's own name only."""
    args = client_queue_arguments()
    await transport.declare(
        _queue("orbit.reply.u.aaaa", ("orbit.reply.u.aaaa",), naming.REPLY_EXCHANGE, **args)
        + _queue("orbit.reply.u.bbbb", ("orbit.reply.u.bbbb",), naming.REPLY_EXCHANGE, **args)
    )
    assert await transport.publish(naming.REPLY_EXCHANGE, "orbit.reply.u.aaaa", b"r1")
    assert await _drain(transport, "orbit.reply.u.aaaa") == [b"r1"]
    assert await _drain(transport, "orbit.reply.u.bbbb") == []


async def test_full_request_queue_nacks_the_publish(transport: Transport) -> None:
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
    transport: Transport,
) -> None:
    """Dead-letter responder: reason ``expired`` → ``ENDPOINT_OFFLINE`` to the kept ``reply_to``."""
    await transport.declare(endpoint("sleepy"))
    assert await transport.publish(
        naming.REQUEST_EXCHANGE,
        "sleepy",
        b"late",
        expiration_ms=100,
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


async def test_rejected_request_is_dead_lettered(transport: Transport) -> None:
    """Endpoint refusals that must not loop: reject without requeue → reason ``rejected``."""
    await transport.declare(endpoint("strict"))
    await transport.publish(naming.REQUEST_EXCHANGE, "strict", b"bad", correlation_id="c-2")
    intake = await transport.consume(naming.request_queue("strict"))
    delivery = await intake.next()
    assert delivery is not None
    await delivery.nack(requeue=False)
    dead = await transport.consume(naming.DEAD_LETTER_QUEUE)
    letter = await dead.next(5.0)
    assert letter is not None and letter.correlation_id == "c-2"
    assert letter.headers["x-death"][0]["reason"] == "rejected"


async def test_poison_request_is_delivered_limit_plus_one_times(transport: Transport) -> None:
    """``POISON_MESSAGE``: quorum ``x-delivery-limit`` counts returns, then dead-letters."""
    await transport.declare(endpoint("crashy", delivery_limit=2))
    await transport.publish(naming.REQUEST_EXCHANGE, "crashy", b"poison", correlation_id="c-3")
    intake = await transport.consume(naming.request_queue("crashy"))
    counts = []
    while (d := await intake.next(1.5)) is not None:
        counts.append(d.headers.get("x-delivery-count", 0))
        await d.nack(requeue=True)  # as if the handler crashed each time
    assert counts == [0, 1, 2]
    dead = await transport.consume(naming.DEAD_LETTER_QUEUE)
    letter = await dead.next(5.0)
    assert letter is not None and letter.correlation_id == "c-3"
    assert letter.headers["x-death"][0]["reason"] == "delivery_limit"


async def test_second_consumer_is_a_hot_standby(transport: Transport) -> None:
    """Standby endpoints: single active consumer; unacked work moves when the active one goes."""
    await transport.declare(endpoint("ha"))
    active = await transport.consume(naming.request_queue("ha"), prefetch=1)
    await asyncio.sleep(0.2)  # the first registered consumer becomes the active one
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
