"""The client's reply queue: replies matched to pending calls by ``correlation_id``.

A reply is accepted only for a pending request and only from the addressed endpoint's
broker-validated ``user_id``, or from the dead-letter responder. The client learns that user
from the endpoint's presence events or, before it has heard one, from the last presence its
directory keeps (``docs/directory.md``); a reply from anyone else is dropped and counted
(:attr:`ReplyInbox.dropped`). Only a client with neither (no directory, no presence yet)
accepts the first replies of an endpoint from any user. Each delivery is acknowledged after
it is handled, so a reply in flight when the connection dies is delivered again after the
reconnect, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orbit_amqp import Delivery
from orbit_protocol import Reply, decode_reply, naming

from ._presence import PresenceTable

log = logging.getLogger(__name__)
MAX_UNCLAIMED = 10_000
REPLY_PREFETCH = 256
HELD_UNCLAIMED = REPLY_PREFETCH // 2
"""Unclaimed session replies kept unacknowledged (they return to the session queue if this
client closes before ``collect()``); beyond this many they are acked and kept in memory
only, so that replies to this client's own calls can still arrive within the prefetch."""


@dataclass
class _Pending:
    future: asyncio.Future[Reply]
    endpoint: str


class ReplyInbox:
    """Pending calls, and replies nobody waits for yet (a session's :meth:`collect`)."""

    def __init__(
        self,
        presence: PresenceTable,
        *,
        session: bool,
        lookup: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        """``lookup(endpoint)``: the endpoint's user when no presence told it yet."""
        self._presence = presence
        self._session = session
        self._lookup = lookup
        self._looked_up: dict[str, str | None] = {}
        self.dropped = 0
        """Replies dropped because another user than the addressed endpoint's sent them."""
        self._pending: dict[str, _Pending] = {}
        self._unclaimed: dict[str, Reply] = {}
        self._held: dict[str, Delivery] = {}
        """Deliveries of unclaimed session replies kept unacknowledged (HELD_UNCLAIMED)."""

    def expect(self, request_id: str, endpoint: str) -> asyncio.Future[Reply]:
        """A future for the reply to ``request_id`` (``endpoint`` "" accepts any sender)."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, endpoint)
        return future

    def forget(self, request_id: str) -> None:
        self._pending.pop(request_id, None)

    async def claim(self, request_id: str) -> Reply | None:
        """A reply that arrived before anyone asked for it, acknowledged now."""
        reply = self._unclaimed.pop(request_id, None)
        if reply is not None and (message := self._held.pop(request_id, None)) is not None:
            with contextlib.suppress(Exception):  # channel gone: it waits in the queue
                await message.ack()
        return reply

    def reconnected(self) -> None:
        """Held deliveries died with the old channel; the broker delivers them again."""
        self._held.clear()

    def cancel_all(self) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.cancel()

    async def take(self, message: Delivery) -> None:
        """Consumer callback of the reply queue."""
        held = False
        try:
            await self._learn(message)
            held = self._route(message)
        finally:
            if not held:
                with contextlib.suppress(Exception):  # channel gone: the broker redelivers it
                    await message.ack()

    async def _learn(self, message: Delivery) -> None:
        """Before the addressed endpoint's first presence: ask the directory, once."""
        pending = self._pending.get(message.correlation_id or "")
        if pending is None or not pending.endpoint or self._lookup is None:
            return
        if pending.endpoint in self._looked_up or self._expected(pending.endpoint):
            return
        self._looked_up[pending.endpoint] = await self._lookup(pending.endpoint)

    def _expected(self, endpoint: str) -> str | None:
        return self._presence.expected_user(endpoint) or self._looked_up.get(endpoint)

    def _route(self, message: Delivery) -> bool:
        """Handle one reply; ``True`` when it is held unacknowledged for ``collect``."""
        corr = message.correlation_id or ""
        pending = self._pending.get(corr)
        if pending is None:
            if not self._session or not corr:
                log.debug("dropping reply for unknown correlation id %s", corr)
                return False
            # a reply for collect(), maybe by a later client of the session: hold it unacked
            # so that it goes back to the session queue if this client closes first
            held = len(self._held) < HELD_UNCLAIMED
            self._unclaimed[corr] = decode_reply(message.body)
            if held:
                self._held[corr] = message
            while len(self._unclaimed) > MAX_UNCLAIMED:  # the oldest is forgotten (unacked
                oldest = next(iter(self._unclaimed))  # if held: back to the queue on close)
                del self._unclaimed[oldest]
                self._held.pop(oldest, None)
            return held
        expected = self._expected(pending.endpoint) if pending.endpoint else None
        if expected is not None and message.user_id not in (expected, naming.RESPONDER_USER):
            self.dropped += 1
            log.warning(
                "dropping reply to %s from user %r (endpoint %s is %r)",
                corr,
                message.user_id,
                pending.endpoint,
                expected,
            )
            return False
        if not pending.future.done():
            pending.future.set_result(decode_reply(message.body))
        return False


__all__ = ["HELD_UNCLAIMED", "MAX_UNCLAIMED", "REPLY_PREFETCH", "ReplyInbox"]
