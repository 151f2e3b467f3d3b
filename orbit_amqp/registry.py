"""Which transport serves a URL: ``amqp://``/``amqps://`` → aio-pika, ``memory://`` → memory."""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import Transport


def transport_for(url: str) -> Transport:
    """The transport for ``url``'s scheme (``ValueError`` for an unknown one)."""
    scheme = urlsplit(url).scheme
    if scheme in ("amqp", "amqps"):
        from .aiopika import AioPikaTransport

        return AioPikaTransport()
    if scheme == "memory":
        from .memory import MemoryTransport

        return MemoryTransport()
    raise ValueError(f"unsupported broker URL scheme {scheme!r} (use amqp, amqps or memory)")


__all__ = ["transport_for"]
