"""Blocking collectors behind the ``metrics`` operation, one function per section.

Call them from a worker thread. Shared-filesystem detection is table driven
(:data:`SHARED_FSTYPES`); usage of shared mounts is read with a timeout so a hung
NFS/Lustre server cannot stall the whole snapshot.
"""

from __future__ import annotations

import getpass
import logging
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import psutil

from .gpu import collect_gpus
from .schema import (
    ALL_SECTIONS,
    AddressInfo,
    CpuInfo,
    DiskInfo,
    InterfaceInfo,
    MemoryInfo,
    Metrics,
    Section,
    SwapInfo,
    SystemInfo,
)

log = logging.getLogger(__name__)

SHARED_FSTYPES: dict[str, str] = {
    # fstype as in /proc/mounts → family of the shared filesystem
    "lustre": "lustre",
    "gpfs": "gpfs",
    "nfs": "nfs",
    "nfs4": "nfs",
    "dvs": "dvs",  # Cray Data Virtualization Service
    "beegfs": "beegfs",
    "ceph": "ceph",
    "cephfs": "ceph",
    "fuse.ceph": "ceph",
    "fuse.ceph-fuse": "ceph",
    "panfs": "panfs",
    "cifs": "smb",
    "smb": "smb",
    "smb3": "smb",
    "smbfs": "smb",
    "glusterfs": "glusterfs",
    "fuse.glusterfs": "glusterfs",
    "wekafs": "weka",
    "fuse.sshfs": "sshfs",
    "pvfs2": "orangefs",
    "orangefs": "orangefs",
    "afs": "afs",
    "quobyte": "quobyte",
    "fuse.quobyte": "quobyte",
    "fuse.juicefs": "juicefs",
    "fuse.mfs": "moosefs",
}
"""Network and parallel filesystems, visible from more than one node."""

PSEUDO_FSTYPES = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "cpuset", "debugfs",
    "devfs", "devpts", "devtmpfs", "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs",
    "fuse.portal", "fuse.snapfuse", "fusectl", "hugetlbfs", "mqueue", "nfsd", "nsfs",
    "pipefs", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs",
    "sockfs", "squashfs", "sysfs", "tmpfs", "tracefs",
})  # fmt: skip
"""Kernel and virtual filesystems that hold no user data."""

KEEP_TMPFS = frozenset({"/tmp", "/dev/shm"})
"""tmpfs mounts worth showing (node-local scratch and shared memory)."""


# --------------------------------------------------------------------------- system


def _os_release() -> str | None:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        mac = platform.mac_ver()[0]
        return f"macOS {mac}" if mac else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _login_users() -> list[str]:
    try:
        return sorted({u.name for u in psutil.users()})
    except (OSError, RuntimeError):
        return []


def collect_system() -> SystemInfo:
    """Host identity, OS, uptime and load."""
    boot = psutil.boot_time()
    uname = platform.uname()
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return SystemInfo(
        hostname=socket.gethostname(),
        fqdn=socket.getfqdn(),
        user=_user(),
        os=uname.system,
        os_release=_os_release(),
        kernel=uname.release,
        arch=uname.machine,
        python=sys.version.split()[0],
        boot_time=datetime.fromtimestamp(boot, UTC),
        uptime_seconds=round(time.time() - boot, 1),
        load_avg=load,
        users=_login_users(),
    )


# --------------------------------------------------------------------------- cpu


