"""sysinfo plugin: real collectors on this machine, parsers, fake vendor tools, plugin."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from orbit_plugins.base import Call, PluginContext
from orbit_plugins.sysinfo import collect, disks, gpu
from orbit_plugins.sysinfo.collect import collect_metrics
from orbit_plugins.sysinfo.disks import (
    PSEUDO_FSTYPES,
    Mount,
    block_media,
    classify_mounts,
    collect_disks,
    guarded_usage,
    shared_kind,
)
from orbit_plugins.sysinfo.plugin import SysinfoPlugin
from orbit_plugins.sysinfo.role import detect_host_role
from orbit_plugins.sysinfo.schema import (
    HomedirResult,
    HostRole,
    Metrics,
    MetricsArgs,
    MetricsSummary,
    SysinfoSettings,
)
from orbit_plugins.testing import FakeContext
from tests.testkit.eventually import eventually_sync

# --------------------------------------------------------------------------- real collectors


def test_system_section_describes_this_host() -> None:
    system = collect.collect_system()
    assert system.hostname == socket.gethostname()
    assert system.python == sys.version.split()[0]
    assert system.boot_time < datetime.now(UTC)
    assert system.uptime_seconds > 0
    assert system.load_avg is not None and len(system.load_avg) == 3


def test_cpu_section_counts_cores_and_samples_utilisation() -> None:
    cpu = collect.collect_cpu(0.05)
    assert cpu.cores_logical == psutil.cpu_count() >= 1
    assert len(cpu.per_cpu_percent) == cpu.cores_logical
    assert 0.0 <= cpu.percent <= 100.0
    assert cpu.model


def test_memory_section_is_consistent() -> None:
    mem = collect.collect_memory()
    assert mem.total > 0
    assert 0 < mem.available <= mem.total
    assert 0.0 <= mem.percent <= 100.0
    assert mem.swap.total >= 0


def test_disks_section_lists_the_root_filesystem_and_no_pseudo_ones() -> None:
    disks = collect_disks()
    assert disks, "at least one disk"
    root = next(d for d in disks if d.mountpoint == "/")
    assert root.total and root.total > 0 and root.error is None
    assert not any(d.fstype in PSEUDO_FSTYPES - {"tmpfs"} for d in disks)
    assert len({d.mountpoint for d in disks}) == len(disks)


def test_network_section_lists_interfaces_with_counters() -> None:
    nics = collect.collect_network()
    assert {n.name for n in nics} == set(psutil.net_if_addrs()) | set(psutil.net_if_stats())
    assert any(n.is_up and n.addresses for n in nics)


def test_collect_metrics_returns_only_requested_sections() -> None:
    m = collect_metrics(["memory", "gpus"], cpu_sample_seconds=0)
    assert m.memory is not None and m.gpus is not None
    assert [m.system, m.cpu, m.disks, m.network] == [None] * 4
    full = collect_metrics(cpu_sample_seconds=0)
    assert None not in (full.system, full.cpu, full.memory, full.disks, full.network, full.gpus)
    Metrics.model_validate_json(full.model_dump_json())


# --------------------------------------------------------------------------- filesystems


@pytest.mark.parametrize(
    ("fstype", "kind"),
    [
        ("lustre", "lustre"),
        ("gpfs", "gpfs"),
        ("nfs", "nfs"),
        ("nfs4", "nfs"),
        ("dvs", "dvs"),
        ("beegfs", "beegfs"),
        ("ceph", "ceph"),
        ("cephfs", "ceph"),
        ("fuse.ceph-fuse", "ceph"),
        ("panfs", "panfs"),
        ("cifs", "smb"),
        ("smb3", "smb"),
        ("glusterfs", "glusterfs"),
        ("wekafs", "weka"),
        ("fuse.sshfs", "sshfs"),
        ("LUSTRE", "lustre"),
        ("ext4", None),
        ("xfs", None),
        ("btrfs", None),
        ("overlay", None),
        ("zfs", None),
    ],
)
def test_shared_filesystems_are_recognised_by_fstype(fstype: str, kind: str | None) -> None:
    assert shared_kind(fstype) == kind


FAKE_MOUNTS = """\
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
devtmpfs /dev devtmpfs rw,nosuid,size=4096k 0 0
/dev/nvme0n1p2 / xfs rw,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
10.1.1.5:/home /home nfs4 rw,relatime,vers=4.2 0 0
10.10.0.1@o2ib:/flare /lus/flare lustre rw,flock,lazystatfs 0 0
gpfs1 /gpfs/alpine gpfs rw,relatime 0 0
/dev/loop3 /snap/core20/2015 squashfs ro,nodev,relatime 0 0
/dev/sdb1 /data ext4 ro,relatime 0 0
/dev/sdc1 /data ext4 rw,relatime 0 0
"""


def _fake_mounts() -> list[Mount]:
    return [Mount(*line.split()[:4]) for line in FAKE_MOUNTS.splitlines()]


def test_classify_mounts_drops_pseudo_filesystems_and_flags_shared_ones() -> None:
    disks = {d.mountpoint: d for d in classify_mounts(_fake_mounts())}
    assert list(disks) == ["/", "/tmp", "/home", "/lus/flare", "/gpfs/alpine", "/data"]
    assert [disks[m].shared_kind for m in ("/home", "/lus/flare", "/gpfs/alpine")] == [
        "nfs",
        "lustre",
        "gpfs",
    ]
    assert all(disks[m].shared for m in ("/home", "/lus/flare", "/gpfs/alpine"))
    assert not any(disks[m].shared for m in ("/", "/tmp", "/data"))
    assert disks["/data"].device == "/dev/sdc1"  # the top-most mount wins
    assert not disks["/data"].read_only


class _Usage:
    def __init__(self, total: int, used: int) -> None:
        self.total, self.used, self.free = total, used, total - used
        self.percent = round(100 * used / total, 1)


def test_collect_disks_fills_usage_and_records_unreadable_mounts() -> None:
    def usage(disk: Any) -> _Usage:
        if disk.mountpoint == "/gpfs/alpine":
            raise PermissionError(13, "Permission denied")
        return _Usage(1000, 250)

    disks = {d.mountpoint: d for d in collect_disks(_fake_mounts(), usage)}
    assert disks["/lus/flare"].total == 1000 and disks["/lus/flare"].percent == 25.0
    assert disks["/gpfs/alpine"].total is None
    assert "PermissionError" in (disks["/gpfs/alpine"].error or "")


def test_guarded_usage_gives_up_on_a_hanging_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hanging(path: str) -> _Usage:
        release.wait(5)
        return _Usage(10, 5)

    monkeypatch.setattr(psutil, "disk_usage", hanging)
    with pytest.raises(TimeoutError, match="no answer"):
        guarded_usage("/lus/hung", 0.05)
    with pytest.raises(TimeoutError, match="still hanging"):
        guarded_usage("/lus/hung", 0.05)
    release.set()
    eventually_sync(lambda: "/lus/hung" not in disks._pending, timeout=2, what="released")
    assert guarded_usage("/lus/hung", 1).total == 10


def test_block_media_reads_the_parent_devices_rotational_flag(tmp_path: Path) -> None:
    part = tmp_path / "devices" / "sda" / "sda1"
    part.mkdir(parents=True)
    (part / "partition").write_text("1\n")
    (tmp_path / "class" / "block").mkdir(parents=True)
    (tmp_path / "class" / "block" / "sda1").symlink_to(part)
    (tmp_path / "block" / "sda" / "queue").mkdir(parents=True)
    (tmp_path / "block" / "sda" / "queue" / "rotational").write_text("1\n")
    (tmp_path / "block" / "vdz" / "queue").mkdir(parents=True)
    (tmp_path / "block" / "vdz" / "queue" / "rotational").write_text("0\n")
    assert block_media("/dev/sda1", str(tmp_path)) == "hdd"
    assert block_media("/dev/vdz", str(tmp_path)) == "ssd"
    assert block_media("/dev/nope", str(tmp_path)) is None
    assert block_media("server:/export", str(tmp_path)) is None


# --------------------------------------------------------------------------- GPUs

NVIDIA_CSV = """\
0, NVIDIA A100-SXM4-40GB, GPU-4f0a8c11-1b9a-6c4e-0d2e-2e2f7c1b9f3a, 535.104.05, 40960, 4, 0, 0, 31, 52.85
1, NVIDIA A100-SXM4-40GB, GPU-9d3e1a27-7c55-2b0f-8a61-0c4d5e6f7a8b, 535.104.05, 40960, 38012, 97, 45, 64, 312.40
2, NVIDIA GeForce GTX 1080, GPU-00000000-1111-2222-3333-444444444444, 535.104.05, 8192, 512, 3, [N/A], 40, [Not Supported]
"""  # noqa: E501

ROCM_JSON = {
    "card0": {
        "Temperature (Sensor edge) (C)": "35.0",
        "Temperature (Sensor junction) (C)": "38.0",
        "Temperature (Sensor memory) (C)": "46.0",
        "Unique ID": "0x8a2fc3e3f5e5b5a1",
        "GPU use (%)": "12",
        "GFX Activity": "1370953",
        "VRAM Total Memory (B)": "68702699520",
        "VRAM Total Used Memory (B)": "10960896",
        "Card series": "AMD INSTINCT MI250X",
        "Card model": "0x7408",
        "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]",
        "Card SKU": "D65209",
    },
    "card1": {
        "Temperature (Sensor junction) (C)": "41.0",
        "Unique ID": "N/A",
        "GPU use (%)": "0",
        "VRAM Total Memory (B)": "68702699520",
        "VRAM Total Used Memory (B)": "0",
        "Card Series": "AMD Instinct MI300X",
    },
    "system": {"Driver version": "6.7.0"},
}

XPU_JSON = {
    "device_list": [
        {
            "device_function_type": "physical",
            "device_id": 0,
            "device_name": "Intel(R) Data Center GPU Max 1550",
            "device_type": "GPU",
            "drm_device": "/dev/dri/card1",
            "pci_bdf_address": "0000:29:00.0",
            "pci_device_id": "0xbd5",
            "uuid": "00000000-0000-0029-0000-002f0bd58086",
            "vendor_name": "Intel(R) Corporation",
        }
    ]
}


def test_parse_nvidia_csv() -> None:
    gpus = gpu.parse_nvidia_csv(NVIDIA_CSV)
    assert [g.index for g in gpus] == [0, 1, 2]
    a100 = gpus[1]
    assert a100.vendor == "nvidia" and a100.name == "NVIDIA A100-SXM4-40GB"
    assert a100.memory_total == 40960 * 1024 * 1024
    assert a100.memory_used == 38012 * 1024 * 1024
    assert (a100.utilization_percent, a100.temperature_c, a100.power_w) == (97.0, 64.0, 312.4)
    assert a100.driver_version == "535.104.05" and a100.uuid and a100.uuid.startswith("GPU-")
    assert gpus[2].memory_utilization_percent is None and gpus[2].power_w is None


def test_parse_rocm_json_tolerates_key_variants_and_leading_warnings() -> None:
    text = "WARNING: AMD GPU device(s) is/are in a low-power state.\n" + json.dumps(ROCM_JSON)
    gpus = gpu.parse_rocm_json(text)
    assert [(g.index, g.name) for g in gpus] == [
        (0, "AMD INSTINCT MI250X"),
        (1, "AMD Instinct MI300X"),
    ]
    mi250 = gpus[0]
    assert mi250.vendor == "amd" and mi250.driver_version == "6.7.0"
    assert (mi250.memory_total, mi250.memory_used) == (68702699520, 10960896)
    assert (mi250.utilization_percent, mi250.temperature_c) == (12.0, 35.0)
    assert gpus[1].temperature_c == 41.0  # MI300X reports no edge sensor


def test_parse_xpu_json_and_sysfs_scan(tmp_path: Path) -> None:
    [pvc] = gpu.parse_xpu_json(json.dumps(XPU_JSON))
    assert (pvc.vendor, pvc.index, pvc.name) == ("intel", 0, "Intel(R) Data Center GPU Max 1550")
    for card, vendor in (("card0", "0x8086"), ("card1", "0x10de")):
        dev = tmp_path / card / "device"
        dev.mkdir(parents=True)
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "device").write_text("0x46a6\n")
    [igpu] = gpu.scan_drm_intel(tmp_path)
    assert (igpu.index, igpu.name, igpu.source) == (0, "Intel GPU 0x46a6", "sysfs")


def test_parsers_return_nothing_for_garbage() -> None:
    assert gpu.parse_nvidia_csv("No devices were found\n") == []
    assert gpu.parse_rocm_json("{}") == []
    assert gpu.parse_xpu_json('{"device_list": []}') == []


def _fake_tool(bindir: Path, name: str, body: str) -> None:
    bindir.mkdir(exist_ok=True)
    script = bindir / name
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty bin dir that is the whole PATH (plus /bin for ``sh``/``sleep``)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/bin{os.pathsep}/usr/bin")
    for var in ("NVIDIA_SMI_PATH", "ROCM_SMI_PATH", "XPU_SMI_PATH"):
        monkeypatch.delenv(var, raising=False)
    return bindir


def test_fake_vendor_tools_on_path_end_to_end(fake_path: Path) -> None:
    _fake_tool(
        fake_path,
        "nvidia-smi",
        'case "$1" in --query-gpu=index,name,*) ;; *) exit 9;; esac\n'
        f"cat <<'EOF'\n{NVIDIA_CSV}EOF",
    )
    _fake_tool(
        fake_path,
        "rocm-smi",
        f"test \"$1\" = --showproductname || exit 9\ncat <<'EOF'\n{json.dumps(ROCM_JSON)}\nEOF",
    )
    gpus = gpu.collect_gpus(timeout=5)
    assert [g.vendor for g in gpus if g.vendor != "intel"] == ["nvidia"] * 3 + ["amd"] * 2
    assert gpus[0].source == "nvidia-smi" and gpus[3].source == "rocm-smi"


def test_missing_failing_or_hanging_tools_yield_no_gpus(
    fake_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=gpu.__name__)
    assert gpu.nvidia_gpus(1) == [] and gpu.amd_gpus(1) == []  # not installed
    _fake_tool(fake_path, "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    assert gpu.nvidia_gpus(1) == []
    _fake_tool(fake_path, "rocm-smi", "exec sleep 10")
    started = time.monotonic()
    assert gpu.amd_gpus(0.3) == []
    assert time.monotonic() - started < 5
    _fake_tool(fake_path, "xpu-smi", "echo 'not json'")
    assert gpu.intel_gpus(1) == []  # no JSON in the output
    assert any("exited 9" in r.getMessage() for r in caplog.records)


def test_xpu_parse_error_is_swallowed_by_collect_gpus(fake_path: Path) -> None:
    _fake_tool(fake_path, "xpu-smi", 'echo \'{"device_list": [{"device_id": "x"}]}\'')
    assert gpu.collect_gpus(1) == []


def test_tool_path_override(fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = fake_path.parent / "opt"
    _fake_tool(elsewhere, "my-nvidia-smi", f"cat <<'EOF'\n{NVIDIA_CSV}EOF")
    monkeypatch.setenv("NVIDIA_SMI_PATH", str(elsewhere / "my-nvidia-smi"))
    assert len(gpu.nvidia_gpus(5)) == 3


# --------------------------------------------------------------------------- host role


def test_host_role_inside_a_slurm_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    role = detect_host_role()
    assert (role.role, role.scheduler, role.psij_executor, role.job_id) == (
        "batch-job",
        "slurm",
        "slurm",
        "4242",
    )
    assert any("SLURM_JOB_ID=4242" in e for e in role.evidence)


def _which(*present: str) -> Any:
    return lambda name: f"/usr/bin/{name}" if name in present else None


@pytest.mark.parametrize(
    ("env", "host", "binaries", "configs", "role", "scheduler"),
    [
        ({"PBS_JOBID": "77.pbs01"}, "x3006c0s13b0n0", (), (), "batch-job", "pbs"),
        ({"LSB_JOBID": "5"}, "batch1", ("bsub",), (), "batch-job", "lsf"),
        ({"FLUX_JOB_ID": "f2"}, "tioga12", (), (), "batch-job", "flux"),
        ({}, "nid001234", ("sbatch",), (), "compute", "slurm"),
        ({}, "login03.frontier.olcf.ornl.gov", ("sbatch",), (), "login", "slurm"),
        ({}, "polaris-login-02", ("qsub",), (), "login", "pbs"),
        ({}, "perlmutter", ("sbatch", "qsub"), (), "login", "slurm"),
        ({}, "uan01", (), (), "login", "none"),
        ({}, "mybox", (), ("/etc/slurm/slurm.conf",), "unknown", "slurm"),
        ({}, "alices-macbook.local", (), (), "laptop", "none"),
    ],
)
def test_host_role_decisions(
    env: dict[str, str],
    host: str,
    binaries: tuple[str, ...],
    configs: tuple[str, ...],
    role: str,
    scheduler: str,
) -> None:
    result = detect_host_role(env, host, _which(*binaries), lambda p: p in configs)
    assert (result.role, result.scheduler) == (role, scheduler)
    assert result.psij_executor == ("local" if scheduler == "none" else scheduler)
    assert result.evidence


# --------------------------------------------------------------------------- plugin


CALL = Call("r1", "alice", "ep")


async def _metrics(plugin: SysinfoPlugin, **args: Any) -> Metrics:
    raw = await plugin.invoke(SysinfoPlugin.operations()["metrics"], MetricsArgs(**args), CALL)
    json.dumps(raw)  # JSON-able
    return Metrics.model_validate(raw)


def test_plugin_declares_idempotent_operations_with_schemas() -> None:
    ops = SysinfoPlugin.operations()
    assert set(ops) == {"homedir", "host_role", "metrics"}
    assert all(op.idempotent and not op.admin_only for op in ops.values())
    assert ops["metrics"].args_model is MetricsArgs
    schemas = ops["metrics"].json_schemas()
    assert "description" in schemas["args"]["properties"]["sections"]
    assert schemas["result"]["title"] == "Metrics"
    assert SysinfoPlugin().settings == SysinfoSettings()
    with pytest.raises(ValueError):
        SysinfoPlugin({"prefetch_interval": -1})


async def test_plugin_prefetches_caches_and_refreshes(tmp_path: Path) -> None:
    ctx = FakeContext(tmp_path)
    assert isinstance(ctx, PluginContext)
    plugin = SysinfoPlugin({"prefetch_interval": 30, "cpu_sample_seconds": 0})
    await plugin.setup(ctx)
    await plugin.start()
    try:
        first = await _metrics(plugin)
        assert first.memory and first.memory.total > 0 and first.disks and first.gpus is not None
        assert first.system and first.system.hostname == socket.gethostname()
        cached = await _metrics(plugin, sections=["cpu"])
        assert cached.collected_at == first.collected_at  # served from the prefetch cache
        assert cached.cpu is not None and cached.memory is None
        fresh = await _metrics(plugin, fresh=True)
        assert fresh.collected_at > first.collected_at
        partial = await _metrics(plugin, sections=["memory"], fresh=True)
        assert partial.memory and partial.system is None
        assert (await _metrics(plugin)).collected_at == fresh.collected_at  # cache kept
    finally:
        await plugin.stop()
    assert plugin._prefetch is None
    topic, summary = ctx.events[0]
    assert topic == "metrics"
    assert MetricsSummary.model_validate(summary).memory_percent is not None


async def test_concurrent_calls_share_one_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orbit_plugins.sysinfo import plugin as plugin_module

    runs: list[float] = []

    def counting(*args: Any) -> Metrics:
        runs.append(time.monotonic())
        time.sleep(0.05)
        return collect_metrics(["memory"], 0)

    monkeypatch.setattr(plugin_module, "collect_metrics", counting)
    plugin = SysinfoPlugin({"prefetch_interval": 30})
    await plugin.setup(FakeContext(tmp_path))  # not started: no prefetch, empty cache
    results = await asyncio.gather(*(_metrics(plugin, sections=["memory"]) for _ in range(5)))
    assert len(runs) == 1 and len({r.collected_at for r in results}) == 1
    fresh = await asyncio.gather(*(_metrics(plugin, fresh=True) for _ in range(3)))
    # the 2nd and 3rd asked after the 1st fresh collection had begun, so one more run
    # (begun after both asked) serves both of them
    assert len(runs) == 1 + 2
    assert len({r.collected_at for r in fresh}) == 2


async def test_prefetch_disabled_collects_on_every_call(tmp_path: Path) -> None:
    plugin = SysinfoPlugin({"prefetch_interval": 0, "cpu_sample_seconds": 0})
    await plugin.setup(FakeContext(tmp_path))
    await plugin.start()
    assert plugin._prefetch is None
    a, b = await _metrics(plugin), await _metrics(plugin)
    assert b.collected_at > a.collected_at
    await plugin.stop()


async def test_plugin_homedir_and_host_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    plugin = SysinfoPlugin()
    await plugin.setup(FakeContext(tmp_path))
    ops = SysinfoPlugin.operations()
    home = await plugin.invoke(ops["homedir"], ops["homedir"].args_model(), CALL)
    assert HomedirResult.model_validate(home).path == str(Path.home())
    role = HostRole.model_validate(
        await plugin.invoke(ops["host_role"], ops["host_role"].args_model(), CALL)
    )
    assert (role.role, role.job_id) == ("batch-job", "99")


async def test_stop_does_not_hang_while_a_collection_is_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orbit_plugins.sysinfo import plugin as plugin_module

    def slow(*args: Any) -> Metrics:
        time.sleep(0.5)
        return Metrics(collected_at=datetime.now(UTC))

    monkeypatch.setattr(plugin_module, "collect_metrics", slow)
    plugin = SysinfoPlugin({"prefetch_interval": 10})
    await plugin.setup(FakeContext(tmp_path))
    await plugin.start()
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await plugin.stop()
    assert time.monotonic() - started < 0.3
