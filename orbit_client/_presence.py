"""Who is online: endpoint presence as last seen on ``<endpoint>.orbit.presence``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orbit_protocol import Event, Presence

from ._directory import DirectoryEntry

TopologyCallback = Callable[[str, "EndpointInfo"], Any]


@dataclass
class EndpointInfo:
    """An endpoint as the client knows it."""

    name: str
    presence: Presence
    user: str | None
    """The broker-validated ``user_id`` of the endpoint's presence events."""
    seen_at: float = field(default_factory=time.monotonic)

    @property
    def online(self) -> bool:
        """Announced online, and heard from within two heartbeat intervals."""
        fresh = time.monotonic() - self.seen_at <= 2 * self.presence.heartbeat + 1
        return self.presence.state == "online" and fresh

    def as_entry(self) -> DirectoryEntry:
        """This presence as a directory entry (queue facts unknown: shown as 0)."""
        last = time.time() - (time.monotonic() - self.seen_at)
        return DirectoryEntry(self.name, "endpoint", True, 0, 0, self.presence, last, self.user)

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.name,
            "online": self.online,
            "age": round(time.monotonic() - self.seen_at, 1),
            **self.presence.model_dump(),
        }


class PresenceTable:
    """Presence by endpoint, fed by events; notifies topology callbacks on state changes."""

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointInfo] = {}
        self.callbacks: list[TopologyCallback] = []

    def update(self, event: Event, user: str | None) -> EndpointInfo:
        presence = Presence.model_validate(event.data)
        before = self.endpoints.get(event.endpoint)
        info = EndpointInfo(event.endpoint, presence, user)
        self.endpoints[event.endpoint] = info
        if before is None or before.presence.state != presence.state:
            for callback in list(self.callbacks):
                callback(event.endpoint, info)
        return info

    def online(self, endpoint: str) -> bool:
        info = self.endpoints.get(endpoint)
        return info is not None and info.online

    def expected_user(self, endpoint: str) -> str | None:
        info = self.endpoints.get(endpoint)
        return info.user if info else None


__all__ = ["EndpointInfo", "PresenceTable", "TopologyCallback"]
