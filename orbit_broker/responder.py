"""The dead-letter responder: every request that dies in the broker gets an error reply.

Requests land in ``orbit.dead`` when they expire unpicked, exceed the delivery limit or
are rejected. Each is turned into an error reply to its ``reply_to`` so no caller waits
forever (DESIGN §1): ``expired`` → ``ENDPOINT_OFFLINE``, ``delivery_limit`` →
``POISON_MESSAGE``, ``rejected`` → ``BAD_REQUEST``. The reply is confirmed before the
dead letter is acked; run it as ``orbit broker serve`` under the ``orbit-responder`` user.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from orbit_protocol import (
    BadRequest,
    EndpointOffline,
    InternalError,
    OrbitError,
    PoisonMessage,
    Reply,
    naming,
)
from orbit_protocol.headers import CONTENT_TYPE, DEATH_HEADER, REPLY_TYPE, VERSION_HEADER
from orbit_protocol.version import PROTOCOL_VERSION

log = logging.getLogger(__name__)


def death_of(headers: dict[str, Any] | None) -> tuple[str, str]:
    """``(reason, source queue)`` of the first ``x-death`` entry."""
    deaths = (headers or {}).get(DEATH_HEADER) or []
    if not deaths:
        return "unknown", "unknown"
    first = deaths[0]
    reason, queue = first.get("reason", "unknown"), first.get("queue", "unknown")
    return (reason.decode() if isinstance(reason, bytes) else str(reason)), (
        queue.decode() if isinstance(queue, bytes) else str(queue)
    )


def error_for_death(reason: str, queue: str, operation: str | None) -> OrbitError:
    """The error a caller receives for a request that died for ``reason``."""
    what = operation or "the request"
    endpoint = queue.removeprefix("orbit.ep.").removeprefix("orbit.pool.")
    details = {"reason": reason, "queue": queue}
    if reason == "expired":
        return EndpointOffline(
            f"nobody picked up {what} in time: endpoint {endpoint!r} is offline or overloaded",
            details,
        )
    if reason == "delivery_limit":
        return PoisonMessage(
            f"{what} was delivered too often without being handled (it crashes {endpoint!r})",
            details,
        )
    if reason == "rejected":
        return BadRequest(f"endpoint {endpoint!r} rejected {what} as unprocessable", details)
    return InternalError(f"{what} was dead-lettered ({reason})", details)


class Responder:
    """Consumes ``orbit.dead`` and answers each dead request."""

    def __init__(self, url: str, *, prefetch: int = 50) -> None:
        self.url = url
        self.prefetch = prefetch
        self.user = unquote(urlsplit(url).username or "guest")
        self._publish: AbstractChannel | None = None
        self.answered = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": "orbit-responder"}
        )
        async with connection:
            publish = await connection.channel(publisher_confirms=True)
            self._publish = publish
            consume = await connection.channel()
            await consume.set_qos(prefetch_count=self.prefetch)
            queue = await consume.declare_queue(naming.DEAD_LETTER_QUEUE, passive=True)
            await queue.consume(self.handle)
            log.info("dead-letter responder consuming %s", naming.DEAD_LETTER_QUEUE)
            await stop.wait()

    async def handle(self, message: AbstractIncomingMessage) -> None:
        reason, queue = death_of(message.headers)
        if not message.reply_to or not message.correlation_id:
            log.warning("dead letter from %s (%s) has no reply_to; dropped", queue, reason)
            await message.ack()
            return
        error = error_for_death(reason, queue, message.type)
        reply = aio_pika.Message(
            Reply.failure(error).to_bytes(),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=message.correlation_id,
            message_id=uuid.uuid4().hex,
            user_id=self.user,
            type=REPLY_TYPE,
            headers={VERSION_HEADER: PROTOCOL_VERSION},
        )
        assert self._publish is not None
        channel = await self._publish.get_underlay_channel()  # robust: no Exchange to re-declare
        await channel.basic_publish(
            reply.body,
            exchange=naming.REPLY_EXCHANGE,
            routing_key=message.reply_to,
            properties=reply.properties,
        )
        await message.ack()
        self.answered += 1
        log.info("answered dead request %s: %s", message.correlation_id, error.code.value)


__all__ = ["Responder", "death_of", "error_for_death"]
