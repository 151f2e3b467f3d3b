"""Moved to :mod:`orbit_plugins.psij.client`; this alias keeps old imports working."""

from orbit_plugins.psij.client import (
    TERMINAL,
    AsyncJobs,
    CancelResult,
    JobHandle,
    JobInfo,
    Jobs,
    JobStatus,
    OutputChunk,
    Stream,
    SyncJobHandle,
    job_spec,
)

__all__ = [
    "TERMINAL",
    "AsyncJobs",
    "CancelResult",
    "JobHandle",
    "JobInfo",
    "JobStatus",
    "Jobs",
    "OutputChunk",
    "Stream",
    "SyncJobHandle",
    "job_spec",
]
