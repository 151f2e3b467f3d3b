"""One supervised AMQP connection: connect, set up, wait for loss, back off, repeat.

aio-pika's robust connection reconnects at a fixed interval without jitter and has a
history of losing consumers; the endpoint owns its reconnect loop instead
(jittered exponential backoff 0.5 s → 30 s, forever, except after an authentication
failure, which is fatal). The ceiling stays at 5 s for the first 20 s of an outage, so a
broker restart (about 5 s here) is followed by a reconnect within 5 s; only a long outage
backs off to 30 s (reliability.md R4/R6). With several broker URLs (nodes of one cluster)
every lost connection or failed attempt moves on to the next URL; the backoff grows once per
round.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
import aiormq.exceptions

from orbit_protocol.urls import mask_url, split_urls

log = logging.getLogger(__name__)

Setup = Callable[[aio_pika.abc.AbstractConnection], Awaitable[None]]


class FatalLinkError(Exception):
    """The broker refused us in a way retrying cannot fix (bad credentials)."""


SHORT_OUTAGE_CAP = 5.0
"""Ceiling of the backoff while an outage is young (it grows with the outage, see below)."""


def backoff_delays(minimum: float, maximum: float) -> Callable[[int, float], float]:
    """Full-jitter exponential backoff: attempt ``n`` of an outage that has lasted ``down``
    seconds waits in ``[min, min*2^n]``, capped by ``max(5 s, down / 4)`` and ``maximum``."""

    def delay(attempt: int, down: float = 0.0) -> float:
        cap = min(maximum, max(SHORT_OUTAGE_CAP, down / 4))
        ceiling = min(cap, minimum * 2**attempt)
        return random.uniform(minimum, max(minimum, ceiling))

    return delay


def _resolve(future: asyncio.Future[None], *_: object) -> None:
    if not future.done():
        future.set_result(None)


def _is_auth_failure(exc: BaseException) -> bool:
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return True
    text = str(exc)
    return "ACCESS_REFUSED" in text or ("403" in text and "access" in text.lower())


class Link:
    """Keeps one connection alive and calls ``setup`` after every (re)connect."""

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        name: str,
        setup: Setup,
        heartbeat: int = 10,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
    ) -> None:
        self._urls = split_urls(url) if isinstance(url, str) else list(url)
        self._index = 0
        self.name = name
        self._setup = setup
        self._heartbeat = heartbeat
        self._delay = backoff_delays(reconnect_min, reconnect_max)
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.ready = asyncio.Event()
        self._closing = False
        self.connects = 0

    async def run(self) -> None:
        """Loop until :meth:`close`; raises :class:`FatalLinkError` on bad credentials."""
        attempt = 0
        down_since: float | None = None
        while not self._closing:
            lost = asyncio.get_running_loop().create_future()
            url = self._urls[self._index]
            try:
                conn = await aio_pika.connect(
                    url,
                    heartbeat=self._heartbeat,
                    client_properties={"connection_name": self.name},
                    timeout=10,
                )
                conn.close_callbacks.add(functools.partial(_resolve, lost))
                self.connection = conn
                await self._setup(conn)
                self.connects += 1
                attempt, down_since = 0, None
                self.ready.set()
                log.info("%s connected to %s", self.name, mask_url(url))
                await lost
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _is_auth_failure(exc):
                    raise FatalLinkError(
                        f"{self.name}: the broker refused the credentials ({type(exc).__name__});"
                        " check the user and password of the endpoint URL"
                    ) from None
                if not self._closing:
                    log.warning("%s: %s: %s: %s", self.name, mask_url(url), type(exc).__name__, exc)
            finally:
                self.ready.clear()
                await self._drop()
            if self.closing:
                break
            self._index = (self._index + 1) % len(self._urls)  # fail over to the next node
            now = asyncio.get_running_loop().time()
            down_since = now if down_since is None else down_since
            wait = self._delay(attempt // len(self._urls), now - down_since)
            attempt += 1
            log.info("%s reconnecting to %s in %.1f s", self.name, self.url, wait)
            await asyncio.sleep(wait)

    async def _drop(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None and not conn.is_closed:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:  # closing a broken connection may fail; it is gone anyway
                log.debug("%s: close failed", self.name, exc_info=True)

    @property
    def url(self) -> str:
        """The (masked) URL this link uses now or tries next."""
        return mask_url(self._urls[self._index])

    @property
    def closing(self) -> bool:
        return self._closing

    async def close(self) -> None:
        self._closing = True
        await self._drop()


__all__ = ["FatalLinkError", "Link", "backoff_delays"]
