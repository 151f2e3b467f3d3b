"""A pool of worker subprocesses for function tasks, one feeder thread per worker.

Each worker runs one task at a time, so a timeout or a cancel kills exactly that task's
process; a dead process (killed, crashed, out of memory) fails its task with the exit
status and is replaced before the next task.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from . import worker

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One function task for the pool."""

    uid: str
    message: tuple[Any, ...]
    timeout: float | None


Started = Callable[[str], bool]
"""Called before a job runs; returns False to skip it (it was cancelled)."""
Finished = Callable[[str, dict[str, Any]], None]


class _Worker:
    def __init__(self, ctx: multiprocessing.context.SpawnContext, index: int) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.proc: SpawnProcess = ctx.Process(
            target=worker.main,
            args=(child, os.getpid()),
            name=f"orbit-task-worker-{index}",
            daemon=True,
        )
        self.proc.start()
        child.close()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(2)
        self.kill()
        self.proc.join(2)
        self.conn.close()


class WorkerPool:
    """``submit(job)``; ``cancel(uid)``; ``close()``. Callbacks run on feeder threads."""

    def __init__(self, size: int, started: Started, finished: Finished) -> None:
        self.size = size
        self._started, self._finished = started, finished
        self._ctx = multiprocessing.get_context("spawn")
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[str, _Worker] = {}
        self._cancelled: set[str] = set()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._feed, args=(i,), name=f"orbit-tasks-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def cancel(self, uid: str) -> bool:
        """Kill the worker running ``uid``; False if it is not running."""
        with self._lock:
            running = self._running.get(uid)
            if running is None:
                return False
            self._cancelled.add(uid)
        running.kill()
        return True

    def close(self) -> None:
        """Stop the feeders; running tasks are killed and reported as interrupted."""
        self._closing = True
        for _ in self._threads:
            self._jobs.put(None)
        with self._lock:
            busy = list(self._running.values())
        for w in busy:
            w.kill()
        for thread in self._threads:
            thread.join(5)

    def _feed(self, index: int) -> None:
        current: _Worker | None = _Worker(self._ctx, index)  # warm: spawn costs ~0.2 s
        try:
            while True:
                job = self._jobs.get()
                if job is None or self._closing:  # queued jobs stay queued in the store
                    return
                if not self._started(job.uid):
                    continue
                if current is None or not current.proc.is_alive():
                    current = _Worker(self._ctx, index)
                result = self._run(current, job)
                if result.get("_dead"):
                    current.conn.close()
                    current = None
                self._finished(job.uid, result)
        except Exception:
            log.exception("task feeder %d failed", index)
        finally:
            if current is not None:
                current.close()

    def _run(self, w: _Worker, job: Job) -> dict[str, Any]:
        with self._lock:
            self._running[job.uid] = w
        try:
            w.conn.send(job.message)
            if w.conn.poll(job.timeout):
                return dict(w.conn.recv())
            w.kill()
            w.proc.join(5)
            return {
                "ok": False,
                "_dead": True,
                "error": f"timed out after {job.timeout:g} s; the worker process was killed",
                "exception": "TimeoutError",
            }
        except (EOFError, OSError, BrokenPipeError):
            w.proc.join(5)
            with self._lock:
                cancelled = job.uid in self._cancelled
            if cancelled:
                return {"ok": False, "_dead": True, "_cancelled": True, "error": "cancelled"}
            if self._closing:
                return {"ok": False, "_dead": True, "error": "the endpoint stopped while it ran"}
            code = w.proc.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
            return {
                "ok": False,
                "_dead": True,
                "error": f"the worker process died while running the task ({how}); it was replaced",
                "exception": "WorkerDied",
            }
        finally:
            with self._lock:
                self._running.pop(job.uid, None)
                self._cancelled.discard(job.uid)
