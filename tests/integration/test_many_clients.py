"""Many concurrent clients (reliability F6/R7): every call answered, broker memory bounded.

``ORBIT_CLIENTS_N`` clients (suite 100, ``make trust`` 1,000), each its own connection and
durable reply queue, connect at once, warm up with one ping, then make 10 pings each, all
clients concurrently, against one endpoint. Pass: 0 errors. Latencies and the broker's
memory growth are printed (figures, not assertions: the machine is shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit

N = int(os.environ.get("ORBIT_CLIENTS_N", "100"))
CALLS = 10


def pct(values: list[float], q: float) -> float:
    return sorted(values)[max(0, round(q * len(values)) - 1)]


def broker_memory(broker: Any) -> int:
    nodes: list[dict[str, Any]] = broker.management._request("GET", "/nodes")
    return sum(int(n.get("mem_used") or 0) for n in nodes)


@pytest.mark.timeout(600)
async def test_many_concurrent_clients(
    start_endpoint: StartEndpoint, amqp_url: str, broker: Any
) -> None:
    await start_endpoint("ep1", prefetch=64)
    mem_before = broker_memory(broker)
    clients: list[AsyncOrbitClient] = []
    connect_times: list[float] = []

    async def connect() -> None:
        start = time.perf_counter()
        client = AsyncOrbitClient(url=amqp_url, timeout=120)
        await client.connect()
        connect_times.append(time.perf_counter() - start)
        clients.append(client)

    async def calls(client: AsyncOrbitClient, n: int, out: list[float]) -> None:
        for _ in range(n):
            start = time.perf_counter()
            await client.call("ep1", "orbit.ping")
            out.append(time.perf_counter() - start)

    started = time.perf_counter()
    errors: list[BaseException] = []
    try:
        for result in await asyncio.gather(*(connect() for _ in range(N)), return_exceptions=True):
            if isinstance(result, BaseException):
                errors.append(result)
        connected = time.perf_counter() - started
        warm: list[float] = []
        for result in await asyncio.gather(
            *(calls(c, 1, warm) for c in clients), return_exceptions=True
        ):
            if isinstance(result, BaseException):
                errors.append(result)
        latencies: list[float] = []
        steady = time.perf_counter()
        for result in await asyncio.gather(
            *(calls(c, CALLS, latencies) for c in clients), return_exceptions=True
        ):
            if isinstance(result, BaseException):
                errors.append(result)
        steady_s = time.perf_counter() - steady
        mem_after = broker_memory(broker)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
    c50, c99 = statistics.median(connect_times), pct(connect_times, 0.99)
    p50, p99 = statistics.median(latencies) * 1e3, pct(latencies, 0.99) * 1e3
    print(
        f"\n{N} concurrent clients: {len(clients)} connected in {connected:.1f} s "
        f"(connect p50 {c50:.2f} s, p99 {c99:.2f} s); {len(latencies)} pings in "
        f"{steady_s:.1f} s ({len(latencies) / steady_s:.0f}/s), p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms; broker memory +{(mem_after - mem_before) / 2**20:.0f} MiB; "
        f"errors {len(errors)}"
    )
    assert not errors, errors[:3]
    assert len(clients) == N and len(latencies) == N * CALLS
