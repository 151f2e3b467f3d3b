"""The plugin's own job ledger: one SQLite row per job, written before PSI/J submits it."""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import TERMINAL, JobInfo, JobSpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    executor TEXT NOT NULL,
    spec TEXT NOT NULL,
    native_id TEXT,
    started REAL,
    state TEXT NOT NULL,
    exit_code INTEGER,
    message TEXT,
    job_dir TEXT NOT NULL,
    stdout_path TEXT NOT NULL,
    stderr_path TEXT NOT NULL,
    stdout_sent INTEGER NOT NULL DEFAULT 0,
    stderr_sent INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    submitted_at REAL NOT NULL,
    finished_at REAL
)
"""


@dataclass
class JobRecord:
    """A row of ``jobs``; ``started`` is the launcher's process start time (local jobs)."""

    job_id: str
    user: str
    executor: str
    spec: JobSpec
    job_dir: str
    stdout_path: str
    stderr_path: str
    native_id: str | None = None
    started: float | None = None
    state: str = "NEW"
    exit_code: int | None = None
    message: str | None = None
    stdout_sent: int = 0
    stderr_sent: int = 0
    cancel_requested: bool = False
    submitted_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def info(self) -> JobInfo:
        return JobInfo(
            job_id=self.job_id,
            native_id=self.native_id,
            executor=self.executor,
            user=self.user,
            state=self.state,
            exit_code=self.exit_code,
            message=self.message,
            executable=self.spec.executable,
            arguments=self.spec.arguments,
            directory=self.spec.directory,
            queue_name=self.spec.attributes.queue_name,
            account=self.spec.attributes.account,
            node_count=self.spec.resources.node_count,
            duration=self.spec.attributes.duration,
            submitted_at=self.submitted_at,
            finished_at=self.finished_at,
        )


_COLUMNS = [
    "job_id",
    "user",
    "executor",
    "spec",
    "native_id",
    "started",
    "state",
    "exit_code",
    "message",
    "job_dir",
    "stdout_path",
    "stderr_path",
    "stdout_sent",
    "stderr_sent",
    "cancel_requested",
    "submitted_at",
    "finished_at",
]


class JobStore:
    """Thread-safe access to ``jobs.sqlite`` (WAL, one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _row(row: tuple[Any, ...]) -> JobRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["spec"] = JobSpec.model_validate(json.loads(values["spec"]))
        values["cancel_requested"] = bool(values["cancel_requested"])
        return JobRecord(**values)

    def insert(self, rec: JobRecord) -> None:
        values = [getattr(rec, c) for c in _COLUMNS]
        values[_COLUMNS.index("spec")] = rec.spec.model_dump_json()
        marks = ", ".join("?" * len(_COLUMNS))
        with self._lock:
            self._db.execute(f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({marks})", values)

    def update(self, job_id: str, **changes: Any) -> None:
        sets = ", ".join(f"{key} = ?" for key in changes)
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {sets} WHERE job_id = ?", [*changes.values(), job_id]
            )

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return self._row(row) if row else None

    def list(self, user: str | None = None, *, active_only: bool = False) -> list[JobRecord]:
        query = f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE 1=1"
        params: list[Any] = []
        if user is not None:
            query += " AND user = ?"
            params.append(user)
        if active_only:
            query += " AND state NOT IN ('COMPLETED', 'FAILED', 'CANCELED')"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY submitted_at", params).fetchall()
        return [self._row(r) for r in rows]

    def finished_before(self, cutoff: float) -> builtins.list[JobRecord]:
        """Jobs that ended before ``cutoff`` (epoch seconds)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE finished_at IS NOT NULL"
                " AND finished_at < ? AND state IN ('COMPLETED', 'FAILED', 'CANCELED')",
                (cutoff,),
            ).fetchall()
        return [self._row(r) for r in rows]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
