"""Blocking collectors behind the ``metrics`` operation, one function per section.

Call them from a worker thread. Disks are read in :mod:`orbit_plugins.sysinfo.disks`.
"""

from __future__ import annotations

import getpass
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import psutil

from .disks import collect_disks
from .gpu import collect_gpus
from .schema import (
    ALL_SECTIONS,
    AddressInfo,
    CpuInfo,
    InterfaceInfo,
    MemoryInfo,
    Metrics,
    Section,
    SwapInfo,
    SystemInfo,
)

log = logging.getLogger(__name__)

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
    "collect_cpu",
    "collect_memory",
    "collect_metrics",
    "collect_network",
    "collect_system",
    "cpu_identity",
]
