"""GPU discovery through the vendors' command-line tools (and sysfs for Intel).

Every tool is optional: a missing, failing or hanging tool yields no GPUs and a debug
log line, never an exception. Tool paths can be overridden with ``NVIDIA_SMI_PATH``,
``ROCM_SMI_PATH`` and ``XPU_SMI_PATH``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .schema import GpuInfo

log = logging.getLogger(__name__)

MIB = 1024 * 1024

NVIDIA_FIELDS = (
    "index", "name", "uuid", "driver_version", "memory.total", "memory.used",
    "utilization.gpu", "utilization.memory", "temperature.gpu", "power.draw",
)  # fmt: skip
NVIDIA_ARGS = (f"--query-gpu={','.join(NVIDIA_FIELDS)}", "--format=csv,noheader,nounits")
ROCM_ARGS = ("--showproductname", "--showuse", "--showmeminfo", "vram", "--showtemp",
             "--showuniqueid", "--json")  # fmt: skip
XPU_ARGS = ("discovery", "--json")
INTEL_PCI_VENDOR = "0x8086"


def tool_path(env_var: str, default: str) -> str | None:
    """Absolute path of a vendor tool (``$env_var`` overrides the name), or None."""
    return shutil.which(os.environ.get(env_var) or default)


def run_tool(argv: list[str], timeout: float) -> str | None:
    """Run a tool and return its stdout, or None (logged at debug) on any failure."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s failed: %s", argv[0], exc)
        return None
    if proc.returncode != 0:
        log.debug("%s exited %d: %s", argv[0], proc.returncode, proc.stderr.strip()[:200])
        return None
    return proc.stdout


def _num(value: Any) -> float | None:
    """A number from tool output; None for '[N/A]', '[Not Supported]', '' and the like."""
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _int(value: Any, scale: int = 1) -> int | None:
    number = _num(value)
    return None if number is None else int(number * scale)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _text(value: str) -> str | None:
    value = value.strip()
    return None if not value or value.startswith("[") or value == "N/A" else value


# --------------------------------------------------------------------------- NVIDIA


