"""Glue to psij-python: executors, PSI/J job specs, the exit-code wrapper, output reads.

Everything here blocks (PSI/J runs ``sbatch``/``qsub``/``Popen``): call it in a thread.
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from orbit_protocol import InvalidArgs, Unavailable

from .schema import JobSpec

WRAPPER = (
    'ec="$1"; pf="$2"; shift 2; echo $$ > "$pf"; "$@"; rc=$?; '
    'echo $rc > "$ec.tmp" && mv "$ec.tmp" "$ec"; exit $rc'
)
"""Runs the job's command and records its exit code in a file, so a job re-attached after
an endpoint restart still reports its true exit code (PSI/J's local ``attach`` cannot)."""

BATCH_COMMANDS = {"slurm": "sbatch", "pbs": "qsub", "lsf": "bsub", "cobalt": "qsub"}
NAME_ATTRIBUTE = {
    "slurm": "slurm.job-name",
    "pbs": "pbs.N",
    "lsf": "lsf.J",
    "cobalt": "cobalt.jobname",
}


class Executors:
    """One PSI/J executor instance per name, created on first use."""

    def __init__(self, enabled: Sequence[str], slurm_polling_interval: float) -> None:
        self._enabled = enabled
        self._slurm_polling = slurm_polling_interval
        self._instances: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        if name not in self._enabled:
            raise Unavailable(
                f"executor {name!r} is disabled on this endpoint (enabled: {self._enabled})"
            )
        if name == "flux" and importlib.util.find_spec("flux") is None:
            raise Unavailable(
                "executor 'flux' needs Flux's Python bindings (the module 'flux', from"
                " flux-core) and an endpoint running inside a Flux instance"
            )
        command = BATCH_COMMANDS.get(name)
        if command and shutil.which(command) is None:
            raise Unavailable(
                f"executor {name!r} needs {command!r}, which is not on this endpoint's PATH"
            )
        with self._lock:
            if name not in self._instances:
                self._instances[name] = self._create(name)
            return self._instances[name]

    def _create(self, name: str) -> Any:
        from psij import JobExecutor

        config: Any = None
        if name in BATCH_COMMANDS:
            from psij.executors.batch.batch_scheduler_executor import (
                BatchSchedulerExecutorConfig,
            )

            config = BatchSchedulerExecutorConfig(
                queue_polling_interval=max(1, int(self._slurm_polling)),
                initial_queue_polling_delay=0,
            )
        try:
            executor: Any = JobExecutor.get_instance(name, config=config)
        except ValueError as exc:
            raise Unavailable(f"PSI/J has no usable executor {name!r}: {exc}") from None
        if name in BATCH_COMMANDS:
            # PSI/J's batch list() asks os.getlogin(), which fails without a terminal (errno 6)
            executor._current_user = getpass.getuser
        return executor


def check_executable(spec: JobSpec) -> None:
    """Raise ``InvalidArgs`` when a local job's executable cannot be found."""
    exe = spec.executable
    if "/" in exe:
        path = Path(spec.directory or ".") / exe
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise InvalidArgs(f"executable {exe!r} does not exist or is not executable")
    elif shutil.which(exe, path=spec.environment.get("PATH")) is None:
        raise InvalidArgs(f"executable {exe!r} is not on the endpoint's PATH")
    if spec.directory and not Path(spec.directory).is_dir():
        raise InvalidArgs(f"directory {spec.directory!r} does not exist on the endpoint")


def psij_job(
    spec: JobSpec,
    name: str,
    stdout: str,
    stderr: str,
    wrap: tuple[str, str] | None,
    executor: str = "local",
) -> Any:
    """A PSI/J ``Job``; ``wrap=(ec_file, pid_file)`` runs the command in :data:`WRAPPER`.

    PSI/J 0.9.11's batch templates never write the job name (they read ``job.name``, which
    does not exist), so it also goes in as a custom attribute (``slurm.job-name``, ``pbs.N``,
    ``lsf.J``, ``cobalt.jobname``): the name is how a job is found again after a crash
    mid-submit (Slurm, PBS and LSF; a Cobalt job interrupted then is reported as such).
    """
    import psij

    executable, arguments = spec.executable, list(spec.arguments)
    if wrap is not None:
        arguments = ["-c", WRAPPER, "orbit-job", *wrap, executable, *arguments]
        executable = "/bin/sh"
    res, att = spec.resources, spec.attributes
    try:
        resources = psij.ResourceSpecV1(
            node_count=res.node_count,
            process_count=res.process_count,
            processes_per_node=res.processes_per_node,
            cpu_cores_per_process=res.cpu_cores_per_process,
            gpu_cores_per_process=res.gpu_cores_per_process,
            exclusive_node_use=res.exclusive_node_use,
        )
    except (ValueError, psij.InvalidJobException) as exc:
        raise InvalidArgs(f"inconsistent resources: {exc}") from None
    custom: dict[str, object] = dict(att.custom_attributes)
    if executor in NAME_ATTRIBUTE:
        custom.setdefault(NAME_ATTRIBUTE[executor], name)
    attributes = psij.JobAttributes(
        duration=timedelta(seconds=att.duration or 600),
        queue_name=att.queue_name,
        account=att.account,
        reservation_id=att.reservation_id,
        custom_attributes=custom or None,
    )
    return psij.Job(
        psij.JobSpec(
            executable=executable,
            arguments=arguments,
            directory=spec.directory,
            name=name,
            environment=dict(spec.environment) or None,
            stdout_path=stdout,
            stderr_path=stderr,
            resources=resources,
            attributes=attributes,
        )
    )


def read_text(path: str, offset: int, limit: int, final: bool) -> tuple[str, int]:
    """Up to ``limit`` bytes of ``path`` from ``offset`` as text, and the offset after them.

    A multi-byte UTF-8 character cut at the end is left for the next read, unless ``final``
    and the read reached the end of the file (the job is over: nothing will complete it).
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(limit)
    except FileNotFoundError:
        return "", offset
    if not final or len(data) == limit:  # a full read of a finished job may stop mid-char
        data = _whole_chars(data)
    return data.decode("utf-8", errors="replace"), offset + len(data)


def _whole_chars(data: bytes) -> bytes:
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


def write_synced(path: Path, text: str) -> None:
    """Write ``path`` and fsync it (a marker that must survive a crash right after)."""
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def start_time(pid: int) -> float | None:
    """The start time of process ``pid`` (guards against PID reuse), None if it is gone."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` is still the process we launched and has not exited (zombies count
    as exited)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 0.5:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def kill_tree(pid: int, started: float | None) -> None:
    """Kill a local job's launcher and everything below it."""
    import psutil

    if not alive(pid, started):
        return
    try:
        root = psutil.Process(pid)
        for child in root.children(recursive=True):
            child.kill()
        root.kill()
    except psutil.Error:
        pass


