"""Upload and download files through an endpoint's ``staging`` plugin, resumably.

``await upload(client, "hpc1", "data.bin", "~/in/data.bin", progress=cb)`` hashes the file,
opens (or re-opens) an upload session, sends the chunks the endpoint has not confirmed,
``parallel`` at a time, and commits: the endpoint checks the SHA-256 and renames the file
into place. ``download`` keeps ``<local>.orbit-part`` plus a ``.json`` record of the
confirmed ranges next to the target, so a second call continues where the first stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orbit_protocol import Conflict, InvalidArgs

from .codec import decode, encode
from .digest import BLOCK
from .ranges import add_range, chunks, covered, missing_ranges
from .schema import DEFAULT_CHUNK, Range

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient

DEFAULT_PARALLEL = 8
Progress = Callable[[int, int], Any]
"""``progress(done_bytes, total_bytes)``; called after every confirmed chunk."""


def sha256_of(path: str | os.PathLike[str], stop: threading.Event | None = None) -> str:
    """SHA-256 of a file (``stop`` set: give up early, the result is then meaningless)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while (block := handle.read(BLOCK)) and not (stop is not None and stop.is_set()):
            digest.update(block)
    return digest.hexdigest()


async def _run_bounded(jobs: Iterator[Range], parallel: int, work: Callable[..., Any]) -> None:
    """Run ``work(offset, length)`` for every job, at most ``parallel`` at a time."""

    async def worker() -> None:
        for offset, length in jobs:  # the shared iterator hands out each job once
            await work(offset, length)

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, parallel))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _describe_source(source: Path) -> tuple[int, str]:
    """Size and resume identity of a local file: a hash of its path, size and mtime."""
    if not source.is_file():
        raise FileNotFoundError(f"{source} is not a file")
    st = source.stat()
    key = f"{source.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    return st.st_size, hashlib.sha256(key.encode()).hexdigest()[:32]


def _check_target(target: Path, overwrite: bool) -> None:
    if target.is_dir():
        raise InvalidArgs(f"{target} is a directory; name the file to create")
    if target.exists() and not overwrite:
        raise Conflict(f"{target} exists (pass overwrite to replace it)", {"path": str(target)})