def parse_nvidia_csv(text: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=<NVIDIA_FIELDS> --format=csv,noheader,nounits``."""
    gpus = []
    for row in csv.reader(io.StringIO(text), skipinitialspace=True):
        if len(row) < len(NVIDIA_FIELDS) or _int(row[0]) is None:
            continue
        f = dict(zip(NVIDIA_FIELDS, row, strict=False))
        gpus.append(GpuInfo(
            index=int(f["index"]), vendor="nvidia", name=f["name"].strip(),
            uuid=_text(f["uuid"]), driver_version=_text(f["driver_version"]),
            memory_total=_int(f["memory.total"], MIB), memory_used=_int(f["memory.used"], MIB),
            utilization_percent=_num(f["utilization.gpu"]),
            memory_utilization_percent=_num(f["utilization.memory"]),
            temperature_c=_num(f["temperature.gpu"]), power_w=_num(f["power.draw"]),
            source="nvidia-smi",
        ))  # fmt: skip
    return gpus


def nvidia_gpus(timeout: float) -> list[GpuInfo]:
    """GPUs reported by ``nvidia-smi``; [] when it is absent or fails."""
    path = tool_path("NVIDIA_SMI_PATH", "nvidia-smi")
    out = run_tool([path, *NVIDIA_ARGS], timeout) if path else None
    return parse_nvidia_csv(out) if out else []


# --------------------------------------------------------------------------- AMD


def _json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``, skipping any warnings printed before it."""
    start = text.find("{")
    data = json.loads(text[start:]) if start >= 0 else {}
    return data if isinstance(data, dict) else {}


def _first(info: Any, *prefixes: str) -> Any:
    """Value of the first key (case-insensitive) starting with one of ``prefixes``."""
    if not isinstance(info, dict):
        return None
    for prefix in prefixes:
        for key, value in info.items():
            if key.lower().startswith(prefix):
                return value
    return None


def parse_rocm_json(text: str) -> list[GpuInfo]:
    """Parse ``rocm-smi --showproductname --showuse --showmeminfo vram [--showtemp] --json``."""
    data = _json_object(text)
    driver = _first(data.get("system", {}), "driver version")
    gpus = []
    for key, info in data.items():
        if not key.startswith("card") or not key[4:].isdigit() or not isinstance(info, dict):
            continue
        total = _int(_first(info, "vram total memory (b)"))
        gpus.append(GpuInfo(
            index=int(key[4:]), vendor="amd",
            name=str(_first(info, "card series", "device name", "card model") or "AMD GPU"),
            uuid=_str(_first(info, "unique id")), driver_version=_str(driver),
            memory_total=total, memory_used=_int(_first(info, "vram total used memory (b)")),
            utilization_percent=_num(_first(info, "gpu use (%)")),
            memory_utilization_percent=_num(_first(info, "gpu memory use (%)")),
            temperature_c=_num(_first(
                info, "temperature (sensor edge)", "temperature (sensor junction)"
            )),
            power_w=_num(_first(info, "average graphics package power", "current socket")),
            source="rocm-smi",
        ))  # fmt: skip
    return gpus


def amd_gpus(timeout: float) -> list[GpuInfo]:
    """GPUs reported by ``rocm-smi``; [] when it is absent or fails."""
    path = tool_path("ROCM_SMI_PATH", "rocm-smi")
    out = run_tool([path, *ROCM_ARGS], timeout) if path else None
    return parse_rocm_json(out) if out else []


# --------------------------------------------------------------------------- Intel


def parse_xpu_json(text: str) -> list[GpuInfo]:
    """Parse ``xpu-smi discovery --json``."""
    gpus: list[GpuInfo] = []
    for dev in _json_object(text).get("device_list", []):
        if dev.get("device_type", "GPU") != "GPU":
            continue
        gpus.append(GpuInfo(
            index=int(dev.get("device_id", len(gpus))), vendor="intel",
            name=str(dev.get("device_name") or "Intel GPU"), uuid=_str(dev.get("uuid")),
            memory_total=_int(dev.get("memory_physical_size_byte")),
            source="xpu-smi",
        ))  # fmt: skip
    return gpus


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def scan_drm_intel(root: str | Path = "/sys/class/drm") -> list[GpuInfo]:
    """Intel GPUs visible in sysfs (name, driver version only); [] off Linux."""
    gpus: list[GpuInfo] = []
    for card in sorted(Path(root).glob("card[0-9]*")):
        dev = card / "device"
        if not card.name[4:].isdigit() or _read(dev / "vendor") != INTEL_PCI_VENDOR:
            continue
        gpus.append(GpuInfo(
            index=int(card.name[4:]), vendor="intel",
            name=_read(dev / "label") or f"Intel GPU {_read(dev / 'device') or ''}".strip(),
            driver_version=_read(dev / "driver" / "module" / "version"),
            source="sysfs",
        ))  # fmt: skip
    return gpus


def intel_gpus(timeout: float) -> list[GpuInfo]:
    """GPUs reported by ``xpu-smi`` if installed, else by sysfs."""
    path = tool_path("XPU_SMI_PATH", "xpu-smi")
    if path:
        out = run_tool([path, *XPU_ARGS], timeout)
        return parse_xpu_json(out) if out else []
    return scan_drm_intel()


DETECTORS: tuple[Callable[[float], list[GpuInfo]], ...] = (nvidia_gpus, amd_gpus, intel_gpus)


def collect_gpus(timeout: float = 5.0) -> list[GpuInfo]:
    """All GPUs of all vendors; [] when there are none. Never raises."""
    gpus: list[GpuInfo] = []
    for detect in DETECTORS:
        try:
            gpus.extend(detect(timeout))
        except Exception as exc:  # a parser surprise must not break metrics
            log.debug("%s failed: %s", detect.__name__, exc)
    return gpus


__all__ = [
    "amd_gpus",
    "collect_gpus",
    "intel_gpus",
    "nvidia_gpus",
    "parse_nvidia_csv",
    "parse_rocm_json",
    "parse_xpu_json",
    "run_tool",
    "scan_drm_intel",
    "tool_path",
]
