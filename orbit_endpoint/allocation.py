"""The batch allocation an endpoint runs in, read from the scheduler's environment.

Announced in presence (``allocation``), so a child endpoint started inside a batch job
tells everyone which job and nodes it stands for without a call. Nothing is executed:
only the variables Slurm, PBS and LSF set in every job.
"""

from __future__ import annotations

from collections.abc import Mapping

# scheduler, then (field, environment variable) in the order they are reported
_SCHEDULERS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "slurm",
        (
            ("job_id", "SLURM_JOB_ID"),
            ("nodes", "SLURM_JOB_NODELIST"),
            ("num_nodes", "SLURM_JOB_NUM_NODES"),
            ("queue", "SLURM_JOB_PARTITION"),
            ("account", "SLURM_JOB_ACCOUNT"),
        ),
    ),
    ("pbs", (("job_id", "PBS_JOBID"), ("queue", "PBS_QUEUE"), ("nodefile", "PBS_NODEFILE"))),
    ("lsf", (("job_id", "LSB_JOBID"), ("nodes", "LSB_HOSTS"), ("queue", "LSB_QUEUE"))),
)


def batch_allocation(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``{"scheduler": "slurm", "job_id": ..., ...}`` inside a batch job, else ``None``."""
    for scheduler, fields in _SCHEDULERS:
        values = {name: environ[var] for name, var in fields if environ.get(var)}
        if "job_id" in values:
            return {"scheduler": scheduler, **values}
    return None


__all__ = ["batch_allocation"]
