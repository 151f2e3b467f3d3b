"""ASGI app factory: the lifespan owns the session store (one broker connection per user)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from orbit_protocol import asyncapi

from . import api, pages, routes, sse
from .auth import SessionStore
from .settings import GatewaySettings

STATIC = Path(__file__).parent / "static"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway: ``/events`` (SSE), ``/api``, ``/asyncapi.json`` and the Explorer at ``/``."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SessionStore(settings)
        app.state.sessions = store
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(title="Orbit gateway", lifespan=lifespan, docs_url="/api/docs", redoc_url=None)
    app.state.settings = settings
    app.include_router(api.router)
    app.include_router(sse.router)
    app.include_router(pages.router)
    for router in routes.discover().values():  # the feature packages' own routes
        app.include_router(router)

    @app.get("/asyncapi.json")
    async def asyncapi_document() -> dict[str, Any]:
        """The AsyncAPI 3.0 document of the protocol and the gateway host's plugins."""
        plugins = settings.plugin_schemas() if settings.plugin_schemas else {}
        return asyncapi.build(plugins, settings.safe_url)

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="explorer")
    return app


__all__ = ["create_app"]
