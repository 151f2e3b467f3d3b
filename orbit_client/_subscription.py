"""Event subscriptions: a bounded ``orbit.sub.<user>.<random>`` queue per subscription."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from orbit_protocol import Event, naming
from orbit_protocol.topology import client_queue_arguments

log = logging.getLogger(__name__)


class Subscription:
    """Async iterator of :class:`~orbit_protocol.Event`; ``close()`` (or ``async with``) ends it."""

    def __init__(
        self,
        channel: AbstractChannel,
        user: str,
        patterns: list[str],
        *,
        maxsize: int = 10_000,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._channel = channel
        self._on_close = on_close
        self.queue_name = naming.subscription_queue(user)
        self.patterns = patterns
        self._events: asyncio.Queue[tuple[Event, str | None] | None] = asyncio.Queue(maxsize)
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self.dropped = 0

    async def start(self) -> Subscription:
        self._queue = await self._channel.declare_queue(
            self.queue_name,
            durable=False,
            auto_delete=True,
            arguments=client_queue_arguments(subscription=True),
        )
        for pattern in self.patterns:
            await self._queue.bind(naming.EVENT_EXCHANGE, pattern)
        self._tag = await self._queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = Event.model_validate_json(message.body)
        except ValidationError:
            log.warning("ignoring malformed event on %s", message.routing_key)
            return
        if event.endpoint != (message.routing_key or "").split(".")[0]:
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

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    async def close(self) -> None:
        if self._queue is not None and self._tag is not None and not self._channel.is_closed:
            try:
                await self._queue.cancel(self._tag)
                await self._queue.delete(if_unused=False, if_empty=False)
            except Exception:  # the channel may already be gone; the queue auto-deletes
                log.debug("subscription close failed", exc_info=True)
        self._tag = None
        self._events.put_nowait(None) if not self._events.full() else None
        if self._on_close is not None:  # e.g. the client closes the channel it opened for us
            on_close, self._on_close = self._on_close, None
            await on_close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__ = ["Subscription"]
