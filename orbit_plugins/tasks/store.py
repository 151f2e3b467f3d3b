"""Task state in SQLite (WAL), in the plugin's state directory: survives endpoint restarts.

One row per task: its spec (to run queued tasks after a restart), its owner, its state
and, once final, its result fields as JSON. Thread-safe (one connection, one lock).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter

from orbit_protocol.messages import dumps

from ..storage import WalDatabase
from .schema import TaskRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    uid       TEXT PRIMARY KEY,
    owner     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    state     TEXT NOT NULL,
    spec      TEXT NOT NULL,
    submitted REAL NOT NULL,
    started   REAL,
    finished  REAL,
    result    TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (owner, submitted);
DROP INDEX IF EXISTS tasks_by_state;
"""
# No index on state: every state change would update it (insert 11 -> 7, RUNNING 8 -> 4
# us per task here); only the start-up recovery and cancel_all_tasks filter on state.
_COLUMNS = "uid, owner, kind, state, spec, submitted, started, finished, result"
Row = tuple[str, str, str, str, str, float, float | None, float | None, str | None]


_RECORDS: TypeAdapter[list[TaskRecord]] = TypeAdapter(list[TaskRecord])
_FIELDS = frozenset(TaskRecord.model_fields)


def _fields(row: Row) -> dict[str, Any]:
    uid, owner, kind, state, spec, submitted, started, finished, result = row
    fields: dict[str, Any] = orjson.loads(result) if result else {}
    if not fields.keys() <= _FIELDS:  # keep the record's fields only, as before
        fields = {k: v for k, v in fields.items() if k in _FIELDS}
    fields.update(
        uid=uid,
        owner=owner,
        kind=kind,
        state=state,
        submitted=submitted,
        started=started,
        finished=finished,
        metadata=orjson.loads(spec).get("metadata", {}) if '"metadata"' in spec else {},
    )
    return fields


def to_records(rows: list[Row]) -> list[TaskRecord]:
    """Records of rows, validated in one call (pydantic-core: faster than ``model_construct``
    per row)."""
    return _RECORDS.validate_python([_fields(row) for row in rows])


_TEMPLATE: dict[str, Any] = {
    name: (None if info.is_required() else info.get_default(call_default_factory=True))
    for name, info in TaskRecord.model_fields.items()
}


def record_json(fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a :class:`TaskRecord` from fields this plugin recorded itself (all
    JSON values already): every field, in order, defaults filled, unknown keys dropped."""
    record = dict(_TEMPLATE)
    record.update((k, v) for k, v in fields.items() if k in _FIELDS)
    return record


class TaskStore:
    """CRUD of task rows."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wal = WalDatabase(path)
        self._db = self._wal.conn
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._wal.close()

    def insert(self, rows: list[tuple[str, str, str, str, float]]) -> None:
        """Insert new ``(uid, owner, kind, spec_json, submitted)`` rows as QUEUED."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO tasks (uid, owner, kind, state, spec, submitted)"
                " VALUES (?, ?, ?, 'QUEUED', ?, ?)",
                rows,
            )
            self._db.execute("COMMIT")

    def owners(self, uids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """``uid -> (owner, state)`` for the uids that exist."""
        found: dict[str, tuple[str, str]] = {}
        chunk = list(uids)
        with self._lock:
            for i in range(0, len(chunk), 500):
                part = chunk[i : i + 500]
                marks = ",".join("?" * len(part))
                for uid, owner, state in self._db.execute(
                    f"SELECT uid, owner, state FROM tasks WHERE uid IN ({marks})", part
                ):
                    found[uid] = (owner, state)
        return found

    def set_running(self, uids: list[str], started: float) -> None:
        """Mark tasks RUNNING, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            for i in range(0, len(uids), 500):  # one statement per 500, not one per task
                part = uids[i : i + 500]
                self._db.execute(
                    "UPDATE tasks SET state='RUNNING', started=?"
                    f" WHERE uid IN ({','.join('?' * len(part))})",
                    [started, *part],
                )
            self._db.execute("COMMIT")

    def finish(self, rows: list[tuple[str, str, dict[str, Any]]], finished: float) -> None:
        """Record ``(uid, state, result_fields)`` final states, in one transaction."""
        params = [(state, finished, dumps(result).decode(), uid) for uid, state, result in rows]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE tasks SET state=?, finished=?, result=? WHERE uid=?", params
            )
            self._db.execute("COMMIT")

    def get_many(self, uids: list[str]) -> dict[str, TaskRecord]:
        rows: list[Row] = []
        with self._lock:
            for i in range(0, len(uids), 500):
                part = uids[i : i + 500]
                marks = ",".join("?" * len(part))
                rows += self._db.execute(
                    f"SELECT {_COLUMNS} FROM tasks WHERE uid IN ({marks})", part
                ).fetchall()
        return {r.uid: r for r in to_records(rows)}

    def recent(self, owner: str | None, state: str | None, limit: int) -> list[TaskRecord]:
        where, params = [], []
        if owner is not None:
            where.append("owner=?")
            params.append(owner)
        if state is not None:
            where.append("state=?")
            params.append(state)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM tasks {clause} ORDER BY submitted DESC, uid LIMIT ?",
                [*params, limit],
            ).fetchall()
        return to_records(rows)

    def unfinished(self) -> list[tuple[str, str, str, str]]:
        """``(uid, owner, state, spec_json)`` of QUEUED and RUNNING tasks, oldest first."""
        with self._lock:
            return self._db.execute(
                "SELECT uid, owner, state, spec FROM tasks WHERE state IN ('QUEUED', 'RUNNING')"
                " ORDER BY submitted, rowid"
            ).fetchall()

    def prune(self, finished_before: float) -> int:
        """Forget final tasks that ended before ``finished_before``; how many."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM tasks WHERE finished < ? AND state IN ('DONE', 'FAILED', 'CANCELED')",
                (finished_before,),
            )
            return cursor.rowcount

    def active_uids(self, owner: str | None) -> list[str]:
        sql = "SELECT uid FROM tasks WHERE state IN ('QUEUED', 'RUNNING')"
        with self._lock:
            if owner is None:
                return [r[0] for r in self._db.execute(sql)]
            return [r[0] for r in self._db.execute(sql + " AND owner=?", (owner,))]
