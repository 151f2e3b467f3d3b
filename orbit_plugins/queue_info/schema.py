"""Wire models of the ``queue_info`` plugin (pydantic only: clients import this freely).

Times are seconds (``None``: unlimited or unknown), memory MiB.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Backend = Literal["slurm", "pbs", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueInfo(_Model):
    """A Slurm partition or a PBS queue."""

    name: str
    state: str
    default: bool = False
    time_limit: int | None = None
    nodes_total: int | None = None
    nodes_idle: int | None = None
    nodes_allocated: int | None = None
    cpus_per_node: int | None = None
    mem_per_node_mb: int | None = None
    gpus_per_node: int | None = None
    max_jobs_per_user: int | None = Field(
        default=None,
        description="jobs the asked user may run here at once (Slurm: the user's "
        "associations' MaxJobs; PBS: the queue's max_run); null: no limit known",
    )
    jobs_queued: int | None = None
    jobs_running: int | None = None
    features: list[str] = Field(default_factory=list)


class BatchJob(_Model):
    """A job in the batch system's queue (any submitter)."""

    job_id: str
    name: str
    user: str
    queue: str
    state: str
    nodes: int | None = None
    time_used: int | None = None
    time_limit: int | None = None
    reason: str | None = None


class Allocation(_Model):
    """An account (Slurm association) a user may charge."""

    account: str
    user: str | None = None
    partition: str | None = None
    qos: list[str] = Field(default_factory=list)
    limits: dict[str, str] = Field(default_factory=dict)


class JobAllocation(_Model):
    """The batch job this endpoint runs inside."""

    job_id: str
    queue: str | None = None
    n_nodes: int | None = None
    nodelist: list[str] = Field(default_factory=list)
    cpus_per_node: int | None = None
    gpus_per_node: int | None = None
    account: str | None = None
    job_name: str | None = None
    time_limit: int | None = None
    runtime: int | None = Field(default=None, description="seconds the job has run so far")


class InfoResult(_Model):
    backend: Backend
    queues: dict[str, QueueInfo]


class JobsResult(_Model):
    backend: Backend
    jobs: list[BatchJob]


class AllocationsResult(_Model):
    backend: Backend
    allocations: list[Allocation]


class BackendResult(_Model):
    backend: Backend


class JobAllocationResult(_Model):
    backend: Backend
    allocation: JobAllocation | None


class InfoArgs(_Model):
    user: str | None = Field(
        default=None, description="whose limits (max_jobs_per_user); default: the endpoint's user"
    )
    force: bool = Field(default=False, description="bypass the cache")


class UserArgs(_Model):
    user: str | None = Field(default=None, description="default: the endpoint's user; '*' all")
    force: bool = False


class QueueJobsArgs(UserArgs):
    queue: str = Field(min_length=1)


class CancelArgs(_Model):
    # first character alphanumeric: "--me" or "-u…" would be an option of scancel/qdel
    job_id: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\[\]-]*$")


class CancelResult(_Model):
    job_id: str
    status: Literal["canceled"] = "canceled"


class QueueInfoSettings(_Model):
    cache_ttl: float = Field(default=60.0, ge=0, description="seconds a result is reused")
    tool_timeout: float = Field(default=30.0, gt=0, description="timeout of sinfo/qstat/... (s)")
