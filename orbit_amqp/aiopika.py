"""The production transport: a real RabbitMQ through aio-pika (``amqp://``, ``amqps://``).

A thin adapter: plain (not robust) aio-pika connections, because reconnecting is
:class:`~orbit_amqp.link.Link`'s job; aiormq's exceptions become :mod:`orbit_amqp.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiormq
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
    TimeoutType,
)

from orbit_protocol.errors import AuthenticationFailed, BrokerError
from orbit_protocol.urls import mask_url

from ._pamqp import from_pamqp, to_pamqp, translated
from .base import (
    Channel,
    Connection,
    Delivery,
    ExchangeKind,
    Message,
    OnClose,
    OnMessage,
    QueueState,
)
from .errors import ConnectionLost
from .tlscause import tls_cause

SETTLE_TIMEOUT = 30.0
"""Backstop for an ack or reject whose frame never leaves the write queue."""


async def _settle(
    operation: Callable[[], Awaitable[None]], lost: tuple[asyncio.Future[None], ...]
) -> None:
    """Send an ack or reject; raise ``ConnectionLost`` if the link dies first.

    aiormq queues the frame and waits for it to be written; when the connection dies with
    the frame still queued, that wait never ends. The caller must hear of it: an ack that
    was never sent means the broker delivers the message again. (The wait is cut by
    cancelling the current task, not by racing a second task: this runs once a message.)
    """
    if any(future.done() for future in lost):
        raise ConnectionLost("the channel is closed")
    task = asyncio.current_task()
    assert task is not None
    state = {"finished": False, "cut": False}

    def cut(_: object = None) -> None:
        if not state["finished"] and not state["cut"]:
            state["cut"] = True
            task.cancel()

    for future in lost:
        future.add_done_callback(cut)
    backstop = asyncio.get_running_loop().call_later(SETTLE_TIMEOUT, cut)
    try:
        with translated():
            await operation()
    except asyncio.CancelledError:
        if state["cut"] and task.uncancel() == 0:
            raise ConnectionLost(
                "the connection was lost before the ack or reject was sent"
            ) from None
        raise
    finally:
        state["finished"] = True
        backstop.cancel()
        for future in lost:
            future.remove_done_callback(cut)


def _closed_future(callbacks: Any) -> asyncio.Future[None]:
    """A future resolved when an aio-pika channel or connection closes."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def resolve(*_: object) -> None:
        if not future.done():
            future.set_result(None)

    callbacks.add(resolve)
    return future


class _Delivery(Delivery):
    __slots__ = (
        "_lost",
        "_message",
        "body",
        "exchange",
        "properties",
        "redelivered",
        "routing_key",
    )

    def __init__(
        self, message: AbstractIncomingMessage, lost: tuple[asyncio.Future[None], ...]
    ) -> None:
        self._message = message
        self._lost = lost
        self.body = message.body
        self.properties = from_pamqp(message.properties)
        self.exchange = message.exchange or ""
        self.routing_key = message.routing_key or ""
        self.redelivered = bool(message.redelivered)

    async def ack(self) -> None:
        await _settle(self._message.ack, self._lost)

    async def reject(self, *, requeue: bool = False) -> None:
        await _settle(lambda: self._message.reject(requeue=requeue), self._lost)


