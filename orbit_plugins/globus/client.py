"""Typed clients of the ``globus`` plugin: :class:`AsyncGlobus` and its blocking twin
:class:`Globus`.

    g = AsyncGlobus(client, "hpc1")
    await g.register(access_token=tok)      # once per endpoint process, kept in memory there
    sub = await g.submit("local", dest_uuid, [("/~/in", "/data/in", True)])
    task = await g.wait(sub.task_id, timeout=3600)
    print(task.status, task.bytes_transferred)

Transfer items are ``(source_path, destination_path, recursive)`` tuples or the plugin's own
:class:`.schema.Item`; a task has ended when its status is in :data:`.schema.TERMINAL`.
``GlobusTransfers`` is the old name of :class:`AsyncGlobus`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from orbit_client.feature import AsyncFeatureClient, SyncFeatureClient, read

from .schema import (
    TERMINAL,
    Documents,
    Item,
    Listing,
    Outcome,
    Registered,
    Submitted,
    Task,
    TaskList,
    Waited,
)

Items = Iterable[tuple[str, str, bool] | Item]


def _items(items: Items) -> list[dict[str, Any]]:
    return [
        (
            i if isinstance(i, Item) else Item(source=i[0], destination=i[1], recursive=i[2])
        ).model_dump()
        for i in items
    ]


class AsyncGlobus(AsyncFeatureClient):
    """Globus transfers driven by one endpoint (no data passes through Orbit)."""

    plugin = "globus"

    async def register(
        self,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        client_id: str | None = None,
        local_collection: str | None = None,
    ) -> Registered:
        """Hand the endpoint an access token, or a refresh token with its ``client_id``."""
        return await self._get(
            Registered,
            "register",
            access_token=access_token,
            refresh_token=refresh_token,
            client_id=client_id,
            local_collection=local_collection,
        )

    async def unregister(self) -> Registered:
        """Make the endpoint forget your tokens."""
        return await self._get(Registered, "unregister")

    async def submit(
        self,
        source: str,
        destination: str,
        items: Items,
        *,
        label: str | None = None,
        sync_level: str | None = None,
    ) -> Submitted:
        """Submit a transfer between two collections (``"local"``: the endpoint's own)."""
        return await self._get(
            Submitted,
            "submit_transfer",
            source=source,
            destination=destination,
            items=_items(items),
            label=label,
            sync_level=sync_level,
        )

    async def status(self, task_id: str) -> Task:
        return await self._get(Task, "get_task", task_id=task_id)

    async def wait(
        self, task_id: str, *, timeout: float = 3600, polling_interval: float = 5
    ) -> Task:
        """Wait (in server-side slices shorter than the call timeout) until the task ends.

        Returns the last task seen; check ``status`` (it is still ``ACTIVE`` when ``timeout``
        ran out, see :data:`.schema.TERMINAL`).
        """
        until = time.monotonic() + timeout
        call_timeout = self.client.settings.timeout or 60.0
        while True:
            piece = max(0.5, min(until - time.monotonic(), call_timeout - 5))
            # the arguments as a dict: ``timeout`` is the operation's, not the call's deadline
            args = {"task_id": task_id, "timeout": piece, "polling_interval": polling_interval}
            reply = await self.client.request(
                self.endpoint, "globus.task_wait", args, timeout=piece + 5
            )
            waited = read(Waited, reply.unwrap())
            if waited.done or time.monotonic() >= until:
                return waited.task

    async def cancel(self, task_id: str) -> Outcome:
        return await self._get(Outcome, "cancel_task", task_id=task_id)

    async def tasks(self, limit: int = 100) -> list[Task]:
        """Your most recent tasks, newest first."""
        return (await self._get(TaskList, "list_tasks", limit=limit)).tasks

    async def ls(self, collection: str, path: str = "/~/") -> Listing:
        return await self._get(Listing, "ls", collection=collection, path=path)

    async def mkdir(self, collection: str, path: str) -> Outcome:
        return await self._get(Outcome, "mkdir", collection=collection, path=path)

    async def rename(self, collection: str, oldpath: str, newpath: str) -> Outcome:
        return await self._get(
            Outcome, "rename", collection=collection, oldpath=oldpath, newpath=newpath
        )

    async def delete(
        self, collection: str, paths: Iterable[str], *, recursive: bool = False
    ) -> Submitted:
        """Submit a delete task for ``paths`` on ``collection``."""
        return await self._get(
            Submitted, "delete", collection=collection, paths=list(paths), recursive=recursive
        )

    async def search(self, filter_text: str, limit: int = 25) -> list[dict[str, Any]]:
        """Collections matching ``filter_text`` (Globus endpoint documents)."""
        return (
            await self._get(Documents, "endpoint_search", filter_text=filter_text, limit=limit)
        ).items


class Globus(SyncFeatureClient[AsyncGlobus]):
    """Blocking :class:`AsyncGlobus` on an :class:`~orbit_client.OrbitClient`."""

    feature = AsyncGlobus

    def register(
        self,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        client_id: str | None = None,
        local_collection: str | None = None,
    ) -> Registered:
        return self._run(
            lambda g: g.register(
                access_token=access_token,
                refresh_token=refresh_token,
                client_id=client_id,
                local_collection=local_collection,
            )
        )

    def unregister(self) -> Registered:
        return self._run(lambda g: g.unregister())

    def submit(
        self,
        source: str,
        destination: str,
        items: Items,
        *,
        label: str | None = None,
        sync_level: str | None = None,
    ) -> Submitted:
        chosen = list(items)
        return self._run(
            lambda g: g.submit(source, destination, chosen, label=label, sync_level=sync_level)
        )

    def status(self, task_id: str) -> Task:
        return self._run(lambda g: g.status(task_id))

    def wait(self, task_id: str, *, timeout: float = 3600, polling_interval: float = 5) -> Task:
        return self._run(
            lambda g: g.wait(task_id, timeout=timeout, polling_interval=polling_interval)
        )

    def cancel(self, task_id: str) -> Outcome:
        return self._run(lambda g: g.cancel(task_id))

    def tasks(self, limit: int = 100) -> list[Task]:
        return self._run(lambda g: g.tasks(limit))

    def ls(self, collection: str, path: str = "/~/") -> Listing:
        return self._run(lambda g: g.ls(collection, path))

    def mkdir(self, collection: str, path: str) -> Outcome:
        return self._run(lambda g: g.mkdir(collection, path))

    def rename(self, collection: str, oldpath: str, newpath: str) -> Outcome:
        return self._run(lambda g: g.rename(collection, oldpath, newpath))

    def delete(
        self, collection: str, paths: Iterable[str], *, recursive: bool = False
    ) -> Submitted:
        chosen = list(paths)
        return self._run(lambda g: g.delete(collection, chosen, recursive=recursive))

    def search(self, filter_text: str, limit: int = 25) -> list[dict[str, Any]]:
        return self._run(lambda g: g.search(filter_text, limit))


GlobusTransfers = AsyncGlobus

__all__ = ["TERMINAL", "AsyncGlobus", "Globus", "GlobusTransfers"]
