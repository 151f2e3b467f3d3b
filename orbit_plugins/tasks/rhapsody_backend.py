"""Optional backend for function tasks: rhapsody-py's ``concurrent`` backend on a process pool.

Selected with the tasks setting ``backend="rhapsody"`` (default ``"local"``: :mod:`.pool`).
It offers the same small interface as :class:`~.pool.WorkerPool` (``submit(job)``,
``cancel(uid)``, ``close()``, callbacks ``started(uids) -> allowed`` and
``finished([(uid, outcome)])``), so the plugin's hot path does not change.

This package's ``README.md``: user functions never run (nor are unpickled) in the endpoint
process. rhapsody's ``ConcurrentExecutionBackend`` runs functions in a ``ThreadPoolExecutor``
of the calling process unless it is given a ``ProcessPoolExecutor``; it is always given one
here (``spawn`` context), and the function it runs is :func:`run_in_worker`, which calls
Orbit's own :func:`.worker.run_one` on the task message *inside the pool's worker process*:
the endpoint passes the base64 payload down as a string, the worker loads and runs it and
answers the same outcome dict as the local pool (``return_value``/``return_encoding``,
``error``/``exception``/``traceback``). Other rhapsody backends (``dask``,
``radical_pilot``, ``dragon``, ``noop``) are refused at setup: they are not wired or tested
here.

What rhapsody's process pool cannot do, and what this backend does instead:

- kill one task: a per-task timeout is enforced *in the worker* with ``SIGALRM`` (it
  interrupts Python code, ``time.sleep``, most blocking calls); a task that ignores it (a
  long C loop) is reported FAILED ``GRACE`` seconds later while it keeps its worker busy
  until it ends (its late result is dropped);
- cancel a running task: ``cancel`` answers False (the plugin then reports
  ``cancelled: false`` and the task keeps running); queued tasks are cancelled as usual;
- replace a dead worker: a worker that dies breaks rhapsody's pool; the running tasks are
  reported FAILED and a fresh pool is made for the next tasks.

The rhapsody session runs on its own thread and event loop; callbacks run on that thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import FrameType
from typing import Any

from . import worker
from .pool import Finished, Job, Started

log = logging.getLogger(__name__)

SUPPORTED = ("concurrent",)
"""rhapsody backends this plugin can drive without running user code in the endpoint."""
GRACE = 2.0
"""Seconds after a task's timeout before it is reported FAILED even if SIGALRM did not stop it."""
INSTALL_HINT = "pip install rhapsody-py  (or the extra: pip install 'orbit[rhapsody]')"


class _TaskTimeout(BaseException):
    """Raised in the worker by SIGALRM (a BaseException: user code's ``except Exception``
    does not swallow it)."""


def run_in_worker(message: tuple[Any, ...], timeout: float | None) -> dict[str, Any]:
    """Run one task message in a rhapsody process-pool worker (never in the endpoint)."""
    if timeout is None:
        return worker.run_one(message)
    fired = False

    def _alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        fired = True
        raise _TaskTimeout

    previous = signal.signal(signal.SIGALRM, _alarm)
    out: dict[str, Any] = {}
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        out = worker.run_one(message)  # catches _TaskTimeout raised inside the function
    except _TaskTimeout:
        pass  # fired between the function's end and the reset below
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if not fired:
        return out
    return {
        "ok": False,
        "error": f"timed out after {timeout:g} s; interrupted in its rhapsody worker process",
        "exception": "TimeoutError",
        "traceback": out.get("traceback"),
    }


def watch_parent(parent: int) -> None:
    """Initializer of the pool's processes: they exit when the endpoint is gone (a pool
    process outlives a SIGKILLed endpoint otherwise)."""
    threading.Thread(target=worker._watch_parent, args=(parent,), daemon=True).start()


def _executor(size: int) -> concurrent.futures.ProcessPoolExecutor:
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=size,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=watch_parent,
        initargs=(os.getpid(),),
    )


def check(backend: str) -> str:
    """Raise a clear RuntimeError unless rhapsody-py is usable with ``backend``; its version."""
    try:
        rhapsody = importlib.import_module("rhapsody")
        importlib.import_module("rhapsody.backends.execution.concurrent")
    except ImportError as exc:
        raise RuntimeError(
            "tasks setting backend='rhapsody' needs rhapsody-py, which is not importable here"
            f" ({exc}); install it with `{INSTALL_HINT}`, or set backend='local'"
        ) from None
    if backend not in SUPPORTED:
        raise RuntimeError(
            f"tasks setting rhapsody_backend={backend!r} is not supported: only 'concurrent'"
            " (a process pool, so user functions never run in the endpoint process) is wired"
            " and tested; 'dragon' also needs dragonhpc (plus flask and gunicorn) and is not"
            " tested here; use backend='local' otherwise"
        )
    try:
        importlib.import_module("cloudpickle")
    except ImportError:
        raise RuntimeError(
            "tasks setting backend='rhapsody' needs cloudpickle for rhapsody's process pool;"
            " install it with `pip install cloudpickle`"
        ) from None
    return str(getattr(rhapsody, "__version__", "unknown"))


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a session future's exception as seen (the outcome is read from the task dict)."""
    if not future.cancelled():
        future.exception()


