"""``basic.get`` and last-value queues, on the memory broker and on RabbitMQ.

The endpoint directory rests on these: a classic queue of ``x-max-length`` 1 with
``drop-head`` keeps only the newest message, and a reader looks at it with a ``get`` and a
requeue (``orbit_amqp.peek``) without taking it from other readers.
"""

from __future__ import annotations

import pytest

from orbit_amqp import AccessRefused, Channel, EntityNotFound, peek
from orbit_protocol import naming
from orbit_protocol.topology import LAST_VALUE_ARGUMENTS, BindingSpec, QueueSpec, Topology
from tests.contract.transports import Harness
from tests.testkit.eventually import eventually

pytestmark = pytest.mark.rabbit


def _last_value(name: str, *keys: str) -> Topology:
    return Topology(
        queues=(QueueSpec(name, LAST_VALUE_ARGUMENTS),),
        bindings=tuple(BindingSpec(naming.EVENT_EXCHANGE, name, key) for key in keys),
    )


async def _count(channel: Channel, queue: str, want: int) -> bool:
    """The ready count (a requeue reaches the count a moment after the reject is sent)."""
    return (await channel.declare_queue(queue, passive=True)).messages == want


async def test_get_answers_none_then_the_head_and_requeue_puts_it_back(transport: Harness) -> None:
    """Directory reads: ``get`` on an empty queue is ``None``; a requeued message is the head
    again, marked redelivered; an ack takes it."""
    await transport.declare(Topology(queues=(QueueSpec("orbit.sub.u.plain"),)))
    channel = await transport.connection.channel()
    assert await channel.get("orbit.sub.u.plain") is None
    for body in (b"one", b"two"):
        await transport.publish("", "orbit.sub.u.plain", body)
    first = await channel.get("orbit.sub.u.plain")
    assert first is not None and (first.body, first.redelivered) == (b"one", False)
    await first.reject(requeue=True)
    again = await channel.get("orbit.sub.u.plain")
    assert again is not None and (again.body, again.redelivered) == (b"one", True)
    await again.ack()
    taken = await channel.get("orbit.sub.u.plain", no_ack=True)
    assert taken is not None and taken.body == b"two"
    assert await channel.get("orbit.sub.u.plain") is None


async def test_last_value_queue_keeps_the_newest_message_only(transport: Harness) -> None:
    """Last seen: each presence event replaces the one before; peeking leaves it there."""
    queue = naming.last_seen_queue("u", "hpc1")
    await transport.declare(_last_value(queue, naming.presence_routing_key("hpc1")))
    channel = await transport.connection.channel()
    assert await peek(channel, queue) is None
    for i in range(3):
        await transport.publish(
            naming.EVENT_EXCHANGE, naming.presence_routing_key("hpc1"), b"%d" % i
        )
    for _ in range(2):
        seen = await peek(channel, queue)
        assert seen is not None and seen.body == b"2"
    await eventually(lambda: _count(channel, queue, 1), timeout=3, what="one message left")


async def test_a_requeue_behind_a_newer_message_keeps_only_the_newer(transport: Harness) -> None:
    """A reader holding the old value while a new one arrives: the queue still ends with one
    message, the newest (the broker drops the requeued head)."""
    queue = naming.directory_queue("u")
    await transport.declare(_last_value(queue))
    await transport.publish("", queue, b"old")
    channel = await transport.connection.channel()
    held = await channel.get(queue)
    assert held is not None and held.body == b"old"
    await transport.publish("", queue, b"new")
    await held.reject(requeue=True)
    await eventually(lambda: _count(channel, queue, 1), timeout=3, what="one message left")
    newest = await peek(channel, queue)
    assert newest is not None and newest.body == b"new"


async def test_get_needs_read_permission_and_an_existing_queue(transport: Harness) -> None:
    """Isolation: a user cannot look into another user's directory; a missing directory is
    ``EntityNotFound`` (the client then falls back to presence)."""
    mine, theirs = naming.directory_queue("carol"), naming.directory_queue("dave")
    await transport.declare(_last_value(mine) + _last_value(theirs))
    url = transport.users.add("carol", read=r"^orbit\.sub\.carol\..+$")
    conn = await transport.connect_as(url)
    assert await peek(await conn.channel(), mine) is None
    with pytest.raises(AccessRefused):
        await (await conn.channel()).get(theirs)
    with pytest.raises(EntityNotFound):
        await (await conn.channel()).get("orbit.sub.carol.never-made")