class _Channel(Channel):
    def __init__(self, channel: AbstractChannel, connection_lost: asyncio.Future[None]) -> None:
        self._channel = channel
        self._queues: dict[str, AbstractQueue] = {}
        self._lost = (_closed_future(channel.close_callbacks), connection_lost)
        """Set when this channel or its connection closes (deliveries' acks give up)."""

    @property
    def is_closed(self) -> bool:
        return self._channel.is_closed

    def on_close(self, callback: OnClose) -> None:
        self._channel.close_callbacks.add(lambda _ch, exc=None: callback(exc))

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        message: Message,
        *,
        mandatory: bool = False,
        timeout: float | None = None,
    ) -> None:
        with translated():
            channel = await self._channel.get_underlay_channel()
            await channel.basic_publish(
                message.body,
                exchange=exchange,
                routing_key=routing_key,
                properties=to_pamqp(message.properties),
                mandatory=mandatory,
                timeout=timeout,
            )

    async def declare_exchange(
        self, name: str, kind: ExchangeKind, *, durable: bool = True
    ) -> None:
        with translated():
            await self._channel.declare_exchange(name, aio_pika.ExchangeType(kind), durable=durable)

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
        with translated():
            queue = await self._channel.declare_queue(
                name,
                durable=durable,
                auto_delete=auto_delete,
                exclusive=exclusive,
                arguments=arguments,
                passive=passive,
            )
        result = queue.declaration_result
        return QueueState(name, result.message_count or 0, result.consumer_count or 0)

    async def delete_queue(self, name: str) -> int:
        with translated():
            channel = await self._channel.get_underlay_channel()
            result = await channel.queue_delete(name)
        return int(result.message_count or 0)

    async def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        with translated():
            channel = await self._channel.get_underlay_channel()
            await channel.queue_bind(queue, exchange, routing_key=routing_key)

    async def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        with translated():
            channel = await self._channel.get_underlay_channel()
            await channel.queue_unbind(queue, exchange, routing_key=routing_key)

    async def set_prefetch(self, count: int) -> None:
        with translated():
            await self._channel.set_qos(prefetch_count=count)

    async def consume(
        self, queue: str, callback: OnMessage, *, no_ack: bool = False, exclusive: bool = False
    ) -> str:
        async def on_message(message: AbstractIncomingMessage) -> None:
            await callback(_Delivery(message, self._lost))

        with translated():
            q = await self._channel.get_queue(queue, ensure=False)
            tag = str(await q.consume(on_message, no_ack=no_ack, exclusive=exclusive))
        self._queues[tag] = q
        return tag

    async def get(self, queue: str, *, no_ack: bool = False) -> Delivery | None:
        with translated():
            q = await self._channel.get_queue(queue, ensure=False)
            message = await q.get(no_ack=no_ack, fail=False)
        return None if message is None else _Delivery(message, self._lost)

    async def cancel(self, tag: str) -> None:
        queue = self._queues.pop(tag, None)
        if queue is not None:
            with translated():
                await queue.cancel(tag)

    async def close(self) -> None:
        if not self._channel.is_closed:
            with contextlib.suppress(Exception):  # a broken channel is gone anyway
                await self._channel.close()


class _Connection(Connection):
    def __init__(self, connection: AbstractConnection, user: str) -> None:
        self._connection = connection
        self.user = user
        self._lost = _closed_future(connection.close_callbacks)

    @property
    def is_closed(self) -> bool:
        return self._connection.is_closed

    @property
    def blocked(self) -> bool:
        transport = self._connection.transport
        amqp = transport.connection if transport is not None else None
        # aiormq keeps the state in a private event; without it there is no fast path
        unblocked = getattr(amqp, "_Connection__connection_unblocked", None)
        return isinstance(unblocked, asyncio.Event) and not unblocked.is_set()

    def on_close(self, callback: OnClose) -> None:
        self._connection.close_callbacks.add(lambda _c, exc=None: callback(exc))

    async def channel(self, *, confirms: bool = False) -> Channel:
        with translated():
            channel = self._connection.channel(
                publisher_confirms=confirms, on_return_raises=confirms
            )
            await channel
        return _Channel(channel, self._lost)

    async def close(self) -> None:
        if not self._connection.is_closed:
            with contextlib.suppress(Exception):  # closing a broken connection may fail
                await asyncio.wait_for(self._connection.close(), 5)


def _is_auth_failure(exc: BaseException) -> bool:
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError | AuthenticationFailed):
        return True
    text = str(exc)
    return "ACCESS_REFUSED" in text or ("403" in text and "access" in text.lower())


class _ClosedOnFailure(aio_pika.Connection):
    """A connection that marks itself closed when connecting fails: aio-pika's own stays
    "open", and its ``__del__`` then leaves an un-awaited ``close()`` coroutine behind."""

    async def connect(self, timeout: TimeoutType = None) -> None:
        try:
            await super().connect(timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.close()
            raise


class AioPikaTransport:
    """``amqp://`` and ``amqps://`` URLs (query parameters as aio-pika takes them)."""

    async def connect(
        self, url: str, *, name: str, heartbeat: int = 10, timeout: float = 10.0
    ) -> Connection:
        from urllib.parse import unquote, urlsplit

        user = unquote(urlsplit(url).username or "guest")
        try:
            connection = await aio_pika.connect(
                url,
                heartbeat=heartbeat,
                client_properties={"connection_name": name},
                timeout=timeout,
                connection_class=_ClosedOnFailure,
            )
        except Exception as exc:
            if _is_auth_failure(exc):
                raise AuthenticationFailed(
                    f"the broker at {mask_url(url)} refused the credentials of {user!r}"
                ) from None
            cause = tls_cause(exc, url) or f"{type(exc).__name__}: {exc}"
            raise BrokerError(f"cannot reach the broker at {mask_url(url)}: {cause}") from None
        return _Connection(connection, user)


__all__ = ["AioPikaTransport"]
