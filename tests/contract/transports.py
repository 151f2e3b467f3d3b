"""Two transports behind one small interface: the in-memory model and a real RabbitMQ vhost.

The contract cases in ``test_broker_contract.py`` only speak this interface, so each case
runs unchanged against both (DESIGN §6).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from orbit_broker.topology import declare
from orbit_protocol.topology import Topology
from tests.testkit.memory_broker import MemoryBroker, Message, Unroutable, _Consumer

Settle = Literal["ack", "requeue", "reject"]


@dataclass
class Delivery:
    body: bytes
    routing_key: str
    headers: dict[str, Any]
    correlation_id: str | None
    reply_to: str | None
    redelivered: bool
    _settle: Callable[[Settle], Awaitable[None]]

    async def ack(self) -> None:
        await self._settle("ack")

    async def nack(self, *, requeue: bool) -> None:
        await self._settle("requeue" if requeue else "reject")


class Consumer(Protocol):
    async def next(self, timeout: float = 3.0) -> Delivery | None: ...
    async def cancel(self) -> None: ...


class Transport(Protocol):
    name: str

    async def declare(self, topology: Topology) -> None: ...
    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        expiration_ms: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        mandatory: bool = False,
    ) -> bool:
        """False: a publisher nack; raises ``Unroutable`` for a returned ``mandatory`` one."""
        ...

    async def consume(self, queue: str, prefetch: int = 10) -> Consumer: ...
    async def close(self) -> None: ...


# -- in memory -------------------------------------------------------------------------


class MemoryConsumer:
    def __init__(self, broker: MemoryBroker, queue: str, consumer: _Consumer) -> None:
        self._broker, self._queue, self._consumer = broker, queue, consumer

    async def next(self, timeout: float = 3.0) -> Delivery | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            self._broker.expire()  # RabbitMQ expires queue heads on its own timers
            try:
                tag, msg = await asyncio.wait_for(self._consumer.inbox.get(), 0.05)
                return self._delivery(tag, msg)
            except TimeoutError:
                if asyncio.get_running_loop().time() >= deadline:
                    return None

    def _delivery(self, tag: int, msg: Message) -> Delivery:
        async def settle(how: Settle) -> None:
            if how == "ack":
                self._broker.ack(self._queue, self._consumer, tag)
            else:
                self._broker.nack(self._queue, self._consumer, tag, requeue=how == "requeue")

        return Delivery(
            msg.body,
            msg.routing_key,
            dict(msg.headers),
            msg.properties.get("correlation_id"),
            msg.properties.get("reply_to"),
            msg.redelivered,
            settle,
        )

    async def cancel(self) -> None:
        self._broker.cancel(self._queue, self._consumer)


class MemoryTransport:
    name = "memory"

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()

    async def declare(self, topology: Topology) -> None:
        self.broker.declare(topology)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        expiration_ms: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        mandatory: bool = False,
    ) -> bool:
        props: dict[str, Any] = {"correlation_id": correlation_id, "reply_to": reply_to}
        if expiration_ms is not None:
            props["expiration"] = str(expiration_ms)
        return self.broker.publish(exchange, routing_key, body, props, mandatory=mandatory)

    async def consume(self, queue: str, prefetch: int = 10) -> Consumer:
        return MemoryConsumer(self.broker, queue, self.broker.consume(queue, prefetch))

    async def close(self) -> None:
        return None


# -- real RabbitMQ ---------------------------------------------------------------------


class RabbitConsumer:
    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def start(self, queue: str, prefetch: int) -> None:
        await self._channel.set_qos(prefetch_count=prefetch)
        q = await self._channel.get_queue(queue, ensure=False)
        await q.consume(self._inbox.put, no_ack=False)

    async def next(self, timeout: float = 3.0) -> Delivery | None:
        try:
            msg = await asyncio.wait_for(self._inbox.get(), timeout)
        except TimeoutError:
            return None

        async def settle(how: Settle) -> None:
            if how == "ack":
                await msg.ack()
            else:
                await msg.nack(requeue=how == "requeue")

        return Delivery(
            msg.body,
            msg.routing_key or "",
            dict(msg.headers or {}),
            msg.correlation_id,
            msg.reply_to,
            bool(msg.redelivered),
            settle,
        )

    async def cancel(self) -> None:
        await self._channel.close()  # like the memory model: unacked deliveries go back


class RabbitTransport:
    name = "rabbitmq"

    def __init__(self, connection: AbstractConnection, channel: AbstractChannel) -> None:
        self._connection, self._channel = connection, channel

    @classmethod
    async def connect(cls, url: str) -> RabbitTransport:
        connection = await aio_pika.connect(url)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(connection, channel)

    async def declare(self, topology: Topology) -> None:
        await declare(self._channel, topology)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        expiration_ms: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        mandatory: bool = False,
    ) -> bool:
        message = aio_pika.Message(
            body,
            correlation_id=correlation_id,
            reply_to=reply_to,
            expiration=None if expiration_ms is None else expiration_ms / 1000,
        )
        ex = await self._channel.get_exchange(exchange, ensure=False)
        try:
            await ex.publish(message, routing_key, mandatory=mandatory)
        except aiormq.exceptions.PublishError:  # basic.return (before DeliveryError: a subclass)
            raise Unroutable(
                f"NO_ROUTE - {exchange!r} has no binding for {routing_key!r}"
            ) from None
        except aio_pika.exceptions.DeliveryError:
            return False
        return True

    async def consume(self, queue: str, prefetch: int = 10) -> Consumer:
        consumer = RabbitConsumer(await self._connection.channel())
        await consumer.start(queue, prefetch)
        return consumer

    async def close(self) -> None:
        await self._connection.close()
