"""Gateway settings: which broker, how much history, how generous the per-client buffers are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

PluginSchemas = Callable[[], dict[str, Any]]
"""Returns ``{plugin: {"version", "description", "operations": {op: {args, result}}}}``."""


@dataclass(frozen=True)
class GatewaySettings:
    """``url`` names the broker and vhost; each user's own credentials replace its user part."""

    url: str = "amqp://127.0.0.1:35672/orbit"
    history: int = 1000
    """Events kept per user for ``Last-Event-ID`` replay (a ring buffer)."""
    client_queue: int = 1000
    """Frames buffered per SSE connection; a connection that falls further behind is closed."""
    send_timeout: float = 30.0
    """Seconds one write to an SSE connection may block before the connection is closed."""
    ping: float = 15.0
    """Seconds between keep-alive comments on an idle SSE stream."""
    call_timeout: float = 60.0
    max_upload: int = 1024**3
    """Largest file accepted by ``PUT /api/{endpoint}/files`` (bytes)."""
    plugin_schemas: PluginSchemas | None = field(default=None, compare=False)

    def user_url(self, user: str, password: str) -> str:
        """The broker URL with ``user:password`` (percent-encoded) as credentials."""
        parts = urlsplit(self.url)
        host = parts.hostname or "127.0.0.1"
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    @property
    def safe_url(self) -> str:
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


__all__ = ["GatewaySettings", "PluginSchemas"]
