"""Last-value queues: a classic queue of ``x-max-length`` 1 with ``drop-head`` keeps only
the newest message published to it; :func:`peek` reads that message without taking it.

Orbit keeps each client's endpoint directory and each granted endpoint's last presence
this way (``docs/directory.md``), since RabbitMQ has no retained messages.
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from orbit_protocol import Directory, naming

from .base import Channel, Connection, Delivery
from .errors import EntityNotFound

PEEK_ATTEMPTS = 3
PEEK_PAUSE = 0.01
"""A concurrent reader holds the message for one round trip: an empty answer is retried."""


async def peek(channel: Channel, queue: str) -> Delivery | None:
    """``queue``'s head message, put back at once (do not settle it); ``None`` if empty.

    ``EntityNotFound`` (no such queue) and ``AccessRefused`` pass through; both close the
    channel, as every channel error does.
    """
    for attempt in range(PEEK_ATTEMPTS):
        delivery = await channel.get(queue)
        if delivery is not None:
            await delivery.reject(requeue=True)
            return delivery
        if attempt + 1 < PEEK_ATTEMPTS:
            await asyncio.sleep(PEEK_PAUSE)
    return None


async def read_directory(connection: Connection, user: str) -> Directory | None:
    """``user``'s directory as stored; ``None`` when there is none (or it is not one)."""
    channel = await connection.channel()
    try:
        delivery = await peek(channel, naming.directory_queue(user))
    except EntityNotFound:
        return None
    finally:
        await channel.close()
    if delivery is None:
        return None
    try:
        return Directory.model_validate_json(delivery.body)
    except ValidationError:
        return None


__all__ = ["PEEK_ATTEMPTS", "peek", "read_directory"]
