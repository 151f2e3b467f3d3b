"""State shared by ``iri_connect`` and ``iri`` in one endpoint: facilities and connections.

Connections are per ``(user, site)``: each caller brings their own facility token and sees
only what the facility lets that token see. Nothing here is written to disk.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from orbit_plugins.base import PluginContext
from orbit_protocol import NotAuthorized, NotFound

from .api import FacilityApi
from .schema import Facility


@dataclass
class Watch:
    """A submitted job the poller follows until it reaches a final state."""

    resource_id: str
    job_id: str
    name: str | None
    last_state: str | None = None


@dataclass
class Connection:
    api: FacilityApi
    connected_at: float = field(default_factory=time.time)
    watched: dict[tuple[str, str], Watch] = field(default_factory=dict)
    last_error: str | None = None


class Hub:
    """Facilities of the endpoint and the live connections, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.facilities: dict[str, Facility] = {}
        self.config: Path | None = None
        self.connections: dict[tuple[str, str], Connection] = {}

    def facility(self, site: str) -> Facility:
        with self.lock:
            facility = self.facilities.get(site)
            known = ", ".join(sorted(self.facilities)) or "none (is iri_connect loaded?)"
        if facility is None:
            raise NotFound(f"no IRI facility {site!r} on this endpoint (configured: {known})")
        return facility

    def connection(self, user: str, site: str) -> Connection:
        """The caller's connection to ``site``; ``NOT_AUTHORIZED`` when there is none."""
        self.facility(site)
        with self.lock:
            conn = self.connections.get((user, site))
        if conn is None:
            raise NotAuthorized(
                f"not connected to {site!r}: call iri_connect.connect with your {site} token first"
            )
        return conn

    def replace(self, user: str, site: str, api: FacilityApi) -> bool:
        """Install a connection (keeping watched jobs); True when a previous one was replaced."""
        with self.lock:
            old = self.connections.get((user, site))
            conn = Connection(api, watched=old.watched if old else {})
            self.connections[(user, site)] = conn
        if old is not None:
            old.api.close()
        return old is not None

    def drop(self, user: str, site: str) -> Connection | None:
        with self.lock:
            conn = self.connections.pop((user, site), None)
        if conn is not None:
            conn.api.close()
        return conn

    def snapshot(self) -> list[tuple[str, str, Connection]]:
        with self.lock:
            return [(user, site, conn) for (user, site), conn in self.connections.items()]

    def forget_all(self) -> None:
        with self.lock:
            conns, self.connections = list(self.connections.values()), {}
        for conn in conns:
            conn.api.close()


_HUBS: dict[str, Hub] = {}
_HUBS_LOCK = threading.Lock()


def hub_for(ctx: PluginContext) -> Hub:
    """The hub of ``ctx``'s endpoint (plugins' state dirs share a parent per endpoint)."""
    key = str(Path(ctx.state_dir).resolve().parent)
    with _HUBS_LOCK:
        return _HUBS.setdefault(key, Hub())


__all__ = ["Connection", "Hub", "Watch", "hub_for"]
