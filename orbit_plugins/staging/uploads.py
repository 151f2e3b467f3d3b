"""Upload sessions: a temp file next to the target plus a record in the state dir.

The record is ``<id>.json`` (the session, written when it opens) and ``<id>.ranges``, to
which every confirmed chunk appends one ``start end`` line before it is acknowledged (one
``write`` on an open ``O_APPEND`` descriptor, no rewrite or rename per chunk). A client, or
a restarted endpoint, resumes from the last confirmed chunk.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .digest import PrefixHash
from .ranges import add_range, covered
from .schema import Range, Upload

Opener = Callable[[Path, int, int], int]
"""``opener(path, flags, mode) -> fd`` (the staging plugin passes its symlink-safe open)."""


def _plain_open(path: Path, flags: int, mode: int) -> int:
    return os.open(path, flags, mode)


def _read_ranges(path: Path, size: int) -> tuple[list[Range], float]:
    """The ``start end time`` lines of a ranges file and the latest time (torn lines skipped)."""
    try:
        text = path.read_text()
    except OSError:
        return [], 0.0
    found: list[Range] = []
    last = 0.0
    for line in text.splitlines():
        try:
            start, end, when = line.split()
            lo, hi, ts = int(start), int(end), float(when)
        except ValueError:
            continue
        if 0 <= lo < hi <= size:
            found.append((lo, hi))
            last = max(last, ts)
    return found, last


@dataclass
class Session:
    """One upload in progress."""

    info: Upload
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    last_event: float = 0.0
    ranges_fd: int | None = field(default=None, repr=False)
    prefix: PrefixHash = field(default_factory=PrefixHash, repr=False)
    """SHA-256 of the confirmed prefix, kept in memory only (a restart hashes it all)."""

    def confirmed_prefix(self) -> int:
        """End of the contiguous confirmed range from offset 0 (call with ``lock`` held)."""
        received = self.info.received
        return received[0][1] if received and received[0][0] == 0 else 0

    @property
    def temp_path(self) -> Path:
        target = Path(self.info.path)
        return target.with_name(f".{target.name}.orbit-{self.info.upload_id}.part")


class UploadStore:
    """Thread-safe registry of upload sessions, persisted under ``directory``."""

    def __init__(self, directory: Path, ttl: float, opener: Opener = _plain_open) -> None:
        self.directory = directory
        self.ttl = ttl
        self.opener = opener
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        for record in directory.glob("*.json"):
            try:
                info = Upload.model_validate_json(record.read_text())
            except (OSError, ValueError):
                record.unlink(missing_ok=True)
                continue
            ranges, last = _read_ranges(record.with_suffix(".ranges"), info.size)
            for start, end in ranges:
                info.received = add_range(info.received, start, end)
            info.updated = max(info.updated, last)
            info.received_bytes = covered(info.received)
            self._sessions[info.upload_id] = Session(info)
        self.expire()

    def create(
        self,
        user: str,
        path: Path,
        size: int,
        sha256: str | None,
        source: str | None,
        overwrite: bool,
        max_chunk: int,
    ) -> Session:
        now = time.time()
        info = Upload(
            upload_id=uuid.uuid4().hex,
            user=user,
            path=str(path),
            size=size,
            sha256=sha256,
            source=source,
            overwrite=overwrite,
            received=[],
            received_bytes=0,
            max_chunk=max_chunk,
            created=now,
            updated=now,
        )
        session = Session(info)
        fd = self.opener(session.temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        self.save(session)
        with self._lock:
            self._sessions[info.upload_id] = session
        return session

    def get(self, upload_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(upload_id)

    def find(
        self, user: str, path: Path, size: int, sha256: str | None, source: str | None
    ) -> Session | None:
        """An open session of ``user`` for the same target and content, if its temp file exists.

        Same content: the same ``sha256``, or (when the client hashes later) the same
        ``source``; the checksum at commit catches a source changed in place.
        """
        with self._lock:
            candidates = list(self._sessions.values())
        for s in candidates:
            i = s.info
            if (i.user, i.path, i.size) != (user, str(path), size):
                continue
            if (sha256 is not None and i.sha256 == sha256) or (
                source is not None and i.source == source
            ):
                if s.temp_path.exists():
                    return s
                self.discard(s)
        return None

    def sessions(self, user: str | None = None) -> list[Session]:
        with self._lock:
            found = list(self._sessions.values())
        return [s for s in found if user is None or s.info.user == user]

    def record(self, session: Session, start: int, end: int) -> None:
        """Confirm ``[start, end)`` (call with ``session.lock`` held)."""
        info = session.info
        if session.ranges_fd is None:
            path = self.directory / f"{info.upload_id}.ranges"
            session.ranges_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(session.ranges_fd, f"{start} {end} {time.time():.3f}\n".encode())
        session.prefix.written(start)
        info.received = add_range(info.received, start, end)
        info.received_bytes = covered(info.received)
        info.updated = time.time()

    def save(self, session: Session) -> None:
        record = self.directory / f"{session.info.upload_id}.json"
        temp = record.with_suffix(".tmp")
        temp.write_text(session.info.model_dump_json())
        os.replace(temp, record)

    def forget(self, session: Session) -> None:
        """Drop the record (the temp file is the caller's business)."""
        with self._lock:
            self._sessions.pop(session.info.upload_id, None)
        with session.lock:
            if session.ranges_fd is not None:
                os.close(session.ranges_fd)
                session.ranges_fd = None
        for suffix in (".json", ".ranges"):
            (self.directory / f"{session.info.upload_id}{suffix}").unlink(missing_ok=True)

    def discard(self, session: Session) -> None:
        """Drop the record and the temp file."""
        self.forget(session)
        with contextlib.suppress(OSError):
            session.temp_path.unlink()

    def expire(self) -> int:
        """Discard sessions idle longer than the TTL; returns how many."""
        cutoff = time.time() - self.ttl
        stale = [s for s in self.sessions() if s.info.updated < cutoff]
        for s in stale:
            self.discard(s)
        return len(stale)


__all__ = ["Session", "UploadStore"]