def find_batch_job(executor: str, name: str, timeout: float = 30) -> str | None:
    """The native id of the caller's batch job named ``name``, or None if the scheduler does not
    list one (Slurm ``squeue --me``, PBS ``qstat -f -F json -x``, LSF ``bjobs -a``).

    Raises ``Unavailable`` when the scheduler cannot be asked (then nothing can be concluded).
    """
    if executor == "slurm":
        cmd = ["squeue", "--me", "-h", "-t", "all", "-o", "%i %j"]
    elif executor == "pbs":
        cmd = ["qstat", "-f", "-F", "json", "-x"]
    elif executor == "lsf":
        cmd = ["bjobs", "-a", "-noheader", "-o", "jobid job_name"]
    else:
        raise Unavailable(f"cannot look jobs up by name with executor {executor!r}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"{cmd[0]} failed: {exc}") from None
    if executor in ("slurm", "lsf"):
        for line in out.stdout.splitlines():
            native, _, job_name = line.strip().partition(" ")
            if job_name.strip() == name:
                return native
        return None
    try:
        jobs = json.loads(out.stdout).get("Jobs", {})
    except ValueError as exc:
        raise Unavailable(f"qstat printed no JSON: {exc}") from None
    owner = getpass.getuser()
    for native, job in jobs.items():
        if job.get("Job_Name") == name and str(job.get("Job_Owner", "")).split("@")[0] == owner:
            return str(native)
    return None
