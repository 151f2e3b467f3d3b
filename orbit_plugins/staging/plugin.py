"""The ``staging`` plugin: files of any size through the broker, in chunks.

Upload: ``put_begin`` (declares size and SHA-256; resumes an open session of the same
content) → ``put_chunk`` × n (any order, several in flight) → ``put_commit`` (checks
coverage and checksum, then places the file atomically). Download: ``stat`` with
``checksum`` → ``get_chunk`` × n. Every path goes through :class:`PathPolicy`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_mod
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from orbit_plugins.base import Call, Plugin, operation
from orbit_protocol import Conflict, InvalidArgs, NotAuthorized, NotFound

from . import codec
from .digest import fd_sha256
from .paths import PathPolicy
from .schema import (
    Chunk,
    ChunkAck,
    Entry,
    EntryType,
    GetChunkArgs,
    Listing,
    MkdirArgs,
    PathArgs,
    PathResult,
    PutBeginArgs,
    PutChunkArgs,
    PutCommitArgs,
    PutResult,
    RemoveArgs,
    StagingSettings,
    StatArgs,
    StatResult,
    Upload,
    UploadList,
    UploadRef,
)
from .uploads import Session, UploadStore, missing_ranges

MAX_DOWNLOADS = 1024
"""Downloads whose progress is tracked at once (the least recently served are forgotten)."""


@dataclass
class Download:
    """Bytes served so far to one download (for its ``progress`` events)."""

    path: str
    want: int
    served: int = 0
    last_event: float = 0.0


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


class StagingPlugin(Plugin):
    """Chunked, resumable, checksummed file transfer between clients and the endpoint host."""

    name = "staging"
    version = "0.1.0"
    description = "Files through the broker: chunked, resumable, SHA-256 checked, atomic."
    settings_model = StagingSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self.policy = PathPolicy(self.cfg.roots)
        self._store: UploadStore | None = None
        self._downloads: dict[tuple[str, str], Download] = {}
        self._downloads_lock = threading.Lock()

    @property
    def cfg(self) -> StagingSettings:
        if not isinstance(self.settings, StagingSettings):
            raise TypeError("staging settings were not validated")
        return self.settings

    @property
    def store(self) -> UploadStore:
        if self._store is None:
            self._store = UploadStore(
                Path(self.ctx.state_dir) / "uploads", self.cfg.upload_ttl, opener=self.policy.open
            )
        return self._store

    async def start(self) -> None:
        self.ctx.logger.info(
            "staging roots: %s; %d open upload(s)",
            ", ".join(map(str, self.policy.roots)),
            len(self.store.sessions()),
        )

    # ------------------------------------------------------------------ browsing

    @operation(idempotent=True)
    def stat(self, args: StatArgs) -> StatResult:
        """Type, size and mtime of a path; with ``checksum`` also the file's SHA-256."""
        path = self.policy.resolve(args.path)
        st = _stat(path)
        kind = entry_type(st.st_mode)
        digest = None
        if args.checksum and kind == "file":
            fd = self.policy.open(path, os.O_RDONLY)
            try:
                digest = fd_sha256(fd)
            finally:
                os.close(fd)
        return StatResult(
            path=str(path), type=kind, size=st.st_size, mtime=st.st_mtime, sha256=digest
        )

    @operation(idempotent=True)
    def list(self, args: PathArgs) -> Listing:
        """Entries of a directory: name, type (file, dir, link, other), size, mtime."""
        path = self.policy.resolve(args.path)
        if not path.is_dir():
            _stat(path)
            raise InvalidArgs(f"{path} is not a directory", {"path": str(path)})
        entries = []
        fd = self.policy.open_dir(path)  # the directory that was checked, not a swapped link
        try:
            with os.scandir(fd) as it:
                for item in it:
                    try:
                        st = item.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    kind = entry_type(st.st_mode)
                    entries.append(
                        Entry(name=item.name, type=kind, size=st.st_size, mtime=st.st_mtime)
                    )
        finally:
            os.close(fd)
        entries.sort(key=lambda e: e.name)
        return Listing(path=str(path), entries=entries)

    @operation(idempotent=True)
    def mkdir(self, args: MkdirArgs) -> PathResult:
        """Create a directory (and its parents unless ``parents`` is false)."""
        path = self.policy.resolve(args.path)
        if path.exists() and not path.is_dir():
            raise Conflict(f"{path} exists and is not a directory", {"path": str(path)})
        try:
            if args.parents:
                os.close(self.policy.open_dir(path, create=True))
            else:
                parent = self.policy.open_dir(path.parent)
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

    @operation
    def remove(self, args: RemoveArgs) -> PathResult:
        """Remove a file, a symlink (not its target) or a directory (non-empty: ``recursive``)."""
        real = self.policy.resolve(args.path)
        if self.policy.is_root(real):
            raise NotAuthorized(f"refusing to remove the allowed root {real}", {"path": str(real)})
        raw = Path(os.path.expanduser(args.path) if args.path.startswith("~") else args.path)
        entry = self.policy.resolve(str(raw.parent)) / raw.name
        parent = self.policy.open_dir(entry.parent)  # every removal relative to it: no link
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

    # ------------------------------------------------------------------ upload

    @operation
    def put_begin(self, args: PutBeginArgs, call: Call) -> Upload:
        """Open (or, with ``resume``, re-open) an upload session; returns its confirmed ranges."""
        path = self.policy.resolve(args.path)
        self._check_target(path, args.overwrite)
        self.store.expire()
        if args.resume:
            found = self.store.find(call.user, path, args.size, args.sha256, args.source)
            if found is not None:
                found.info.overwrite = args.overwrite
                return found.info
        try:
            os.close(self.policy.open_dir(path.parent, create=True))
        except NotADirectoryError:
            raise Conflict(f"{path.parent} is not a directory", {"path": str(path)}) from None
        session = self.store.create(
            call.user,
            path,
            args.size,
            args.sha256,
            args.source,
            args.overwrite,
            self.cfg.max_chunk,
        )
        return session.info

    @operation(idempotent=True, journal=False)
    def put_chunk(self, args: PutChunkArgs, call: Call) -> ChunkAck:
        """Write one chunk of an upload at ``offset`` (chunks may arrive in any order)."""
        session = self._session(args.upload_id, call)
        info = session.info
        try:
            data = codec.decode(args.data)
        except ValueError:
            raise InvalidArgs("chunk data is not valid base64") from None
        end = args.offset + len(data)
        if len(data) > self.cfg.max_chunk or end > info.size:
            raise InvalidArgs(
                f"chunk [{args.offset}, {end}) is larger than {self.cfg.max_chunk} bytes"
                f" or beyond the declared size {info.size}",
                {"max_chunk": self.cfg.max_chunk, "size": info.size},
            )
        try:
            fd = self.policy.open(session.temp_path, os.O_RDWR)
        except FileNotFoundError:
            self.store.forget(session)
            raise NotFound(f"upload {info.upload_id} lost its temp file; start again") from None
        try:
            os.pwrite(fd, data, args.offset)
            with session.lock:
                self.store.record(session, args.offset, end)
                self._progress(session, done=False)
                received, writes = info.received_bytes, session.prefix.writes
            chunk = (args.offset, data, writes)
            session.prefix.advance(session.lock, session.confirmed_prefix, fd, chunk)
        finally:
            os.close(fd)
        return ChunkAck(
            upload_id=info.upload_id, offset=args.offset, size=len(data), received_bytes=received
        )

    @operation
    def put_commit(self, args: PutCommitArgs, call: Call) -> PutResult:
        """Verify coverage and SHA-256, then move the file to its final name atomically."""
        session = self._session(args.upload_id, call)
        info, temp, target = session.info, session.temp_path, Path(session.info.path)
        gaps = missing_ranges(info.received, info.size)
        if gaps:
            raise Conflict(
                f"upload {info.upload_id} is incomplete: {len(gaps)} range(s) missing",
                {"missing": gaps[:20], "received_bytes": info.received_bytes},
            )
        expected = _expected_digest(info.sha256, args.sha256)
        try:
            fd = self.policy.open(temp, os.O_RDWR)
        except FileNotFoundError:
            self.store.forget(session)
            raise NotFound(f"upload {info.upload_id} lost its temp file; start again") from None
        try:
            digest = session.prefix.finish(session.lock, fd, info.size)
            if digest == expected:
                os.fsync(fd)
                os.fchmod(fd, 0o666 & ~_UMASK)
        finally:
            os.close(fd)
        if digest != expected:
            self.store.discard(session)
            raise Conflict(
                f"checksum mismatch for {target}: expected {expected}, got {digest};"
                " the upload was discarded",
                {"expected": expected, "actual": digest},
            )
        parent = self.policy.open_dir(target.parent)
        try:
            _place(parent, temp.name, target, info.overwrite)
        finally:
            os.close(parent)
        self.store.forget(session)
        with session.lock:
            self._progress(session, done=True)
        return PutResult(path=str(target), size=info.size, sha256=digest)

    @operation
    def put_abort(self, args: UploadRef, call: Call) -> PathResult:
        """Drop an upload session and its temp file."""
        session = self._session(args.upload_id, call)
        self.store.discard(session)
        return PathResult(path=session.info.path)

    @operation(idempotent=True)
    def uploads(self, call: Call) -> UploadList:
        """Open upload sessions of the caller (all of them for admins)."""
        found = self.store.sessions(None if call.is_admin else call.user)
        return UploadList(uploads=[s.info for s in found])

    # ------------------------------------------------------------------ download

    @operation(idempotent=True, journal=False)
    def get_chunk(self, args: GetChunkArgs, call: Call) -> Chunk:
        """``size`` bytes of a file from ``offset`` (fewer at the end), base64."""
        if args.size > self.cfg.max_chunk:
            raise InvalidArgs(
                f"size {args.size} is larger than max_chunk {self.cfg.max_chunk}",
                {"max_chunk": self.cfg.max_chunk},
            )
        path = self.policy.resolve(args.path)
        try:
            fd = self.policy.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound(f"{path} does not exist", {"path": str(path)}) from None
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise InvalidArgs(f"{path} is not a regular file", {"path": str(path)})
            total = st.st_size
            data = os.pread(fd, args.size, args.offset)
        finally:
            os.close(fd)
        if args.download_id is not None:
            self._served(args, call, path, len(data), total)
        return Chunk(
            offset=args.offset,
            size=len(data),
            data=codec.encode(data),
            eof=args.offset + len(data) >= total,
        )

    # ------------------------------------------------------------------ helpers

    def _session(self, upload_id: str, call: Call) -> Session:
        session = self.store.get(upload_id)
        if session is None:
            raise NotFound(f"no open upload {upload_id!r}", {"upload_id": upload_id})
        if session.info.user != call.user and not call.is_admin:
            raise NotAuthorized(
                f"upload {upload_id} belongs to another user", {"upload_id": upload_id}
            )
        return session

    @staticmethod
    def _check_target(path: Path, overwrite: bool) -> None:
        if path.is_dir():
            raise Conflict(f"{path} is a directory", {"path": str(path)})
        if path.exists() and not overwrite:
            raise Conflict(f"{path} exists (pass overwrite to replace it)", {"path": str(path)})

    def _served(self, args: GetChunkArgs, call: Call, path: Path, size: int, total: int) -> None:
        """Count a served chunk of a download and emit its ``progress`` event when due."""
        want = total if args.want is None else min(args.want, total)
        key = (call.user, args.download_id or "")
        with self._downloads_lock:
            seen = self._downloads.pop(key, None) or Download(str(path), want)
            self._downloads[key] = seen  # most recent last
            while len(self._downloads) > MAX_DOWNLOADS:
                self._downloads.pop(next(iter(self._downloads)))
            seen.served += size
            now = time.monotonic()
            done = seen.served >= seen.want
            if done:
                del self._downloads[key]
            elif now - seen.last_event < self.cfg.progress_interval:
                return
            seen.last_event = now
        self.ctx.emit(
            "progress",
            {
                "download_id": args.download_id,
                "user": call.user,
                "path": seen.path,
                "direction": "get",
                "bytes": min(seen.served, seen.want),
                "total": seen.want,
                "done": done,
            },
        )

    def _progress(self, session: Session, *, done: bool) -> None:
        now = time.monotonic()
        if not done and now - session.last_event < self.cfg.progress_interval:
            return
        session.last_event = now
        info = session.info
        self.ctx.emit(
            "progress",
            {
                "upload_id": info.upload_id,
                "user": info.user,
                "path": info.path,
                "direction": "put",
                "bytes": info.size if done else info.received_bytes,
                "total": info.size,
                "done": done,
            },
        )


def _expected_digest(begun: str | None, committed: str | None) -> str:
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


def _place(parent: int, temp: str, target: Path, overwrite: bool) -> None:
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


_UMASK = _umask()  # read once: os.umask() is process-wide, not safe to flip in a thread


__all__ = ["StagingPlugin"]
