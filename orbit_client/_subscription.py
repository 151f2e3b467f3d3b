"""Event subscriptions: a bounded ``orbit.sub.<user>.<random>`` queue per subscription.

The queue is auto-deleted with its channel; after a reconnect the client calls
:meth:`Subscription.attach` again, which declares it anew with the same bindings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from orbit_amqp import AccessRefused, Channel, Connection, Delivery
from orbit_protocol import Event, naming
from orbit_protocol.topology import client_queue_arguments

log = logging.getLogger(__name__)


class Subscription:
    """Async iterator of :class:`~orbit_protocol.Event`; ``close()`` (or ``async with``) ends it."""

    def __init__(
        self,
        user: str,
        patterns: list[str],
        *,
        maxsize: int = 10_000,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._on_close = on_close
        self.queue_name = naming.subscription_queue(user)
        self.patterns = list(patterns)
        self._events: asyncio.Queue[tuple[Event, str | None] | None] = asyncio.Queue(maxsize)
        self._channel: Channel | None = None
        self._tag: str | None = None
        self._closed = False
        self.dropped = 0

    async def attach(self, connection: Connection) -> Subscription:
        """Declare the queue, bind every pattern and consume, on a channel of its own."""
        channel = await connection.channel()
        self._channel = channel
        try:
            await channel.declare_queue(
                self.queue_name,
                durable=False,
                auto_delete=True,
                arguments=client_queue_arguments(subscription=True),
            )
            for pattern in self.patterns:
                await channel.bind(self.queue_name, naming.EVENT_EXCHANGE, pattern)
            self._tag = await channel.consume(self.queue_name, self._on_message, no_ack=True)
        except BaseException:
            await channel.close()
            raise
        return self

    async def _on_message(self, message: Delivery) -> None:
        try:
            event = Event.model_validate_json(message.body)
        except ValidationError:
            log.warning("ignoring malformed event on %s", message.routing_key)
            return
        if event.endpoint != message.routing_key.split(".")[0]:
            log.warning("ignoring event whose body and routing key disagree")
            return
        try:
            self._events.put_nowait((event, message.user_id))
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self, timeout: float | None = None) -> Event:
        """The next event; raises ``TimeoutError`` after ``timeout`` seconds."""
        return (await self.get_with_sender(timeout))[0]

    async def get_with_sender(self, timeout: float | None = None) -> tuple[Event, str | None]:
        """The next event and the broker-validated ``user_id`` that published it."""
        async with asyncio.timeout(timeout):
            item = await self._events.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def feed(self, callback: Callable[[Event], Any]) -> None:
        """Call ``callback(event)`` (plain or async) for each event until closed; a failing
        callback is logged and the next event still comes."""
        async for event in self:
            try:
                result = callback(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("event callback failed")

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):  # the channel may be gone; the queue auto-deletes
                if self._tag is not None:  # first, or the broker cancels it (a warning)
                    await channel.cancel(self._tag)
                await channel.delete_queue(self.queue_name)
            await channel.close()
        if not self._events.full():
            self._events.put_nowait(None)
        if self._on_close is not None:  # e.g. the client forgets it
            on_close, self._on_close = self._on_close, None
            await on_close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def reattach(subscriptions: list[Subscription], connection: Connection) -> None:
    """After a reconnect: attach every open subscription again on the new connection; one
    the broker now refuses (rights changed meanwhile) ends, the others go on."""
    for sub in list(subscriptions):
        if sub.closed:
            continue
        try:
            await sub.attach(connection)
        except AccessRefused as exc:
            log.warning("subscription %s ended: %s", sub.patterns, exc)
            await sub.close()


__all__ = ["Subscription", "reattach"]
