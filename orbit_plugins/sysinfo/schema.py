"""Wire models of the ``sysinfo`` plugin (pydantic only: clients import this freely).

Sizes are bytes, rates are bytes since boot, percentages are 0-100, times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Section = Literal["system", "cpu", "memory", "disks", "network", "gpus"]
"""One part of a :class:`Metrics` snapshot."""

ALL_SECTIONS: tuple[Section, ...] = get_args(Section)

Role = Literal["login", "compute", "batch-job", "laptop", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- arguments


class MetricsArgs(_Model):
    """Arguments of ``metrics``."""

    sections: list[Section] | None = Field(
        default=None,
        description="Sections to return; omit (null) for all of them.",
    )
    fresh: bool = Field(
        default=False,
        description="Collect now instead of returning the background-prefetched snapshot.",
    )


class SysinfoSettings(_Model):
    """Endpoint-side settings of the plugin (``plugins.sysinfo`` in the endpoint config)."""

    prefetch_interval: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between background refreshes; also the maximum age of a cached "
        "snapshot. 0 disables prefetching (every call collects).",
    )
    cpu_sample_seconds: float = Field(
        default=0.1, ge=0, le=10, description="Window over which CPU utilisation is measured."
    )
    tool_timeout: float = Field(
        default=5.0, gt=0, description="Timeout (s) for nvidia-smi / rocm-smi / xpu-smi calls."
    )
    emit_events: bool = Field(
        default=True, description="Publish a ``metrics`` summary event on every refresh."
    )


# --------------------------------------------------------------------------- homedir / role


class HomedirResult(_Model):
    """Result of ``homedir``."""

    path: str = Field(description="Home directory of the user running the endpoint.")


class HostRole(_Model):
    """Result of ``host_role``: what kind of machine the endpoint runs on, and why."""

    role: Role = Field(
        description="'batch-job': inside a batch allocation; 'compute': compute-node hostname; "
        "'login': scheduler tools present or login-node hostname; 'laptop': no batch system "
        "at all (a workstation or laptop); 'unknown': contradictory or missing signals."
    )
    scheduler: str = Field(
        description="Batch system detected: slurm, pbs, lsf, flux, cobalt, or 'none'."
    )
    psij_executor: str = Field(
        description="PSI/J executor to submit with (slurm, pbs, lsf, flux, cobalt, local)."
    )
    job_id: str | None = Field(
        default=None, description="Id of the enclosing batch job, null outside a job."
    )
    hostname: str = Field(description="Short host name the decision was based on.")
    python_version: str = Field(description="Version of the endpoint's Python interpreter.")
    evidence: list[str] = Field(
        default_factory=list, description="Human-readable facts that led to the role."
    )


# --------------------------------------------------------------------------- metrics


class SystemInfo(_Model):
    """Identity and uptime of the host."""

    hostname: str = Field(description="socket.gethostname().")
    fqdn: str = Field(description="Fully qualified domain name (may equal hostname).")
    user: str = Field(description="User running the endpoint.")
    os: str = Field(description="Operating system (Linux, Darwin, …).")
    os_release: str | None = Field(
        default=None, description="Distribution name, e.g. 'Ubuntu 22.04.4 LTS'."
    )
    kernel: str = Field(description="Kernel release.")
    arch: str = Field(description="Machine architecture, e.g. x86_64, aarch64.")
    python: str = Field(description="Python version of the endpoint.")
    boot_time: datetime = Field(description="When the host booted (UTC).")
    uptime_seconds: float = Field(description="Seconds since boot.")
    load_avg: list[float] | None = Field(
        default=None, description="1, 5 and 15 minute load averages (null where unsupported)."
    )
    users: list[str] = Field(
        default_factory=list, description="Distinct names of users with a login session."
    )


class CpuInfo(_Model):
    """Processor model and utilisation."""

    model: str | None = Field(default=None, description="CPU model name.")
    vendor: str | None = Field(default=None, description="CPU vendor id, e.g. GenuineIntel.")
    cores_physical: int | None = Field(default=None, description="Physical cores.")
    cores_logical: int = Field(description="Logical CPUs (hardware threads).")
    freq_mhz: float | None = Field(default=None, description="Current frequency (MHz).")
    freq_max_mhz: float | None = Field(default=None, description="Maximum frequency (MHz).")
    percent: float = Field(description="Total utilisation over the sample window (%).")
    per_cpu_percent: list[float] = Field(description="Utilisation of each logical CPU (%).")


class SwapInfo(_Model):
    """Swap space."""

    total: int = Field(description="Swap size (bytes).")
    used: int = Field(description="Swap in use (bytes).")
    free: int = Field(description="Swap free (bytes).")
    percent: float = Field(description="Swap in use (%).")


class MemoryInfo(_Model):
    """Physical memory and swap."""

    total: int = Field(description="Physical memory (bytes).")
    available: int = Field(description="Memory available to new processes (bytes).")
    used: int = Field(description="Memory in use (bytes).")
    free: int = Field(description="Memory not used at all (bytes).")
    percent: float = Field(description="Memory in use: (total - available) / total (%).")
    swap: SwapInfo = Field(description="Swap space.")


class DiskInfo(_Model):
    """One mounted filesystem (pseudo filesystems are left out)."""

    device: str = Field(description="Mounted device or remote source (server:/export).")
    mountpoint: str = Field(description="Where it is mounted.")
    fstype: str = Field(description="Filesystem type as the kernel reports it.")
    shared: bool = Field(
        description="True for network/parallel filesystems visible from other nodes."
    )
    shared_kind: str | None = Field(
        default=None, description="Family of a shared filesystem: lustre, gpfs, nfs, ceph, …"
    )
    media: Literal["ssd", "hdd"] | None = Field(
        default=None, description="Local block device type, from /sys/block/*/queue/rotational."
    )
    read_only: bool = Field(default=False, description="Mounted read-only.")
    total: int | None = Field(default=None, description="Size (bytes); null if unreadable.")
    used: int | None = Field(default=None, description="Used (bytes).")
    free: int | None = Field(default=None, description="Free for unprivileged users (bytes).")
    percent: float | None = Field(default=None, description="Used (%).")
    error: str | None = Field(
        default=None, description="Why usage is missing (permission denied, timeout, …)."
    )


class AddressInfo(_Model):
    """One address of a network interface."""

    family: Literal["ipv4", "ipv6", "mac"] = Field(description="Address family.")
    address: str = Field(description="The address.")
    netmask: str | None = Field(default=None, description="Netmask, if any.")


class InterfaceInfo(_Model):
    """One network interface."""

    name: str = Field(description="Interface name, e.g. eth0, ib0, hsn0.")
    addresses: list[AddressInfo] = Field(default_factory=list, description="Its addresses.")
    is_up: bool = Field(description="Administratively and operationally up.")
    is_loopback: bool = Field(default=False, description="The loopback interface.")
    speed_mbps: int | None = Field(default=None, description="Link speed (Mbit/s), if known.")
    mtu: int | None = Field(default=None, description="MTU (bytes).")
    bytes_sent: int = Field(default=0, description="Bytes sent since boot.")
    bytes_recv: int = Field(default=0, description="Bytes received since boot.")


class GpuInfo(_Model):
    """One GPU; fields a vendor tool does not report are null."""

    index: int = Field(description="Index as the vendor tool numbers it.")
    vendor: Literal["nvidia", "amd", "intel"] = Field(description="GPU vendor.")
    name: str = Field(description="Product name.")
    uuid: str | None = Field(default=None, description="Vendor UUID / unique id.")
    driver_version: str | None = Field(default=None, description="Driver version.")
    memory_total: int | None = Field(default=None, description="Device memory (bytes).")
    memory_used: int | None = Field(default=None, description="Device memory in use (bytes).")
    utilization_percent: float | None = Field(default=None, description="Compute busy (%).")
    memory_utilization_percent: float | None = Field(
        default=None, description="Memory controller busy (%)."
    )
    temperature_c: float | None = Field(default=None, description="Temperature (°C).")
    power_w: float | None = Field(default=None, description="Power draw (W).")
    source: str = Field(description="Where the data came from: nvidia-smi, rocm-smi, …")


class Metrics(_Model):
    """Result of ``metrics``: a snapshot of the host; unrequested sections are null."""

    collected_at: datetime = Field(description="When the snapshot was taken (UTC).")
    system: SystemInfo | None = Field(default=None, description="Host identity and uptime.")
    cpu: CpuInfo | None = Field(default=None, description="Processor and utilisation.")
    memory: MemoryInfo | None = Field(default=None, description="Memory and swap.")
    disks: list[DiskInfo] | None = Field(default=None, description="Mounted filesystems.")
    network: list[InterfaceInfo] | None = Field(default=None, description="Interfaces.")
    gpus: list[GpuInfo] | None = Field(
        default=None, description="GPUs (an empty list when the host has none)."
    )


class MetricsSummary(_Model):
    """Payload of the ``metrics`` event, published on every background refresh."""

    hostname: str = Field(description="Host the numbers are from.")
    collected_at: datetime = Field(description="When they were taken (UTC).")
    cpu_percent: float | None = Field(default=None, description="Total CPU utilisation (%).")
    memory_percent: float | None = Field(default=None, description="Memory in use (%).")
    load_avg: list[float] | None = Field(default=None, description="1/5/15 min load.")
    gpu_utilization_percent: list[float | None] = Field(
        default_factory=list, description="Utilisation of each GPU (%)."
    )


__all__ = [
    "ALL_SECTIONS",
    "AddressInfo",
    "CpuInfo",
    "DiskInfo",
    "GpuInfo",
    "HomedirResult",
    "HostRole",
    "InterfaceInfo",
    "MemoryInfo",
    "Metrics",
    "MetricsArgs",
    "MetricsSummary",
    "Role",
    "Section",
    "SwapInfo",
    "SysinfoSettings",
    "SystemInfo",
]
