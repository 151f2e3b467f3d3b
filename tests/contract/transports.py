"""A small harness over :mod:`orbit_amqp`, so each contract case reads like the AMQP it tests.

The same harness drives both transports: ``memory://`` (the in-process broker) and
``amqp://`` (a real RabbitMQ vhost), each reached through :func:`orbit_amqp.connect`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from orbit_amqp import (
    Channel,
    Connection,
    Delivery,
    Message,
    Properties,
    PublishNacked,
    connect,
    declare,
)
from orbit_protocol.topology import Topology


class Inbox:
    """One consumer on a channel of its own, with deliveries queued for the test."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()

    async def start(self, queue: str, prefetch: int, *, no_ack: bool = False) -> Inbox:
        await self.channel.set_prefetch(prefetch)
        await self.channel.consume(queue, self._take, no_ack=no_ack)
        return self

    async def _take(self, delivery: Delivery) -> None:
        await self._queue.put(delivery)

    async def next(self, timeout: float = 3.0) -> Delivery | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def cancel(self) -> None:
        """Close the channel: its unacknowledged deliveries go back to the queue."""
        await self.channel.close()


@dataclass
class Harness:
    name: str
    url: str
    connection: Connection
    users: Any = None
    """Adds users to the broker under test (see ``conftest.Users``)."""
    _channel: Channel | None = field(default=None, repr=False)
    _others: list[Connection] = field(default_factory=list, repr=False)

    @classmethod
    async def open(cls, name: str, url: str) -> Harness:
        return cls(name, url, await connect(url, name=f"orbit-contract {name}"))

    async def channel(self) -> Channel:
        """The harness' confirming channel (a new one after a channel error closed it)."""
        if self._channel is None or self._channel.is_closed:
            self._channel = await self.connection.channel(confirms=True)
        return self._channel

    async def declare(self, topology: Topology) -> None:
        await declare(await self.connection.channel(), topology)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        mandatory: bool = False,
        **props: object,
    ) -> bool:
        """``False`` for a publisher nack; ``Unroutable`` etc. are raised."""
        message = Message(body, Properties(**props))  # type: ignore[arg-type]
        try:
            await (await self.channel()).publish(
                exchange, routing_key, message, mandatory=mandatory
            )
        except PublishNacked:
            return False
        return True

    async def consume(self, queue: str, prefetch: int = 10, **kw: bool) -> Inbox:
        return await Inbox(await self.connection.channel()).start(queue, prefetch, **kw)

    async def connect_as(self, url: str) -> Connection:
        conn = await connect(url, name=f"orbit-contract {self.name} other")
        self._others.append(conn)
        return conn

    async def close(self) -> None:
        for conn in [*self._others, self.connection]:
            await conn.close()


__all__ = ["Harness", "Inbox"]
