"""Profile files: the JSON (mode 0600) where provisioning leaves URLs and credentials."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_profile(
    path: str | os.PathLike[str], url: str, *, section: str = "client", **fields: Any
) -> Path:
    """Write ``{section: {"url": url, **fields}}`` into a JSON profile with mode 0600.

    Other sections already in the file are kept. The file is replaced atomically and is
    never readable by group or others, also not for an instant.
    """
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data: dict[str, Any] = {}
    if target.is_file():
        with contextlib.suppress(ValueError, OSError):
            loaded = json.loads(target.read_text())
            if isinstance(loaded, dict):
                data = loaded
    data[section] = {**data.get(section, {}), "url": url, **fields}
    fd, tmp = tempfile.mkstemp(prefix=".profile-", dir=target.parent)  # created 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


__all__ = ["write_profile"]
