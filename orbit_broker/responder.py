"""The dead-letter responder: every request that dies in the broker gets an error reply.

Requests land in ``orbit.dead`` when they expire unpicked, exceed the delivery limit or
are rejected. Each is turned into an error reply to its ``reply_to`` so no caller waits
forever (docs/protocol.md): ``expired`` → ``ENDPOINT_OFFLINE``, ``delivery_limit`` →
``POISON_MESSAGE``, ``rejected`` → ``BAD_REQUEST``. The reply is confirmed before the
dead letter is acked; run it as ``orbit broker serve`` under the ``orbit-responder`` user.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from orbit_amqp import Channel, Connection, Delivery, Link, reply_message
from orbit_protocol import (
    BadRequest,
    EndpointOffline,
    InternalError,
    OrbitError,
    PoisonMessage,
    Reply,
    naming,
)
from orbit_protocol.headers import DEATH_HEADER
from orbit_protocol.urls import split_urls

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
    """Consumes ``orbit.dead`` and answers each dead request; reconnects like an endpoint."""

    def __init__(self, url: str, *, prefetch: int = 50) -> None:
        self.url = url
        self.prefetch = prefetch
        self.user = unquote(urlsplit(split_urls(url)[0]).username or "guest")
        self._publish: Channel | None = None
        self.answered = 0
        self.link = Link(url, name="orbit-responder", setup=self._setup)

    async def _setup(self, conn: Connection) -> None:
        self._publish = await conn.channel(confirms=True)
        consume = await conn.channel()
        await consume.set_prefetch(self.prefetch)
        await consume.declare_queue(naming.DEAD_LETTER_QUEUE, passive=True)
        await consume.consume(naming.DEAD_LETTER_QUEUE, self.handle)
        log.info("dead-letter responder consuming %s", naming.DEAD_LETTER_QUEUE)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set; raises ``FatalLinkError`` on refused credentials."""
        stop = stop or asyncio.Event()
        runner = asyncio.create_task(self.link.run())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([runner, stopper], return_when=asyncio.FIRST_COMPLETED)
            if runner.done():
                runner.result()
        finally:
            stopper.cancel()
            await self.link.close()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def handle(self, message: Delivery) -> None:
        reason, queue = death_of(message.headers)
        if not message.reply_to or not message.correlation_id:
            log.warning("dead letter from %s (%s) has no reply_to; dropped", queue, reason)
            await message.ack()
            return
        error = error_for_death(reason, queue, message.type)
        reply = reply_message(
            Reply.failure(error).to_bytes(),
            correlation_id=message.correlation_id,
            message_id=uuid.uuid4().hex,
            user=self.user,
        )
        assert self._publish is not None
        await self._publish.publish(naming.REPLY_EXCHANGE, message.reply_to, reply)
        await message.ack()
        self.answered += 1
        log.info("answered dead request %s: %s", message.correlation_id, error.code.value)


__all__ = ["Responder", "death_of", "error_for_death"]
