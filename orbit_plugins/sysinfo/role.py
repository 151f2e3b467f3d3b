"""Decide what kind of host the endpoint runs on (login node, batch job, laptop, …).

Pure: every input (environment, host name, ``which``, ``exists``) can be injected.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .schema import HostRole, Role


@dataclass(frozen=True)
class Scheduler:
    """How to recognise one batch system."""

    name: str
    psij_executor: str
    job_env: tuple[str, ...]
    """Variables set inside a job of this scheduler; the first one set is the job id."""
    binaries: tuple[str, ...]
    config_paths: tuple[str, ...] = ()


SCHEDULERS: tuple[Scheduler, ...] = (
    # Order matters for binaries: sites often ship qsub wrappers around Slurm.
    Scheduler(
        "slurm",
        "slurm",
        ("SLURM_JOB_ID", "SLURM_JOBID"),
        ("sbatch", "squeue"),
        ("/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf"),
    ),
    Scheduler("lsf", "lsf", ("LSB_JOBID",), ("bsub",), ("/etc/lsf.conf",)),
    Scheduler("flux", "flux", ("FLUX_JOB_ID",), ()),
    Scheduler("cobalt", "cobalt", ("COBALT_JOBID",), ("cqsub",)),
    Scheduler("pbs", "pbs", ("PBS_JOBID",), ("qsub", "qstat"), ("/etc/pbs.conf",)),
)

COMPUTE_HOST = re.compile(
    r"^(nid\d+|(cn|node|compute|gpu)-?\d+|c\d{3}-\d{3}|x\d{4}c\d+s\d+b\d+n\d+)$"
)
"""Compute-node names: Cray ``nid001234``, ``cn042``, TACC ``c301-004``, HPE xnames."""
LOGIN_HOST = re.compile(r"(^|[-_])(login|uan|frontend|head)(\d*|[-_].*)$|^ln\d+$")
"""Login-node names: ``login03``, ``perlmutter-login12``, ``uan01``, ``ln2``."""


def _job(env: Mapping[str, str]) -> tuple[Scheduler, str, str] | None:
    for sched in SCHEDULERS:
        for var in sched.job_env:
            if env.get(var):
                return sched, var, env[var]
    return None


def _binary(which: Callable[[str], str | None]) -> tuple[Scheduler, str] | None:
    for sched in SCHEDULERS:
        for binary in sched.binaries:
            path = which(binary)
            if path:
                return sched, path
    return None


def _config(exists: Callable[[str], bool]) -> tuple[Scheduler, str] | None:
    for sched in SCHEDULERS:
        for path in sched.config_paths:
            if exists(path):
                return sched, path
    return None


def detect_host_role(
    env: Mapping[str, str] | None = None,
    hostname: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    exists: Callable[[str], bool] = os.path.exists,
) -> HostRole:
    """Classify this host; defaults read the real environment, host name and PATH."""
    env = os.environ if env is None else env
    short = (hostname or socket.gethostname()).split(".")[0].lower()
    job, binary, config = _job(env), _binary(which), _config(exists)
    evidence: list[str] = []
    if job:
        evidence.append(f"env {job[1]}={job[2]}: inside a {job[0].name} job")
    if binary:
        evidence.append(f"{binary[0].name} command on PATH: {binary[1]}")
    if config:
        evidence.append(f"{config[0].name} configuration present: {config[1]}")
    compute, login = bool(COMPUTE_HOST.match(short)), bool(LOGIN_HOST.search(short))
    if compute:
        evidence.append(f"hostname {short!r} looks like a compute node")
    if login:
        evidence.append(f"hostname {short!r} looks like a login node")

    role: Role
    if job:
        role = "batch-job"
    elif compute:
        role = "compute"
    elif binary or login:
        role = "login"
    elif config:
        role = "unknown"
    else:
        role = "laptop"
        evidence.append("no batch scheduler found (no job variables, commands or config)")

    found = job[0] if job else binary[0] if binary else config[0] if config else None
    return HostRole(
        role=role,
        scheduler=found.name if found else "none",
        psij_executor=found.psij_executor if found else "local",
        job_id=job[2] if job else None,
        hostname=short,
        python_version=sys.version.split()[0],
        evidence=evidence,
    )


__all__ = ["COMPUTE_HOST", "LOGIN_HOST", "SCHEDULERS", "Scheduler", "detect_host_role"]
