""":class:`AsyncOrbitExecutor`: run Python callables on an endpoint's ``tasks`` plugin from
asyncio (its blocking twin, :class:`~.client_sync.OrbitExecutor`, drives one of these).

Submits are buffered for ``linger`` seconds and sent as one ``submit_tasks`` message
(at most ``batch_size`` tasks and ``batch_bytes`` bytes). Futures are resolved by the
endpoint's ``task_status``/``task_status_batch`` events: finished uids are fetched in bulk
with ``wait_tasks(timeout=0)`` (events carry states, results need the owner's call). A slow
safety sweep (``sweep_interval``) catches events lost to a subscription overflow.

With ``pool="p"`` instead of an endpoint, batches (``POOL_BATCH`` tasks) go to the pool's
queue as ``tasks.run_tasks`` requests; whichever member takes one answers with the final
records, and a member that dies leaves its batches to the others
(``orbit_plugins/tasks/README.md``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .client_tasks import check_versions, function_spec, map_specs, outcome, pool_call
from .schema import FINAL_STATES

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient, Subscription
    from orbit_protocol import Event

log = logging.getLogger(__name__)
Settle = Callable[[bool, Any], None]
FETCH_CHUNK = 1000
POOL_BATCH = 64
"""Tasks per pool request: small, so the batches spread over the members."""


class AsyncOrbitExecutor:
    """``async with AsyncOrbitExecutor(client, "ep1") as ex: fut = ex.submit(f, 1)``."""

    def __init__(
        self,
        client: AsyncOrbitClient,
        endpoint: str | None = None,
        *,
        pool: str | None = None,
        check_versions: bool = True,
        timeout: float | None = None,
        batch_size: int | None = None,
        batch_bytes: int | None = None,
        linger: float = 0.005,
        sweep_interval: float = 15.0,
    ) -> None:
        if (endpoint is None) == (pool is None):
            raise ValueError("give an endpoint or a pool (one of them)")
        self.client, self.endpoint, self.pool = client, endpoint or f"pool.{pool}", pool
        self.check = check_versions
        self.task_timeout = timeout
        self.batch_size = batch_size or (POOL_BATCH if pool else 2000)
        self.batch_bytes = batch_bytes or int(client.settings.max_body * 0.8)
        self.linger, self.sweep_interval = linger, sweep_interval
        self._pending: dict[str, Settle] = {}
        self._accepted: dict[str, float] = {}
        self._buffer: list[dict[str, Any]] = []
        self._buffer_bytes = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._to_fetch: set[str] = set()
        self._fetching = False
        self._preflight: asyncio.Future[None] | None = None
        self._subscribed: asyncio.Future[None] | None = None
        self._sub: Subscription | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    async def start(self) -> AsyncOrbitExecutor:
        """Ready to submit (task events are subscribed to before the first ``submit`` batch
        goes out; ``map`` and pools need none: their answers carry the records)."""
        return self

    async def _subscribe(self) -> None:
        if self._subscribed is None:
            self._subscribed = asyncio.get_running_loop().create_future()
            try:
                self._sub = await self.client.register_callback(
                    self._on_event, self.endpoint, "tasks"
                )
                self._spawn(self._sweep())
                self._subscribed.set_result(None)
            except Exception as exc:
                self._subscribed.set_exception(exc)
        await asyncio.shield(self._subscribed)

    async def __aenter__(self) -> AsyncOrbitExecutor:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- submitting ---------------------------------------------------------------------

    def submit(
        self, fn: Callable[..., Any] | str, /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[Any]:
        """Schedule ``fn(*args, **kwargs)``: a callable (cloudpickled) or ``"module:func"``."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        spec = function_spec(fn, args, kwargs, timeout=self.task_timeout)
        self.enqueue(spec, _future_settle(future))
        return future

    async def map(self, fn: Callable[..., Any] | str, *iterables: Iterable[Any]) -> list[Any]:
        """``[fn(*xs) for xs in zip(*iterables)]`` run remotely; results in order
        (a callable is pickled once for all its tasks)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []
        items: list[tuple[dict[str, Any], Settle]] = []
        for spec in map_specs(fn, zip(*iterables, strict=False), timeout=self.task_timeout):
            future: asyncio.Future[Any] = loop.create_future()
            items.append((spec, _future_settle(future)))
            futures.append(future)
        self.run_many(items)
        return list(await asyncio.gather(*futures))

    def run_many(self, items: list[tuple[dict[str, Any], Settle]]) -> None:
        """Send specs at once (on the loop) as ``run_tasks`` batches, whose answers carry
        the final records: what ``map`` uses (no events, no fetch round trip)."""
        if self._closed:
            raise RuntimeError("cannot submit after shutdown")
        batch: list[dict[str, Any]] = []
        size = 0
        for spec, settle in items:
            self._pending[spec["uid"]] = settle
            one = _size(spec)
            if batch and (len(batch) >= self.batch_size or size + one > self.batch_bytes):
                self._spawn(self._send(batch, run=True))
                batch, size = [], 0
            batch.append(spec)
            size += one
        if batch:
            self._idle.clear()
            self._spawn(self._send(batch, run=True))

    def enqueue(self, spec: dict[str, Any], settle: Settle) -> None:
        """Buffer one task spec (on the loop); ``settle(ok, value)`` runs once it is final."""
        if self._closed:
            raise RuntimeError("cannot submit after shutdown")
        self._pending[spec["uid"]] = settle
        self._idle.clear()
        size = _size(spec)
        if self._buffer and self._buffer_bytes + size > self.batch_bytes:
            self.flush()
        self._buffer.append(spec)
        self._buffer_bytes += size
        if len(self._buffer) >= self.batch_size:
            self.flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self.linger, self.flush)

    def flush(self) -> None:
        """Send what is buffered now, as one message."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._buffer, self._buffer_bytes = self._buffer, [], 0
        if batch:
            self._spawn(self._send(batch))

    async def _send(self, batch: list[dict[str, Any]], *, run: bool = False) -> None:
        try:
            if self.check and any("pickled" in s for s in batch):
                await self._check_versions()
            if self.pool is not None:
                args = {"tasks": batch, "pool": True}
                records = await pool_call(self.client, self.pool, "tasks.run_tasks", args)
            elif run:  # no deadline: the endpoint journals the request and answers it once
                records = await self.client.call(
                    self.endpoint, "tasks.run_tasks", tasks=batch, timeout=None
                )
            else:
                await self._subscribe()
                await self.client.call(self.endpoint, "tasks.submit_tasks", tasks=batch)
                records = None
            if records is not None:
                for record in records:
                    self._settle(record["uid"], *outcome(record))
                return
        except Exception as exc:
            for spec in batch:
                self._settle(spec["uid"], False, exc)
            return
        now = time.monotonic()
        for spec in batch:
            if spec["uid"] in self._pending:
                self._accepted[spec["uid"]] = now

    async def _check_versions(self) -> None:
        if self._preflight is None:
            self._preflight = asyncio.get_running_loop().create_future()
            try:
                if self.pool is not None:
                    described = await pool_call(
                        self.client, self.pool, "orbit.describe", {}, self.client.settings.timeout
                    )
                else:
                    described = await self.client.call(self.endpoint, "orbit.describe")
                check_versions(self.endpoint, described)
                self._preflight.set_result(None)
            except Exception as exc:
                self._preflight.set_exception(exc)
        await asyncio.shield(self._preflight)

    # -- results ------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        changes = (
            event.data.get("tasks", []) if event.topic == "task_status_batch" else [event.data]
        )
        for change in changes:
            uid = change.get("uid")
            if uid in self._pending and change.get("state") in FINAL_STATES:
                self._to_fetch.add(uid)
        if self._to_fetch and not self._fetching:
            self._fetching = True
            self._spawn(self._fetch_loop())

    async def _fetch_loop(self) -> None:
        try:
            while self._to_fetch:
                uids = list(self._to_fetch)[:FETCH_CHUNK]
                self._to_fetch.difference_update(uids)
                await self._fetch(uids)
        finally:
            self._fetching = False

    async def _fetch(self, uids: list[str]) -> None:
        try:
            # args as a dict: ``timeout`` is also a keyword of ``call`` itself
            reply = await self.client.request(
                self.endpoint, "tasks.wait_tasks", {"uids": uids, "timeout": 0}
            )
            records = reply.unwrap()
        except Exception as exc:
            log.warning("fetching %d task results failed: %s", len(uids), exc)
            return
        for record in records:
            if record["state"] in FINAL_STATES:
                self._settle(record["uid"], *outcome(record))

    def _settle(self, uid: str, ok: bool, value: Any) -> None:
        settle = self._pending.pop(uid, None)
        self._accepted.pop(uid, None)
        if settle is not None:
            if not ok and _canceled(value):
                value = asyncio.CancelledError()
            settle(ok, value)
        if not self._pending:
            self._idle.set()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            stale = time.monotonic() - self.sweep_interval
            uids = [u for u, t in self._accepted.items() if t < stale]
            for i in range(0, len(uids), FETCH_CHUNK):
                await self._fetch(uids[i : i + FETCH_CHUNK])

    async def attach(self, uids: Iterable[str]) -> list[asyncio.Future[Any]]:
        """Futures for tasks submitted earlier (e.g. before a client restart), by uid."""
        await self._subscribe()
        loop = asyncio.get_running_loop()
        futures = []
        for uid in uids:
            future: asyncio.Future[Any] = loop.create_future()
            self._pending[uid] = _future_settle(future)
            self._accepted[uid] = time.monotonic()
            self._idle.clear()
            futures.append(future)
        ids = [u for u in self._pending if u in set(uids)]
        for i in range(0, len(ids), FETCH_CHUNK):
            await self._fetch(ids[i : i + FETCH_CHUNK])
        return futures

    async def cancel(self, uid: str) -> bool:
        """Cancel a task on the endpoint."""
        result = await self.client.call(self.endpoint, "tasks.cancel_task", uid=uid)
        return bool(result["cancelled"])

    async def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Send what is buffered; wait for every future (``wait``); stop listening."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if cancel_futures:
            await asyncio.gather(
                *(self.cancel(u) for u in list(self._pending)), return_exceptions=True
            )
        if wait:
            await self._idle.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sub is not None:
            await self._sub.close()


def _size(spec: dict[str, Any]) -> int:
    """Estimated encoded size of a spec (JSON), for ``batch_bytes``."""
    pickled = spec.get("pickled")
    if pickled is None:
        return len(json.dumps(spec, default=str)) + 200
    return len(pickled) + len(spec.get("pickled_args") or "") + 200


def _canceled(exc: Exception) -> bool:
    record = getattr(exc, "record", None)
    return isinstance(record, dict) and record.get("state") == "CANCELED"


def _future_settle(future: asyncio.Future[Any]) -> Settle:
    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        elif isinstance(value, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(value)

    return settle


__all__ = ["AsyncOrbitExecutor"]
