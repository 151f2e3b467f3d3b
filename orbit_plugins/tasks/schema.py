"""Wire models of the ``tasks`` plugin (pydantic only: clients import this freely).

A task is an executable (``executable`` + ``arguments``), a function given by import path
(``function="pkg.mod:func"`` with JSON ``args``/``kwargs``), or a cloudpickled callable
(``pickled``: base64 of ``cloudpickle.dumps((func, args, kwargs))``; endpoints accept it
only with ``allow_cloudpickle``). States: QUEUED → RUNNING → DONE | FAILED | CANCELED.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

State = Literal["QUEUED", "RUNNING", "DONE", "FAILED", "CANCELED"]
FINAL_STATES: frozenset[str] = frozenset({"DONE", "FAILED", "CANCELED"})
UID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSpec(_Model):
    """One task to run; exactly one of ``executable``, ``function``, ``pickled``."""

    uid: str | None = Field(
        default=None,
        pattern=UID_PATTERN,
        description="Client-chosen id (makes re-submission idempotent); assigned if omitted.",
    )
    executable: str | None = Field(default=None, description="Program to run (PATH is searched).")
    arguments: list[str] = Field(default_factory=list)
    environment: dict[str, str] = Field(
        default_factory=dict, description="Added to the endpoint's environment."
    )
    cwd: str | None = None
    function: str | None = Field(
        default=None, pattern=r"^[\w.]+:[\w.]+$", description="Import path 'module:func'."
    )
    args: list[Any] = Field(default_factory=list, description="JSON arguments of `function`.")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    pickled: str | None = Field(
        default=None,
        description="base64 cloudpickle of (func, args, kwargs), or of func alone when"
        " `pickled_args` is given.",
    )
    pickled_args: str | None = Field(
        default=None,
        description="base64 cloudpickle of (args, kwargs) for `pickled` (a mapped function is"
        " then the same blob in every task and is unpickled once per worker).",
    )
    timeout: float | None = Field(default=None, gt=0, description="Seconds; then it is killed.")
    type: Literal["default", "mpi"] = Field(
        default="default",
        description="'mpi': run the executable under the endpoint's MPI launcher"
        " (tasks setting mpi_launcher, e.g. mpiexec -n RANKS) with `ranks` processes.",
    )
    ranks: int | None = Field(
        default=None, ge=1, le=65536, description="Processes of an MPI task (type 'mpi')."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Kept, returned as is.")

    @model_validator(mode="after")
    def _one_kind(self) -> TaskSpec:
        count = (
            (self.executable is not None) + (self.function is not None) + (self.pickled is not None)
        )
        if count != 1:  # the message needs the list; the common case skips building it
            given = [
                k for k in ("executable", "function", "pickled") if getattr(self, k) is not None
            ]
            raise ValueError(
                "a task needs exactly one of executable, function, pickled"
                f" (got {', '.join(given) or 'none'})"
            )
        if self.pickled_args is not None and self.pickled is None:
            raise ValueError("pickled_args needs pickled")
        if self.type == "mpi" and self.executable is None:
            raise ValueError(
                "an MPI task runs an executable under the MPI launcher (functions: not supported)"
            )
        if self.ranks is not None and self.type != "mpi":
            raise ValueError("ranks is for MPI tasks: give type 'mpi' too")
        return self

    @property
    def kind(self) -> Literal["executable", "function", "pickled"]:
        if self.executable is not None:
            return "executable"
        return "function" if self.function is not None else "pickled"


class SubmitArgs(_Model):
    """Arguments of ``submit_tasks``."""

    tasks: list[TaskSpec] = Field(min_length=1, max_length=100_000)


class RunArgs(SubmitArgs):
    """Arguments of ``run_tasks``."""

    pool: bool = Field(
        default=False,
        description="Sent through a pool: after a restart this member reports the unfinished"
        " tasks FAILED instead of running them (the pool redelivered their batch).",
    )


class SubmitResult(_Model):
    """One accepted task."""

    uid: str
    state: State


class WaitArgs(_Model):
    """Arguments of ``wait_tasks``."""

    uids: list[str] = Field(min_length=1, max_length=100_000)
    timeout: float | None = Field(
        default=None,
        ge=0,
        description="Seconds to wait for all final states (0: snapshot now); capped by the "
        "call's own deadline.",
    )


class UidArgs(_Model):
    """Arguments naming one task."""

    uid: str


class ListArgs(_Model):
    """Arguments of ``list_tasks``."""

    state: State | None = None
    limit: int = Field(default=100, ge=1, le=10_000)


class TaskRecord(_Model):
    """What the endpoint knows about a task (events carry the same fields, minus results)."""

    uid: str
    owner: str
    kind: Literal["executable", "function", "pickled"]
    state: State
    submitted: float
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    return_value: Any = None
    return_encoding: Literal["json", "cloudpickle"] | None = None
    error: str | None = None
    exception: str | None = Field(default=None, description="Exception type name.")
    exception_pickled: str | None = Field(default=None, description="base64 cloudpickle.")
    traceback: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CancelResult(_Model):
    """Result of ``cancel_task``."""

    uid: str
    state: State
    cancelled: bool


class CancelAllResult(_Model):
    """Result of ``cancel_all_tasks``."""

    cancelled: int


class TasksSettings(_Model):
    """Endpoint-side settings of the plugin (``plugin_settings.tasks``)."""

    workers: int | None = Field(
        default=None, ge=1, le=1024, description="Function worker processes (default: cores)."
    )
    max_processes: int | None = Field(
        default=None, ge=1, description="Concurrent executable tasks (default: cores)."
    )
    allow_cloudpickle: bool = Field(
        default=False, description="Accept cloudpickled callables (unpickled in workers only)."
    )
    allow_executables: bool = True
    allowed_functions: list[str] = Field(
        default_factory=lambda: ["*"], description="fnmatch patterns of allowed import paths."
    )
    notify_window: float = Field(
        default=0.1, ge=0, le=5, description="Seconds over which status events are coalesced."
    )
    max_output: int = Field(
        default=65536, ge=0, description="Bytes of stdout/stderr kept per executable task."
    )
    max_result: int = Field(
        default=1 << 20, ge=1024, description="Bytes of an encoded return value kept."
    )
    default_timeout: float | None = Field(default=None, gt=0)
    mpi_launcher: list[str] = Field(
        default_factory=lambda: ["mpiexec", "-n", "{ranks}"],
        min_length=1,
        description="Command line put before an MPI task's executable; {ranks} is replaced by"
        " its ranks (default 1). E.g. ['srun', '-n', '{ranks}'] inside a Slurm allocation.",
    )
    retention: float = Field(
        default=7 * 86400,
        gt=0,
        description="Seconds a final task's record (state, output, result) is kept.",
    )
    prune_interval: float = Field(default=3600, gt=0, description="Pruning period, seconds.")
    backend: Literal["local", "rhapsody"] = Field(
        default="local",
        description="Where function tasks run: 'local' (Orbit's own worker subprocesses) or"
        " 'rhapsody' (rhapsody-py's process pool; needs `pip install rhapsody-py`, else the"
        " plugin is unavailable with that message). Executables always run as the endpoint's"
        " own child processes.",
    )
    rhapsody_backend: str = Field(
        default="concurrent",
        description="rhapsody backend for backend='rhapsody': only 'concurrent' (run on a"
        " process pool of `workers` processes) is supported; others are refused at setup.",
    )


__all__ = [
    "FINAL_STATES",
    "CancelAllResult",
    "CancelResult",
    "ListArgs",
    "RunArgs",
    "State",
    "SubmitArgs",
    "SubmitResult",
    "TaskRecord",
    "TaskSpec",
    "TasksSettings",
    "UidArgs",
    "WaitArgs",
]
