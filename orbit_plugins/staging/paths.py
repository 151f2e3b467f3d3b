"""Path policy: absolute or ``~/`` paths whose real location is inside an allowed root.

:meth:`PathPolicy.resolve` checks a path; :meth:`PathPolicy.open` and
:meth:`PathPolicy.open_dir` then open it without following any symlink below the root
(an ``openat`` walk, ``O_NOFOLLOW`` on every component), so a directory swapped for a
symlink between the check and the open is refused instead of followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
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

    def root_of(self, real: Path) -> Path:
        """The deepest allowed root containing ``real`` (``NOT_AUTHORIZED`` if none)."""
        inside = [r for r in self.roots if real == r or r in real.parents]
        if not inside:
            raise NotAuthorized(f"{real} is outside the allowed roots", {"path": str(real)})
        return max(inside, key=lambda r: len(r.parts))

    def open_dir(self, real: Path, *, create: bool = False) -> int:
        """A descriptor of directory ``real``, reached from its root without following links;
        with ``create``, missing directories on the way are made (``mkdir -p``)."""
        root = self.root_of(real)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in real.relative_to(root).parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=fd)
                try:
                    step = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except NotADirectoryError:  # also what O_DIRECTORY|O_NOFOLLOW gives for a link
                    if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                        raise OSError(errno.ELOOP, "symlink", part) from None
                    raise
                os.close(fd)
                fd = step
        except OSError as exc:
            os.close(fd)
            raise _refuse_link(exc, real) from None
        return fd

    def open(self, real: Path, flags: int, mode: int = 0o600) -> int:
        """``os.open(real, flags)`` with no symlink followed below the root, the last
        component included (a link there or on the way: ``NOT_AUTHORIZED``)."""
        parent = self.open_dir(real.parent)
        try:
            return os.open(real.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
        except OSError as exc:
            raise _refuse_link(exc, real) from None
        finally:
            os.close(parent)

    def allowed(self, real: Path) -> bool:
        return any(real == root or root in real.parents for root in self.roots)

    def is_root(self, real: Path) -> bool:
        return real in self.roots


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _refuse_link(exc: OSError, real: Path) -> OSError:
    """``ELOOP`` (a symlink met with ``O_NOFOLLOW``) becomes ``NOT_AUTHORIZED``."""
    if exc.errno == errno.ELOOP:
        return NotAuthorized(
            f"{real} changed into a symlink after it was checked; refused",
            {"path": str(real)},
        )
    return exc


__all__ = ["PathPolicy", "default_roots"]