class RhapsodyPool:
    """``submit(job)``; ``cancel(uid)``; ``close()`` on a rhapsody session (own thread)."""

    def __init__(
        self,
        size: int,
        started: Started,
        finished: Finished,
        *,
        work_dir: str,
        backend: str = "concurrent",
    ) -> None:
        check(backend)
        chatty = logging.getLogger("rhapsody.api.session")  # logs every submit at INFO
        if chatty.level == logging.NOTSET:
            chatty.setLevel(logging.WARNING)
        self.size = size
        self._started, self._finished = started, finished
        self._work_dir = work_dir
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._slots: asyncio.Semaphore | None = None
        self._session: Any = None
        self._backend: Any = None
        self._runs: set[asyncio.Task[None]] = set()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="orbit-tasks-rhapsody", daemon=True
        )
        self._thread.start()
        ready.result(30)  # re-raises a failed session start

    # ------------------------------------------------------------ interface of WorkerPool

    def submit(self, job: Job) -> None:
        self._loop.call_soon_threadsafe(self._spawn, job)

    def cancel(self, uid: str) -> bool:
        """Always False: rhapsody's process pool cannot stop a running task (the plugin
        cancels queued tasks itself, before they reach this backend)."""
        return False

    def close(self) -> None:
        """Kill the pool's processes and end the session; the plugin reports the running
        tasks as interrupted, queued ones stay queued in the store."""
        self._closing = True
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop already stopped
            done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                done.result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # ------------------------------------------------------------ the session thread

    def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._open())
        except BaseException as exc:
            ready.set_exception(exc)
            self._loop.close()
            return
        ready.set_result(None)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _open(self) -> None:
        rhapsody = importlib.import_module("rhapsody")
        concurrent_mod = importlib.import_module("rhapsody.backends.execution.concurrent")
        self._slots = asyncio.Semaphore(self.size)
        self._backend = await concurrent_mod.ConcurrentExecutionBackend(_executor(self.size))
        self._session = rhapsody.Session(backends=[self._backend], work_dir=self._work_dir)

    def _renew_if_broken(self) -> bool:
        """A fresh process pool when a worker died (rhapsody's pool is then broken for good)."""
        executor = self._backend.executor
        if not getattr(executor, "_broken", False):
            return False
        executor.shutdown(wait=False, cancel_futures=True)
        self._backend.executor = _executor(self.size)
        return True

    async def _shutdown(self) -> None:
        for run in list(self._runs):
            run.cancel()
        if self._backend is None:
            return
        executor = self._backend.executor
        processes = dict(getattr(executor, "_processes", None) or {})
        executor.shutdown(wait=False, cancel_futures=True)
        for proc in processes.values():  # a running task would make shutdown(wait) hang
            with contextlib.suppress(Exception):
                proc.kill()
        for proc in processes.values():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(proc.join, 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._session.close(), 10)
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:  # rhapsody's own task handlers
            t.cancel()
        if rest:
            await asyncio.wait(rest, timeout=5)
        with contextlib.suppress(OSError):  # the session's (empty) directory
            os.rmdir(self._backend._work_dir)

    def _spawn(self, job: Job) -> None:
        if self._closing:
            return
        run = self._loop.create_task(self._run(job))
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    async def _run(self, job: Job) -> None:
        assert self._slots is not None
        async with self._slots:  # RUNNING means a pool process is free for it
            if self._closing or job.uid not in self._started([job.uid]):
                return
            try:
                outcome = await self._execute(job)
            except asyncio.CancelledError:
                return  # closing: the plugin reports it as interrupted
            except Exception as exc:
                log.exception("rhapsody task %s failed", job.uid)
                outcome = {
                    "ok": False,
                    "error": f"rhapsody: {exc}",
                    "exception": type(exc).__name__,
                }
            if not self._closing:
                self._finished([(job.uid, outcome)])

    async def _execute(self, job: Job) -> dict[str, Any]:
        rhapsody = importlib.import_module("rhapsody")
        task = rhapsody.ComputeTask(
            function=run_in_worker, args=(job.message, job.timeout), uid=job.uid
        )
        [future] = await self._session.submit_tasks([task])
        future.add_done_callback(_retrieve)
        limit = None if job.timeout is None else job.timeout + GRACE
        try:
            done, _ = await asyncio.wait([future], timeout=limit)
            if not done:  # did not stop on SIGALRM: report it, keep the slot until it ends
                self._finished(
                    [
                        (
                            job.uid,
                            {
                                "ok": False,
                                "error": f"timed out after {job.timeout:g} s and did not stop"
                                " when interrupted; rhapsody's process pool cannot kill one"
                                " task, so it keeps a worker busy until it ends",
                                "exception": "TimeoutError",
                            },
                        )
                    ]
                )
                await asyncio.wait([future])
            return self._outcome(task)
        finally:
            self._backend.tasks.pop(job.uid, None)  # rhapsody keeps every task otherwise
            self._session._tasks.pop(job.uid, None)

    def _outcome(self, task: Any) -> dict[str, Any]:
        exc = task.get("exception")
        value = task.get("return_value")
        if isinstance(exc, BaseException) or not isinstance(value, dict):
            if isinstance(exc, BrokenProcessPool) and not self._closing:
                self._renew_if_broken()
                return {
                    "ok": False,
                    "error": "the worker process died while running the task (rhapsody's"
                    " process pool broke); a new pool takes the next tasks",
                    "exception": "WorkerDied",
                }
            name = type(exc).__name__ if exc is not None else "RhapsodyError"
            return {"ok": False, "error": f"rhapsody: {name}: {exc}", "exception": name}
        return value


__all__ = ["GRACE", "SUPPORTED", "RhapsodyPool", "check", "run_in_worker", "watch_parent"]
