"""Test a plugin without RabbitMQ: an endpoint and a client on the in-memory broker
(:mod:`orbit_amqp.memory`), in the test's own process and event loop.

    from orbit_endpoint.testing import memory_endpoint

    async def test_greet() -> None:
        async with memory_endpoint(plugins=["orbit_hello.plugin:HelloPlugin"]) as stack:
            reply = await stack.client.call("ep1", "hello.greet", name="Ada")
            assert reply["text"] == "Hello, Ada!"

The code paths are production's from the transport up: the request lifecycle, argument
validation and error codes, events, the journal. The memory broker also checks
``user_id``, permissions and queue arguments like RabbitMQ does; what it cannot show
(clustering, real networks, broker restarts) needs a real node.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orbit_amqp import declare_at
from orbit_amqp.memory import MemoryBroker
from orbit_client import AsyncOrbitClient
from orbit_protocol import topology

from .runtime import Endpoint
from .settings import EndpointSettings


@dataclass(frozen=True)
class MemoryStack:
    """What :func:`memory_endpoint` runs: the broker, the endpoint and a connected client."""

    broker: MemoryBroker
    endpoint: Endpoint
    client: AsyncOrbitClient

    @property
    def name(self) -> str:
        """The endpoint's name (what ``client.call`` takes first)."""
        return self.endpoint.name

    def url(self, user: str = "guest") -> str:
        """An AMQP URL of this broker, e.g. for an ``OrbitClient`` in a thread."""
        return self.broker.url(user)


@contextlib.asynccontextmanager
async def memory_endpoint(
    name: str = "ep1",
    *,
    plugins: Sequence[str],
    state_dir: Path | None = None,
    timeout: float = 10,
    **settings: Any,
) -> AsyncIterator[MemoryStack]:
    """Run endpoint ``name`` with ``plugins`` (entry point names or ``module:Class``) and
    yield a :class:`MemoryStack`; ``settings`` are further ``EndpointSettings`` (e.g.
    ``plugin_settings={"hello": {...}}``). The endpoint stops cleanly at the end."""
    broker = MemoryBroker(f"testing-{secrets.token_hex(4)}")
    url = broker.url()
    await declare_at(url, topology.core() + topology.endpoint(name), name="orbit-testing")
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(broker.close)
        if state_dir is None:
            state_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
        values: dict[str, Any] = {"heartbeat": 2, "reconnect_min": 0.05} | settings
        endpoint = Endpoint(
            EndpointSettings(
                name=name, url=url, plugins=list(plugins), state_dir=state_dir, **values
            )
        )
        task = asyncio.create_task(endpoint.run(), name=f"endpoint {name}")
        try:
            await wait_accepting(endpoint, task, timeout)
            async with AsyncOrbitClient(url=url, timeout=timeout) as client:
                yield MemoryStack(broker, endpoint, client)
        finally:
            endpoint.request_shutdown()
            await asyncio.wait_for(task, 30)


async def wait_accepting(endpoint: Endpoint, task: asyncio.Task[None], timeout: float) -> None:
    """Until ``endpoint`` (running as ``task``) accepts requests; what stopped it, raised, if
    it stopped first; ``TimeoutError`` after ``timeout`` seconds."""
    ready = asyncio.create_task(endpoint.accepting.wait())
    done, _ = await asyncio.wait([ready, task], timeout=timeout, return_when="FIRST_COMPLETED")
    if task in done:
        ready.cancel()
        task.result()  # raises what stopped it
        raise RuntimeError(f"endpoint {endpoint.name} stopped while starting")
    if ready not in done:
        ready.cancel()
        raise TimeoutError(f"endpoint {endpoint.name} did not start within {timeout} s")


__all__ = ["MemoryStack", "memory_endpoint", "wait_accepting"]
