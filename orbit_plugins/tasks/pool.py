"""A pool of worker subprocesses for function tasks, one feeder thread per worker.

Each worker runs one task at a time, so a timeout or a cancel kills exactly that task's
process; a dead process (killed, crashed, out of memory) fails its task with the exit
status and is replaced before the next task. When tasks are waiting, a feeder hands its
worker a chunk of them in one pipe message (up to ``CHUNK_MAX``, a fair share of the
backlog, only when the backlog is long); a chunk is marked RUNNING as a whole, so after an
endpoint crash its tasks that had not started yet are reported FAILED (interrupted) with the
others, never run twice. The worker answers task by task, so each task's timeout still applies to it
alone, and the tasks of a chunk not yet run when its worker dies go to the replacement.
Start and finish callbacks take lists, so state is written once per chunk, not per task.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
from collections import deque
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


Started = Callable[[list[str]], set[str]]
"""Called before a chunk runs; returns the uids that may run (the others were cancelled)."""
Finished = Callable[[list[tuple[str, dict[str, Any]]]], None]
"""Called with ``(uid, outcome)`` pairs of finished jobs."""
CHUNK_MAX = 64
CHUNK_BACKLOG = 4
"""Chunks only form when more than this many jobs per worker wait (a short queue behind a
long task is not pinned to one worker and stays QUEUED until a worker takes it)."""
FLUSH_EVERY = 0.02
"""A feeder reports its finished jobs when the next result takes longer than this."""


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
        self.ready: deque[dict[str, Any]] = deque()
        """Outcomes received in a batch and not handed out yet (in task order)."""

    def has_outcome(self, timeout: float | None) -> bool:
        """An outcome is buffered or arrives within ``timeout`` seconds."""
        return bool(self.ready) or self.conn.poll(timeout)

    def next_outcome(self) -> dict[str, Any]:
        """The next outcome (call after :meth:`has_outcome`); raises EOFError/OSError."""
        if not self.ready:
            self.ready.extend(self.conn.recv())
        return dict(self.ready.popleft())

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()

    def close(self) -> None:
        """Ask the idle worker to exit; kill it if it does not at once (one still booting
        reads nothing: the pool is closing and it holds no state)."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(0.5)
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
        self._assigned: set[str] = set()
        """uids handed to a worker in a chunk, not yet finished."""
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
        """Kill the worker running ``uid`` (a task waiting in a worker's chunk: when its turn
        comes, its result dropped); False if it is not running."""
        with self._lock:
            running = self._running.get(uid)
            if running is None:
                if uid not in self._assigned:
                    return False
                self._cancelled.add(uid)
                return True
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

    def _take(self, first: Job) -> list[Job] | None:
        """``first`` plus a fair share of the waiting jobs; None when the pool closes."""
        chunk = [first]
        want = min(CHUNK_MAX, self._jobs.qsize() // (self.size * CHUNK_BACKLOG))
        while len(chunk) <= want:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:  # closing: the drawn jobs stay queued in the store
                return None
            chunk.append(job)
        return chunk

    def _feed(self, index: int) -> None:
        current: _Worker | None = _Worker(self._ctx, index)  # warm: spawn costs ~0.2 s
        try:
            while True:
                job = self._jobs.get()
                if job is None or self._closing:  # queued jobs stay queued in the store
                    return
                chunk = self._take(job)
                if chunk is None or self._closing:
                    return
                allowed = self._started([j.uid for j in chunk])
                pending = deque(j for j in chunk if j.uid in allowed)
                with self._lock:
                    self._assigned.update(allowed)
                done: list[tuple[str, dict[str, Any]]] = []
                while pending:
                    if current is None or not current.proc.is_alive():
                        current = _Worker(self._ctx, index)
                    current = self._run(current, pending, done)
                self._report(done)
        except Exception:
            log.exception("task feeder %d failed", index)
        finally:
            if current is not None:
                current.close()

    def _run(
        self, w: _Worker, pending: deque[Job], done: list[tuple[str, dict[str, Any]]]
    ) -> _Worker | None:
        """Send ``pending`` to ``w``, collect outcomes in order into ``done`` (popping each);
        returns the worker, or None when it died (the rest of ``pending`` is not run yet)."""
        try:
            w.conn.send([j.message for j in pending])
        except (OSError, BrokenPipeError):
            w.proc.join(5)
            w.conn.close()
            return None
        while pending:
            job = pending[0]
            waited, ready = 0.0, False
            if done:
                ready = len(done) < CHUNK_MAX and w.has_outcome(FLUSH_EVERY)
                if not ready:
                    self._report(done)  # the next result is slow: report what is done first
                    waited = FLUSH_EVERY
            result = self._one(w, job, waited, ready)
            pending.popleft()
            with self._lock:
                self._assigned.discard(job.uid)
                if job.uid in self._cancelled and not result.get("_dead"):
                    result = {"ok": False, "_cancelled": True, "error": "cancelled"}
                self._cancelled.discard(job.uid)
            done.append((job.uid, result))
            if result.get("_dead"):
                w.conn.close()
                return None
        return w

    def _report(self, done: list[tuple[str, dict[str, Any]]]) -> None:
        if done:
            self._finished(list(done))
            done.clear()

    def _one(self, w: _Worker, job: Job, waited: float, ready: bool) -> dict[str, Any]:
        """The outcome of ``job`` (``ready``: its result is already in the pipe)."""
        with self._lock:
            self._running[job.uid] = w
            doomed = job.uid in self._cancelled
        if doomed and not ready:  # cancelled while it waited in the chunk; the worker has it now
            w.kill()
        try:
            left = None if job.timeout is None else max(job.timeout - waited, 0.0)
            if ready or w.has_outcome(left):
                return w.next_outcome()
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
