"""SQLite for endpoint state (the journal, plugin stores): WAL, checkpoints on their own thread.

With SQLite's automatic checkpoints, the commit that crosses the WAL threshold copies the
log into the database and fsyncs it, in whichever thread committed: on the endpoint's event
loop that stalled everything for ~6 ms once every few task batches. Here automatic
checkpoints are off and a background thread runs a ``PASSIVE`` checkpoint (which never
waits for, or blocks, writers) every ``checkpoint_every`` seconds on its own connection.
``synchronous=NORMAL``: a committed transaction survives a crash of the process.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class WalDatabase:
    """``db = WalDatabase(path)``; use ``db.conn`` (autocommit, any thread); ``db.close()``."""

    def __init__(self, path: Path | str, *, checkpoint_every: float = 0.5) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.path != ":memory:":  # a memory database has no WAL and no second connection
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self._thread = threading.Thread(
                target=self._checkpoints,
                args=(checkpoint_every,),
                name=f"wal-checkpoint:{Path(self.path).name}",
                daemon=True,
            )
            self._thread.start()

    def _checkpoints(self, every: float) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(every):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or I/O: the next round tries again
                    log.warning("checkpoint of %s failed: %s", self.path, exc)
        finally:
            db.close()

    def close(self) -> None:
        """Stop the checkpoints, fold the WAL into the database, close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()


__all__ = ["WalDatabase"]
