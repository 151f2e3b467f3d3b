"""PBS Pro / OpenPBS: commands and parsers of ``qstat -Qf``, ``qstat -f``, ``pbsnodes -a``."""

from __future__ import annotations

import re

from .schema import BatchJob, JobAllocation, QueueInfo
from .slurm import parse_time

QSTAT_QUEUES = ["qstat", "-Q", "-f"]
QSTAT_JOBS = ["qstat", "-f"]
PBSNODES = ["pbsnodes", "-a"]


def parse_blocks(text: str, header: str | None) -> dict[str, dict[str, str]]:
    """``Header: name`` (or a bare name line when ``header`` is None) then ``key = value``
    lines; a line starting with a tab continues the previous value."""
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    last = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("\t") and current is not None and last:
            current[last] += line.strip()
        elif not line[0].isspace():
            name = line.strip()
            if header is not None:
                if not name.startswith(f"{header}:"):
                    continue
                name = name.split(":", 1)[1].strip()
            current = blocks[name] = {}
            last = ""
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            last = key.strip()
            current[last] = value.strip()
    return blocks


def _int(text: str | None) -> int | None:
    match = re.match(r"\d+", text or "")
    return int(match.group()) if match else None


def _mem_mb(text: str | None) -> int | None:
    match = re.fullmatch(r"(\d+)([kmgt]?)b?", (text or "").lower())
    if not match:
        return None
    scale = {"": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024, "t": 2**20}[match.group(2)]
    return int(int(match.group(1)) * scale)


def _state_counts(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", text)}


def max_run(attrs: dict[str, str], user: str | None) -> int | None:
    """A queue's running-job limit for ``user``: ``max_run = [u:USER=N]`` before
    ``[u:PBS_GENERIC=N]``, or the older ``max_user_run = N``."""
    limits = dict(re.findall(r"\[u:([^=\]]+)=(\d+)\]", attrs.get("max_run", "")))
    value = limits.get(user or "") or limits.get("PBS_GENERIC") or attrs.get("max_user_run")
    return _int(value)


def parse_queues(qstat_qf: str, pbsnodes: str, user: str | None = None) -> dict[str, QueueInfo]:
    """Queues from ``qstat -Qf`` with node counts from ``pbsnodes -a`` (nodes without a
    ``queue`` attribute serve every execution queue); ``user``'s limits."""
    nodes = parse_blocks(pbsnodes, None)
    queues: dict[str, QueueInfo] = {}
    for name, attrs in parse_blocks(qstat_qf, "Queue").items():
        if attrs.get("queue_type", "Execution").lower() != "execution":
            continue
        mine = [n for n in nodes.values() if n.get("queue", name) == name]
        counts = _state_counts(attrs.get("state_count", ""))
        enabled = attrs.get("enabled", "True") == "True"
        started = attrs.get("started", "True") == "True"
        queues[name] = QueueInfo(
            name=name,
            state="up" if enabled and started else "down",
            time_limit=parse_time(attrs.get("resources_max.walltime", "")),
            nodes_total=len(mine),
            nodes_idle=sum(1 for n in mine if n.get("state") == "free"),
            nodes_allocated=sum(1 for n in mine if "job" in n.get("state", "")),
            cpus_per_node=max(
                (_int(n.get("resources_available.ncpus")) or 0 for n in mine), default=0
            )
            or None,
            mem_per_node_mb=max(
                (_mem_mb(n.get("resources_available.mem")) or 0 for n in mine), default=0
            )
            or None,
            gpus_per_node=max(
                (_int(n.get("resources_available.ngpus")) or 0 for n in mine), default=0
            )
            or None,
            max_jobs_per_user=max_run(attrs, user),
            jobs_queued=counts.get("Queued"),
            jobs_running=counts.get("Running"),
        )
    return queues


def parse_jobs(qstat_f: str) -> list[BatchJob]:
    jobs = []
    for job_id, a in parse_blocks(qstat_f, "Job Id").items():
        jobs.append(
            BatchJob(
                job_id=job_id,
                name=a.get("Job_Name", ""),
                user=a.get("Job_Owner", "").split("@")[0],
                queue=a.get("queue", ""),
                state=a.get("job_state", ""),
                nodes=_int(a.get("Resource_List.nodect")),
                time_used=parse_time(a.get("resources_used.walltime", "")),
                time_limit=parse_time(a.get("Resource_List.walltime", "")),
                reason=a.get("comment"),
            )
        )
    return jobs


def job_allocation(job_id: str, qstat_f: str, nodefile: str | None) -> JobAllocation:
    attrs = parse_blocks(qstat_f, "Job Id").get(job_id, {})
    hosts = list(dict.fromkeys(nodefile.split())) if nodefile else []
    nodes = _int(attrs.get("Resource_List.nodect")) or (len(hosts) or None)
    cpus = _int(attrs.get("Resource_List.ncpus"))
    gpus = _int(attrs.get("Resource_List.ngpus"))
    return JobAllocation(
        job_id=job_id,
        queue=attrs.get("queue"),
        n_nodes=nodes,
        nodelist=hosts,
        cpus_per_node=cpus // nodes if cpus and nodes else None,
        gpus_per_node=gpus // nodes if gpus and nodes else None,
        account=attrs.get("Account_Name") or attrs.get("project"),
        job_name=attrs.get("Job_Name"),
        time_limit=parse_time(attrs.get("Resource_List.walltime", "")),
        runtime=parse_time(attrs.get("resources_used.walltime", "")),
    )
