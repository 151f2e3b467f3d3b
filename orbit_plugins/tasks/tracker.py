"""The tasks plugin's bookkeeping of its active tasks: QUEUED → RUNNING → final, in memory
and in the store, with waiters woken and status events coalesced.

:class:`TaskTracker` is a mixin of :class:`~.plugin.TasksPlugin`, which provides ``cfg``,
``store``, ``ctx`` and starts the pool, the execution slots and the event loop in ``start()``.
Its state-changing methods are called from any thread (the worker pool's feeders call
:meth:`TaskTracker._on_start_many` and :meth:`TaskTracker._on_finish`); ``_lock`` guards
the in-memory state. Status changes are flushed as ``task_status`` (one change in a window)
or ``task_status_batch`` events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

from .execs import kill_group, run_executable
from .pool import Job

if TYPE_CHECKING:
    from orbit_plugins.base import PluginContext

    from .pool import WorkerPool
    from .rhapsody_backend import RhapsodyPool
    from .schema import TaskSpec, TasksSettings
    from .store import TaskStore

EVENT_FIELDS = ("uid", "owner", "state", "exit_code", "error", "exception")
BATCH_MAX = 1024


class TaskTracker:
    """The active tasks of a :class:`~.plugin.TasksPlugin` (mixin; see the module doc)."""

    if TYPE_CHECKING:  # provided by the plugin

        @property
        def cfg(self) -> TasksSettings: ...

        @property
        def store(self) -> TaskStore: ...

        @property
        def ctx(self) -> PluginContext: ...

    def _init_tracker(self) -> None:
        self._pool: WorkerPool | RhapsodyPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._active: dict[str, str] = {}
        """uid -> state of tasks this process is responsible for (QUEUED/RUNNING)."""
        self._owners: dict[str, str] = {}
        """uid -> owner of the active tasks (their events name it without a query)."""
        self._collect: dict[str, dict[str, Any]] = {}
        """uid -> record fields, kept in memory for the ``run_tasks`` call waiting on it."""
        self._finishing: set[str] = set()
        """uids whose final state is being written (no longer active, not yet stored)."""
        self._waiters: dict[str, list[_Waiter]] = {}
        self._changes: list[dict[str, Any]] = []
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._exec_tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_requested: set[str] = set()
        self._exec_slots: asyncio.Semaphore | None = None
        self._max_result = 1 << 20

    # ------------------------------------------------------------------ state changes

    def _dispatch(self, owner: str, tasks: list[tuple[str, TaskSpec]]) -> None:
        """Hand ``(uid, spec)`` tasks of ``owner`` to the worker pool or start them."""
        with self._lock:  # once per batch: the feeder threads take this lock too
            for uid, _ in tasks:
                self._active[uid], self._owners[uid] = "QUEUED", owner
        pool, default_timeout, max_result = self._pool, self.cfg.default_timeout, self._max_result
        for uid, spec in tasks:
            timeout = spec.timeout or default_timeout
            if spec.executable is not None:
                self._start_exec(uid, spec, timeout)
                continue
            assert pool is not None
            if spec.function is not None:
                message: tuple[Any, ...] = ("function", spec.function, spec.args, spec.kwargs)
            elif spec.pickled_args is not None:
                message = ("pickled_fn", spec.pickled, spec.pickled_args, {})
            else:
                message = ("pickled", spec.pickled, [], {})
            pool.submit(Job(uid, (*message, max_result), timeout))

    def _start_exec(self, uid: str, spec: TaskSpec, timeout: float | None) -> None:
        task = asyncio.get_running_loop().create_task(self._exec(uid, spec, timeout))
        self._exec_tasks[uid] = task
        task.add_done_callback(lambda _: self._exec_tasks.pop(uid, None))

    def _on_start(self, uid: str) -> bool:
        """QUEUED → RUNNING (any thread); False when the task is no longer queued."""
        return bool(self._on_start_many([uid]))

    def _on_start_many(self, uids: list[str]) -> set[str]:
        """QUEUED → RUNNING for a chunk (any thread); the uids that may run."""
        with self._lock:
            allowed = {u for u in uids if self._active.get(u) == "QUEUED"}
            started = time.time()
            for uid in allowed:
                self._active[uid] = "RUNNING"
                if (entry := self._collect.get(uid)) is not None:
                    entry.update(state="RUNNING", started=started)
            extra = {"_chunk": True} if len(allowed) > 1 else {}
            self._changes.extend(
                {"uid": u, "owner": self._owners.get(u, ""), "state": "RUNNING", **extra}
                for u in uids
                if u in allowed
            )
        if allowed:
            self.store.set_running(list(allowed), started)
        return allowed

    def _on_finish(self, outcomes: list[tuple[str, dict[str, Any]]]) -> None:
        """Worker pool callback: function tasks' outcomes (any thread)."""
        results = []
        for uid, outcome in outcomes:
            if outcome.get("_cancelled"):
                result: dict[str, Any] = {"state": "CANCELED", "error": "cancelled by request"}
            else:
                result = {k: v for k, v in outcome.items() if k[0] != "_" and k != "ok"}
                result["state"] = "DONE" if outcome.get("ok") else "FAILED"
            results.append((uid, result))
        self._finalize_many(results)

    def _finalize(self, uid: str, result: dict[str, Any]) -> None:
        """Record a final state once (any thread); wake waiters; queue the event."""
        self._finalize_many([(uid, result)])

    def _finalize_many(self, results: list[tuple[str, dict[str, Any]]]) -> None:
        """Record final states once (any thread), in one write; wake waiters; queue events."""
        with self._lock:
            fresh = [
                (u, r, self._owners.pop(u, ""))
                for u, r in results
                if self._active.pop(u, None) is not None
            ]
            self._finishing.update(u for u, _, _ in fresh)
        if not fresh:
            return
        now, rows, changes = time.time(), [], []
        for uid, result, owner in fresh:
            state = result.pop("state")
            kept = {k: v for k, v in result.items() if v is not None}
            rows.append((uid, state, kept))
            changes.append(
                {
                    "uid": uid,
                    "owner": owner,
                    "state": state,
                    **{k: kept.get(k) for k in EVENT_FIELDS[3:]},
                }
            )
        self.store.finish(rows, now)
        with self._lock:
            self._changes.extend(changes)
            self._finishing.difference_update(u for u, _, _ in fresh)
            for uid, state, kept in rows:
                if (entry := self._collect.get(uid)) is not None:
                    entry.update(kept, state=state, finished=now)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_many, [u for u, _, _ in fresh])

    def _wake_many(self, uids: list[str]) -> None:
        for uid in uids:
            self._wake(uid)

    def _wake(self, uid: str) -> None:
        for waiter in self._waiters.pop(uid, ()):
            waiter.left -= 1
            if waiter.left <= 0 and not waiter.future.done():
                waiter.future.set_result(None)

    async def _exec(self, uid: str, spec: TaskSpec, timeout: float | None) -> None:
        assert self._exec_slots is not None
        async with self._exec_slots:
            if not self._on_start(uid):
                return
            try:
                result = await run_executable(
                    spec,
                    timeout,
                    self.cfg.max_output,
                    self._procs,
                    uid,
                    self._cancel_requested,
                    self.cfg.mpi_launcher,
                )
            except Exception as exc:
                result = {"state": "FAILED", "error": f"{type(exc).__name__}: {exc}"}
            if uid in self._cancel_requested:
                self._cancel_requested.discard(uid)
                result = {**result, "state": "CANCELED", "error": "cancelled by request"}
            self._finalize(uid, result)

    # ------------------------------------------------------------------ events

    def _flush(self) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
        if not changes:
            return
        if any("_chunk" in c for c in changes):
            # a chunked task's RUNNING superseded by its final state in the window is dropped
            latest = {c["uid"]: c for c in changes}
            changes = [c for c in changes if "_chunk" not in c or latest[c["uid"]] is c]
            for c in changes:
                c.pop("_chunk", None)
        if len(changes) == 1:
            self.ctx.emit("task_status", changes[0])
            return
        for i in range(0, len(changes), BATCH_MAX):
            self.ctx.emit("task_status_batch", {"tasks": changes[i : i + BATCH_MAX]})

    async def _notify_loop(self) -> None:
        while True:
            await asyncio.sleep(max(self.cfg.notify_window, 0.005))
            try:
                self._flush()
            except Exception:
                self.ctx.logger.exception("task events failed")

    # ------------------------------------------------------------------ waiting, cancelling

    async def _wait(self, uids: list[str], limit: float | None) -> None:
        """Wait until ``uids`` are final or ``limit`` passes."""
        with self._lock:
            pending = [u for u in uids if u in self._active or u in self._finishing]
        if pending and limit != 0:
            waiter = _Waiter(asyncio.get_running_loop(), len(pending))
            for uid in pending:
                self._waiters.setdefault(uid, []).append(waiter)
            # a task may have finished (and its wake-up run) before the registration
            with self._lock:
                done = [u for u in pending if u not in self._active and u not in self._finishing]
            for uid in done:
                self._wake(uid)
            await asyncio.wait([waiter.future], timeout=limit)
            if not waiter.future.done():  # timed out: the rest stop waking this waiter
                for uid in pending:
                    waiters = self._waiters.get(uid)
                    if waiters and waiter in waiters:
                        waiters.remove(waiter)
                        if not waiters:
                            del self._waiters[uid]

    async def _cancel(self, uid: str, *, wait: bool = True) -> bool:
        with self._lock:
            state = self._active.get(uid)
        if state is None:
            return False
        if state == "QUEUED":
            self._finalize(uid, {"state": "CANCELED", "error": "cancelled before it started"})
            return True
        waiter = _Waiter(asyncio.get_running_loop(), 1)
        self._waiters.setdefault(uid, []).append(waiter)
        proc = self._procs.get(uid)
        if proc is not None:
            self._cancel_requested.add(uid)
            kill_group(proc)
        elif uid in self._exec_tasks:  # started, its process not spawned yet: killed at spawn
            self._cancel_requested.add(uid)
        elif self._pool is None or not self._pool.cancel(uid):
            return False
        if wait:
            await asyncio.wait([waiter.future], timeout=10)
        return True


class _Waiter:
    """Waits for ``left`` tasks of a batch: one future per batch, not per task."""

    __slots__ = ("future", "left")

    def __init__(self, loop: asyncio.AbstractEventLoop, left: int) -> None:
        self.future: asyncio.Future[None] = loop.create_future()
        self.left = left


__all__ = ["BATCH_MAX", "EVENT_FIELDS", "TaskTracker"]
