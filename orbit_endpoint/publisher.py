"""Replies and events, published with confirms on the endpoint's own publishing connection.

A publish waits for the link to be up and retries until the broker confirms it, so a
reply is never lost to a reconnect (it is also in the journal until confirmed).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, FieldValue

from orbit_protocol import Event, naming
from orbit_protocol.headers import CONTENT_TYPE, REPLY_TYPE, VERSION_HEADER
from orbit_protocol.version import PROTOCOL_VERSION

from .link import Link

log = logging.getLogger(__name__)
_HEADERS: dict[str, FieldValue] = {VERSION_HEADER: PROTOCOL_VERSION}


class Publisher:
    """Owns the publishing link; :meth:`reply` and :meth:`event` survive reconnects."""

    def __init__(self, link_factory: Any, *, endpoint: str, user: str) -> None:
        self.endpoint = endpoint
        self.user = user
        self.link: Link = link_factory(name=f"orbit-endpoint {endpoint} publish", setup=self._setup)
        self._replies: AbstractExchange | None = None
        self._events: AbstractExchange | None = None
        self._channel: AbstractChannel | None = None
        self._boot = uuid.uuid4().hex[:8]
        self._seq = itertools.count(1)
        self._reply_seq = itertools.count(1)

    async def _setup(self, conn: AbstractConnection) -> None:
        self._channel = await conn.channel(publisher_confirms=True)
        self._replies = await self._channel.get_exchange(naming.REPLY_EXCHANGE, ensure=False)
        self._events = await self._channel.get_exchange(naming.EVENT_EXCHANGE, ensure=False)

    async def _publish(self, which: str, routing_key: str, message: aio_pika.Message) -> None:
        while True:
            await self.link.ready.wait()
            exchange = self._replies if which == "replies" else self._events
            try:
                assert exchange is not None
                await exchange.publish(message, routing_key, mandatory=False, timeout=15)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("publish to %s failed (%s); retrying", routing_key, exc)
                await self._recover()

    async def _recover(self) -> None:
        """A failed publish usually means a dead channel: force a reconnect, then retry."""
        conn = self.link.connection
        self.link.ready.clear()
        if conn is not None and not conn.is_closed:
            await conn.close()
        await asyncio.sleep(0.2)

    async def reply(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        """Publish a reply body to ``orbit.replies`` with routing key ``reply_to``."""
        message = aio_pika.Message(
            body,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=correlation_id or None,
            message_id=f"{self._boot}-r{next(self._reply_seq)}",
            user_id=self.user,
            type=REPLY_TYPE,
            headers=_HEADERS,
        )
        await self._publish("replies", reply_to, message)

    async def event(
        self, plugin: str, topic: str, data: dict[str, Any], *, persistent: bool = False
    ) -> None:
        """Publish ``<endpoint>.<plugin>.<topic>`` to ``orbit.events``."""
        body = Event(endpoint=self.endpoint, plugin=plugin, topic=topic, ts=time.time(), data=data)
        message = aio_pika.Message(
            body.to_bytes(),
            content_type=CONTENT_TYPE,
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT
                if persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
            message_id=f"{self._boot}-{next(self._seq)}",
            user_id=self.user,
            type=f"{plugin}.{topic}",
            headers=_HEADERS,
            timestamp=int(body.ts),
        )
        await self._publish(
            "events", naming.event_routing_key(self.endpoint, plugin, topic), message
        )


__all__ = ["Publisher"]
