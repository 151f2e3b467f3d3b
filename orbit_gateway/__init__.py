"""Browser gateway: SSE event stream with replay, JSON RPC over HTTP, the Explorer UI.

Installed with ``pip install 'orbit[gateway]'`` (FastAPI, sse-starlette, uvicorn).
Design notes: ``README.md`` next to this file and ``docs/gateway.md``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import sse_starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Orbit gateway needs its extra: pip install 'orbit[gateway]'") from exc

from .app import create_app
from .settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
