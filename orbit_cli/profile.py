"""The profile file (``~/.config/orbit/profile.json`` or ``$ORBIT_PROFILE``), mode 0600.

Layout (``orbit_client.ClientSettings`` reads the ``client`` section)::

    {"client":    {"url": "amqp://alice:…@127.0.0.1:35672/orbit"},
     "endpoints": {"demo": {"url": "amqp://demo:…@…/orbit", "owner": "alice"}},
     "broker":    {"data_dir": "…", "amqp_port": 35672, "management_port": 35673, …}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["endpoint_entry", "load", "path", "save", "update", "write_private"]


def path() -> Path:
    """``$ORBIT_PROFILE`` or ``~/.config/orbit/profile.json`` (as ``orbit_client`` reads it)."""
    from orbit_client.settings import profile_path

    return profile_path()


def load(file: Path | None = None) -> dict[str, Any]:
    """The profile as a dict; ``{}`` when the file does not exist."""
    target = file or path()
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the profile {target}: {exc}") from None
    return data if isinstance(data, dict) else {}


def write_private(file: Path, text: str) -> None:
    """Write ``text`` to ``file`` readable by its owner only (0600), atomically."""
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, file)


def save(data: dict[str, Any], file: Path | None = None) -> Path:
    target = file or path()
    write_private(target, json.dumps(data, indent=2) + "\n")
    return target


def update(changes: dict[str, Any], file: Path | None = None) -> Path:
    """Merge ``changes`` section by section into the profile and save it."""
    data = load(file)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return save(data, file)


def endpoint_entry(name: str, file: Path | None = None) -> dict[str, Any]:
    """Settings the profile holds for endpoint ``name`` (url, owner, allowed_users…)."""
    entry = load(file).get("endpoints", {}).get(name, {})
    return entry if isinstance(entry, dict) else {}
