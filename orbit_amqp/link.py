"""One supervised connection: connect, set up, wait for loss, back off, repeat.

Every Orbit process that talks to the broker (client, endpoint, dead-letter responder,
gateway) holds its connections through a :class:`Link`. It tries the broker URLs in order
and moves to the next one whenever a connection is lost or an attempt fails (the nodes of
one cluster); after each connect it calls ``setup(connection)`` to open channels and
consumers again. Backoff is full-jitter exponential between ``reconnect_min`` and
``reconnect_max``; the ceiling stays at 5 s for the first 20 s of an outage, so a broker
restart is followed by a reconnect within 5 s (``docs/reliability.md``). A refused login is
final: :meth:`Link.run` raises :class:`~orbit_amqp.errors.FatalLinkError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from orbit_protocol.errors import AuthenticationFailed, BrokerError
from orbit_protocol.urls import mask_url, split_urls

from .base import Connection
from .errors import FatalLinkError
from .registry import transport_for

log = logging.getLogger(__name__)

Setup = Callable[[Connection], Awaitable[None]]
SHORT_OUTAGE_CAP = 5.0
"""Ceiling of the backoff while an outage is young (it grows with the outage)."""


def backoff_delays(minimum: float, maximum: float) -> Callable[[int, float], float]:
    """Full-jitter exponential backoff: attempt ``n`` of an outage that has lasted ``down``
    seconds waits in ``[min, min*2^n]``, capped by ``max(5 s, down / 4)`` and ``maximum``."""

    def delay(attempt: int, down: float = 0.0) -> float:
        cap = min(maximum, max(SHORT_OUTAGE_CAP, down / 4))
        ceiling = min(cap, minimum * 2**attempt)
        return random.uniform(minimum, max(minimum, ceiling))

    return delay


async def connect_first(
    urls: Sequence[str], connect: Callable[[str], Awaitable[Connection]], start: int = 0
) -> tuple[int, Connection]:
    """Try each URL once, from ``urls[start]`` on; the index that answered and its connection.

    A refused login is final (the nodes of one cluster share their users); any other failure
    moves on to the next URL, and the last one's ``BrokerError`` is raised.
    """
    error: BrokerError | None = None
    for step in range(len(urls)):
        index = (start + step) % len(urls)
        try:
            return index, await connect(urls[index])
        except AuthenticationFailed:
            raise
        except BrokerError as exc:
            error = exc
    assert error is not None
    raise error


class Link:
    """Keeps one connection alive and calls ``setup`` after every (re)connect."""

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        name: str,
        setup: Setup | None = None,
        heartbeat: int = 10,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        self._urls = split_urls(url) if isinstance(url, str) else list(url)
        self._index = 0
        self.name = name
        self._setup = setup
        self._heartbeat = heartbeat
        self._timeout = timeout
        self._delay = backoff_delays(reconnect_min, reconnect_max)
        self.connection: Connection | None = None
        self.ready = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self.connects = 0
        """Successful connects so far (the first one included)."""

    @property
    def url(self) -> str:
        """The (masked) URL this link uses now or tries next."""
        return mask_url(self._urls[self._index])

    @property
    def urls(self) -> list[str]:
        return list(self._urls)

    @property
    def closing(self) -> bool:
        return self._closing

    async def _connect(self, url: str) -> Connection:
        return await transport_for(url).connect(
            url, name=self.name, heartbeat=self._heartbeat, timeout=self._timeout
        )

    async def _serve(self, conn: Connection) -> None:
        """Set ``conn`` up and wait until it is lost."""
        lost = asyncio.get_running_loop().create_future()

        def on_close(_: BaseException | None) -> None:
            if not lost.done():
                lost.set_result(None)

        conn.on_close(on_close)
        self.connection = conn
        if self._setup is not None:
            await self._setup(conn)
        self.connects += 1
        self.ready.set()
        log.info("%s connected to %s", self.name, self.url)
        await lost

    async def start(self) -> None:
        """Connect now, trying each URL once, then keep the link up in the background.

        Raises ``AuthenticationFailed`` at once, else the last node's ``BrokerError``.
        """
        self._index, conn = await connect_first(self._urls, self._connect, self._index)
        loop = asyncio.get_running_loop()
        first: asyncio.Future[None] = loop.create_future()

        async def supervise() -> None:
            try:
                await self._serve(conn)
            except BaseException as exc:
                if self.connects == 0:  # the first setup failed: start() raises it
                    first.set_exception(exc)
                    await self._drop()
                    return
                raise
            finally:
                self.ready.clear()
            await self._drop()
            if not self._closing:
                self._index = (self._index + 1) % len(self._urls)
                await self.run(initial_wait=True)

        self._runner = loop.create_task(supervise(), name=self.name)
        self._runner.add_done_callback(self._report)
        ready: asyncio.Future[Any] = loop.create_task(self.ready.wait())
        await asyncio.wait([ready, first], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if first.done():
            first.result()  # a failed setup: raise it

    def _report(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s stopped: %s", self.name, exc)

    async def run(self, *, initial_wait: bool = False) -> None:
        """Loop until :meth:`close`; raises :class:`FatalLinkError` on refused credentials."""
        attempt = 0
        loop = asyncio.get_running_loop()
        down_since: float | None = loop.time() if initial_wait else None
        if initial_wait:
            await asyncio.sleep(self._delay(0, 0.0))
            attempt = 1
        while not self._closing:
            url = self._urls[self._index]
            try:
                await self._serve(await self._connect(url))
                attempt, down_since = 0, None
            except asyncio.CancelledError:
                raise
            except AuthenticationFailed as exc:
                raise FatalLinkError(
                    f"{self.name}: the broker refused the credentials ({exc});"
                    " check the user and password of the URL"
                ) from None
            except Exception as exc:
                if not self._closing:
                    log.warning("%s: %s: %s: %s", self.name, mask_url(url), type(exc).__name__, exc)
            finally:
                self.ready.clear()
                await self._drop()
            if self.closing:  # set by close() while we waited
                break
            self._index = (self._index + 1) % len(self._urls)  # fail over to the next node
            now = loop.time()
            down_since = now if down_since is None else down_since
            wait = self._delay(attempt // len(self._urls), now - down_since)
            attempt += 1
            log.info("%s reconnecting to %s in %.1f s", self.name, self.url, wait)
            await asyncio.sleep(wait)

    async def wait_ready(self, timeout: float | None) -> bool:
        """Wait for the link to be up; ``False`` if it is not within ``timeout``."""
        if self.ready.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.ready.wait()
                return True
        return False

    async def _drop(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None and not conn.is_closed:
            await conn.close()

    async def reconnect(self) -> None:
        """Drop the connection now (a dead channel); the link connects again."""
        conn = self.connection
        self.ready.clear()
        if conn is not None and not conn.is_closed:
            await conn.close()

    async def close(self) -> None:
        self._closing = True
        self.ready.clear()
        await self._drop()
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner


__all__ = ["FatalLinkError", "Link", "Setup", "backoff_delays"]
