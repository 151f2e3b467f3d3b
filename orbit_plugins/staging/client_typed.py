"""Typed clients of the ``staging`` plugin: :class:`AsyncStaging` and its blocking twin
:class:`Staging`.

    st = AsyncStaging(client, "hpc1")
    done = await st.upload("data.bin", "~/in/data.bin", progress=lambda d, t: print(d, t))
    print(done.sha256, done.resumed)
    for entry in (await st.list("~/in")).entries:
        print(entry.name, entry.size)

Whole-file transfers are chunked, checksummed and resumable (see :mod:`.client`).
"""

from __future__ import annotations

import os
from typing import TypedDict, Unpack

from orbit_client.feature import AsyncFeatureClient, SyncFeatureClient, read

from . import client as files
from .schema import Listing, PathResult, StatResult, Transferred, UploadList

Local = str | os.PathLike[str]


class Options(TypedDict, total=False):
    """Options of a whole-file transfer (defaults: :func:`.client.upload`)."""

    overwrite: bool
    progress: files.Progress | None
    chunk_size: int
    parallel: int
    resume: bool


class AsyncStaging(AsyncFeatureClient):
    """Files on the endpoint's host: stat, list, mkdir, remove, upload and download."""

    plugin = "staging"

    async def stat(self, path: str, *, checksum: bool = False) -> StatResult:
        """Type, size and mtime of ``path`` (``checksum``: its SHA-256 too)."""
        return await self._get(StatResult, "stat", path=path, checksum=checksum)

    async def list(self, path: str) -> Listing:
        return await self._get(Listing, "list", path=path)

    async def mkdir(self, path: str, *, parents: bool = True) -> str:
        return (await self._get(PathResult, "mkdir", path=path, parents=parents)).path

    async def remove(self, path: str, *, recursive: bool = False) -> str:
        return (await self._get(PathResult, "remove", path=path, recursive=recursive)).path

    async def uploads(self) -> UploadList:
        """Your unfinished uploads (resumable until they expire)."""
        return await self._get(UploadList, "uploads")

    async def upload(self, local: Local, remote: str, **options: Unpack[Options]) -> Transferred:
        """Copy the local file ``local`` to ``remote`` on the endpoint."""
        done = await files.upload(self.client, self.endpoint, local, remote, **options)
        return read(Transferred, done)

    async def download(self, remote: str, local: Local, **options: Unpack[Options]) -> Transferred:
        """Copy ``remote`` on the endpoint to the local file ``local``."""
        done = await files.download(self.client, self.endpoint, remote, local, **options)
        return read(Transferred, done)


class Staging(SyncFeatureClient[AsyncStaging]):
    """Blocking :class:`AsyncStaging` on an :class:`~orbit_client.OrbitClient`."""

    feature = AsyncStaging

    def stat(self, path: str, *, checksum: bool = False) -> StatResult:
        return self._run(lambda s: s.stat(path, checksum=checksum))

    def list(self, path: str) -> Listing:
        return self._run(lambda s: s.list(path))

    def mkdir(self, path: str, *, parents: bool = True) -> str:
        return self._run(lambda s: s.mkdir(path, parents=parents))

    def remove(self, path: str, *, recursive: bool = False) -> str:
        return self._run(lambda s: s.remove(path, recursive=recursive))

    def uploads(self) -> UploadList:
        return self._run(lambda s: s.uploads())

    def upload(self, local: Local, remote: str, **options: Unpack[Options]) -> Transferred:
        """``progress`` is called on the client's loop thread."""
        return self._run(lambda s: s.upload(local, remote, **options))

    def download(self, remote: str, local: Local, **options: Unpack[Options]) -> Transferred:
        """``progress`` is called on the client's loop thread."""
        return self._run(lambda s: s.download(remote, local, **options))


__all__ = ["AsyncStaging", "Staging"]
