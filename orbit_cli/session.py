"""Run one async client session for a command: settings from flags > env > profile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient, ClientSettings

T = TypeVar("T")


def client_settings(url: str | None = None, timeout: float | None = None) -> ClientSettings:
    """``ClientSettings`` with the given flags as overrides (unset flags are not passed)."""
    from orbit_client import ClientSettings

    overrides: dict[str, Any] = {}
    if url:
        overrides["url"] = url
    if timeout is not None:
        overrides["timeout"] = timeout
    return ClientSettings(**overrides)


def setup_logging() -> None:
    """Library logs stay quiet (errors are rendered by the CLI) unless ``--debug``."""
    import logging

    from .options import STATE

    if STATE.debug:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        for name in ("aio_pika", "aiormq", "asyncio"):
            logging.getLogger(name).setLevel(logging.INFO)
        return
    for name in ("aio_pika", "aiormq", "orbit_client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def run(
    func: Callable[[AsyncOrbitClient], Awaitable[T]],
    *,
    url: str | None = None,
    timeout: float | None = None,
) -> T:
    """``asyncio.run`` of ``func(client)`` inside a connected :class:`AsyncOrbitClient`."""
    from orbit_client import AsyncOrbitClient

    setup_logging()
    settings = client_settings(url, timeout)

    async def main() -> T:
        async with AsyncOrbitClient(settings) as client:
            return await func(client)

    return asyncio.run(main())


__all__ = ["client_settings", "run", "setup_logging"]
