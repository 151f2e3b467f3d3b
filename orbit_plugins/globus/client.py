"""Globus transfers through an endpoint's ``globus`` plugin.

``t = GlobusTransfers(client, "hpc1"); await t.register(access_token=tok)`` then
``task = await t.submit("local", dest_uuid, [("/~/in", "/data/in", True)])`` and
``await t.wait(task["task_id"], timeout=3600)``. Tokens are sent once per endpoint process
(``register``) and kept there in memory only. Transfer items are the plugin's own wire model
(:class:`.schema.Item`), and a task has ended when its status is in :data:`.schema.TERMINAL`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .schema import TERMINAL, Item

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient


class GlobusTransfers:
    """Thin async wrapper of the ``globus`` plugin's operations on one endpoint."""

    def __init__(self, client: AsyncOrbitClient, endpoint: str) -> None:
        self.client = client
        self.endpoint = endpoint

    async def _call(self, method: str, **args: Any) -> Any:
        return await self.client.call(self.endpoint, f"globus.{method}", **args)

    async def register(
        self,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        client_id: str | None = None,
        local_collection: str | None = None,
    ) -> dict[str, Any]:
        args = {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "client_id": client_id,
            "local_collection": local_collection,
        }
        result: dict[str, Any] = await self._call(
            "register", **{k: v for k, v in args.items() if v is not None}
        )
        return result

    async def submit(
        self,
        source: str,
        destination: str,
        items: Iterable[tuple[str, str, bool]],
        *,
        label: str | None = None,
        sync_level: str | None = None,
    ) -> dict[str, Any]:
        """Submit a transfer of ``(source_path, destination_path, recursive)`` items."""
        result: dict[str, Any] = await self._call(
            "submit_transfer",
            source=source,
            destination=destination,
            items=[Item(source=s, destination=d, recursive=r).model_dump() for s, d, r in items],
            label=label,
            sync_level=sync_level,
        )
        return result

    async def status(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("get_task", task_id=task_id)
        return result

    async def wait(
        self, task_id: str, *, timeout: float = 3600, polling_interval: float = 5
    ) -> dict[str, Any]:
        """Wait (in server-side slices shorter than the call timeout) until the task ends.

        Returns the last task document; check ``status`` (it is still ``ACTIVE`` when
        ``timeout`` ran out).
        """
        until = time.monotonic() + timeout
        call_timeout = self.client.settings.timeout or 60.0
        while True:
            left = until - time.monotonic()
            piece = max(0.5, min(left, call_timeout - 5))
            # the arguments as a dict: ``timeout`` is the operation's, not the call's deadline
            args = {"task_id": task_id, "timeout": piece, "polling_interval": polling_interval}
            reply = await self.client.request(
                self.endpoint, "globus.task_wait", args, timeout=piece + 5
            )
            waited = reply.unwrap()
            task: dict[str, Any] = waited["task"]
            if waited["done"] or time.monotonic() >= until:
                return task

    async def cancel(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("cancel_task", task_id=task_id)
        return result

    async def tasks(self, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._call("list_tasks", limit=limit))["tasks"]
        return result

    async def ls(self, collection: str, path: str = "/~/") -> dict[str, Any]:
        result: dict[str, Any] = await self._call("ls", collection=collection, path=path)
        return result


__all__ = ["TERMINAL", "GlobusTransfers"]
