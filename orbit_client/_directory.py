"""The endpoint directory: every endpoint and pool a user was granted, online or not.

The provisioner keeps the user's grants in ``orbit.sub.<user>.directory`` and each granted
endpoint's last presence event in ``orbit.sub.<user>.seen.<endpoint>``; a passive declare
of the request queue adds what is true right now (a consumer, a backlog). See
``docs/directory.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from orbit_amqp import (
    AccessRefused,
    Channel,
    Connection,
    ConnectionLost,
    EntityNotFound,
    QueueState,
    peek,
    read_directory,
)
from orbit_protocol import BrokerError, Event, NotFound, Presence, naming

EntryState = Literal["online", "offline", "stale", "unknown"]


@dataclass(frozen=True)
class DirectoryEntry:
    """One endpoint or pool granted to the user, as the broker knows it now."""

    name: str
    kind: Literal["endpoint", "pool"]
    provisioned: bool
    """Its request queue exists."""
    consumers: int
    """Active consumers of its queue: 0 or 1 for an endpoint, the members of a pool."""
    backlog: int
    """Requests waiting in its queue."""
    presence: Presence | None = None
    """The endpoint's last presence event (``None``: never heard from, or a pool)."""
    last_seen: float | None = None
    """When that event was sent (epoch seconds, the endpoint's clock)."""
    user: str | None = None
    """The broker-validated ``user_id`` of that event."""

    @property
    def state(self) -> EntryState:
        """``online`` (consuming now, or announced within two heartbeats), ``offline``
        (stopped cleanly), ``stale`` (went quiet) or ``unknown`` (never heard from)."""
        if self.consumers:
            return "online"
        if self.presence is None or self.last_seen is None:
            return "offline" if self.kind == "pool" else "unknown"
        if self.presence.state == "offline":
            return "offline"
        fresh = time.time() - self.last_seen <= 2 * self.presence.heartbeat + 1
        return "online" if fresh else "stale"

    @property
    def online(self) -> bool:
        return self.state == "online"

    def as_dict(self) -> dict[str, Any]:
        age = None if self.last_seen is None else round(max(0.0, time.time() - self.last_seen), 1)
        return {  # the presence first: its own "state" is what the endpoint last said
            **(self.presence.model_dump() if self.presence else {"plugins": {}}),
            "endpoint": self.name,
            "kind": self.kind,
            "state": self.state,
            "online": self.online,
            "provisioned": self.provisioned,
            "consumers": self.consumers,
            "backlog": self.backlog,
            "last_seen": self.last_seen,
            "age": age,
            "user": self.user,
        }


class DirectoryReader:
    """Reads one user's directory; each read costs a few round trips per entry."""

    def __init__(self, user: str, connection: Callable[[], Connection]) -> None:
        self.user = user
        self._connection = connection

    async def read(self) -> list[DirectoryEntry]:
        """The entries, endpoints first; ``NotFound`` if the broker keeps no directory."""
        try:
            conn = self._connection()
            doc = await read_directory(conn, self.user)
            if doc is None:
                raise NotFound(
                    f"the broker keeps no endpoint directory for {self.user!r} (users made"
                    " by `orbit broker provision` or `orbit broker up` have one)"
                )
            return list(
                await asyncio.gather(
                    *(self._entry(conn, "endpoint", name) for name in doc.endpoints),
                    *(self._entry(conn, "pool", name) for name in doc.pools),
                )
            )
        except ConnectionLost as exc:
            raise BrokerError(f"lost the broker connection: {exc}") from None

    async def endpoint_user(self, endpoint: str) -> str | None:
        """The broker-stamped ``user_id`` of ``endpoint``'s last presence kept for this user
        (``None``: no directory, not granted, never heard from, or no connection)."""
        try:
            channel = await self._connection().channel()
        except BrokerError:
            return None
        try:
            entry = await self._last_seen(channel, DirectoryEntry(endpoint, "endpoint", True, 0, 0))
        except BrokerError:
            return None
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return entry.user

    async def _entry(
        self, conn: Connection, kind: Literal["endpoint", "pool"], name: str
    ) -> DirectoryEntry:
        queue = naming.request_queue(name) if kind == "endpoint" else naming.pool_queue(name)
        channel = await conn.channel()
        try:
            state: QueueState | None = await channel.declare_queue(queue, passive=True)
        except EntityNotFound:
            state, channel = None, await conn.channel()
        try:
            entry = DirectoryEntry(
                name,
                kind,
                provisioned=state is not None,
                consumers=state.consumers if state else 0,
                backlog=state.messages if state else 0,
            )
            if kind == "pool":
                return entry
            return await self._last_seen(channel, entry)
        finally:
            await channel.close()

    async def _last_seen(self, channel: Channel, entry: DirectoryEntry) -> DirectoryEntry:
        try:
            delivery = await peek(channel, naming.last_seen_queue(self.user, entry.name))
        except (EntityNotFound, AccessRefused):
            return entry
        if delivery is None:
            return entry
        try:
            event = Event.model_validate_json(delivery.body)
            presence = Presence.model_validate(event.data)
        except ValidationError:
            return entry
        if event.endpoint != entry.name:
            return entry
        return dataclasses.replace(
            entry, presence=presence, last_seen=event.ts, user=delivery.user_id
        )


__all__ = ["DirectoryEntry", "DirectoryReader", "EntryState"]
