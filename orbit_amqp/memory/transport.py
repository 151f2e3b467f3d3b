"""Connections and channels to an in-process :class:`MemoryBroker` (``memory://`` URLs).

``memory://alice:secret@lab/orbit`` is user ``alice`` on vhost ``orbit`` of the broker
named ``lab`` in this process. The broker checks what RabbitMQ checks and in the same way
closes a channel on a channel error (403, 404, 405, 406): a forged ``user_id``, missing
permissions, a missing queue, an unknown delivery tag. Deliveries are dispatched as tasks
on the running event loop, like aio-pika's consumer callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from orbit_protocol.errors import BrokerError

from ..base import (
    Channel,
    Connection,
    Delivery,
    ExchangeKind,
    Message,
    OnClose,
    OnMessage,
    QueueState,
)
from ..errors import ChannelError, ConnectionLost, PreconditionFailed, PublishNacked
from .auth import Grants
from .vhost import Consumer, Queue, Stored, VHost

if TYPE_CHECKING:
    from .broker import MemoryBroker

log = logging.getLogger(__name__)


class _Closable:
    """Close-callback bookkeeping shared by connections and channels."""

    def __init__(self) -> None:
        self._closed = False
        self._callbacks: list[OnClose] = []
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    @property
    def is_closed(self) -> bool:
        return self._closed

    def on_close(self, callback: OnClose) -> None:
        self._callbacks.append(callback)

    def _fire(self, reason: BaseException | None) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._soon(self._call, callback, reason)

    @staticmethod
    def _call(callback: OnClose, reason: BaseException | None) -> None:
        try:
            callback(reason)
        except Exception:
            log.exception("close callback failed")

    def _soon(self, func: Any, *args: Any) -> None:
        """Run ``func(*args)`` on the owner's loop: now if we are on it, else thread-safely."""
        loop = self._loop
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if loop is None or loop is here:
            func(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(func, *args)


class MemoryDelivery(Delivery):
    __slots__ = ("_channel", "_tag", "body", "exchange", "properties", "redelivered", "routing_key")

    def __init__(self, channel: MemoryChannel, tag: int, msg: Stored, headers: dict[str, Any]):
        self._channel, self._tag = channel, tag
        self.body = msg.body
        self.properties = dataclasses.replace(msg.properties, headers=headers)
        self.exchange = msg.exchange
        self.routing_key = msg.routing_key
        self.redelivered = msg.redelivered

    async def ack(self) -> None:
        self._channel._settle(self._tag, "ack")

    async def reject(self, *, requeue: bool = False) -> None:
        self._channel._settle(self._tag, "requeue" if requeue else "reject")


class MemoryChannel(_Closable, Channel):
    def __init__(self, connection: MemoryConnection, confirms: bool) -> None:
        super().__init__()
        self._conn = connection
        self._vhost = connection.vhost
        self._grants = connection.grants
        self._confirms = confirms
        self._prefetch = 0
        self._consumers: dict[str, tuple[Queue, Consumer]] = {}
        self._unacked: dict[int, tuple[Consumer | None, Queue, Stored]] = {}
        """delivery tag → (consumer, or None for a ``get``, queue, message)."""
        self._tags = itertools.count(1)
        self._callbacks_by_tag: dict[str, OnMessage] = {}

    @contextlib.contextmanager
    def _op(self) -> Iterator[None]:
        """Run one operation; a channel error closes the channel, as in AMQP."""
        with self._conn.broker.lock:
            if self._closed:
                raise ConnectionLost("the channel is closed")
            try:
                yield
            except ChannelError as exc:
                self._shutdown(exc)
                raise

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        message: Message,
        *,
        mandatory: bool = False,
        timeout: float | None = None,
    ) -> None:
        if self._conn.broker.alarm:
            await self._conn.broker.unblocked(timeout)
        with self._op():
            user_id = message.properties.user_id
            if user_id is not None and user_id != self._conn.user:
                raise PreconditionFailed(
                    f"PRECONDITION_FAILED - user_id property set to '{user_id}' but"
                    f" authenticated user was '{self._conn.user}'"
                )
            kind = self._vhost.exchange_kind(exchange)
            self._grants.check("write", "exchange", exchange)
            if kind == "topic":
                self._grants.check_topic("write", exchange, routing_key)
            confirmed = self._vhost.publish(
                exchange, routing_key, message.body, message.properties, mandatory=mandatory
            )
        if self._confirms and not confirmed:
            raise PublishNacked(f"the broker refused the message to {exchange}/{routing_key}")

    async def declare_exchange(
        self, name: str, kind: ExchangeKind, *, durable: bool = True
    ) -> None:
        with self._op():
            self._grants.check("configure", "exchange", name)
            self._vhost.declare_exchange(name, kind)

    async def declare_queue(
        self,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        exclusive: bool = False,
        arguments: dict[str, Any] | None = None,
        passive: bool = False,
    ) -> QueueState:
        with self._op():
            if passive:
                return self._vhost.queue(name).state()
            self._grants.check("configure", "queue", name)
            queue = self._vhost.declare_queue(
                name,
                arguments or {},
                durable=durable,
                auto_delete=auto_delete,
                owner=self._conn if exclusive else None,
            )
            return queue.state()

    async def delete_queue(self, name: str) -> int:
        with self._op():
            self._grants.check("configure", "queue", name)
            self._vhost.queue(name)
            return self._vhost.delete_queue(name)

    def _check_bind(self, queue: str, exchange: str, key: str) -> None:
        self._grants.check("write", "queue", queue)
        self._grants.check("read", "exchange", exchange)
        if self._vhost.exchange_kind(exchange) == "topic":
            self._grants.check_topic("read", exchange, key)

    async def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        with self._op():
            self._check_bind(queue, exchange, routing_key)
            self._vhost.bind(queue, exchange, routing_key)

    async def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        with self._op():
            self._check_bind(queue, exchange, routing_key)
            self._vhost.unbind(queue, exchange, routing_key)

    async def set_prefetch(self, count: int) -> None:
        with self._op():
            self._prefetch = count

    async def consume(
        self, queue: str, callback: OnMessage, *, no_ack: bool = False, exclusive: bool = False
    ) -> str:
        with self._op():
            self._grants.check("read", "queue", queue)
            q = self._vhost.queue(queue)
            tag = f"amq.ctag-mem-{next(self._conn.broker.tags)}"
            consumer = Consumer(tag, self._prefetch, no_ack, self._deliver, self._conn, exclusive)
            self._consumers[tag] = (q, consumer)
            self._callbacks_by_tag[tag] = callback
            self._vhost.add_consumer(q, consumer)
            return tag

    def _deliver(self, consumer: Consumer, queue: Queue, msg: Stored) -> None:
        if not consumer.no_ack:
            consumer.unacked += 1
        delivery = self._delivery(consumer, queue, msg, no_ack=consumer.no_ack)
        callback = self._callbacks_by_tag[consumer.tag]
        self._soon(self._spawn, callback, delivery)

    def _delivery(
        self, consumer: Consumer | None, queue: Queue, msg: Stored, *, no_ack: bool
    ) -> MemoryDelivery:
        tag = next(self._tags)
        headers = dict(msg.properties.headers)
        if queue.quorum and msg.delivery_count:
            headers["x-delivery-count"] = msg.delivery_count
        if not no_ack:
            self._unacked[tag] = (consumer, queue, msg)
        return MemoryDelivery(self, tag, msg, headers)

    async def get(self, queue: str, *, no_ack: bool = False) -> Delivery | None:
        with self._op():
            self._grants.check("read", "queue", queue)
            q = self._vhost.queue(queue)
            msg = self._vhost.take(q)
            return None if msg is None else self._delivery(None, q, msg, no_ack=no_ack)

    def _spawn(self, callback: OnMessage, delivery: Delivery) -> None:
        asyncio.get_running_loop().create_task(self._run(callback, delivery))

    @staticmethod
    async def _run(callback: OnMessage, delivery: Delivery) -> None:
        try:
            await callback(delivery)
        except Exception:
            log.exception("consumer callback failed")

    def _settle(self, tag: int, how: str) -> None:
        with self._op():
            entry = self._unacked.pop(tag, None)
            if entry is None:
                raise PreconditionFailed(f"PRECONDITION_FAILED - unknown delivery tag {tag}")
            consumer, queue, msg = entry
            if consumer is not None:
                consumer.unacked -= 1
            self._vhost.settle(queue, msg, how)

    async def cancel(self, tag: str) -> None:
        with self._op():
            entry = self._consumers.pop(tag, None)
            if entry is not None:
                self._vhost.remove_consumer(*entry)

    async def close(self) -> None:
        with self._conn.broker.lock:
            self._shutdown(None)

    def _shutdown(self, reason: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        returned: dict[str, tuple[Queue, list[Stored]]] = {}
        for tag in sorted(self._unacked):
            consumer, queue, msg = self._unacked.pop(tag)
            if consumer is not None:
                consumer.unacked -= 1
            returned.setdefault(queue.name, (queue, []))[1].append(msg)
        touched = {q.name: q for q, _ in self._consumers.values()}
        for queue, consumer in self._consumers.values():  # atomically with the returns:
            self._vhost.remove_consumer(queue, consumer, pump=False)  # no delivery between
        self._consumers.clear()
        for queue, msgs in returned.values():
            self._vhost.give_back(queue, msgs, front=True)
        for name, queue in touched.items():
            if name not in returned:
                self._vhost.pump(queue)
        self._conn._channels.discard(self)
        self._fire(reason)


class MemoryConnection(_Closable, Connection):
    def __init__(self, broker: MemoryBroker, vhost: VHost, grants: Grants, user: str) -> None:
        super().__init__()
        self.broker = broker
        self.vhost = vhost
        self.grants = grants
        self.user = user
        self._channels: set[MemoryChannel] = set()

    @property
    def blocked(self) -> bool:
        return self.broker.alarm

    async def channel(self, *, confirms: bool = False) -> Channel:
        if self._closed:
            raise ConnectionLost("the connection is closed")
        channel = MemoryChannel(self, confirms)
        with self.broker.lock:
            self._channels.add(channel)
        return channel

    async def close(self) -> None:
        self.lose(None)

    def lose(self, reason: BaseException | None) -> None:
        """Close now; ``reason`` is what close callbacks see (``None``: a clean close)."""
        with self.broker.lock:
            self._lose(reason)

    def _lose(self, reason: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        for channel in list(self._channels):
            channel._shutdown(reason)
        self.vhost.drop_owner(self)
        self.broker.connections.discard(self)
        self._fire(reason)


class MemoryTransport:
    """``memory://user:password@broker/vhost``: a broker created in this process."""

    async def connect(
        self, url: str, *, name: str, heartbeat: int = 10, timeout: float = 10.0
    ) -> Connection:
        from .broker import REGISTRY

        parts = urlsplit(url)
        broker = REGISTRY.get(parts.hostname or "")
        if broker is None:
            raise BrokerError(
                f"no in-memory broker named {parts.hostname!r} in this process"
                " (create one with orbit_amqp.memory.MemoryBroker(name))"
            )
        vhost = unquote(parts.path.lstrip("/")) or "/"
        user = unquote(parts.username or "guest")
        return broker.login(user, unquote(parts.password or ""), vhost)


__all__ = ["MemoryChannel", "MemoryConnection", "MemoryTransport"]
