"""Path policy: absolute or ``~/`` paths whose real location is inside an allowed root."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from orbit_protocol import InvalidArgs, NotAuthorized


def default_roots() -> list[str]:
    return [os.path.expanduser("~"), tempfile.gettempdir()]


class PathPolicy:
    """Maps a caller's path to a real path inside one of ``roots`` or refuses it."""

    def __init__(self, roots: Sequence[str] | None = None) -> None:
        given = list(roots) if roots else default_roots()
        self.roots = [Path(os.path.realpath(os.path.expanduser(r))) for r in given]

    def resolve(self, raw: str) -> Path:
        """The real path for ``raw`` (symlinks resolved), or ``NOT_AUTHORIZED``/``INVALID_ARGS``."""
        if not raw or "\x00" in raw:
            raise InvalidArgs(f"invalid path {raw!r}")
        if raw == "~" or raw.startswith("~/"):
            raw = os.path.expanduser("~") + raw[1:]
        elif not raw.startswith("/"):
            raise InvalidArgs(f"path {raw!r} must be absolute or start with ~/")
        if ".." in Path(raw).parts:
            raise NotAuthorized(f"path {raw!r} contains '..'", {"path": raw})
        real = Path(os.path.realpath(raw))
        if not self.allowed(real):
            raise NotAuthorized(
                f"path {raw!r} is outside the allowed roots"
                + (f" (resolves to {real})" if str(real) != os.path.normpath(raw) else ""),
                {"path": raw, "roots": [str(r) for r in self.roots]},
            )
        return real

    def allowed(self, real: Path) -> bool:
        return any(real == root or root in real.parents for root in self.roots)

    def is_root(self, real: Path) -> bool:
        return real in self.roots


__all__ = ["PathPolicy", "default_roots"]
