"""Jepsen-style ledger: endpoint SIGKILLed repeatedly under load, every request accounted for.

``ORBIT_LEDGER_N`` requests (default 2,000) and ``ORBIT_LEDGER_KILLS`` kills (default 3);
``make trust`` runs 10,000 and 5. Half the requests are non-idempotent side effects
(appends to a ledger file): none may run twice, and every request gets exactly one
terminal reply.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient
from orbit_protocol import ErrorCode, Reply

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit
N = int(os.environ.get("ORBIT_LEDGER_N", "2000"))
KILLS = int(os.environ.get("ORBIT_LEDGER_KILLS", "3"))
IN_FLIGHT = 64


async def test_endpoint_sigkill_ledger(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    proc = await start_endpoint("ledger", prefetch=64)
    ledger = tmp_path / "effects.txt"
    gate = asyncio.Semaphore(IN_FLIGHT)
    replies: dict[int, Reply] = {}

    async def one(i: int) -> None:
        async with gate:
            if i % 2:
                op, args = (
                    "testkit.effect",
                    {"ledger": str(ledger), "token": f"t{i}", "delay": 0.01},
                )
            else:
                op, args = "testkit.echo", {"value": i, "delay": 0.01}
            replies[i] = await client.request(
                "ledger", op, args, timeout=300, wait_for_endpoint=True
            )

    started = time.monotonic()
    tasks = [asyncio.create_task(one(i)) for i in range(N)]
    restarts: list[float] = []
    for k in range(1, KILLS + 1):
        while len(replies) < k * N // (KILLS + 1):
            await asyncio.sleep(0.01)
        proc.kill()
        down = time.monotonic()
        await proc.start()
        restarts.append(time.monotonic() - down)
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    elapsed = time.monotonic() - started

    effects = Counter(line.split()[0] for line in ledger.read_text().splitlines())
    outcome: Counter[str] = Counter()
    for i, reply in replies.items():
        if reply.ok:
            outcome["ok"] += 1
            expected = {"token": f"t{i}"} if i % 2 else {"value": i}
            assert reply.result == expected
            if i % 2:
                assert effects[f"t{i}"] == 1, f"effect t{i} ok but ran {effects[f't{i}']} times"
        else:
            assert reply.error is not None
            assert reply.error.code is ErrorCode.INTERNAL and reply.error.details["interrupted"]
            assert i % 2, "an idempotent request must be re-run, not reported interrupted"
            outcome["interrupted"] += 1
    lost = N - len(replies)
    dup_effects = sum(1 for n in effects.values() if n > 1)
    print(
        f"\nledger: {N} requests, {KILLS} SIGKILLs (restart {max(restarts):.1f} s max), "
        f"{elapsed:.1f} s: ok {outcome['ok']}, interrupted {outcome['interrupted']}, "
        f"lost {lost}, duplicate effects {dup_effects}"
    )
    assert lost == 0 and dup_effects == 0