def _notify(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


async def upload(
    client: AsyncOrbitClient,
    endpoint: str,
    local: str | os.PathLike[str],
    remote: str,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    parallel: int = DEFAULT_PARALLEL,
    resume: bool = True,
) -> dict[str, Any]:
    """Copy ``local`` to ``remote`` on ``endpoint``; returns ``{path, size, sha256, resumed}``.

    ``resumed`` is the number of bytes the endpoint already had from an interrupted upload
    of the same content to the same path (0 for a fresh upload).
    """
    source = Path(local)
    size, identity = await asyncio.to_thread(_describe_source, source)
    stop = threading.Event()
    # the file's SHA-256 is computed while the chunks flow and given to put_commit
    digest = asyncio.ensure_future(asyncio.to_thread(sha256_of, source, stop))
    try:
        job = _Transfer(client, endpoint, overwrite, progress, chunk_size, parallel, resume)
        return await _send_file(job, source, remote, size, identity, digest)
    finally:
        stop.set()
        await asyncio.gather(digest, return_exceptions=True)


@dataclass(frozen=True)
class _Transfer:
    """Who moves a file, and how (the options of :func:`upload` / :func:`download`)."""

    client: AsyncOrbitClient
    endpoint: str
    overwrite: bool
    progress: Progress | None
    chunk_size: int
    parallel: int
    resume: bool

    async def call(self, operation: str, **args: Any) -> Any:
        return await self.client.call(self.endpoint, operation, **args)

    def notify(self, done: int, total: int) -> None:
        _notify(self.progress, done, total)


async def _send_file(
    job: _Transfer,
    source: Path,
    remote: str,
    size: int,
    identity: str,
    digest: asyncio.Future[str],
) -> dict[str, Any]:
    session = await job.call(
        "staging.put_begin",
        path=remote,
        size=size,
        source=identity,
        overwrite=job.overwrite,
        resume=job.resume,
    )
    upload_id: str = session["upload_id"]
    chunk_size = min(job.chunk_size, int(session["max_chunk"]))
    received = [(int(lo), int(hi)) for lo, hi in session["received"]]
    resumed = done = int(session["received_bytes"])
    job.notify(done, size)
    fd = os.open(source, os.O_RDONLY)

    async def send(offset: int, length: int) -> None:
        nonlocal done
        data = await asyncio.to_thread(os.pread, fd, length, offset)
        await job.call(
            "staging.put_chunk",
            upload_id=upload_id,
            offset=offset,
            data=encode(data),
            idempotency_key=f"{upload_id}:{offset}:{length}",
        )
        done += length
        job.notify(done, size)

    try:
        await _run_bounded(chunks(missing_ranges(received, size), chunk_size), job.parallel, send)
    finally:
        os.close(fd)
    result: dict[str, Any] = await job.call(
        "staging.put_commit", upload_id=upload_id, sha256=await digest
    )
    return result | {"resumed": resumed}


class _PartRecord:
    """``<target>.orbit-part`` and its ``.json`` record (remote identity + confirmed ranges).

    The identity is the remote path, size and mtime; the checksum at the end catches a
    file changed in place without either.
    """

    def __init__(self, target: Path, remote: dict[str, Any]) -> None:
        self.part = target.with_name(target.name + ".orbit-part")
        self.record = target.with_name(target.name + ".orbit-part.json")
        self.remote = {k: remote[k] for k in ("path", "size", "mtime")}
        self.received: list[Range] = []

    def load(self) -> int:
        """Confirmed bytes of a matching earlier attempt (0 if none: start afresh)."""
        try:
            saved = json.loads(self.record.read_text())
        except (OSError, ValueError):
            saved = None
        if saved and saved.get("remote") == self.remote and self.part.exists():
            self.received = [(int(lo), int(hi)) for lo, hi in saved["received"]]
        else:
            self.received = []
            with open(self.part, "wb") as handle:
                handle.truncate(int(self.remote["size"]))
        self.save()
        return covered(self.received)

    def save(self) -> None:
        temp = self.record.with_suffix(".tmp")
        temp.write_text(json.dumps({"remote": self.remote, "received": self.received}))
        os.replace(temp, self.record)

    def drop(self) -> None:
        for path in (self.part, self.record):
            with contextlib.suppress(OSError):
                path.unlink()


async def download(
    client: AsyncOrbitClient,
    endpoint: str,
    remote: str,
    local: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    parallel: int = DEFAULT_PARALLEL,
    resume: bool = True,
) -> dict[str, Any]:
    """Copy ``remote`` on ``endpoint`` to ``local``; returns ``{path, size, sha256, resumed}``."""
    target = Path(local)
    await asyncio.to_thread(_check_target, target, overwrite)
    info = await client.call(endpoint, "staging.stat", path=remote)
    if info["type"] != "file":
        raise InvalidArgs(f"{remote} is a {info['type']}, not a file", {"path": remote})
    # the endpoint hashes the file while the chunks flow instead of before the first one
    remote_digest = asyncio.create_task(
        client.call(endpoint, "staging.stat", path=info["path"], checksum=True)
    )
    try:
        job = _Transfer(client, endpoint, overwrite, progress, chunk_size, parallel, resume)
        return await _fetch_file(job, info, target, remote_digest)
    finally:
        if not remote_digest.done():
            remote_digest.cancel()
            await asyncio.gather(remote_digest, return_exceptions=True)


async def _fetch_file(
    job: _Transfer, info: dict[str, Any], target: Path, remote_digest: asyncio.Task[Any]
) -> dict[str, Any]:
    remote, size = info["path"], int(info["size"])
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    part = _PartRecord(target, info)
    if not job.resume:
        part.drop()
    resumed = done = await asyncio.to_thread(part.load)
    job.notify(done, size)
    download_id = uuid.uuid4().hex  # names this download in the endpoint's progress events
    running = _InOrderHash(limit=4 * max(1, job.parallel)) if not resumed else None
    fd = os.open(part.part, os.O_WRONLY)

    async def fetch(offset: int, length: int) -> None:
        nonlocal done
        chunk = await job.call(
            "staging.get_chunk",
            path=remote,
            offset=offset,
            size=length,
            download_id=download_id,
            want=size - resumed,
        )
        data = decode(chunk["data"])
        if len(data) != length:
            raise Conflict(f"{remote} changed during the download; start again")
        await asyncio.to_thread(os.pwrite, fd, data, offset)
        part.received = add_range(part.received, offset, offset + length)
        part.save()  # small, and in order: never two writers of the record
        done += length
        job.notify(done, size)
        if running is not None:
            await running.add(offset, data)

    try:
        gaps = missing_ranges(part.received, size)
        await _run_bounded(chunks(gaps, job.chunk_size), job.parallel, fetch)
        await asyncio.to_thread(os.fsync, fd)
    finally:
        os.close(fd)
    if running is not None and running.complete(size):
        digest = running.hexdigest()
    else:
        digest = await asyncio.to_thread(sha256_of, part.part)
    expected = await remote_digest
    if int(expected["size"]) != size or expected["mtime"] != info["mtime"]:
        part.drop()
        raise Conflict(f"{remote} changed during the download; start again", {"path": remote})
    if digest != expected["sha256"]:
        part.drop()
        raise Conflict(
            f"checksum mismatch for {remote}: expected {expected['sha256']}, got {digest};"
            " the partial download was discarded",
            {"expected": expected["sha256"], "actual": digest},
        )
    await asyncio.to_thread(_check_target, target, job.overwrite)
    os.replace(part.part, target)
    await asyncio.to_thread(part.record.unlink, missing_ok=True)
    return {"path": str(target), "size": size, "sha256": digest, "resumed": resumed}


class _InOrderHash:
    """SHA-256 of downloaded chunks in file order, fed as they arrive (in any order).

    Chunks ahead of the next expected offset wait in memory; past ``limit`` of them (one
    chunk stalls) it gives up and the file is hashed from disk at the end instead.
    """

    def __init__(self, limit: int) -> None:
        self.digest = hashlib.sha256()
        self.next = 0
        self.limit = limit
        self.pending: dict[int, bytes] | None = {}
        self.lock = asyncio.Lock()

    async def add(self, offset: int, data: bytes) -> None:
        if self.pending is None:
            return
        self.pending[offset] = data
        if len(self.pending) > self.limit:
            self.pending = None
            return
        async with self.lock:
            while self.pending is not None:
                block = self.pending.pop(self.next, None)
                if block is None:
                    break
                await asyncio.to_thread(self.digest.update, block)
                self.next += len(block)

    def complete(self, size: int) -> bool:
        return self.pending is not None and self.next == size

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


__all__ = ["DEFAULT_CHUNK", "DEFAULT_PARALLEL", "Progress", "download", "sha256_of", "upload"]
