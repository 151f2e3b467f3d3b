"""Publishing requests: confirms, ``mandatory``, and what each broker answer means.

``basic.return`` → :class:`~orbit_protocol.EndpointOffline` (nothing is bound to the
endpoint's key), ``basic.nack`` → :class:`~orbit_protocol.EndpointBusy` (its queue is full),
a refused topic permission → :class:`~orbit_protocol.NotAuthorized`, no confirm in time →
:class:`~orbit_protocol.DeadlineExceeded`. A publish cut by a lost connection is sent
again, with the same request id and idempotency key, once the link is back: the endpoint's
journal runs a request that did arrive once, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from orbit_amqp import (
    AccessRefused,
    Channel,
    Connection,
    ConnectionLost,
    Link,
    Message,
    PublishNacked,
    Unroutable,
)
from orbit_protocol import (
    BrokerError,
    DeadlineExceeded,
    EndpointBusy,
    EndpointOffline,
    NotAuthorized,
    naming,
)

log = logging.getLogger(__name__)
PUBLISH_RETRY_PAUSE = 0.2
RETRY_WINDOW = 10.0  # s: how long a nacked publish or an online check is retried
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class RequestSender:
    """The client's confirming request channel, renewed when it breaks."""

    def __init__(self, link: Link, user: str, spawn: Spawn) -> None:
        self._link = link
        self._user = user
        self._spawn = spawn
        self._channel: Channel | None = None

    async def setup(self, conn: Connection) -> None:
        self._channel = await conn.channel(confirms=True)

    def refuse_if_blocked(self, endpoint: str) -> None:
        """Fail fast while the broker blocks this connection (``connection.blocked``: a
        memory or disk alarm): nothing is published, so nothing can run later by surprise.
        A request published just before the block waits for the alarm to clear."""
        conn = self._link.connection
        if conn is not None and conn.blocked:
            raise EndpointBusy(
                f"the broker is refusing new messages (memory or disk alarm), so the request"
                f" to {endpoint!r} was not sent; try again when the alarm clears",
                {"reason": "broker_blocked"},
            )

    async def _current(self) -> Channel:
        channel = self._channel
        if channel is None or channel.is_closed:
            conn = self._link.connection
            if conn is None or conn.is_closed:
                raise ConnectionLost("not connected")
            channel = self._channel = await conn.channel(confirms=True)
        return channel

    async def publish(
        self, endpoint: str, message: Message, timeout: float | None, *, several_nodes: bool
    ) -> None:
        corr = message.properties.correlation_id
        deadline = None if timeout is None else time.monotonic() + timeout
        nacks_until = time.monotonic() + min(RETRY_WINDOW, timeout or RETRY_WINDOW)
        while True:
            channel = self._channel
            try:
                return await self._publish_once(endpoint, message, timeout)
            except EndpointBusy:
                # With several nodes a nack may also come from a channel that registered with
                # the queue while its leader moved: RabbitMQ 3.10 then refuses every publish
                # on that channel. Retry on a fresh channel for a while before calling it full.
                if not several_nodes or time.monotonic() > nacks_until:
                    raise
                log.info("request %s refused (nack); publishing it again", corr)
                await self._renew(channel)
                await asyncio.sleep(PUBLISH_RETRY_PAUSE)
            except ConnectionLost as exc:
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._link.closing or (remaining is not None and remaining <= 0):
                    raise BrokerError(
                        f"lost the broker connection while publishing to {endpoint!r}: {exc}",
                        {"request_id": corr},
                    ) from None
                log.info("connection lost publishing %s (%s); publishing it again", corr, exc)
                await asyncio.sleep(PUBLISH_RETRY_PAUSE)
                await self._link.wait_ready(remaining)

    async def _publish_once(self, endpoint: str, message: Message, timeout: float | None) -> None:
        channel = await self._current()
        try:
            await channel.publish(
                naming.REQUEST_EXCHANGE, endpoint, message, mandatory=True, timeout=timeout
            )
        except Unroutable:
            raise EndpointOffline(
                f"endpoint {endpoint!r} is not provisioned: nothing is bound to key {endpoint!r}"
            ) from None
        except PublishNacked:
            raise EndpointBusy(
                f"endpoint {endpoint!r} has a full request queue; try later"
            ) from None
        except AccessRefused:
            raise NotAuthorized(
                f"the broker refused {self._user!r} publishing to endpoint {endpoint!r}"
                " (no grant: ask an admin for `orbit broker grant`)"
            ) from None
        except TimeoutError:  # no confirm in time: a blocked broker (alarm), or overload
            raise DeadlineExceeded(
                f"the broker did not confirm the request to {endpoint!r} within {timeout} s"
                " (blocked by a memory or disk alarm, or overloaded); it expires unanswered"
                " if it was queued",
                {"reason": "unconfirmed"},
            ) from None

    async def _renew(self, failed: Channel | None) -> None:
        """Replace the request channel ``failed`` (unless already replaced)."""
        conn = self._link.connection
        if failed is None or self._channel is not failed or conn is None:
            return
        self._channel = await conn.channel(confirms=True)

        async def close_later() -> None:  # publishes still waiting on it get their answer
            await asyncio.sleep(RETRY_WINDOW)
            with contextlib.suppress(Exception):
                await failed.close()

        self._spawn(close_later())


__all__ = ["PUBLISH_RETRY_PAUSE", "RETRY_WINDOW", "RequestSender"]
