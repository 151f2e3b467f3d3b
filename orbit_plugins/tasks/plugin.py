"""The ``tasks`` plugin: batches of executable and function tasks, with status events.

Functions run only in worker subprocesses (:mod:`.pool`); executables as child processes
(:mod:`.execs`). State is in SQLite (:mod:`.store`): queued tasks survive an endpoint
restart and run after it; tasks that were running are reported FAILED (interrupted), never
run twice. Status changes are coalesced over ``notify_window``: a window with one change
emits ``task_status``, more emit ``task_status_batch`` (``{"tasks": [...]}``). Under a
long backlog workers take tasks in chunks (:mod:`.pool`); for those, a RUNNING change that
its final state supersedes within the same window is not sent (the final state says it
ran). Events carry states, not results (other users may read the endpoint's events): fetch
results with ``wait_tasks``/``get_task``, which check ownership. A final task's record is
kept for ``retention`` seconds (7 days), like a job's, then forgotten (``NOT_FOUND``).

This module holds the lifecycle, the checks and the operations; the bookkeeping of the
active tasks (state changes, waiters, events) is the :class:`~.tracker.TaskTracker` mixin.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import time
import uuid
from pathlib import Path

from orbit_plugins.base import Call, Plugin, PluginContext, Prepared, operation
from orbit_plugins.periodic import Periodic
from orbit_protocol import Conflict, NotAuthorized, NotFound

from . import rhapsody_backend
from .execs import kill_group
from .pool import WorkerPool
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
from .tracker import TaskTracker

POOL_MARK = "orbit.pool"


class TasksPlugin(TaskTracker, Plugin):
    """Run tasks on the endpoint's host: executables and Python functions."""

    name = "tasks"
    version = "0.1.0"
    description = "Task batches: executables and functions (worker subprocesses), with events."
    settings_model = TasksSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self._init_tracker()
        self._store: TaskStore | None = None
        self._notifier: asyncio.Task[None] | None = None
        self._pruner = Periodic("tasks-prune", lambda: self.cfg.prune_interval, self._prune)

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
        await asyncio.to_thread(self._prune)
        self._pruner.start(self.ctx.logger)

    def _prune(self) -> int:
        """Forget tasks that ended more than ``retention`` seconds ago."""
        pruned = self.store.prune(time.time() - self.cfg.retention)
        if pruned:
            self.ctx.logger.info(
                "pruned %d task(s) finished over %.0f s ago", pruned, self.cfg.retention
            )
        return pruned

    async def stop(self) -> None:
        """Kill running tasks (reported FAILED, interrupted); queued ones stay for next start."""
        await self._pruner.stop()
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


__all__ = ["TasksPlugin"]
