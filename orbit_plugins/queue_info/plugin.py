"""The ``queue_info`` plugin: queues, jobs and allocations of the host's Slurm or PBS.

Answers come from the scheduler's own commands (``sinfo``, ``squeue``, ``sacctmgr``,
``scontrol``; ``qstat``, ``pbsnodes``), run in worker threads and cached for
``cache_ttl`` seconds per question (``force=True`` bypasses the cache).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orbit_plugins.base import Call, Plugin, PluginContext, operation
from orbit_protocol import InvalidArgs, NotFound, Unavailable

from . import pbs, slurm
from .schema import (
    Allocation,
    AllocationsResult,
    Backend,
    BackendResult,
    BatchJob,
    CancelArgs,
    CancelResult,
    InfoArgs,
    InfoResult,
    JobAllocationResult,
    JobsResult,
    QueueInfoSettings,
    QueueJobsArgs,
    UserArgs,
)

T = TypeVar("T")
# scancel: "Invalid job id specified"; qdel: "Unknown Job Id 1234.server"
_UNKNOWN_JOB = re.compile(r"invalid job id|unknown job id", re.IGNORECASE)


def detect_backend() -> Backend:
    """``slurm`` if ``sinfo`` and ``squeue`` are on PATH, ``pbs`` for ``qstat`` and
    ``pbsnodes``, else ``none``."""
    if shutil.which("sinfo") and shutil.which("squeue"):
        return "slurm"
    if shutil.which("qstat") and shutil.which("pbsnodes"):
        return "pbs"
    return "none"


class QueueInfoPlugin(Plugin):
    """Batch-system queues, jobs and allocations (Slurm or PBS)."""

    name = "queue_info"
    version = "0.1.0"
    description = "Batch system info: partitions/queues, jobs, allocations, job allocation."
    settings_model = QueueInfoSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self.backend_name: Backend = "none"
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @property
    def cfg(self) -> QueueInfoSettings:
        if not isinstance(self.settings, QueueInfoSettings):
            raise TypeError("queue_info settings were not validated")
        return self.settings

    async def setup(self, ctx: PluginContext) -> None:
        await super().setup(ctx)
        self.backend_name = detect_backend()
        ctx.logger.info("queue_info backend: %s", self.backend_name)

    # ------------------------------------------------------------------ operations

    @operation(idempotent=True)
    def backend(self) -> BackendResult:
        """The batch system found on the endpoint's host: slurm, pbs or none."""
        return BackendResult(backend=self.backend_name)

    @operation(idempotent=True)
    def job_allocation(self) -> JobAllocationResult:
        """The batch job the endpoint itself runs in (None outside a job)."""
        if self.backend_name == "slurm" and (job_id := os.environ.get("SLURM_JOB_ID")):
            fields = slurm.parse_scontrol_job(self._run(["scontrol", "show", "job", job_id]))
            nodelist = fields.get("NodeList", "")
            hosts = self._run(["scontrol", "show", "hostnames", nodelist]).split()
            return JobAllocationResult(
                backend="slurm", allocation=slurm.job_allocation(fields, hosts)
            )
        if self.backend_name == "pbs" and (job_id := os.environ.get("PBS_JOBID")):
            text = self._run([*pbs.QSTAT_JOBS, job_id])
            nodefile = os.environ.get("PBS_NODEFILE")
            nodes = Path(nodefile).read_text() if nodefile and os.path.exists(nodefile) else None
            return JobAllocationResult(
                backend="pbs", allocation=pbs.job_allocation(job_id, text, nodes)
            )
        return JobAllocationResult(backend=self.backend_name, allocation=None)

    @operation(idempotent=True)
    def get_info(self, args: InfoArgs) -> InfoResult:
        """Partitions/queues with node counts, state and limits (``max_jobs_per_user`` for
        ``user``, default the endpoint's user)."""
        backend, user = self._need_backend(), self._user(args.user)

        def load() -> InfoResult:
            if backend == "pbs":
                queues = pbs.parse_queues(
                    self._run(pbs.QSTAT_QUEUES), self._run(pbs.PBSNODES), user
                )
                return InfoResult(backend=backend, queues=queues)
            queues = slurm.parse_sinfo(self._run(slurm.SINFO))
            mine: list[Allocation] = []
            if user is not None:  # "*": no one's limits
                with contextlib.suppress(Unavailable):  # no accounting database: unknown
                    mine = self.list_allocations(UserArgs(user=user, force=args.force)).allocations
            for name, queue in queues.items():
                queue.max_jobs_per_user = slurm.max_jobs_per_user(mine, name)
            return InfoResult(backend=backend, queues=queues)

        return self._cached(("info", user), args.force, load)

    @operation(idempotent=True)
    def list_jobs(self, args: QueueJobsArgs) -> JobsResult:
        """Jobs in one queue (``user``: default the endpoint's user, ``*`` everybody)."""
        return self._jobs(args.queue, args.user, args.force)

    @operation(idempotent=True)
    def list_all_jobs(self, args: UserArgs) -> JobsResult:
        """Jobs in every queue (``user``: default the endpoint's user, ``*`` everybody)."""
        return self._jobs(None, args.user, args.force)

    @operation(idempotent=True)
    def list_allocations(self, args: UserArgs) -> AllocationsResult:
        """Accounts the user may charge (Slurm associations; PBS has no such database)."""
        backend = self._need_backend()
        if backend == "pbs":
            raise Unavailable(
                "PBS keeps no allocation/account database that Orbit can read;"
                " ask your site (e.g. ALCF's sbank) for allocations"
            )
        user = self._user(args.user)
        cmd = [*slurm.SACCTMGR, slurm.SACCTMGR_FORMAT, *([] if user is None else [f"user={user}"])]

        def load() -> AllocationsResult:
            return AllocationsResult(
                backend=backend, allocations=slurm.parse_sacctmgr(self._run(cmd))
            )

        return self._cached(("alloc", user), args.force, load)

    @operation(admin_only=True)
    def cancel_job(self, args: CancelArgs, call: Call) -> CancelResult:
        """Cancel any batch job the endpoint's account may cancel (endpoint admins only)."""
        backend = self._need_backend()
        try:
            self._run(["scancel", args.job_id] if backend == "slurm" else ["qdel", args.job_id])
        except Unavailable as exc:
            if not _UNKNOWN_JOB.search(exc.message):
                raise
            raise NotFound(f"no batch job {args.job_id!r} here: {exc.message}") from None
        with self._lock:
            self._cache.clear()
        self.ctx.logger.info("user %s cancelled batch job %s", call.user, args.job_id)
        return CancelResult(job_id=args.job_id)

    # ------------------------------------------------------------------ helpers

    def _need_backend(self) -> Backend:
        if self.backend_name == "none":
            raise Unavailable("no batch system (Slurm or PBS) was found on this endpoint's host")
        return self.backend_name

    @staticmethod
    def _user(user: str | None) -> str | None:
        if user == "*":
            return None
        if (
            user is not None
            and not user.replace("-", "").replace("_", "").replace(".", "").isalnum()
        ):
            raise InvalidArgs(f"invalid user name {user!r}")
        return user or getpass.getuser()

    def _jobs(self, queue: str | None, user: str | None, force: bool) -> JobsResult:
        backend = self._need_backend()
        who = self._user(user)

        def load() -> JobsResult:
            if backend == "slurm":
                cmd = [
                    *slurm.SQUEUE,
                    *(["-u", who] if who else []),
                    *(["-p", queue] if queue else []),
                ]
                jobs = slurm.parse_squeue(self._run(cmd))
            else:
                jobs = pbs.parse_jobs(self._run(pbs.QSTAT_JOBS))
            return JobsResult(backend=backend, jobs=[j for j in jobs if _match(j, queue, who)])

        return self._cached(("jobs", queue, who), force, load)

    def _cached(self, key: tuple[Any, ...], force: bool, load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and not force and now - hit[0] < self.cfg.cache_ttl:
            value: T = hit[1]
            return value
        value = load()
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def _run(self, cmd: list[str]) -> str:
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.cfg.tool_timeout, check=False
            )
        except FileNotFoundError:
            raise Unavailable(f"{cmd[0]!r} is not on this endpoint's PATH") from None
        except subprocess.TimeoutExpired:
            raise Unavailable(f"{cmd[0]} did not answer within {self.cfg.tool_timeout} s") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise Unavailable(
                f"{' '.join(cmd[:2])} failed (exit {done.returncode}): "
                f"{detail[-1] if detail else 'no output'}"
            )
        return done.stdout


def _match(job: BatchJob, queue: str | None, user: str | None) -> bool:
    return (queue is None or job.queue == queue) and (user is None or job.user == user)
