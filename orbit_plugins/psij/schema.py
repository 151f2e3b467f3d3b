"""Wire models of the ``psij`` plugin (pydantic only: clients import this freely).

Job ids are the request id of the ``submit_job`` call that created the job; output
offsets and sizes are bytes of the job's stdout/stderr files.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Executor = Literal["local", "slurm", "pbs", "lsf", "cobalt", "flux"]
State = Literal["NEW", "QUEUED", "ACTIVE", "COMPLETED", "FAILED", "CANCELED"]
TERMINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELED"})
Stream = Literal["stdout", "stderr"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Model):
    """PSI/J ``ResourceSpecV1`` fields."""

    node_count: int | None = Field(default=None, ge=1)
    process_count: int | None = Field(default=None, ge=1)
    processes_per_node: int | None = Field(default=None, ge=1)
    cpu_cores_per_process: int | None = Field(default=None, ge=1)
    gpu_cores_per_process: int | None = Field(default=None, ge=1)
    exclusive_node_use: bool = False


class Attributes(_Model):
    """PSI/J ``JobAttributes``; ``duration`` in seconds."""

    queue_name: str | None = None
    account: str | None = None
    reservation_id: str | None = None
    duration: int | None = Field(default=None, ge=1, description="wall time limit, seconds")
    custom_attributes: dict[str, str] = Field(
        default_factory=dict, description="e.g. {'slurm.constraint': 'gpu'}"
    )


class JobSpec(_Model):
    """What to run (a PSI/J job spec)."""

    executable: str = Field(min_length=1)
    arguments: list[str] = Field(default_factory=list)
    directory: str | None = Field(default=None, description="working directory on the endpoint")
    environment: dict[str, str] = Field(default_factory=dict)
    stdout_path: str | None = Field(default=None, description="default: the plugin's job dir")
    stderr_path: str | None = None
    resources: Resources = Field(default_factory=Resources)
    attributes: Attributes = Field(default_factory=Attributes)


class SubmitArgs(_Model):
    spec: JobSpec
    executor: Executor = "local"


class JobIdArgs(_Model):
    job_id: str = Field(min_length=1)


class StatusArgs(_Model):
    job_id: str = Field(min_length=1)
    stdout_offset: int = Field(default=0, ge=0)
    stderr_offset: int = Field(default=0, ge=0)
    max_bytes: int = Field(default=256 * 1024, ge=0, le=4 * 1024 * 1024)


class ListArgs(_Model):
    all_users: bool = Field(default=False, description="admins only: every user's jobs")


class JobInfo(_Model):
    """A job as recorded by the endpoint."""

    job_id: str
    native_id: str | None
    executor: Executor
    user: str
    state: State
    exit_code: int | None = None
    message: str | None = None
    executable: str
    arguments: list[str]
    directory: str | None = Field(default=None, description="asked for; null: the endpoint's")
    queue_name: str | None = None
    account: str | None = None
    node_count: int | None = None
    duration: int | None = Field(default=None, description="wall time limit asked for, seconds")
    submitted_at: float
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        """The job has ended (COMPLETED, FAILED or CANCELED)."""
        return self.state in TERMINAL


class JobStatus(JobInfo):
    """``get_job_status``: the job plus the output written since the given offsets."""

    stdout: str = ""
    stderr: str = ""
    stdout_offset: int = Field(description="offset after the returned stdout")
    stderr_offset: int
    stdout_size: int = Field(description="bytes of stdout written so far")
    stderr_size: int


class JobList(_Model):
    jobs: list[JobInfo]


class CancelResult(_Model):
    job_id: str
    state: State


class OutputChunk(_Model):
    """``job_output`` event: ``data`` starts at ``offset`` of ``stream``."""

    job_id: str
    stream: Stream
    offset: int
    end: int = Field(description="byte offset after this chunk")
    data: str


class StatusEvent(_Model):
    """``job_status`` event; sizes let a listener know whether it has all output."""

    job_id: str
    native_id: str | None
    state: State
    exit_code: int | None = None
    message: str | None = None
    user: str
    stdout_size: int = 0
    stderr_size: int = 0


class PsijSettings(_Model):
    """Endpoint-side settings (``plugin_settings.psij``)."""

    poll_interval: float = Field(default=0.25, gt=0, description="output/state poll, seconds")
    chunk_bytes: int = Field(default=32 * 1024, ge=256, le=512 * 1024)
    executors: list[Executor] = Field(default_factory=lambda: list(get_args(Executor)))
    slurm_polling_interval: float = Field(
        default=30.0, gt=0, description="PSI/J's queue poll (squeue/qstat), all batch executors"
    )
    retention: float = Field(
        default=7 * 86400, gt=0, description="finished jobs (ledger row, job dir) kept, seconds"
    )
    prune_interval: float = Field(default=3600, gt=0, description="pruning period, seconds")
    children: dict[str, Any] = Field(
        default_factory=dict, description="child endpoints: child_schema.ChildSettings"
    )
