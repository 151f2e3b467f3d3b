""":class:`OrbitExecutor`: a :class:`concurrent.futures.Executor` whose tasks run on an
endpoint's ``tasks`` plugin (or a pool's members), through an
:class:`~.client_executor.AsyncOrbitExecutor` on the blocking client's loop thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
from asyncio import AbstractEventLoop
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from orbit_client import OrbitClient

from .client_executor import AsyncOrbitExecutor, Settle
from .client_tasks import function_spec, map_specs

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient


class OrbitExecutor(concurrent.futures.Executor):
    """Run Python callables on endpoint ``endpoint`` (its ``tasks`` plugin), or on the members
    of a pool with ``pool="p"``.

    ``with OrbitExecutor("ep1") as ex: print(list(ex.map(f, range(1000))))``. ``client``
    is an :class:`OrbitClient` to share; without one the executor opens (and closes) its own
    with ``client_settings``. Other keywords go to :class:`AsyncOrbitExecutor`.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        client: OrbitClient | None = None,
        *,
        client_settings: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self._owns_client = client is None
        self._client = client or OrbitClient(**(client_settings or {})).connect()

        async def start(c: AsyncOrbitClient) -> tuple[AsyncOrbitExecutor, AbstractEventLoop]:
            core = await AsyncOrbitExecutor(c, endpoint, **options).start()
            return core, asyncio.get_running_loop()  # the client's loop thread

        self._core, self._loop = self._client.run_in_loop(start)
        self._shutdown = False

    @property
    def endpoint(self) -> str:
        return self._core.endpoint

    def submit(
        self, fn: Callable[..., Any] | str, /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        spec = function_spec(fn, args, kwargs, timeout=self._core.task_timeout)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._core.enqueue, spec, _sync_settle(future))
        return future

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """Like :meth:`concurrent.futures.Executor.map`: all tasks go out in batches at once
        (a callable is pickled once); results in order. ``chunksize`` is ignored."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        end = None if timeout is None else time.monotonic() + timeout
        slots = _Slots()
        items: list[tuple[dict[str, Any], Settle]] = []
        specs = map_specs(fn, zip(*iterables, strict=False), timeout=self._core.task_timeout)
        for spec in specs:
            items.append((spec, slots.add()))
            if len(items) >= self._core.batch_size:
                self._loop.call_soon_threadsafe(self._core.run_many, items)
                items = []
        if items:
            self._loop.call_soon_threadsafe(self._core.run_many, items)
        return slots.results(end)

    def attach(self, uids: Iterable[str]) -> list[concurrent.futures.Future[Any]]:
        """Futures for tasks submitted earlier, by uid (e.g. after a client restart)."""
        uids = list(uids)

        async def attach(_: AsyncOrbitClient) -> list[asyncio.Future[Any]]:
            return await self._core.attach(uids)

        futures = self._client.run_in_loop(attach)
        return [_wrap(f, self._loop) for f in futures]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._shutdown:
            return
        self._shutdown = True

        async def stop(_: AsyncOrbitClient) -> None:
            await self._core.shutdown(wait, cancel_futures=cancel_futures)

        # the enqueue callbacks scheduled before this one run first (FIFO), so none is lost
        self._client.run_in_loop(stop)
        if self._owns_client:
            self._client.close()


def _sync_settle(future: concurrent.futures.Future[Any]) -> Settle:
    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        elif isinstance(value, asyncio.CancelledError):
            future.cancel()
            future.set_running_or_notify_cancel()
        else:
            future.set_exception(value)

    return settle


_EMPTY: Any = object()


class _Slots:
    """The outcomes of one ``map``, in order: lighter than a ``Future`` per task (no
    ``Condition`` each); one condition, notified only when the reader waits."""

    def __init__(self) -> None:
        self._outcomes: list[Any] = []
        self._cond = threading.Condition()
        self._waiting = -1

    def add(self) -> Settle:
        self._outcomes.append(_EMPTY)
        return functools.partial(self._settle, len(self._outcomes) - 1)

    def _settle(self, index: int, ok: bool, value: Any) -> None:
        if self._outcomes[index] is not _EMPTY:
            return
        self._outcomes[index] = (ok, value)
        if self._waiting == index:
            with self._cond:
                self._cond.notify()

    def results(self, end: float | None) -> Iterator[Any]:
        """Values in order; raises a task's exception (the rest are dropped), as
        ``Executor.map`` does."""
        for index in range(len(self._outcomes)):
            outcome = self._outcomes[index]
            if outcome is _EMPTY:
                with self._cond:
                    self._waiting = index
                    try:
                        while (outcome := self._outcomes[index]) is _EMPTY:
                            left = None if end is None else end - time.monotonic()
                            if left is not None and left <= 0:
                                raise TimeoutError
                            self._cond.wait(left)
                    finally:
                        self._waiting = -1
            self._outcomes[index] = None  # a consumed result is not kept alive
            ok, value = outcome
            if ok:
                yield value
            elif isinstance(value, asyncio.CancelledError):
                raise concurrent.futures.CancelledError
            else:
                raise value


def _wrap(
    future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
) -> concurrent.futures.Future[Any]:
    out: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def copy(f: asyncio.Future[Any]) -> None:
        if f.cancelled():
            out.cancel()
            out.set_running_or_notify_cancel()
        elif f.exception() is not None:
            out.set_exception(f.exception())
        else:
            out.set_result(f.result())

    loop.call_soon_threadsafe(future.add_done_callback, copy)
    return out


__all__ = ["OrbitExecutor"]
