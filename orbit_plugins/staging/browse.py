"""The browsing operations of ``staging``: stat, list, mkdir and remove.

Every path goes through the :class:`~.paths.PathPolicy` (resolved and checked first, then
opened without following a symlink swapped in after the check).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_mod
from pathlib import Path

from orbit_protocol import Conflict, InvalidArgs, NotAuthorized, NotFound

from .digest import fd_sha256
from .paths import PathPolicy
from .schema import (
    Entry,
    EntryType,
    Listing,
    MkdirArgs,
    PathArgs,
    PathResult,
    RemoveArgs,
    StatArgs,
    StatResult,
)


def entry_type(mode: int) -> EntryType:
    if stat_mod.S_ISLNK(mode):
        return "link"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    return "file" if stat_mod.S_ISREG(mode) else "other"


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist", {"path": str(path)}) from None


def stat(policy: PathPolicy, args: StatArgs) -> StatResult:
    """Type, size and mtime of a path; with ``checksum`` also the file's SHA-256."""
    path = policy.resolve(args.path)
    st = _stat(path)
    kind = entry_type(st.st_mode)
    digest = None
    if args.checksum and kind == "file":
        fd = policy.open(path, os.O_RDONLY)
        try:
            digest = fd_sha256(fd)
        finally:
            os.close(fd)
    return StatResult(path=str(path), type=kind, size=st.st_size, mtime=st.st_mtime, sha256=digest)


def listing(policy: PathPolicy, args: PathArgs) -> Listing:
    """Entries of a directory, sorted by name."""
    path = policy.resolve(args.path)
    if not path.is_dir():
        _stat(path)
        raise InvalidArgs(f"{path} is not a directory", {"path": str(path)})
    entries = []
    fd = policy.open_dir(path)  # the directory that was checked, not a swapped link
    try:
        with os.scandir(fd) as it:
            for item in it:
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                kind = entry_type(st.st_mode)
                entries.append(Entry(name=item.name, type=kind, size=st.st_size, mtime=st.st_mtime))
    finally:
        os.close(fd)
    entries.sort(key=lambda e: e.name)
    return Listing(path=str(path), entries=entries)


def mkdir(policy: PathPolicy, args: MkdirArgs) -> PathResult:
    """Create a directory (and its parents unless ``parents`` is false)."""
    path = policy.resolve(args.path)
    if path.exists() and not path.is_dir():
        raise Conflict(f"{path} exists and is not a directory", {"path": str(path)})
    try:
        if args.parents:
            os.close(policy.open_dir(path, create=True))
        else:
            parent = policy.open_dir(path.parent)
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path.name, 0o777, dir_fd=parent)
            finally:
                os.close(parent)
    except FileNotFoundError:
        raise NotFound(f"the parent of {path} does not exist", {"path": str(path)}) from None
    except NotADirectoryError:
        raise Conflict(f"a part of {path} is not a directory", {"path": str(path)}) from None
    return PathResult(path=str(path))


def remove(policy: PathPolicy, args: RemoveArgs) -> PathResult:
    """Remove a file, a symlink (not its target) or a directory (non-empty: ``recursive``)."""
    real = policy.resolve(args.path)
    if policy.is_root(real):
        raise NotAuthorized(f"refusing to remove the allowed root {real}", {"path": str(real)})
    raw = Path(os.path.expanduser(args.path) if args.path.startswith("~") else args.path)
    entry = policy.resolve(str(raw.parent)) / raw.name
    parent = policy.open_dir(entry.parent)  # every removal relative to it: no link
    try:  # swapped in after the checks is followed
        try:
            st = os.lstat(entry.name, dir_fd=parent)
        except FileNotFoundError:
            raise NotFound(f"{entry} does not exist", {"path": str(entry)}) from None
        if stat_mod.S_ISDIR(st.st_mode) and args.recursive:
            shutil.rmtree(entry.name, dir_fd=parent)
        elif stat_mod.S_ISDIR(st.st_mode):
            try:
                os.rmdir(entry.name, dir_fd=parent)
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:
                    raise
                raise Conflict(
                    f"{entry} is a non-empty directory (pass recursive)", {"path": str(entry)}
                ) from None
        else:  # a file, or a symlink itself (never its target)
            os.unlink(entry.name, dir_fd=parent)
    finally:
        os.close(parent)
    return PathResult(path=str(entry))


__all__ = ["entry_type", "listing", "mkdir", "remove", "stat"]
