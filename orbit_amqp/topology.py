"""Declare an :class:`orbit_protocol.topology.Topology` on a channel, and one-shot connects.

Queue arguments are immutable in RabbitMQ: re-declaring a queue with other arguments fails
with 406 PRECONDITION_FAILED. :func:`declare` turns that into a ``BrokerError`` that names
the queue and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

from orbit_protocol.errors import BrokerError
from orbit_protocol.topology import Topology
from orbit_protocol.urls import split_urls

from .base import Channel, Connection
from .errors import PreconditionFailed
from .link import connect_first
from .registry import transport_for


def _inequivalent(kind: str, name: str, exc: BaseException) -> BrokerError:
    fix = (
        "delete and re-create it (queued messages are lost) or change the setting by policy"
        if kind == "queue"
        else "delete and re-create it"
    )
    return BrokerError(
        f"{kind} {name!r} exists with different settings than Orbit declares; {fix}. "
        f"Broker said: {exc}",
        {"kind": kind, "name": name},
    )


async def declare(channel: Channel, topology: Topology) -> None:
    """Declare exchanges, queues (exact arguments) and bindings; idempotent.

    Raises ``BrokerError`` on an inequivalent exchange or queue (the broker closes the
    channel then, so do not reuse it).
    """
    for ex in topology.exchanges:
        try:
            await channel.declare_exchange(ex.name, ex.kind, durable=ex.durable)
        except PreconditionFailed as exc:
            raise _inequivalent("exchange", ex.name, exc) from exc
    for q in topology.queues:
        try:
            await channel.declare_queue(q.name, durable=q.durable, arguments=q.args)
        except PreconditionFailed as exc:
            raise _inequivalent("queue", q.name, exc) from exc
    for b in topology.bindings:
        await channel.bind(b.queue, b.exchange, b.routing_key)


async def connect(url: str | Sequence[str], *, name: str, timeout: float = 10.0) -> Connection:
    """Connect once to the first node of a (comma-separated) URL list that answers
    (:func:`~orbit_amqp.link.connect_first`: a refused login is final)."""
    urls = split_urls(url) if isinstance(url, str) else list(url)

    async def one(each: str) -> Connection:
        return await transport_for(each).connect(each, name=name, timeout=timeout)

    return (await connect_first(urls, one))[1]


async def declare_at(url: str | Sequence[str], topology: Topology, *, name: str) -> None:
    """Connect to ``url`` (a URL list tries each node), declare ``topology``, disconnect."""
    connection = await connect(url, name=name)
    try:
        await declare(await connection.channel(), topology)
    finally:
        await connection.close()


__all__ = ["connect", "declare", "declare_at"]
