"""orbit_plugins.storage: SQLite WAL with checkpoints on a background thread."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from orbit_plugins.storage import WalDatabase


def test_checkpoints_run_in_the_background_and_close_folds_the_log(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    db = WalDatabase(path, checkpoint_every=0.05)
    db.conn.execute("CREATE TABLE t (x BLOB)")
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # none inline
    for _ in range(50):
        db.conn.execute("INSERT INTO t VALUES (?)", (os.urandom(64 * 1024),))
    before = path.stat().st_size
    deadline = time.monotonic() + 5
    while path.stat().st_size <= before:  # the pages reach the database file by themselves
        assert time.monotonic() < deadline, "no checkpoint ran"
        time.sleep(0.05)
    db.close()
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(path) as again:
        assert again.execute("SELECT count(*) FROM t").fetchone()[0] == 50


def test_a_memory_database_has_no_checkpoint_thread() -> None:
    db = WalDatabase(":memory:")
    db.conn.execute("CREATE TABLE t (x)")
    db.close()
