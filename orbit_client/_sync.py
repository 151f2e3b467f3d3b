"""``OrbitClient``: the blocking client. It drives an :class:`AsyncOrbitClient` on a private
event-loop thread, so both clients share one code path and behave the same."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from orbit_protocol import Event, Reply

from ._async import _DEFAULT, AsyncOrbitClient, EventCallback
from ._directory import DirectoryEntry
from ._presence import EndpointInfo, TopologyCallback
from ._proxy import PluginProxy
from ._subscription import Subscription
from .settings import ClientSettings

T = TypeVar("T")


class SyncSubscription:
    """Blocking iterator over a :class:`Subscription`."""

    def __init__(self, client: OrbitClient, sub: Subscription) -> None:
        self._client, self._sub = client, sub

    def get(self, timeout: float | None = None) -> Event:
        return self._client._run(self._sub.get(timeout))

    def __iter__(self) -> Iterator[Event]:
        while True:
            try:
                yield self.get()
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._client._run(self._sub.close())

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class OrbitClient:
    """Blocking Orbit client; use as ``with OrbitClient() as client: client.call(...)``."""

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        session: str | None = None,
        **overrides: Any,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="orbit-client", daemon=True
        )
        self._thread.start()
        self._async = AsyncOrbitClient(settings, session=session, **overrides)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    @property
    def settings(self) -> ClientSettings:
        return self._async.settings

    def connect(self) -> OrbitClient:
        self._run(self._async.connect())
        return self

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._async.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> OrbitClient:
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def call(
        self,
        endpoint: str,
        operation: str,
        /,
        *,
        timeout: float | None = _DEFAULT,
        idempotency_key: str | None = None,
        wait_for_endpoint: bool = False,
        **args: Any,
    ) -> Any:
        """Blocking :meth:`AsyncOrbitClient.call`."""
        return self._run(
            self._async.call(
                endpoint,
                operation,
                timeout=timeout,
                idempotency_key=idempotency_key,
                wait_for_endpoint=wait_for_endpoint,
                **args,
            )
        )

    def request(
        self, endpoint: str, operation: str, args: dict[str, Any] | None = None, **kw: Any
    ) -> Reply:
        """Blocking :meth:`AsyncOrbitClient.request`."""
        return self._run(self._async.request(endpoint, operation, args, **kw))

    def send(
        self, endpoint: str, operation: str, args: dict[str, Any] | None = None, **kw: Any
    ) -> str:
        """Blocking :meth:`AsyncOrbitClient.send`."""
        return self._run(self._async.send(endpoint, operation, args, **kw))

    def collect(self, request_id: str, timeout: float | None = _DEFAULT) -> Reply:
        """Blocking :meth:`AsyncOrbitClient.collect`."""
        return self._run(self._async.collect(request_id, timeout))

    def is_online(self, endpoint: str) -> bool:
        return self._run(self._async.is_online(endpoint))

    def plugin(self, endpoint: str, plugin: str) -> PluginProxy:
        """``client.plugin("hpc1", "sysinfo").metrics()``."""
        return PluginProxy(self, endpoint, plugin)

    def subscribe(
        self, endpoint: str | None = None, plugin: str | None = None, topic: str | None = None
    ) -> SyncSubscription:
        return SyncSubscription(self, self._run(self._async.subscribe(endpoint, plugin, topic)))

    def register_callback(
        self,
        callback: EventCallback,
        endpoint: str | None = None,
        plugin: str | None = None,
        topic: str | None = None,
    ) -> None:
        """``callback(event)`` runs on the client's event-loop thread: keep it short."""
        self._run(self._async.register_callback(callback, endpoint, plugin, topic))

    def register_topology_callback(self, callback: TopologyCallback) -> None:
        self._async.register_topology_callback(callback)

    def directory(self) -> list[DirectoryEntry]:
        return self._run(self._async.directory())

    def endpoints(self) -> dict[str, EndpointInfo]:
        return self._async.endpoints()

    def wait_for_endpoints(self, timeout: float | None = None) -> dict[str, EndpointInfo]:
        return self._run(self._async.wait_for_endpoints(timeout))

    def run_in_loop(self, func: Callable[[AsyncOrbitClient], Coroutine[Any, Any, T]]) -> T:
        """Escape hatch: run ``await func(async_client)`` on the client's loop."""
        return self._run(func(self._async))


__all__ = ["OrbitClient", "SyncSubscription"]
