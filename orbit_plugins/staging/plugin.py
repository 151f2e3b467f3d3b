"""The ``staging`` plugin: files of any size through the broker, in chunks.

Upload: ``put_begin`` (declares size and SHA-256; resumes an open session of the same
content) → ``put_chunk`` × n (any order, several in flight) → ``put_commit`` (checks
coverage and checksum, then places the file atomically). Download: ``stat`` with
``checksum`` → ``get_chunk`` × n. Every path goes through :class:`PathPolicy`.

The operations are here; their work is beside: ``browse`` (stat, list, mkdir, remove),
``uploads`` (sessions), ``commit`` (digest and atomic placing), ``progress`` (events),
``ranges`` (byte ranges, shared with the client).
"""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path

from orbit_plugins.base import Call, Plugin, operation
from orbit_protocol import Conflict, InvalidArgs, NotAuthorized, NotFound

from . import browse, codec
from .commit import FILE_MODE, check_target, expected_digest, place
from .paths import PathPolicy
from .progress import Downloads, upload_event
from .ranges import missing_ranges
from .schema import (
    Chunk,
    ChunkAck,
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
from .uploads import Session, UploadStore


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
        self._downloads = Downloads(self.cfg.progress_interval)

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
        return browse.stat(self.policy, args)

    @operation(idempotent=True)
    def list(self, args: PathArgs) -> Listing:
        """Entries of a directory: name, type (file, dir, link, other), size, mtime."""
        return browse.listing(self.policy, args)

    @operation(idempotent=True)
    def mkdir(self, args: MkdirArgs) -> PathResult:
        """Create a directory (and its parents unless ``parents`` is false)."""
        return browse.mkdir(self.policy, args)

    @operation
    def remove(self, args: RemoveArgs) -> PathResult:
        """Remove a file, a symlink (not its target) or a directory (non-empty: ``recursive``)."""
        return browse.remove(self.policy, args)

    # ------------------------------------------------------------------ upload

    @operation
    def put_begin(self, args: PutBeginArgs, call: Call) -> Upload:
        """Open (or, with ``resume``, re-open) an upload session; returns its confirmed ranges."""
        path = self.policy.resolve(args.path)
        check_target(path, args.overwrite)
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
        expected = expected_digest(info.sha256, args.sha256)
        try:
            fd = self.policy.open(temp, os.O_RDWR)
        except FileNotFoundError:
            self.store.forget(session)
            raise NotFound(f"upload {info.upload_id} lost its temp file; start again") from None
        try:
            digest = session.prefix.finish(session.lock, fd, info.size)
            if digest == expected:
                os.fsync(fd)
                os.fchmod(fd, FILE_MODE)
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
            place(parent, temp.name, target, info.overwrite)
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

    def _served(self, args: GetChunkArgs, call: Call, path: Path, size: int, total: int) -> None:
        """Count a served chunk of a download and emit its ``progress`` event when due."""
        event = self._downloads.served(
            call.user, args.download_id or "", str(path), size, args.want, total
        )
        if event is not None:
            self.ctx.emit("progress", event)

    def _progress(self, session: Session, *, done: bool) -> None:
        """Emit an upload's ``progress`` event when due (call with ``session.lock`` held)."""
        event = upload_event(session, done=done, interval=self.cfg.progress_interval)
        if event is not None:
            self.ctx.emit("progress", event)


__all__ = ["StagingPlugin"]
