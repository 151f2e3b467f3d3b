"""The ends of an upload: may its target be written, which SHA-256 must it have, and its
atomic move into place (never through a symlink; never clobbering without ``overwrite``)."""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path

from orbit_protocol import Conflict, InvalidArgs


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse a directory, and an existing file unless ``overwrite``."""
    if path.is_dir():
        raise Conflict(f"{path} is a directory", {"path": str(path)})
    if path.exists() and not overwrite:
        raise Conflict(f"{path} exists (pass overwrite to replace it)", {"path": str(path)})


def expected_digest(begun: str | None, committed: str | None) -> str:
    """The SHA-256 an upload must have: given at put_begin, at put_commit, or both alike."""
    if begun is not None and committed is not None and begun != committed:
        raise Conflict(
            f"put_commit's sha256 {committed} differs from put_begin's {begun}",
            {"begin": begun, "commit": committed},
        )
    expected = committed or begun
    if expected is None:
        raise InvalidArgs("no sha256: give it to put_begin or to put_commit")
    return expected


def place(parent: int, temp: str, target: Path, overwrite: bool) -> None:
    """Move ``temp`` to ``target`` (both in directory ``parent``) atomically, never through
    a symlink; without ``overwrite`` an existing target is never clobbered."""
    name = target.name
    try:
        st: os.stat_result | None = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        st = None
    if st is not None and stat_mod.S_ISDIR(st.st_mode):
        raise Conflict(f"{target} is a directory", {"path": str(target)})
    if overwrite:
        os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        return
    try:
        os.link(temp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
    except FileExistsError:
        raise Conflict(
            f"{target} appeared during the upload (pass overwrite to replace it)",
            {"path": str(target)},
        ) from None
    except OSError:  # no hard links on this file system
        if st is not None:
            raise Conflict(f"{target} exists", {"path": str(target)}) from None
        os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        return
    os.unlink(temp, dir_fd=parent)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


FILE_MODE = 0o666 & ~_umask()
"""The mode of a placed file, as ``open`` would create it (the umask is read once, at import:
``os.umask()`` is process-wide, not safe to flip in a thread)."""


__all__ = ["FILE_MODE", "check_target", "expected_digest", "place"]
