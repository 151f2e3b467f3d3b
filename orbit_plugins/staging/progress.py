"""The ``progress`` events of staging: one per upload or download at most every
``progress_interval`` seconds while it runs, and a last one with ``done``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from .uploads import Session

MAX_DOWNLOADS = 1024
"""Downloads whose progress is tracked at once (the least recently served are forgotten)."""


@dataclass
class Download:
    """Bytes served so far to one download (for its ``progress`` events)."""

    path: str
    want: int
    served: int = 0
    last_event: float = 0.0


class Downloads:
    """The downloads being served, by ``(user, download_id)``; thread-safe."""

    def __init__(self, interval: float, limit: int = MAX_DOWNLOADS) -> None:
        self.interval = interval
        self.limit = limit
        self.active: dict[tuple[str, str], Download] = {}
        self._lock = threading.Lock()

    def served(
        self, user: str, download_id: str, path: str, size: int, want: int | None, total: int
    ) -> dict[str, Any] | None:
        """Count ``size`` bytes of a file of ``total`` bytes served to a download that needs
        ``want`` of them (None: all); returns its ``progress`` event when one is due."""
        key = (user, download_id)
        with self._lock:
            seen = self.active.pop(key, None) or Download(
                path, total if want is None else min(want, total)
            )
            self.active[key] = seen  # most recent last
            while len(self.active) > self.limit:
                self.active.pop(next(iter(self.active)))
            seen.served += size
            now = time.monotonic()
            done = seen.served >= seen.want
            if done:
                del self.active[key]
            elif now - seen.last_event < self.interval:
                return None
            seen.last_event = now
        return {
            "download_id": download_id,
            "user": user,
            "path": seen.path,
            "direction": "get",
            "bytes": min(seen.served, seen.want),
            "total": seen.want,
            "done": done,
        }


def upload_event(session: Session, *, done: bool, interval: float) -> dict[str, Any] | None:
    """The ``progress`` event of an upload when one is due (call with ``session.lock`` held)."""
    now = time.monotonic()
    if not done and now - session.last_event < interval:
        return None
    session.last_event = now
    info = session.info
    return {
        "upload_id": info.upload_id,
        "user": info.user,
        "path": info.path,
        "direction": "put",
        "bytes": info.size if done else info.received_bytes,
        "total": info.size,
        "done": done,
    }


__all__ = ["MAX_DOWNLOADS", "Download", "Downloads", "upload_event"]
