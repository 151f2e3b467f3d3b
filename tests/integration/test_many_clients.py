"""Many concurrent clients (reliability F6/R7): every call answered, broker memory bounded.

``ORBIT_CLIENTS_N`` clients (suite 100, ``make trust`` 1,000), each its own connection and
durable reply queue, connect at once and warm up with one ping. Then two phases against one
endpoint: **steady** (R7: each client pings every ``N / RATE`` seconds with its own phase,
10 pings each, an aggregate ``RATE`` of 200/s) and **burst** (every client makes 10 pings
back to back, all at once: a closed loop with N calls always in flight, a throughput figure).
Pass: 0 errors. Latencies and the broker's memory growth (RSS of ``beam.smp`` and RabbitMQ's
own ``mem_used``) are printed: figures, not assertions (the machine is shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from typing import Any

import psutil
import pytest

from orbit_client import AsyncOrbitClient

from .conftest import StartEndpoint

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

N = int(os.environ.get("ORBIT_CLIENTS_N", "50"))
CALLS = 10
RATE = 200.0  # steady phase: pings per second, all clients together


def pct(values: list[float], q: float) -> float:
    return sorted(values)[max(0, round(q * len(values)) - 1)]


def broker_memory(broker: Any) -> tuple[int, int]:
    """(RSS of the node's beam.smp or 0 when it is not ours, RabbitMQ's ``mem_used``)."""
    nodes: list[dict[str, Any]] = broker.management._request("GET", "/nodes")
    used = sum(int(n.get("mem_used") or 0) for n in nodes)
    pid = broker.node.pid if broker.node is not None else None
    return (psutil.Process(pid).memory_info().rss if pid else 0), used


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
        mem_connected = broker_memory(broker)
        period = len(clients) / RATE
        paced: list[float] = []
        t0 = time.perf_counter() + 0.5

        async def steady(i: int, client: AsyncOrbitClient) -> None:
            for k in range(CALLS):
                await asyncio.sleep(
                    max(0.0, t0 + (k + i / len(clients)) * period - time.perf_counter())
                )
                await calls(client, 1, paced)

        for result in await asyncio.gather(
            *(steady(i, c) for i, c in enumerate(clients)), return_exceptions=True
        ):
            if isinstance(result, BaseException):
                errors.append(result)
        latencies: list[float] = []
        burst = time.perf_counter()
        for result in await asyncio.gather(
            *(calls(c, CALLS, latencies) for c in clients), return_exceptions=True
        ):
            if isinstance(result, BaseException):
                errors.append(result)
        burst_s = time.perf_counter() - burst
        mem_after = broker_memory(broker)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
    c50, c99 = statistics.median(connect_times), pct(connect_times, 0.99)
    s50, s99 = statistics.median(paced) * 1e3, pct(paced, 0.99) * 1e3
    p50, p99 = statistics.median(latencies) * 1e3, pct(latencies, 0.99) * 1e3
    rss = (mem_connected[0] - mem_before[0]) / 2**20
    used = (mem_connected[1] - mem_before[1]) / 2**20
    print(
        f"\n{N} concurrent clients: {len(clients)} connected in {connected:.1f} s "
        f"(connect p50 {c50:.2f} s, p99 {c99:.2f} s); broker memory for them: RSS "
        f"+{rss:.0f} MiB, mem_used +{used:.0f} MiB; steady {RATE:.0f} pings/s: "
        f"{len(paced)} pings p50 {s50:.1f} ms, p99 {s99:.1f} ms; burst (all at once): "
        f"{len(latencies)} pings in {burst_s:.1f} s ({len(latencies) / burst_s:.0f}/s), "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms; RSS after +"
        f"{(mem_after[0] - mem_before[0]) / 2**20:.0f} MiB; errors {len(errors)}"
    )
    assert not errors, errors[:3]
    assert len(clients) == N and len(paced) == N * CALLS and len(latencies) == N * CALLS
