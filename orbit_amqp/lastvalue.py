"""Last-value queues: a classic queue of ``x-max-length`` 1 with ``drop-head`` keeps only
the newest message published to it; :func:`peek` reads that message without taking it.

Orbit keeps each client's endpoint directory and each granted endpoint's last presence
this way (``docs/directory.md``), since RabbitMQ has no retained messages.
"""

from __future__ import annotations

import asyncio

from .base import Channel

PEEK_ATTEMPTS = 3
PEEK_PAUSE = 0.01
"""A concurrent reader holds the message for one round trip: an empty answer is retried."""


async def peek(channel: Channel, queue: str) -> bytes | None:
    """The body of ``queue``'s head message, put back at once; ``None`` if it is empty.

    ``EntityNotFound`` (no such queue) and ``AccessRefused`` pass through; both close the
    channel, as every channel error does.
    """
    for attempt in range(PEEK_ATTEMPTS):
        delivery = await channel.get(queue)
        if delivery is not None:
            await delivery.reject(requeue=True)
            return delivery.body
        if attempt + 1 < PEEK_ATTEMPTS:
            await asyncio.sleep(PEEK_PAUSE)
    return None


__all__ = ["PEEK_ATTEMPTS", "peek"]
