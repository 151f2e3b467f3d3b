"""queue_info parsers on the real output formats (printed by the fake scheduler scripts)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import pytest

from orbit_plugins.base import Call
from orbit_plugins.queue_info import pbs, slurm
from orbit_plugins.queue_info.plugin import QueueInfoPlugin
from orbit_plugins.queue_info.schema import InfoArgs, UserArgs
from orbit_protocol import Unavailable

FAKES = Path(__file__).resolve().parents[1] / "fakes"


def fake(kind: str, *args: str) -> str:
    return subprocess.run(
        [str(FAKES / kind / args[0]), *args[1:]], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30:00", 1800),
        ("1:00:00", 3600),
        ("2-00:00:00", 172800),
        ("1-12", 129600),
        ("60", 3600),
        ("infinite", None),
        ("UNLIMITED", None),
    ],
)
def test_slurm_time(text: str, seconds: int | None) -> None:
    assert slurm.parse_time(text) == seconds


def test_sinfo_merges_node_groups_and_marks_default() -> None:
    queues = slurm.parse_sinfo(fake("slurm", *slurm.SINFO))
    assert list(queues) == ["debug", "regular", "shared"]
    debug, regular, shared = queues["debug"], queues["regular"], queues["shared"]
    assert debug.default and not regular.default
    assert (debug.nodes_total, debug.nodes_idle, debug.gpus_per_node) == (4, 3, 4)
    assert debug.time_limit == 1800 and debug.features == ["a100", "gpu"]
    assert (regular.nodes_total, regular.nodes_idle, regular.nodes_allocated) == (100, 30, 64)
    assert regular.mem_per_node_mb == 1024000 and regular.time_limit == 172800
    assert (shared.state, shared.time_limit, shared.cpus_per_node) == ("down", None, 64)


def test_squeue_sacctmgr_scontrol() -> None:
    jobs = slurm.parse_squeue(fake("slurm", *slurm.SQUEUE, "-u", "alice"))
    assert [(j.job_id, j.queue, j.state, j.time_used) for j in jobs] == [
        ("4242", "debug", "RUNNING", 723),
        ("4243", "regular", "PENDING", 0),
    ]
    assert jobs[1].reason == "Priority" and jobs[0].reason is None
    allocs = slurm.parse_sacctmgr(fake("slurm", *slurm.SACCTMGR, slurm.SACCTMGR_FORMAT))
    assert [a.account for a in allocs] == ["m1234", "m1234_g", "m5678"]
    assert allocs[0].qos == ["normal", "debug"] and allocs[0].limits["GrpTRES"] == "cpu=10000"
    fields = slurm.parse_scontrol_job(fake("slurm", "scontrol", "show", "job", "77"))
    alloc = slurm.job_allocation(fields, ["nid001", "nid002"])
    assert (alloc.job_id, alloc.queue, alloc.n_nodes, alloc.cpus_per_node) == ("77", "debug", 2, 64)
    assert (alloc.account, alloc.time_limit) == ("m1234", 1800)
    assert (alloc.gpus_per_node, alloc.runtime) == (4, 73)  # AllocTRES gres/gpu=8 on 2 nodes


def test_slurm_max_jobs_per_user_from_the_users_associations() -> None:
    allocs = slurm.parse_sacctmgr(fake("slurm", *slurm.SACCTMGR, slurm.SACCTMGR_FORMAT))
    alice = [a for a in allocs if a.user == "alice"]
    assert [a.limits.get("MaxJobs") for a in alice] == ["50", "8"]
    # debug: m1234 (all partitions, 50) or m1234_g (debug, 8): up to 50 under one account
    assert slurm.max_jobs_per_user(alice, "debug") == 50
    assert slurm.max_jobs_per_user(alice, "regular") == 50
    bob = [a for a in allocs if a.user == "bob"]
    assert slurm.max_jobs_per_user(bob, "regular") is None  # no MaxJobs: no limit known
    assert slurm.max_jobs_per_user([], "regular") is None
    fields = {"TresPerNode": "gres/gpu:a100:4", "NumNodes": "3", "JobId": "9"}
    assert slurm.job_allocation(fields, []).gpus_per_node == 4


def test_pbs_queues_jobs_and_continuation_lines() -> None:
    queues = pbs.parse_queues(fake("pbs", *pbs.QSTAT_QUEUES), fake("pbs", *pbs.PBSNODES))
    assert list(queues) == ["workq", "debug"]  # the routing queue is left out
    workq = queues["workq"]
    assert (workq.state, workq.time_limit, workq.jobs_running, workq.jobs_queued) == (
        "up",
        86400,
        2,
        1,
    )
    assert (workq.nodes_total, workq.nodes_idle, workq.nodes_allocated) == (3, 1, 2)
    assert (workq.cpus_per_node, workq.gpus_per_node, workq.mem_per_node_mb) == (64, 4, 257736)
    assert queues["debug"].state == "down"
    assert workq.max_jobs_per_user == 20 and queues["debug"].max_jobs_per_user is None
    qf = fake("pbs", *pbs.QSTAT_QUEUES)
    assert pbs.parse_queues(qf, "", "alice")["workq"].max_jobs_per_user == 40  # [u:alice=40]
    assert pbs.max_run({"max_user_run": "5"}, "bob") == 5  # the older attribute
    jobs = pbs.parse_jobs(fake("pbs", *pbs.QSTAT_JOBS))
    assert [(j.job_id, j.user, j.state, j.nodes) for j in jobs] == [
        ("101.pbs01", "alice", "R", 2),
        ("102.pbs01", "bob", "Q", 4),
    ]
    assert jobs[0].reason is not None and jobs[0].reason.endswith("(node02:ncpus=64)")
    alloc = pbs.job_allocation(
        "101.pbs01", fake("pbs", *pbs.QSTAT_JOBS), "node01\nnode01\nnode02\n"
    )
    assert (alloc.nodelist, alloc.cpus_per_node, alloc.account) == (
        ["node01", "node02"],
        64,
        "proj1",
    )
    assert (alloc.gpus_per_node, alloc.runtime) == (4, 602)  # ngpus 8 on 2 nodes, 00:10:02


class Ctx:
    endpoint = "ep"
    logger = logging.getLogger("test.queue_info")
    state_dir = "/tmp"

    def emit(self, topic: str, data: dict[str, object], *, persistent: bool = False) -> None:
        pass


def test_plugin_cache_allocation_and_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{FAKES / 'slurm'}:/usr/bin:/bin")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    plugin = QueueInfoPlugin({"cache_ttl": 60})
    asyncio.run(plugin.setup(Ctx()))
    assert plugin.backend().backend == "slurm"
    first = plugin.get_info(InfoArgs())
    assert plugin.get_info(InfoArgs()) is first  # cached
    assert plugin.get_info(InfoArgs(force=True)) is not first
    alice = plugin.get_info(InfoArgs(user="alice")).queues
    assert alice["debug"].max_jobs_per_user == 50
    assert plugin.get_info(InfoArgs(user="*")).queues["debug"].max_jobs_per_user is None
    alloc = plugin.job_allocation().allocation
    assert alloc is not None and alloc.nodelist == ["nid001", "nid002"]
    assert [a.user for a in plugin.list_allocations(UserArgs(user="bob")).allocations] == ["bob"]

    monkeypatch.setenv("PATH", f"{FAKES / 'pbs'}:/usr/bin:/bin")
    asyncio.run(plugin.setup(Ctx()))
    assert plugin.backend().backend == "pbs"
    with pytest.raises(Unavailable, match="PBS keeps no allocation"):
        plugin.list_allocations(UserArgs())
    plugin.cancel_job(  # admin-only at the endpoint; the plugin runs qdel
        __import__("orbit_plugins.queue_info.schema").queue_info.schema.CancelArgs(
            job_id="101.pbs01"
        ),
        Call("r", "root", "ep", is_admin=True),
    )


@pytest.mark.parametrize("job_id", ["--me", "-ubob", "-1", "", "12 34", "1;rm"])
def test_cancel_refuses_job_ids_that_would_be_options(job_id: str) -> None:
    """`scancel --me` would cancel every job of the endpoint's account (the endpoint's own too)."""
    from pydantic import ValidationError

    from orbit_plugins.queue_info.schema import CancelArgs

    with pytest.raises(ValidationError):
        CancelArgs(job_id=job_id)
    assert CancelArgs(job_id="1234_[1-3]").job_id == "1234_[1-3]"
