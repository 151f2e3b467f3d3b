"""The ``psij`` plugin: batch and local jobs through PSI/J, journaled and re-attached.

Every job is written to the plugin's SQLite ledger (keyed by the submitting request id,
which is also the job id and part of the PSI/J job name) *before* PSI/J submits it, so a
re-run of the request after a crash returns the recorded job instead of submitting again.
A monitor task polls each active job: it emits new output as ``job_output`` chunks and,
after the last chunk, a ``job_status`` event on every state change.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from orbit_plugins.base import Call, Plugin, PluginContext, operation
from orbit_protocol import Conflict, NotAuthorized, NotFound, Unavailable

from . import children, launch
from .child_schema import ChildInfo, SubmitEndpointArgs
from .monitor import Observed, decide, new_output, status_event
from .schema import (
    TERMINAL,
    CancelResult,
    JobIdArgs,
    JobInfo,
    JobList,
    JobStatus,
    ListArgs,
    PsijSettings,
    StatusArgs,
    SubmitArgs,
)
from .store import JobRecord, JobStore

SUBMITTING = "submitting"
"""Marker file in a job dir: PSI/J's submit was started (the job may exist natively)."""


class PsijPlugin(Plugin):
    """Submit, watch and cancel jobs with PSI/J executors (local, slurm, pbs, lsf)."""

    name = "psij"
    version = "0.1.0"
    description = "Jobs through PSI/J: submit, status with output offsets, list, cancel, events."
    settings_model = PsijSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self._store: JobStore | None = None
        self._executors: launch.Executors | None = None
        self._jobs: dict[str, Any] = {}
        """Live PSI/J ``Job`` objects by job id (submitted or re-attached by this process)."""
        self._observed: dict[str, Observed] = {}
        """Latest PSI/J status per job id, written by PSI/J's callback threads."""
        self._lock = threading.Lock()
        self._submit_locks: dict[str, threading.Lock] = {}
        """One lock per job id: a duplicate submit waits for the first, others run in parallel."""
        self._monitor: asyncio.Task[None] | None = None
        self._children: children.Children | None = None

    @property
    def cfg(self) -> PsijSettings:
        if not isinstance(self.settings, PsijSettings):
            raise TypeError("psij settings were not validated")
        return self.settings

    @property
    def store(self) -> JobStore:
        if self._store is None:
            raise RuntimeError("psij plugin used before setup()")
        return self._store

    @property
    def executors(self) -> launch.Executors:
        assert self._executors is not None
        return self._executors

    # ------------------------------------------------------------------ lifecycle

    async def setup(self, ctx: PluginContext) -> None:
        """Import PSI/J (on the main thread, so its SIGCHLD handler is installed) and the ledger."""
        await super().setup(ctx)
        import psij  # noqa: F401  (raises here if psij-python is missing: plugin unavailable)

        self._store = JobStore(Path(ctx.state_dir) / "jobs.sqlite")
        self._executors = launch.Executors(self.cfg.executors, self.cfg.slurm_polling_interval)
        self._children = children.Children(self)

    async def start(self) -> None:
        """Prune old finished jobs, re-attach the jobs of a previous run, start the monitor."""
        await asyncio.to_thread(self._prune)
        await asyncio.to_thread(self._reattach_all)
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._monitor_loop(), name="psij-monitor")
        if self._children is not None:
            self._children.start()

    async def stop(self) -> None:
        """Stop monitoring; jobs keep running and are re-attached on the next start."""
        task, self._monitor = self._monitor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._children is not None:
            await self._children.stop()
        if self._store is not None:
            self._store.close()

    # ------------------------------------------------------------------ operations

    @operation(idempotent=True)
    def submit_job(self, args: SubmitArgs, call: Call) -> JobInfo:
        """Submit a job; its id is this request's id (a re-run returns the recorded job)."""
        with self._lock:
            lock = self._submit_locks.setdefault(call.request_id, threading.Lock())
        with lock:
            rec = self.store.get(call.request_id)
            if rec is not None:
                if rec.user != call.user:
                    raise Conflict(f"job id {call.request_id!r} is taken by another user")
                if rec.native_id is None and rec.state == "NEW":
                    self._finish_interrupted_submit(rec)
                return self._get(rec.job_id).info()
            self.executors.get(args.executor)
            if args.executor == "local":
                launch.check_executable(args.spec)
            rec = self._new_record(args, call)
            self.store.insert(rec)
            self._launch(rec)
            return self._get(rec.job_id).info()

    @operation(idempotent=True, journal=False)
    def submit_endpoint(self, args: SubmitEndpointArgs, call: Call) -> ChildInfo:
        """Start child endpoint ``name`` in a batch job (tunnel: none, forward, reverse)."""
        return children.submit(self, args, call)

    @operation(idempotent=True)
    def get_job_status(self, args: StatusArgs, call: Call) -> JobStatus:
        """State, exit code and the output written since the given byte offsets."""
        rec = self._own(args.job_id, call)
        half = args.max_bytes // 2
        out, out_end = launch.read_text(rec.stdout_path, args.stdout_offset, half, rec.terminal)
        err, err_end = launch.read_text(rec.stderr_path, args.stderr_offset, half, rec.terminal)
        return JobStatus(
            **rec.info().model_dump(),
            stdout=out,
            stderr=err,
            stdout_offset=out_end,
            stderr_offset=err_end,
            stdout_size=launch.size(rec.stdout_path),
            stderr_size=launch.size(rec.stderr_path),
        )

    @operation(idempotent=True)
    def list_jobs(self, args: ListArgs, call: Call) -> JobList:
        """The caller's jobs (admins: everybody's with ``all_users``)."""
        if args.all_users and not call.is_admin:
            raise NotAuthorized("only the endpoint's admins may list every user's jobs")
        user = None if args.all_users else call.user
        return JobList(jobs=[r.info() for r in self.store.list(user)])

    @operation(idempotent=True)
    def cancel_job(self, args: JobIdArgs, call: Call) -> CancelResult:
        """Cancel a job (no-op on a finished one); waits up to 5 s for it to end."""
        rec = self._own(args.job_id, call)
        if rec.terminal:
            return CancelResult(job_id=rec.job_id, state=rec.state)
        self.store.update(rec.job_id, cancel_requested=1)
        job = self._jobs.get(rec.job_id)
        if job is not None:
            job.cancel()
        elif rec.executor == "local" and rec.native_id is not None:
            launch.kill_tree(int(rec.native_id), rec.started)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self._get(rec.job_id).terminal:
            time.sleep(0.1)
        return CancelResult(job_id=rec.job_id, state=self._get(rec.job_id).state)

    # ------------------------------------------------------------------ helpers

    def _get(self, job_id: str) -> JobRecord:
        rec = self.store.get(job_id)
        if rec is None:
            raise NotFound(f"no job {job_id!r} on endpoint {self.ctx.endpoint!r}")
        return rec

    def _own(self, job_id: str, call: Call) -> JobRecord:
        rec = self.store.get(job_id)
        if rec is None or (rec.user != call.user and not call.is_admin):
            raise NotFound(f"no job {job_id!r} of user {call.user!r} on this endpoint")
        return rec

    def _new_record(self, args: SubmitArgs, call: Call) -> JobRecord:
        job_dir = Path(self.ctx.state_dir) / "jobs" / call.request_id
        job_dir.mkdir(parents=True, exist_ok=True)
        base = Path(args.spec.directory) if args.spec.directory else job_dir
        out = base / args.spec.stdout_path if args.spec.stdout_path else job_dir / "stdout"
        err = base / args.spec.stderr_path if args.spec.stderr_path else job_dir / "stderr"
        return JobRecord(
            job_id=call.request_id,
            user=call.user,
            executor=args.executor,
            spec=args.spec,
            job_dir=str(job_dir),
            stdout_path=str(out),
            stderr_path=str(err),
        )

    def _launch(self, rec: JobRecord) -> None:
        """Submit ``rec`` through PSI/J and record its native id (in a worker thread).

        A ``submitting`` marker in the job dir is written (and synced) first: a ledger row
        without a native id and without the marker was provably never handed to the scheduler.
        """
        import psij

        launch.write_synced(Path(rec.job_dir) / SUBMITTING, str(time.time()))
        wrap = None
        if rec.executor == "local":
            wrap = (str(Path(rec.job_dir) / "exit_code"), str(Path(rec.job_dir) / "pid"))
        job = launch.psij_job(
            rec.spec, f"orbit-{rec.job_id}", rec.stdout_path, rec.stderr_path, wrap, rec.executor
        )
        self._watch(rec.job_id, job)
        try:
            self.executors.get(rec.executor).submit(job)
        except psij.SubmitException as exc:
            self.store.update(
                rec.job_id,
                state="FAILED",
                message=f"submission failed: {exc}",
                finished_at=time.time(),
            )
            raise Unavailable(f"{rec.executor} could not submit the job: {exc}") from None
        native = str(job.native_id)
        started = launch.start_time(int(native)) if rec.executor == "local" else None
        self.store.update(rec.job_id, native_id=native, started=started, state="QUEUED")

    def _finish_interrupted_submit(self, rec: JobRecord) -> None:
        """A crash hit between the ledger write and the native id: adopt, fail or submit.

        Never submitted (no marker) → submit now. Local job whose launcher wrote its pid
        file → adopt it. Batch job the scheduler lists under ``orbit-<job id>`` → adopt it.
        Otherwise the job may or may not have reached the scheduler, so it is *not*
        submitted again: it is marked FAILED with a message saying so.
        """
        job_dir = Path(rec.job_dir)
        pid_file = job_dir / "pid"
        if not (job_dir / SUBMITTING).exists():
            self._launch(rec)
            return
        if rec.executor == "local":
            if pid_file.exists():
                pid = int(pid_file.read_text().strip() or 0)
                self._adopt(rec, str(pid), launch.start_time(pid))
            else:  # the wrapper writes its pid before it runs the command: it never ran
                self._launch(rec)
            return
        try:
            native = launch.find_batch_job(rec.executor, f"orbit-{rec.job_id}")
        except Unavailable as exc:
            native, why = None, f"the scheduler could not be asked ({exc})"
        else:
            why = f"{rec.executor} lists no job named orbit-{rec.job_id}"
        if native is not None:
            self._adopt(rec, native, None)
            return
        message = (
            f"the endpoint stopped while submitting this job and {why}; it was not "
            "submitted again, because it may have reached the scheduler: submit it again "
            "if it did not run"
        )
        self.store.update(rec.job_id, state="FAILED", message=message, finished_at=time.time())
        self.ctx.logger.warning("job %s: %s", rec.job_id, message)
        rec = self._get(rec.job_id)
        self._emit_status(rec)

    def _adopt(self, rec: JobRecord, native: str, started: float | None) -> None:
        self.store.update(rec.job_id, native_id=native, started=started, state="QUEUED")
        self.ctx.logger.info(
            "adopted job %s (native id %s) after an interrupted submit", rec.job_id, native
        )
        self._reattach(self._get(rec.job_id))

    def _watch(self, job_id: str, job: Any) -> None:
        def on_status(_job: Any, status: Any) -> None:
            with self._lock:
                self._observed[job_id] = Observed(
                    status.state.name, status.exit_code, status.message
                )

        job.set_job_status_callback(on_status)
        self._jobs[job_id] = job

    def _reattach_all(self) -> None:
        for rec in self.store.list(active_only=True):
            if rec.native_id is None and rec.state == "NEW":
                with self._lock:
                    lock = self._submit_locks.setdefault(rec.job_id, threading.Lock())
                with lock:  # a resumed submit_job may have settled it meanwhile
                    fresh = self._get(rec.job_id)
                    if fresh.native_id is not None or fresh.state != "NEW":
                        continue
                    try:
                        self._finish_interrupted_submit(fresh)
                    except Exception as exc:
                        self.ctx.logger.warning("job %s: interrupted submit: %s", rec.job_id, exc)
            elif rec.native_id is not None:
                try:
                    self._reattach(rec)
                except Exception as exc:
                    self.ctx.logger.warning("could not re-attach job %s: %s", rec.job_id, exc)

    def _reattach(self, rec: JobRecord) -> None:
        import psij

        assert rec.native_id is not None
        if rec.executor == "local" and not launch.alive(int(rec.native_id), rec.started):
            return  # ended while we were down: the monitor reads its exit-code file
        job = psij.Job()
        self._watch(rec.job_id, job)
        self.executors.get(rec.executor).attach(job, rec.native_id)
        self.ctx.logger.info("re-attached job %s (native id %s)", rec.job_id, rec.native_id)

    # ------------------------------------------------------------------ monitor

    async def _monitor_loop(self) -> None:
        pruned = time.monotonic()
        while True:
            try:
                await asyncio.to_thread(self._tick)
                if time.monotonic() - pruned >= self.cfg.prune_interval:
                    pruned = time.monotonic()
                    await asyncio.to_thread(self._prune)
            except Exception:
                self.ctx.logger.warning("psij monitor tick failed", exc_info=True)
            await asyncio.sleep(self.cfg.poll_interval)

    def _prune(self) -> int:
        """Forget jobs that ended more than ``retention`` seconds ago: ledger row and job dir
        (output written elsewhere, via ``stdout_path``/``directory``, is left alone)."""
        jobs_root = Path(self.ctx.state_dir) / "jobs"
        old = self.store.finished_before(time.time() - self.cfg.retention)
        for rec in old:
            job_dir = Path(rec.job_dir)
            if job_dir.parent == jobs_root:  # never delete outside the plugin's own dirs
                shutil.rmtree(job_dir, ignore_errors=True)
            self.store.delete(rec.job_id)
            with self._lock:
                self._submit_locks.pop(rec.job_id, None)
                self._observed.pop(rec.job_id, None)
        if old:
            self.ctx.logger.info(
                "pruned %d job(s) finished over %.0f s ago", len(old), self.cfg.retention
            )
        return len(old)

    def _tick(self) -> None:
        for rec in self.store.list(active_only=True):
            if rec.native_id is None:
                continue
            with self._lock:
                seen = self._observed.get(rec.job_id)
            live = rec.job_id in self._jobs
            state, exit_code, message = children.outcome(rec, *decide(rec, seen, live))
            final = state in TERMINAL
            self._emit_output(rec, final)
            if state != rec.state:
                changes: dict[str, Any] = {"state": state, "exit_code": exit_code}
                changes["message"] = message
                if final:
                    changes["finished_at"] = time.time()
                    self._jobs.pop(rec.job_id, None)
                self.store.update(rec.job_id, **changes)
                rec.state, rec.exit_code, rec.message = state, exit_code, message
                self._emit_status(rec)

    def _emit_output(self, rec: JobRecord, final: bool) -> None:
        sent = {"stdout": rec.stdout_sent, "stderr": rec.stderr_sent}
        for chunk in new_output(rec, self.cfg.chunk_bytes, final):
            self.ctx.emit("job_output", chunk.model_dump())
            sent[chunk.stream] = chunk.end
        if (sent["stdout"], sent["stderr"]) != (rec.stdout_sent, rec.stderr_sent):
            self.store.update(rec.job_id, stdout_sent=sent["stdout"], stderr_sent=sent["stderr"])
            rec.stdout_sent, rec.stderr_sent = sent["stdout"], sent["stderr"]

    def _emit_status(self, rec: JobRecord) -> None:
        self.ctx.emit("job_status", status_event(rec).model_dump(), persistent=rec.terminal)
