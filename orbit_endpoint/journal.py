"""The endpoint journal: accepted requests, their replies, and the idempotency ledger.

SQLite in WAL mode. A request is written here *before* its delivery is acked, so after
the ack the journal, not the queue, owns the work (docs/reliability.md). States move forward only:

    accepted ──► done ──► replied
        │
        └──────► (restart) resumed or answered as interrupted

``resumes`` counts the restarts that re-ran an accepted request: a request whose handler
kills the process every time is answered ``POISON_MESSAGE`` once the count reaches the
endpoint's resume limit, instead of crashing every restart (reliability.md F8).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import xxhash
from pydantic_core import to_json

from orbit_plugins.storage import WalDatabase
from orbit_protocol.messages import dumps

State = Literal["accepted", "done", "replied"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    user        TEXT NOT NULL,
    key         TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    plugin      TEXT NOT NULL,
    method      TEXT NOT NULL,
    args_hash   TEXT NOT NULL,
    args        TEXT NOT NULL,
    reply_to    TEXT NOT NULL,
    deadline    REAL,
    state       TEXT NOT NULL,
    reply       BLOB,
    accepted_at REAL NOT NULL,
    finished_at REAL,
    resumes     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user, key)
);
CREATE INDEX IF NOT EXISTS requests_by_id ON requests (request_id);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state);
"""


_LARGE = 64 * 1024
"""Canonical arguments at least this long are digested with XXH3-128 instead of SHA-256."""


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _canonical(plugin: str, method: str, args: dict[str, Any]) -> bytes:
    """Compact JSON of ``[plugin, method, args]`` with keys sorted at every level."""
    try:
        return orjson.dumps([plugin, method, args], option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson does not take (e.g. integers beyond 64 bits)
        return to_json([plugin, method, _sorted(args)])


def args_digest(plugin: str, method: str, args: dict[str, Any]) -> str:
    """Stable hash of what a request asks for (the idempotency comparison).

    Keys are sorted at every level, so the same arguments in another key order match.
    Small arguments: SHA-256 of the canonical JSON. Large ones (a staging chunk's 1.4 MB of
    base64, a batch of 2,000 tasks) use XXH3-128 (``xxh3:`` prefix): SHA-256 of 1.4 MB
    costs ~1.2 ms, XXH3 ~0.1 ms. The digest only compares one user's requests with each
    other, so it needs no cryptographic strength.
    """
    canonical = _canonical(plugin, method, args)
    if len(canonical) < _LARGE:
        return hashlib.sha256(canonical).hexdigest()
    return "xxh3:" + xxhash.xxh3_128_hexdigest(canonical)


@dataclass(frozen=True)
class Entry:
    """One journal row."""

    user: str
    key: str
    request_id: str
    plugin: str
    method: str
    args_hash: str
    args: dict[str, Any] | None
    """``None`` for operations that keep their arguments out of the journal."""
    reply_to: str
    deadline: float | None
    state: State
    reply: bytes | None
    accepted_at: float
    finished_at: float | None
    resumes: int = 0
    """How many restarts re-ran this request so far."""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Entry:
        data = dict(row)
        data["args"] = json.loads(data["args"])
        return cls(**data)

    def summary(self) -> dict[str, Any]:
        """The JSON view used by ``orbit.requests``."""
        return {
            "request_id": self.request_id,
            "idempotency_key": self.key,
            "user": self.user,
            "operation": f"{self.plugin}.{self.method}",
            "state": self.state,
            "accepted_at": self.accepted_at,
            "finished_at": self.finished_at,
        }


class Journal:
    """Synchronous SQLite journal; every call is a short local transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wal = WalDatabase(path)  # durable across process crashes; checkpoints off-loop
        self._db = self._wal.conn
        self._db.row_factory = sqlite3.Row
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        if "resumes" not in columns:  # a journal written before the column existed
            self._db.execute("ALTER TABLE requests ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self._wal.close()

    def get(self, user: str, key: str) -> Entry | None:
        row = self._db.execute(
            "SELECT * FROM requests WHERE user = ? AND key = ?", (user, key)
        ).fetchone()
        return Entry.from_row(row) if row else None

    def find(self, request_id: str) -> Entry | None:
        row = self._db.execute(
            "SELECT * FROM requests WHERE request_id = ? ORDER BY accepted_at DESC LIMIT 1",
            (request_id,),
        ).fetchone()
        return Entry.from_row(row) if row else None

    def accept(
        self,
        *,
        user: str,
        key: str,
        request_id: str,
        plugin: str,
        method: str,
        args: dict[str, Any] | None,
        args_hash: str,
        reply_to: str,
        deadline: float | None,
    ) -> bool:
        """Record a new request; ``False`` (and nothing written) when the key is known."""
        cur = self._db.execute(
            "INSERT INTO requests (user, key, request_id, plugin, method, args_hash, args,"
            " reply_to, deadline, state, accepted_at) VALUES (?,?,?,?,?,?,?,?,?,'accepted',?)"
            " ON CONFLICT (user, key) DO NOTHING",
            (
                user,
                key,
                request_id,
                plugin,
                method,
                args_hash,
                dumps(args).decode(),
                reply_to,
                deadline,
                time.time(),
            ),
        )
        return cur.rowcount == 1

    def forget(self, user: str, key: str, request_id: str) -> None:
        """Drop a request accepted by this delivery whose ack never reached the broker."""
        self._db.execute(
            "DELETE FROM requests WHERE user = ? AND key = ? AND request_id = ?"
            " AND state = 'accepted'",
            (user, key, request_id),
        )

    def count_resume(self, user: str, key: str) -> int:
        """Record one more re-run of an accepted request (durably); the new count."""
        row = self._db.execute(
            "UPDATE requests SET resumes = resumes + 1 WHERE user = ? AND key = ?"
            " AND state = 'accepted' RETURNING resumes",
            (user, key),
        ).fetchone()
        return int(row[0]) if row else 0

    def finish(self, user: str, key: str, reply: bytes | None) -> None:
        self._db.execute(
            "UPDATE requests SET state = 'done', reply = ?, finished_at = ?"
            " WHERE user = ? AND key = ?",
            (reply, time.time(), user, key),
        )

    def mark_replied(self, user: str, key: str) -> None:
        self._db.execute(
            "UPDATE requests SET state = 'replied' WHERE user = ? AND key = ? AND state = 'done'",
            (user, key),
        )

    def pending(self, state: State) -> list[Entry]:
        rows = self._db.execute(
            "SELECT * FROM requests WHERE state = ? ORDER BY accepted_at", (state,)
        ).fetchall()
        return [Entry.from_row(r) for r in rows]

    def recent(self, user: str | None = None, limit: int = 100) -> list[Entry]:
        if user is None:
            sql, params = "SELECT * FROM requests ORDER BY accepted_at DESC LIMIT ?", (limit,)
        else:
            sql = "SELECT * FROM requests WHERE user = ? ORDER BY accepted_at DESC LIMIT ?"
            params = (user, limit)  # type: ignore[assignment]
        return [Entry.from_row(r) for r in self._db.execute(sql, params).fetchall()]

    def prune(self, older_than: float) -> int:
        """Forget answered requests finished before ``older_than`` (epoch seconds)."""
        cur = self._db.execute(
            "DELETE FROM requests WHERE state = 'replied' AND finished_at < ?", (older_than,)
        )
        return cur.rowcount


__all__ = ["Entry", "Journal", "State", "args_digest"]
