"""Mounted filesystems for the ``disks`` section: which are real, which are shared, usage.

Shared-filesystem detection is table driven (:data:`SHARED_FSTYPES`); usage of shared
mounts is read with a timeout (:func:`guarded_usage`) so a hung NFS/Lustre server cannot
stall the whole snapshot.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import psutil

from .schema import DiskInfo

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


__all__ = [
    "KEEP_TMPFS",
    "PSEUDO_FSTYPES",
    "SHARED_FSTYPES",
    "Mount",
    "block_media",
    "classify_mounts",
    "collect_disks",
    "fill_usage",
    "guarded_usage",
    "is_pseudo",
    "shared_kind",
]
