"""Slurm: the commands ``queue_info`` runs and parsers of their (pipe-separated) output."""

from __future__ import annotations

import re

from .schema import Allocation, BatchJob, JobAllocation, QueueInfo

SINFO = ["sinfo", "-h", "-o", "%P|%a|%l|%D|%F|%c|%m|%G|%f"]
SQUEUE = ["squeue", "-h", "-o", "%i|%j|%u|%P|%T|%D|%M|%l|%r"]
SACCTMGR = ["sacctmgr", "-n", "-P", "show", "assoc"]
SACCTMGR_FORMAT = "format=Account,User,Partition,QOS,GrpTRES,MaxWall,MaxJobs"


def parse_time(text: str) -> int | None:
    """Seconds of a Slurm time (``infinite``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``);
    ``None`` for no limit or a value it cannot read (``INVALID``, ``Partition_Limit``: one odd
    job must not fail the whole listing)."""
    try:
        return _seconds(text.strip())
    except ValueError:
        return None


def _seconds(text: str) -> int | None:
    if not text or text.upper() in {"INFINITE", "UNLIMITED", "N/A", "NOT_SET", "(NULL)"}:
        return None
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))  # D-HH, D-HH:MM
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:  # plain minutes
            parts = [0, parts[0], 0]
        parts = [0] * (3 - len(parts)) + parts
    hours, minutes, seconds = parts
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _int(text: str) -> int | None:
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else None


def _gpus(gres: str) -> int | None:
    total = 0
    for item in gres.split(","):
        if item.startswith("gpu"):
            count = _int(item.split("(")[0].rsplit(":", 1)[-1])
            total = max(total, count or 0)
    return total or None


def parse_sinfo(text: str) -> dict[str, QueueInfo]:
    """Partitions from :data:`SINFO`; rows of one partition (node groups) are merged."""
    queues: dict[str, QueueInfo] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != 9:
            continue
        name, avail, limit, _nodes, states, cpus, mem, gres, features = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        alloc, idle, _other, total = (_int(x) or 0 for x in states.split("/"))
        q = queues.get(name)
        if q is None:
            q = queues[name] = QueueInfo(
                name=name,
                state=avail,
                default=default,
                time_limit=parse_time(limit),
                nodes_total=0,
                nodes_idle=0,
                nodes_allocated=0,
            )
        q.nodes_total = (q.nodes_total or 0) + total
        q.nodes_idle = (q.nodes_idle or 0) + idle
        q.nodes_allocated = (q.nodes_allocated or 0) + alloc
        q.cpus_per_node = max(q.cpus_per_node or 0, _int(cpus) or 0) or None
        q.mem_per_node_mb = max(q.mem_per_node_mb or 0, _int(mem) or 0) or None
        q.gpus_per_node = max(q.gpus_per_node or 0, _gpus(gres) or 0) or None
        if features not in ("(null)", ""):
            q.features = sorted(set(q.features) | set(features.split(",")))
    return queues


def parse_squeue(text: str) -> list[BatchJob]:
    jobs = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != 9:
            continue
        job_id, name, user, queue, state, nodes, used, limit, reason = fields
        jobs.append(
            BatchJob(
                job_id=job_id,
                name=name,
                user=user,
                queue=queue,
                state=state,
                nodes=_int(nodes),
                time_used=parse_time(used),
                time_limit=parse_time(limit),
                reason=None if reason in ("None", "") else reason,
            )
        )
    return jobs


def parse_sacctmgr(text: str) -> list[Allocation]:
    allocations = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 6 or not fields[0]:
            continue
        account, user, partition, qos, grp_tres, max_wall = fields[:6]
        max_jobs = fields[6] if len(fields) > 6 else ""
        pairs = (("GrpTRES", grp_tres), ("MaxWall", max_wall), ("MaxJobs", max_jobs))
        limits = {k: v for k, v in pairs if v}
        allocations.append(
            Allocation(
                account=account,
                user=user or None,
                partition=partition or None,
                qos=[q for q in qos.split(",") if q],
                limits=limits,
            )
        )
    return allocations


def max_jobs_per_user(allocations: list[Allocation], partition: str) -> int | None:
    """The most jobs the user may run at once in ``partition`` under one of their accounts;
    ``None`` when no association applies or one that applies sets no ``MaxJobs``."""
    limits = [a.limits.get("MaxJobs") for a in allocations if a.partition in (None, partition)]
    if not limits or not all(limit and limit.isdigit() for limit in limits):
        return None
    return max(int(limit) for limit in limits if limit)


def _gpus_of_job(fields: dict[str, str], nodes: int | None) -> int | None:
    """GPUs per node from ``TresPerNode=gres/gpu:4`` or ``AllocTRES=...,gres/gpu=8``."""
    per_node = re.search(r"gres/gpu(?::[^:,=]+)?:(\d+)", fields.get("TresPerNode", ""))
    if per_node:
        return int(per_node.group(1))
    total = re.search(r"gres/gpu=(\d+)", fields.get("AllocTRES", ""))
    return int(total.group(1)) // nodes if total and nodes else None


def parse_scontrol_job(text: str) -> dict[str, str]:
    """``Key=Value`` pairs of ``scontrol show job ID``."""
    return dict(re.findall(r"(\w[\w:/]*)=(\S*)", text))


def job_allocation(fields: dict[str, str], hosts: list[str]) -> JobAllocation:
    cpus, nodes = _int(fields.get("NumCPUs", "")), _int(fields.get("NumNodes", ""))
    return JobAllocation(
        job_id=fields.get("JobId", ""),
        queue=fields.get("Partition"),
        n_nodes=nodes,
        nodelist=hosts,
        cpus_per_node=cpus // nodes if cpus and nodes else None,
        gpus_per_node=_gpus_of_job(fields, nodes),
        account=fields.get("Account") or None,
        job_name=fields.get("JobName") or None,
        time_limit=parse_time(fields.get("TimeLimit", "")),
        runtime=parse_time(fields.get("RunTime", "")),
    )
