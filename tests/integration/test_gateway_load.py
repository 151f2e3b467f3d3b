"""200 SSE clients read one endpoint's events while one client never reads (issue 7).

Events are published the way an endpoint does (``orbit.events``, ``ts`` = publish time) at a
steady rate; every reader must get every event, in order, and the 99th percentile of
``receive time - ts`` over all readers must stay under ``ORBIT_SSE_P99_BOUND`` seconds
(default 1.0, the issue's bound). The stuck client is a raw socket with a 4 KiB receive
buffer that reads the response head and then nothing: the gateway's writes to it block, its
bounded queue overflows (it alone follows 3 MiB of ballast events), and nobody else may
notice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from orbit_protocol import Event, naming

from .gateway_kit import GatewayProcess

pytestmark = pytest.mark.rabbit

READERS = int(os.environ.get("ORBIT_SSE_READERS", "200"))
P99_BOUND = float(os.environ.get("ORBIT_SSE_P99_BOUND", "1.0"))
RATE, SECONDS, PAD = 10, 5, 1024  # events/s, duration, bytes of padding per event
ENDPOINT = "load"
BALLAST = 200  # events of 16 KiB: more than the stuck client's queue and socket buffers


def stuck_client(port: int, user: str, password: str) -> socket.socket:
    """Opens ``/events`` with a tiny receive buffer, reads the head, then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    sock.sendall(
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {auth}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = b""
    while b"event: hello" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    return sock


def drain(sock: socket.socket) -> bytes:
    """What the gateway had written to ``sock`` (read for 3 s, or until it was closed)."""
    got, deadline = b"", time.monotonic() + 3
    sock.settimeout(1)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return got + b"EOF"
        got += chunk
    return got


async def reader(
    http: httpx.AsyncClient, ready: asyncio.Event, expect: int
) -> tuple[list[int], list[float]]:
    """Every notification's ``i`` and delay, until ``expect`` arrived."""
    seen: list[int] = []
    delays: list[float] = []
    async with http.stream("GET", f"/events?endpoint={ENDPOINT}") as response:
        assert response.status_code == 200
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "hello":
                    ready.set()
            elif line.startswith("data:") and event == "notification":
                frame = json.loads(line[5:])
                delays.append(time.time() - frame["ts"])
                seen.append(frame["data"]["i"])
                if len(seen) == expect:
                    break
    return seen, delays


@pytest.fixture
async def gateway(amqp_url: str, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    extra = ("--client-queue", "50", "--send-timeout", "2")
    proc = GatewayProcess(amqp_url, tmp_path / "gateway.log", *extra)
    await proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_200_readers_keep_up_while_one_never_reads(
    gateway: GatewayProcess, amqp_url: str, broker: Any
) -> None:
    count = RATE * SECONDS
    limits = httpx.Limits(max_connections=READERS + 10, max_keepalive_connections=0)
    auth = (broker.user, broker.password)
    stuck = await asyncio.to_thread(stuck_client, gateway.port, *auth)
    connection = await aio_pika.connect(amqp_url)
    async with (
        connection,
        httpx.AsyncClient(base_url=gateway.base, auth=auth, timeout=60, limits=limits) as http,
    ):
        readies = [asyncio.Event() for _ in range(READERS)]
        tasks = [asyncio.create_task(reader(http, r, count)) for r in readies]
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*(r.wait() for r in readies))
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(naming.EVENT_EXCHANGE, ensure=False)
            key = naming.event_routing_key(ENDPOINT, "kit", "tick")
            # ballast only the stuck client follows
            for i in range(BALLAST):
                big = Event(endpoint="ballast", plugin="kit", topic="big", data={"i": i})
                big.data["pad"] = "x" * 16384
                await exchange.publish(
                    aio_pika.Message(big.to_bytes()),
                    naming.event_routing_key("ballast", "kit", "big"),
                )
            started = time.monotonic()
            for i in range(count):
                await asyncio.sleep(max(0.0, started + i / RATE - time.monotonic()))
                body = Event(endpoint=ENDPOINT, plugin="kit", topic="tick", data={"i": i})
                body.data["pad"] = "x" * PAD
                await exchange.publish(aio_pika.Message(body.to_bytes()), key)
            async with asyncio.timeout(30):
                results = await asyncio.gather(*tasks)
            dropped = await asyncio.to_thread(drain, stuck)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(OSError):
                stuck.close()
    # the stuck client's writes really blocked: it was sent only part of its stream
    assert dropped.count(b"event: notification") < count + BALLAST
    for seen, _ in results:
        assert seen == list(range(count))  # every event, in order, no repeat
    delays = sorted(d for _, ds in results for d in ds)
    p50 = statistics.median(delays)
    p99 = delays[int(0.99 * len(delays))]
    print(
        f"\n{READERS} SSE readers + 1 stuck, {count} events at {RATE}/s:"
        f" p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms,"
        f" load {os.getloadavg()[0]:.1f}"
    )
    assert p99 < P99_BOUND, f"p99 {p99:.3f} s (p50 {p50:.3f} s, bound {P99_BOUND} s)"
