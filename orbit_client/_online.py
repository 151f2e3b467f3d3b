"""Is an endpoint online? Its presence events first, a passive declare of its queue else.

Presence is followed with one wildcard binding (``*.orbit.presence``) where the broker
allows it; a provisioned client, which may read only its granted endpoints' events,
binds each endpoint's presence key when it first calls that endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from orbit_amqp import AccessRefused, Channel, Connection, ConnectionLost, EntityNotFound, Link
from orbit_protocol import BrokerError, EndpointOffline, naming

from ._presence import PresenceTable
from ._requests import PUBLISH_RETRY_PAUSE, RETRY_WINDOW
from ._subscription import Subscription

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def scratch(conn: Connection) -> AsyncIterator[Channel]:
    """A short-lived channel (a refused or failed operation closes a channel)."""
    channel = await conn.channel()
    try:
        yield channel
    finally:
        await channel.close()


class OnlineCheck:
    """Feeds the :class:`PresenceTable` and answers :meth:`is_online`."""

    def __init__(
        self, table: PresenceTable, user: str, link: Link, connection: Callable[[], Connection]
    ) -> None:
        self.table = table
        self._user = user
        self._link = link
        self._connection = connection
        self._sub: Subscription | None = None
        self._followed: set[str] | None = None
        """Endpoints whose presence is bound one by one; None: the wildcard binding works."""
        self._queue_seen: dict[str, float] = {}

    async def watch(self) -> Subscription:
        """Subscribe to presence (wildcard if allowed); the caller pumps :meth:`feed`."""
        pattern = naming.event_pattern(None, naming.BUILTIN_PLUGIN, naming.PRESENCE_TOPIC)
        sub = Subscription(self._user, [pattern])
        try:
            await sub.attach(self._connection())
        except AccessRefused:
            log.debug("no wildcard presence binding for %s; following per endpoint", self._user)
            sub = Subscription(self._user, [])
            await sub.attach(self._connection())
            self._followed = set()
        self._sub = sub
        return sub

    async def feed(self, sub: Subscription) -> None:
        while True:
            try:
                event, sender = await sub.get_with_sender()
            except StopAsyncIteration:  # the client is closing
                return
            with contextlib.suppress(ValueError):
                self.table.update(event, sender)

    async def follow(self, endpoint: str) -> None:
        """Bind ``<endpoint>.orbit.presence`` for a client without the wildcard binding."""
        sub = self._sub
        if self._followed is None or endpoint in self._followed or sub is None:
            return
        self._followed.add(endpoint)
        key = naming.presence_routing_key(endpoint)
        try:
            async with scratch(self._connection()) as channel:
                await channel.bind(sub.queue_name, naming.EVENT_EXCHANGE, key)
            sub.patterns.append(key)  # bound again after a reconnect
        except AccessRefused:
            log.debug("%s may not follow the presence of %s", self._user, endpoint)

    async def is_online(self, endpoint: str) -> bool:
        """Presence seen recently, or a consumer on ``orbit.ep.<endpoint>`` right now."""
        if self.table.online(endpoint):
            return True
        await self.follow(endpoint)
        if time.monotonic() - self._queue_seen.get(endpoint, -1e9) < 2.0:
            return True
        return await self._consumers(endpoint) > 0

    async def _consumers(self, endpoint: str) -> int:
        """Consumers on the endpoint's queue (passive declare); waits out a reconnect."""
        until = time.monotonic() + RETRY_WINDOW
        while True:
            try:
                return await self._consumers_once(endpoint)
            except ConnectionLost as exc:
                if self._link.closing or time.monotonic() > until:
                    raise BrokerError(f"lost the broker connection: {exc}") from None
                await asyncio.sleep(PUBLISH_RETRY_PAUSE)
                await self._link.wait_ready(until - time.monotonic())

    async def _consumers_once(self, endpoint: str) -> int:
        queue = naming.request_queue(endpoint)
        try:
            async with scratch(self._connection()) as channel:
                state = await channel.declare_queue(queue, passive=True)
        except EntityNotFound:
            raise EndpointOffline(
                f"endpoint {endpoint!r} does not exist on this broker (no queue"
                f" {queue}; was it provisioned?)"
            ) from None
        if state.consumers:
            self._queue_seen[endpoint] = time.monotonic()
        return state.consumers


__all__ = ["OnlineCheck", "scratch"]
