"""Fixtures for integration tests: endpoint processes and clients on the per-test vhost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient

from .endpoints import EndpointProcess, declare_endpoint

StartEndpoint = Callable[..., Awaitable[EndpointProcess]]


@pytest.fixture
async def start_endpoint(amqp_url: str, tmp_path: Path) -> AsyncIterator[StartEndpoint]:
    """``await start_endpoint("ep1", **settings)``: declare its queue, start it, stop it later."""
    started: list[EndpointProcess] = []

    async def start(
        name: str = "ep1", *, queue: dict[str, int] | None = None, **settings: Any
    ) -> EndpointProcess:
        await declare_endpoint(amqp_url, name, **(queue or {}))
        proc = EndpointProcess(name, amqp_url, tmp_path / name, **settings)
        started.append(proc)
        return await proc.start()

    yield start
    for proc in started:
        await proc.stop()


@pytest.fixture
async def client(amqp_url: str) -> AsyncIterator[AsyncOrbitClient]:
    async with AsyncOrbitClient(url=amqp_url, timeout=30) as c:
        yield c