@cache
def cpu_identity() -> tuple[str | None, str | None]:
    """(model, vendor) of the CPU from /proc/cpuinfo, falling back to ``platform``."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or fields.get("cpu") or platform.processor() or None
    return model, fields.get("vendor_id") or fields.get("cpu implementer")


def collect_cpu(sample_seconds: float = 0.1) -> CpuInfo:
    """CPU model, core counts, frequency and utilisation over ``sample_seconds``."""
    per_cpu = [float(p) for p in psutil.cpu_percent(interval=sample_seconds, percpu=True)]
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):
        freq = None
    model, vendor = cpu_identity()
    return CpuInfo(
        model=model,
        vendor=vendor,
        cores_physical=psutil.cpu_count(logical=False),
        cores_logical=psutil.cpu_count(logical=True) or len(per_cpu),
        freq_mhz=round(freq.current, 1) if freq and freq.current else None,
        freq_max_mhz=round(freq.max, 1) if freq and freq.max else None,
        percent=round(sum(per_cpu) / len(per_cpu), 1) if per_cpu else 0.0,
        per_cpu_percent=per_cpu,
    )


# --------------------------------------------------------------------------- memory


def collect_memory() -> MemoryInfo:
    """Physical memory and swap."""
    mem, swap = psutil.virtual_memory(), psutil.swap_memory()
    return MemoryInfo(
        total=mem.total,
        available=mem.available,
        used=mem.used,
        free=mem.free,
        percent=mem.percent,
        swap=SwapInfo(total=swap.total, used=swap.used, free=swap.free, percent=swap.percent),
    )


# --------------------------------------------------------------------------- disks


class Mount(NamedTuple):
    """One line of /proc/mounts (what ``psutil.disk_partitions`` returns)."""

    device: str
    mountpoint: str
    fstype: str
    opts: str = ""


def shared_kind(fstype: str) -> str | None:
    """Family of a shared filesystem (``lustre``, ``nfs``, …), None for local ones."""
    return SHARED_FSTYPES.get(fstype.lower())


def is_pseudo(mount: Mount) -> bool:
    """True for kernel/virtual filesystems and snap images, which hold no user data."""
    fstype = mount.fstype.lower()
    if fstype == "tmpfs":
        return mount.mountpoint not in KEEP_TMPFS
    return fstype in PSEUDO_FSTYPES or mount.mountpoint.startswith("/snap/")


def block_media(device: str, sys_root: str = "/sys") -> Literal["ssd", "hdd"] | None:
    """``ssd``/``hdd`` for a local block device from its ``queue/rotational`` flag."""
    if not device.startswith("/dev/"):
        return None
    name = Path(os.path.realpath(device)).name
    node = Path(sys_root, "class", "block", name)
    if (node / "partition").exists():
        name = node.resolve().parent.name
    try:
        flag = Path(sys_root, "block", name, "queue", "rotational").read_text().strip()
    except OSError:
        return None
    return "hdd" if flag == "1" else "ssd" if flag == "0" else None


def classify_mounts(mounts: Iterable[Mount]) -> list[DiskInfo]:
    """Disks (without usage) for the real mounts; pseudo filesystems are dropped.

    A mountpoint mounted over several times is listed once, as its top-most mount.
    """
    visible = {m.mountpoint: m for m in mounts}
    disks = []
    for m in visible.values():
        if is_pseudo(m):
            continue
        kind = shared_kind(m.fstype)
        disks.append(DiskInfo(
            device=m.device, mountpoint=m.mountpoint, fstype=m.fstype,
            shared=kind is not None, shared_kind=kind,
            media=None if kind else block_media(m.device),
            read_only="ro" in m.opts.split(","),
        ))  # fmt: skip
    return disks


_pending: set[str] = set()
_pending_lock = threading.Lock()


def guarded_usage(mountpoint: str, timeout: float) -> Any:
    """``psutil.disk_usage`` in a daemon thread; TimeoutError if it does not answer.

    A mount whose previous call still hangs is not asked again.
    """
    with _pending_lock:
        if mountpoint in _pending:
            raise TimeoutError("an earlier statvfs is still hanging")
        _pending.add(mountpoint)
    box: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(psutil.disk_usage(mountpoint))
        except Exception as exc:
            box.append(exc)
        finally:
            with _pending_lock:
                _pending.discard(mountpoint)
            done.set()

    threading.Thread(target=run, name=f"statvfs {mountpoint}", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"no answer within {timeout:g}s")
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]


UsageFn = Callable[[DiskInfo], Any]


def default_usage(timeout: float) -> UsageFn:
    """Usage reader: direct for local disks, :func:`guarded_usage` for shared ones."""

    def usage(disk: DiskInfo) -> Any:
        if disk.shared:
            return guarded_usage(disk.mountpoint, timeout)
        return psutil.disk_usage(disk.mountpoint)

    return usage


def fill_usage(disk: DiskInfo, usage: UsageFn) -> DiskInfo:
    """``disk`` with total/used/free/percent, or with ``error`` if unreadable."""
    try:
        u = usage(disk)
    except (OSError, TimeoutError) as exc:
        return disk.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
    return disk.model_copy(
        update={"total": u.total, "used": u.used, "free": u.free, "percent": u.percent}
    )


def _real_mounts() -> list[Mount]:
    # all=True: psutil's default drops every "nodev" fstype, i.e. NFS and Lustre too.
    parts = psutil.disk_partitions(all=True)
    return [Mount(p.device, p.mountpoint, p.fstype, p.opts) for p in parts]


def collect_disks(
    mounts: Iterable[Mount] | None = None,
    usage: UsageFn | None = None,
    timeout: float = 5.0,
) -> list[DiskInfo]:
    """Mounted filesystems with usage; local mounts of plain files are skipped."""
    disks = classify_mounts(_real_mounts() if mounts is None else mounts)
    if mounts is None:  # bind-mounted files (/etc/hosts in containers) are not disks
        disks = [d for d in disks if d.shared or os.path.isdir(d.mountpoint)]
    read = usage or default_usage(timeout)
    return [fill_usage(d, read) for d in disks]


# --------------------------------------------------------------------------- network


def _family(family: int) -> Literal["ipv4", "ipv6", "mac"] | None:
    if family == socket.AF_INET:
        return "ipv4"
    if family == socket.AF_INET6:
        return "ipv6"
    return "mac" if family == psutil.AF_LINK else None


def _addresses(addrs: Iterable[Any]) -> list[AddressInfo]:
    out = []
    for a in addrs:
        family = _family(a.family)
        if family and a.address:
            out.append(AddressInfo(family=family, address=a.address, netmask=a.netmask))
    return out


def collect_network() -> list[InterfaceInfo]:
    """Every network interface with addresses, state, speed and byte counters."""
    addrs, stats = psutil.net_if_addrs(), psutil.net_if_stats()
    io = psutil.net_io_counters(pernic=True)
    out = []
    for name in sorted(set(addrs) | set(stats)):
        st, counters = stats.get(name), io.get(name)
        out.append(InterfaceInfo(
            name=name,
            addresses=_addresses(addrs.get(name, [])),
            is_up=bool(st and st.isup),
            is_loopback=name == "lo" or name.startswith("lo0"),
            speed_mbps=st.speed if st and st.speed > 0 else None,
            mtu=st.mtu if st and st.mtu > 0 else None,
            bytes_sent=counters.bytes_sent if counters else 0,
            bytes_recv=counters.bytes_recv if counters else 0,
        ))  # fmt: skip
    return out


# --------------------------------------------------------------------------- snapshot


def collect_metrics(
    sections: Iterable[Section] = ALL_SECTIONS,
    cpu_sample_seconds: float = 0.1,
    tool_timeout: float = 5.0,
) -> Metrics:
    """A snapshot of the requested sections; a section that fails is logged and left null."""
    collectors: dict[Section, Callable[[], Any]] = {
        "system": collect_system,
        "cpu": lambda: collect_cpu(cpu_sample_seconds),
        "memory": collect_memory,
        "disks": lambda: collect_disks(timeout=tool_timeout),
        "network": collect_network,
        "gpus": lambda: collect_gpus(tool_timeout),
    }
    values: dict[str, Any] = {}
    for section in dict.fromkeys(sections):
        try:
            values[section] = collectors[section]()
        except Exception:
            log.warning("sysinfo: collecting %s failed", section, exc_info=True)
    return Metrics(collected_at=datetime.now(UTC), **values)


__all__ = [
    "KEEP_TMPFS",
    "PSEUDO_FSTYPES",
    "SHARED_FSTYPES",
    "Mount",
    "block_media",
    "classify_mounts",
    "collect_cpu",
    "collect_disks",
    "collect_memory",
    "collect_metrics",
    "collect_network",
    "collect_system",
    "cpu_identity",
    "fill_usage",
    "guarded_usage",
    "is_pseudo",
    "shared_kind",
]
