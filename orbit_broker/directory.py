"""Each client's endpoint directory, kept on the broker (``docs/directory.md``).

``orbit.sub.<user>.directory`` holds one message, the user's grants as a
:class:`~orbit_protocol.Directory`; ``orbit.sub.<user>.seen.<endpoint>`` holds the last
presence event of each granted endpoint. Both are last-value queues in the user's own
namespace, so the broker's read permissions keep every user to their own directory.

The provisioner writes them through the management API (:class:`ManagementStore`) whenever
a grant changes; :class:`AmqpStore` does the same over an admin's AMQP connection, for a
broker without the management API (the in-memory one of tests and demos).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from orbit_amqp import (
    PERSISTENT,
    Connection,
    EntityNotFound,
    Message,
    Properties,
    declare,
    peek,
)
from orbit_protocol import Directory, naming
from orbit_protocol.headers import VERSION_HEADER
from orbit_protocol.topology import Topology
from orbit_protocol.topology import directory as directory_topology
from orbit_protocol.version import PROTOCOL_VERSION

from .management import ManagementClient

DIRECTORY_TYPE = "orbit.directory"
T = TypeVar("T")


class Store(Protocol):
    """The four broker operations a directory needs."""

    async def peek(self, queue: str) -> str | None:
        """The queue's only message, left in place; ``None``: no queue, or empty."""
        ...

    async def declare(self, topology: Topology) -> None: ...

    async def delete(self, queue: str) -> None:
        """Delete a queue; a missing one is no error."""
        ...

    async def put(self, queue: str, body: bytes) -> None:
        """Publish ``body`` (persistent JSON) to ``queue`` through the default exchange."""
        ...


class ManagementStore:
    """Through the management HTTP API (what the provisioner has)."""

    def __init__(self, management: ManagementClient, vhost: str) -> None:
        self.m, self.vhost = management, vhost

    async def peek(self, queue: str) -> str | None:
        return self.m.peek(self.vhost, queue)

    async def declare(self, topology: Topology) -> None:
        for q in topology.queues:
            self.m.declare_queue(self.vhost, q.name, q.args)
        for b in topology.bindings:
            self.m.bind_queue(self.vhost, b.exchange, b.queue, b.routing_key)

    async def delete(self, queue: str) -> None:
        self.m.delete_queue(self.vhost, queue)

    async def put(self, queue: str, body: bytes) -> None:
        properties = {
            "content_type": "application/json",
            "delivery_mode": PERSISTENT,
            "type": DIRECTORY_TYPE,
            "headers": {VERSION_HEADER: PROTOCOL_VERSION},
        }
        self.m.publish(self.vhost, queue, body.decode(), properties)


class AmqpStore:
    """Over an AMQP connection with configure, write and read rights on the queues."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def peek(self, queue: str) -> str | None:
        channel = await self.connection.channel()
        try:
            delivery = await peek(channel, queue)
        except EntityNotFound:
            return None
        finally:
            await channel.close()
        return None if delivery is None else delivery.body.decode(errors="replace")

    async def declare(self, topology: Topology) -> None:
        channel = await self.connection.channel()
        try:
            await declare(channel, topology)
        finally:
            await channel.close()

    async def delete(self, queue: str) -> None:
        channel = await self.connection.channel()
        try:
            with contextlib.suppress(EntityNotFound):
                await channel.delete_queue(queue)
        finally:
            await channel.close()

    async def put(self, queue: str, body: bytes) -> None:
        props = Properties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            type=DIRECTORY_TYPE,
            headers={VERSION_HEADER: PROTOCOL_VERSION},
        )
        channel = await self.connection.channel(confirms=True)
        try:
            await channel.publish("", queue, Message(body, props), mandatory=True)
        finally:
            await channel.close()


def parse(payload: str | None) -> Directory | None:
    """A stored directory, or ``None`` (none stored, or not a directory)."""
    if payload is None:
        return None
    try:
        return Directory.model_validate_json(payload)
    except ValidationError:
        return None


async def write(store: Store, user: str, endpoints: Iterable[str], pools: Iterable[str]) -> bool:
    """Make the broker hold ``user``'s directory with these grants; ``True`` if it changed.

    Declares the directory and a last-seen queue per endpoint (bound to its presence
    key), deletes the last-seen queues of endpoints no longer granted, then publishes the
    new directory, which replaces the old one in a single step.
    """
    old = parse(await store.peek(naming.directory_queue(user)))
    new = Directory(user=user, endpoints=tuple(sorted(endpoints)), pools=tuple(sorted(pools)))
    await store.declare(directory_topology(user, new.endpoints))
    for endpoint in sorted(set(old.endpoints if old else ()) - set(new.endpoints)):
        await store.delete(naming.last_seen_queue(user, endpoint))
    if old is not None and (old.endpoints, old.pools) == (new.endpoints, new.pools):
        return False
    await store.put(naming.directory_queue(user), new.to_bytes())
    return True


async def remove(store: Store, user: str) -> None:
    """Delete ``user``'s directory and last-seen queues (the user is gone)."""
    old = parse(await store.peek(naming.directory_queue(user)))
    for endpoint in old.endpoints if old else ():
        await store.delete(naming.last_seen_queue(user, endpoint))
    await store.delete(naming.directory_queue(user))


def blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` from synchronous code, also under a running event loop (then in a
    thread of its own, since the caller is blocking that loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


__all__ = [
    "DIRECTORY_TYPE",
    "AmqpStore",
    "ManagementStore",
    "Store",
    "blocking",
    "parse",
    "remove",
    "write",
]
