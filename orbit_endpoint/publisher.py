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

from orbit_amqp import Channel, Connection, Link, Message, event_message, reply_message
from orbit_protocol import Event, naming

log = logging.getLogger(__name__)


class Publisher:
    """Owns the publishing link; :meth:`reply` and :meth:`event` survive reconnects."""

    def __init__(self, link_factory: Any, *, endpoint: str, user: str) -> None:
        self.endpoint = endpoint
        self.user = user
        self.link: Link = link_factory(name=f"orbit-endpoint {endpoint} publish", setup=self._setup)
        self._channel: Channel | None = None
        self._boot = uuid.uuid4().hex[:8]
        self._seq = itertools.count(1)
        self._reply_seq = itertools.count(1)

    async def _setup(self, conn: Connection) -> None:
        self._channel = await conn.channel(confirms=True)

    async def _publish(self, exchange: str, routing_key: str, message: Message) -> None:
        while True:
            await self.link.ready.wait()
            try:
                assert self._channel is not None
                await self._channel.publish(exchange, routing_key, message, timeout=15)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # usually a dead channel: force a reconnect, then retry
                log.warning("publish to %s failed (%s); retrying", routing_key, exc)
                await self.link.reconnect()
                await asyncio.sleep(0.2)

    async def reply(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        """Publish a reply body to ``orbit.replies`` with routing key ``reply_to``."""
        message = reply_message(
            body,
            correlation_id=correlation_id,
            message_id=f"{self._boot}-r{next(self._reply_seq)}",
            user=self.user,
        )
        await self._publish(naming.REPLY_EXCHANGE, reply_to, message)

    async def event(
        self, plugin: str, topic: str, data: dict[str, Any], *, persistent: bool = False
    ) -> None:
        """Publish ``<endpoint>.<plugin>.<topic>`` to ``orbit.events``."""
        body = Event(endpoint=self.endpoint, plugin=plugin, topic=topic, ts=time.time(), data=data)
        message = event_message(
            body,
            message_id=f"{self._boot}-{next(self._seq)}",
            user=self.user,
            persistent=persistent,
        )
        key = naming.event_routing_key(self.endpoint, plugin, topic)
        await self._publish(naming.EVENT_EXCHANGE, key, message)


__all__ = ["Publisher"]
