"""The ``tasks`` plugin: batches of executable and function tasks, with status events.

Functions run only in worker subprocesses (:mod:`.pool`); executables as child processes
(:mod:`.execs`). State is in SQLite (:mod:`.store`): queued tasks survive an endpoint
restart and run after it; tasks that were running are reported FAILED (interrupted), never
run twice. Status changes are coalesced over ``notify_window``: a window with one change
emits ``task_status``, more emit ``task_status_batch`` (``{"tasks": [...]}``). Under a
long backlog workers take tasks in chunks (:mod:`.pool`); for those, a RUNNING change that
its final state supersedes within the same window is not sent (the final state says it
ran). Events carry states, not results (other users may read the endpoint's events): fetch
results with ``wait_tasks``/``get_task``, which check ownership.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from orbit_plugins.base import Call, Plugin, PluginContext, Prepared, operation
from orbit_protocol import Conflict, NotAuthorized, NotFound

from . import rhapsody_backend
from .execs import kill_group, run_executable
from .pool import Job, WorkerPool
from .schema import (
    FINAL_STATES,
    CancelAllResult,
    CancelResult,
    ListArgs,
    RunArgs,
    SubmitArgs,
    SubmitResult,
    TaskRecord,
    TaskSpec,
    TasksSettings,
    UidArgs,
    WaitArgs,
)
from .store import TaskStore, record_json

EVENT_FIELDS = ("uid", "owner", "state", "exit_code", "error", "exception")
BATCH_MAX = 1024
POOL_MARK = "orbit.pool"


class TasksPlugin(Plugin):
    """Run tasks on the endpoint's host: executables and Python functions."""

    name = "tasks"
    version = "0.1.0"
    description = "Task batches: executables and functions (worker subprocesses), with events."
    settings_model = TasksSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self._store: TaskStore | None = None
        self._pool: WorkerPool | rhapsody_backend.RhapsodyPool | None = None
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
        self._notifier: asyncio.Task[None] | None = None
        self._max_result = 1 << 20

    @property
    def cfg(self) -> TasksSettings:
        if not isinstance(self.settings, TasksSettings):
            raise TypeError("tasks settings were not validated")
        return self.settings

    @property
    def store(self) -> TaskStore:
        if self._store is None:
            raise RuntimeError("tasks plugin used before setup()")
        return self._store

    # ------------------------------------------------------------------ lifecycle

    async def setup(self, ctx: PluginContext) -> None:
        await super().setup(ctx)
        if self.cfg.backend == "rhapsody":  # raises, naming what to install: plugin unavailable
            version = rhapsody_backend.check(self.cfg.rhapsody_backend)
            vars(self)["description"] = (  # shown by orbit.describe
                f"{self.description} Function tasks run on rhapsody-py {version}"
                f" ({self.cfg.rhapsody_backend!r} backend, process pool)."
            )
        self._store = TaskStore(Path(ctx.state_dir) / "tasks.sqlite")

    async def start(self) -> None:
        """Start the worker pool, run queued tasks left from a previous run, start events."""
        self._loop = asyncio.get_running_loop()
        cores = os.cpu_count() or 1
        self._exec_slots = asyncio.Semaphore(self.cfg.max_processes or cores)
        self._max_result = self.cfg.max_result
        if self.cfg.backend == "rhapsody":
            self._pool = rhapsody_backend.RhapsodyPool(
                self.cfg.workers or cores,
                self._on_start_many,
                self._on_finish,
                work_dir=str(Path(self.ctx.state_dir) / "rhapsody"),
                backend=self.cfg.rhapsody_backend,
            )
        else:
            self._pool = WorkerPool(self.cfg.workers or cores, self._on_start_many, self._on_finish)
        self._notifier = asyncio.create_task(self._notify_loop(), name="tasks-notify")
        self._recover()

    async def stop(self) -> None:
        """Kill running tasks (reported FAILED, interrupted); queued ones stay for next start."""
        for uid, proc in list(self._procs.items()):
            self._cancel_requested.add(uid)
            kill_group(proc)
        for task in list(self._exec_tasks.values()):
            task.cancel()
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.close)
        with self._lock:
            running = [uid for uid, state in self._active.items() if state == "RUNNING"]
        for uid in running:
            self._finalize(uid, {"state": "FAILED", "error": "the endpoint stopped while it ran"})
        if self._notifier is not None:
            self._notifier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notifier
            self._flush()
        if self._store is not None:
            self._store.close()
            self._store = None

    def _recover(self) -> None:
        for uid, owner, state, raw in self.store.unfinished():
            if state == "RUNNING":
                self._active[uid], self._owners[uid] = state, owner
                self._finalize(
                    uid,
                    {
                        "state": "FAILED",
                        "error": "interrupted: the endpoint restarted while the task ran (or"
                        " waited in a worker's chunk);"
                        " it was not run again",
                    },
                )
            elif f'"{POOL_MARK}"' in raw:
                self._active[uid], self._owners[uid] = state, owner
                self._finalize(
                    uid,
                    {
                        "state": "FAILED",
                        "error": "interrupted: the endpoint restarted before this pool task"
                        " ran; its batch went back to the pool, it was not run here",
                    },
                )
            else:
                self.ctx.logger.info("re-queueing task %s of %s after restart", uid, owner)
                self._dispatch(owner, [(uid, TaskSpec.model_validate_json(raw))])

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
                result = await run_executable(spec, timeout, self.cfg.max_output, self._procs, uid)
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

    # ------------------------------------------------------------------ helpers

    def _check_allowed(self, spec: TaskSpec, endpoint: str) -> None:
        if spec.kind == "pickled" and not self.cfg.allow_cloudpickle:
            raise NotAuthorized(
                f"endpoint {endpoint!r} does not accept cloudpickled functions (tasks setting"
                " allow_cloudpickle is off); send an import path 'module:func' with JSON args,"
                " or ask the endpoint's owner to enable it"
            )
        if spec.kind == "executable" and not self.cfg.allow_executables:
            raise NotAuthorized(f"endpoint {endpoint!r} does not run executables")
        if spec.function is not None and not any(
            fnmatch.fnmatchcase(spec.function, p) for p in self.cfg.allowed_functions
        ):
            raise NotAuthorized(
                f"function {spec.function!r} is not allowed on endpoint {endpoint!r}"
                f" (allowed: {', '.join(self.cfg.allowed_functions) or 'none'})"
            )

    def _owned(self, uids: list[str], call: Call) -> dict[str, TaskRecord]:
        records = self.store.get_many(uids)
        missing = [u for u in uids if u not in records or not self._visible(records[u], call)]
        if missing:
            shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            raise NotFound(
                f"no task(s) {shown} of yours on this endpoint",
                {"missing": missing[:100], "count": len(missing)},
            )
        return records

    @staticmethod
    def _visible(record: TaskRecord, call: Call) -> bool:
        return call.is_admin or record.owner == call.user

    # ------------------------------------------------------------------ operations

    @operation(idempotent=True)
    async def submit_tasks(self, args: SubmitArgs, call: Call) -> list[SubmitResult]:
        """Accept a batch of tasks (re-submitting a known uid returns its state, runs nothing)."""
        uids, known = self._submit(args.tasks, call)
        return [SubmitResult(uid=u, state=known[u][1] if u in known else "QUEUED") for u in uids]

    def _submit(
        self, tasks: list[TaskSpec], call: Call, *, collect: bool = False
    ) -> tuple[list[str], dict[str, tuple[str, str]]]:
        """Store and dispatch the new tasks of a batch; its uids and the already known ones.

        ``collect``: keep the new tasks' record fields in memory for the caller, which pops
        them from ``_collect`` when it is done (``run_tasks``).
        """
        for spec in tasks:
            self._check_allowed(spec, call.endpoint)
        uids = [spec.uid or f"task.{uuid.uuid4().hex}" for spec in tasks]
        if len(set(uids)) != len(uids):
            raise Conflict("a batch names the same task uid twice")
        known = self.store.owners(uids)
        foreign = [u for u, (owner, _) in known.items() if owner != call.user]
        if foreign:
            raise Conflict(
                f"task uid(s) {', '.join(foreign[:5])} already exist on this endpoint",
                {"uids": foreign[:100]},
            )
        now = time.time()
        fresh = [(u, s) for u, s in zip(uids, tasks, strict=True) if u not in known]
        self.store.insert(
            [(u, call.user, s.kind, s.model_dump_json(exclude_none=True), now) for u, s in fresh]
        )
        if collect:
            with self._lock:
                for uid, spec in fresh:
                    self._collect[uid] = {
                        "uid": uid,
                        "owner": call.user,
                        "kind": spec.kind,
                        "state": "QUEUED",
                        "submitted": now,
                        "metadata": spec.metadata,
                    }
        self._dispatch(call.user, fresh)
        return uids, known

    @operation(idempotent=True)
    async def run_tasks(self, args: RunArgs, call: Call) -> Prepared[list[TaskRecord]]:
        """Run a batch and answer with the final records, in order (``OrbitExecutor.map``
        and pools use it: the caller needs no events and no fetch; the events are still
        emitted). With ``pool`` the tasks carry ``metadata["orbit.pool"]`` and are not re-run
        here after a restart (the pool delivery, acked with the answer, went to another
        member)."""
        tasks = args.tasks
        if args.pool:
            tasks = [
                t.model_copy(update={"metadata": {**t.metadata, POOL_MARK: True}}) for t in tasks
            ]
        uids: list[str] = []
        try:
            # all the caller's: _submit refuses others'
            uids, _ = self._submit(tasks, call, collect=True)
            await self._wait(uids, self._limit(None, call))
        finally:
            with self._lock:
                collected = {u: self._collect.pop(u) for u in uids if u in self._collect}
        # records built here from what this process recorded: sent without re-validation
        records = {
            u: record_json(fields)
            for u, fields in collected.items()
            if fields.get("state") in FINAL_STATES
        }
        rest = [u for u in uids if u not in records]
        if rest:  # known before this call, or not final yet: as stored
            stored = self.store.get_many(rest)
            records.update((u, r.model_dump(mode="json")) for u, r in stored.items())
        return Prepared([records[u] for u in uids])

    @operation(idempotent=True)
    async def wait_tasks(self, args: WaitArgs, call: Call) -> list[TaskRecord]:
        """Wait until the tasks are final or ``timeout`` passes; their records, in order."""
        records = self._owned(args.uids, call)
        pending = [u for u in args.uids if records[u].state not in FINAL_STATES]
        if pending:
            await self._wait(pending, self._limit(args.timeout, call))
            records.update(self.store.get_many(pending))
        return [records[u] for u in args.uids]

    @staticmethod
    def _limit(timeout: float | None, call: Call) -> float | None:
        if call.deadline is not None:
            left = max(call.deadline - time.time() - 1.0, 0.0)
            return left if timeout is None else min(timeout, left)
        return timeout

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

    @operation(idempotent=True)
    async def get_task(self, args: UidArgs, call: Call) -> TaskRecord:
        """One of your tasks."""
        return self._owned([args.uid], call)[args.uid]

    @operation(idempotent=True)
    async def list_tasks(self, args: ListArgs, call: Call) -> list[TaskRecord]:
        """Your most recent tasks, newest first (admins: everybody's)."""
        owner = None if call.is_admin else call.user
        return self.store.recent(owner, args.state, args.limit)

    @operation(idempotent=True)
    async def cancel_task(self, args: UidArgs, call: Call) -> CancelResult:
        """Cancel a queued or running task (a running one is killed)."""
        record = self._owned([args.uid], call)[args.uid]
        cancelled = await self._cancel(args.uid)
        state = self.store.get_many([args.uid])[args.uid].state if cancelled else record.state
        return CancelResult(uid=args.uid, state=state, cancelled=cancelled)

    @operation(idempotent=True)
    async def cancel_all_tasks(self, call: Call) -> CancelAllResult:
        """Cancel all your queued and running tasks."""
        uids = self.store.active_uids(None if call.is_admin else call.user)
        results = await asyncio.gather(*(self._cancel(u, wait=False) for u in uids))
        return CancelAllResult(cancelled=sum(results))

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


__all__ = ["TasksPlugin"]
