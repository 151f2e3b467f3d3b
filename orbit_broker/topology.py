"""Declare an :class:`orbit_protocol.topology.Topology` through aio-pika.

Queue arguments are immutable in RabbitMQ: re-declaring a queue with other arguments fails
with 406 PRECONDITION_FAILED. :func:`declare` turns that into a ``BrokerError`` that names
the queue and says how to fix it; :func:`queue_differences` compares arguments read back
from the management API before anything is declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection

from orbit_protocol import topology as spec
from orbit_protocol.errors import AuthenticationFailed, BrokerError
from orbit_protocol.topology import QueueSpec, Topology
from orbit_protocol.urls import split_urls


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


async def declare(channel: AbstractChannel, topology: Topology) -> None:
    """Declare exchanges, queues (exact arguments) and bindings; idempotent.

    Raises ``BrokerError`` on an inequivalent exchange or queue (the channel is closed by
    the broker then, so do not reuse it).
    """
    for ex in topology.exchanges:
        try:
            await channel.declare_exchange(
                ex.name, aio_pika.ExchangeType(ex.kind), durable=ex.durable
            )
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise _inequivalent("exchange", ex.name, exc) from exc
    for q in topology.queues:
        try:
            await channel.declare_queue(q.name, durable=q.durable, arguments=q.args)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise _inequivalent("queue", q.name, exc) from exc
    for b in topology.bindings:
        queue = await channel.get_queue(b.queue, ensure=False)
        await queue.bind(b.exchange, routing_key=b.routing_key)


def full_topology(
    endpoints: Iterable[str] = (), pools: Iterable[str] = (), **queue_options: int
) -> Topology:
    """Core topology plus each endpoint's and pool's request queue."""
    result = spec.core()
    for name in endpoints:
        result = result + spec.endpoint(name, **queue_options)
    for name in pools:
        result = result + spec.pool(name, **queue_options)
    return result


async def connect_any(amqp_url: str) -> AbstractConnection:
    """Connect to the first reachable node of a (comma-separated) URL list.

    An authentication failure is final (the nodes share their users); any other failure
    moves on to the next URL, and the last one's error is raised.
    """
    urls = split_urls(amqp_url)
    for url in urls[:-1]:
        try:
            return await aio_pika.connect(url)
        except aiormq.exceptions.ProbableAuthenticationError:
            raise
        except (OSError, aiormq.exceptions.AMQPError):
            continue
    return await aio_pika.connect(urls[-1])


async def declare_all(
    amqp_url: str,
    endpoints: Iterable[str] = (),
    pools: Iterable[str] = (),
    **queue_options: int,
) -> Topology:
    """Connect to ``amqp_url`` (vhost included; a URL list tries each node), declare core +
    endpoints + pools, disconnect."""
    topology = full_topology(endpoints, pools, **queue_options)
    try:
        connection = await connect_any(amqp_url)
    except aiormq.exceptions.ProbableAuthenticationError as exc:
        raise AuthenticationFailed(
            f"cannot declare topology: broker refused the login ({exc})"
        ) from None
    except (OSError, aiormq.exceptions.AMQPError) as exc:
        raise BrokerError(f"cannot declare topology: {type(exc).__name__}: {exc}") from None
    async with connection:
        channel = await connection.channel()
        await declare(channel, topology)
    return topology


def queue_differences(wanted: QueueSpec, existing: Mapping[str, Any]) -> list[str]:
    """Human lines describing how ``existing`` arguments differ from ``wanted``; [] if equal.

    The broker stores arguments as declared, so a missing key means "absent"; ``x-queue-type``
    absent is the same as ``classic``.
    """
    want = dict(wanted.args)
    have = dict(existing)
    want.setdefault("x-queue-type", "classic")
    have.setdefault("x-queue-type", "classic")
    lines: list[str] = []
    for key in sorted(set(want) | set(have)):
        if key not in have:
            lines.append(f"{key}: absent, Orbit wants {want[key]!r}")
        elif key not in want:
            lines.append(f"{key}: is {have[key]!r}, Orbit does not set it")
        elif have[key] != want[key]:
            lines.append(f"{key}: is {have[key]!r}, Orbit wants {want[key]!r}")
    return lines


__all__ = ["declare", "declare_all", "full_topology", "queue_differences"]
