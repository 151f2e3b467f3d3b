"""aio-pika's robust connection over several broker URLs (the nodes of one cluster).

``connect_robust`` takes one URL. :class:`FailoverConnection` keeps aio-pika's recovery
(channels, queues, consumers restored after a reconnect) and only changes where it
reconnects: every lost connection and every failed attempt moves on to the next URL, so a
client whose node died reconnects to a live one after ``reconnect_interval``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiormq.exceptions
from aio_pika.connection import make_url
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL


class FailoverConnection(RobustConnection):
    """A :class:`~aio_pika.RobustConnection` that rotates through ``urls``."""

    def __init__(self, urls: Sequence[URL], start: int = 0, **kwargs: Any) -> None:
        if not urls:
            raise ValueError("no broker URL given")
        self._urls = list(urls)
        self._index = start % len(self._urls)
        super().__init__(self._urls[self._index], **kwargs)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # called for a lost connection and for a failed attempt alike, before the next try
        # (Connection.connect reads self.url on every attempt)
        if len(self._urls) > 1 and not self.close_called:
            self._index = (self._index + 1) % len(self._urls)
            self.url = self._urls[self._index]
        await super()._on_connection_close(closing)


async def connect_failover(
    urls: Sequence[str],
    *,
    timeout: float,
    client_properties: dict[str, Any] | None = None,
    **options: Any,
) -> FailoverConnection:
    """Connect to the first URL that answers (in order); recover through all of them later.

    ``options`` become URL parameters of every URL (``heartbeat``, ``reconnect_interval``).
    An authentication failure is raised at once; otherwise the last node's error.
    """
    built = [make_url(u, client_properties=dict(client_properties or {}), **options) for u in urls]
    error: BaseException | None = None
    for start in range(len(built)):
        connection = FailoverConnection(built, start, client_properties=client_properties)
        try:
            await connection.connect(timeout=timeout)
            return connection
        except aiormq.exceptions.ProbableAuthenticationError:
            await connection.close()
            raise
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            error = exc
            await connection.close()
    assert error is not None
    raise error


__all__ = ["FailoverConnection", "connect_failover"]
