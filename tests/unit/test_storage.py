"""orbit_plugins.storage: SQLite WAL with checkpoints on a background thread."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from orbit_plugins.storage import WalDatabase
from tests.testkit.eventually import eventually_sync


def test_checkpoints_run_in_the_background_and_close_folds_the_log(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    db = WalDatabase(path, checkpoint_every=0.05)
    db.conn.execute("CREATE TABLE t (x BLOB)")
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # none inline
    for _ in range(50):
        db.conn.execute("INSERT INTO t VALUES (?)", (os.urandom(64 * 1024),))
    before = path.stat().st_size
    eventually_sync(  # the pages reach the database file by themselves
        lambda: path.stat().st_size > before, timeout=5, interval=0.05, what="a checkpoint"
    )
    db.close()
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(path) as again:
        assert again.execute("SELECT count(*) FROM t").fetchone()[0] == 50


def test_a_memory_database_has_no_checkpoint_thread() -> None:
    before = set(threading.enumerate())
    db = WalDatabase(":memory:")
    assert [t.name for t in threading.enumerate() if t not in before] == []
    db.conn.execute("CREATE TABLE t (x)")
    db.conn.execute("INSERT INTO t VALUES (1)")
    assert db.conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):  # close() closed the connection
        db.conn.execute("SELECT 1")


def test_a_file_database_has_one_checkpoint_thread_until_closed(tmp_path: Path) -> None:
    """The positive control of the test above: the thread it looks for does exist."""
    db = WalDatabase(tmp_path / "state.sqlite")
    name = "wal-checkpoint:state.sqlite"
    assert [t.name for t in threading.enumerate()].count(name) == 1
    db.close()
    assert name not in [t.name for t in threading.enumerate()]
