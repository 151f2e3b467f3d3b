"""Jepsen-style ledger: endpoint SIGKILLed repeatedly under load, every request accounted for.

``ORBIT_LEDGER_N`` requests (default 2,000) and ``ORBIT_LEDGER_KILLS`` kills (default 3);
``make trust`` runs 10,000 and 5. Half the requests are non-idempotent side effects
(appends to a ledger file): none may run twice, and every request gets exactly one
terminal reply.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient
from orbit_protocol import ErrorCode, Reply

from .conftest import StartEndpoint
from .endpoints import consumer_count

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
N = int(os.environ.get("ORBIT_LEDGER_N", "1000"))
KILLS = int(os.environ.get("ORBIT_LEDGER_KILLS", "2"))
IN_FLIGHT = 64


def ledger_call(i: int, ledger: Path, **extra: Any) -> tuple[str, dict[str, Any]]:
    """Request ``i`` of a ledger run: odd = a non-idempotent side effect (a line appended to
    ``ledger``), even = an idempotent echo."""
    if i % 2:
        return "testkit.effect", {"ledger": str(ledger), "token": f"t{i}", **extra}
    return "testkit.echo", {"value": i, **extra}


def check_replies(
    replies: dict[int, Reply], ledger: Path, *, restarted: bool
) -> tuple[Counter[str], Counter[str]]:
    """Every ok reply carries its request's result, and its side effect ran exactly once; a
    failure may only be a side effect answered ``interrupted`` by an endpoint that
    ``restarted``. Returns (outcome counts, effect counts per token)."""
    effects = Counter(line.split()[0] for line in ledger.read_text().splitlines())
    outcome: Counter[str] = Counter()
    for i, reply in replies.items():
        if reply.ok:
            outcome["ok"] += 1
            assert reply.result == ({"token": f"t{i}"} if i % 2 else {"value": i})
            if i % 2:
                assert effects[f"t{i}"] == 1, f"effect t{i} ok but ran {effects[f't{i}']} times"
            continue
        assert restarted, f"request {i} failed: {reply.error}"  # nothing may be interrupted
        assert reply.error is not None
        assert reply.error.code is ErrorCode.INTERNAL and reply.error.details["interrupted"]
        assert i % 2, "an idempotent request must be re-run, not reported interrupted"
        outcome["interrupted"] += 1
    return outcome, effects


async def test_endpoint_sigkill_ledger(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    proc = await start_endpoint("ledger", prefetch=64)
    ledger = tmp_path / "effects.txt"
    gate = asyncio.Semaphore(IN_FLIGHT)
    replies: dict[int, Reply] = {}

    async def one(i: int) -> None:
        async with gate:
            op, args = ledger_call(i, ledger, delay=0.01)
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

    outcome, effects = check_replies(replies, ledger, restarted=True)
    lost = N - len(replies)
    dup_effects = sum(1 for n in effects.values() if n > 1)
    print(
        f"\nledger: {N} requests, {KILLS} SIGKILLs (restart {max(restarts):.1f} s max), "
        f"{elapsed:.1f} s: ok {outcome['ok']}, interrupted {outcome['interrupted']}, "
        f"lost {lost}, duplicate effects {dup_effects}"
    )
    assert lost == 0 and dup_effects == 0


BROKER_N = int(os.environ.get("ORBIT_BROKER_LEDGER_N", "600"))
BROKER_KILLS = int(os.environ.get("ORBIT_BROKER_LEDGER_KILLS", "1"))
BROKER_RATE = 100.0  # requests started per second


@pytest.mark.timeout(900)
async def test_broker_sigkill_ledger(
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    amqp_url: str,
    broker: Any,
    tmp_path: Path,
) -> None:
    """The broker is SIGKILLed mid-stream and restarted (``BROKER_KILLS`` times, at even
    fractions of the run): every request gets one terminal reply, no side effect runs twice,
    and the endpoint consumes again and the client gets replies again within 5 s of the node
    being ready (reliability.md R4). Endpoint and client use their default settings."""
    if broker.node is None:
        pytest.skip("needs the suite's own private node (ORBIT_TEST_AMQP_URL points elsewhere)")
    ep = await start_endpoint("bledger", prefetch=64)
    ledger = tmp_path / "effects.txt"
    replies: dict[int, Reply] = {}
    replied_at: list[float] = []
    failures: dict[int, BaseException] = {}
    sent = 0

    async def one(i: int) -> None:
        nonlocal sent
        await asyncio.sleep(i / BROKER_RATE)  # an open-loop stream, so every kill is mid-stream
        sent += 1
        op, args = ledger_call(i, ledger)
        try:
            replies[i] = await client.request(
                "bledger", op, args, timeout=120, wait_for_endpoint=True
            )
        except Exception as exc:
            failures[i] = exc
        replied_at.append(time.monotonic())

    # RabbitMQ 3.10.8 can lose a quorum queue declared just before a kill -9 (test_reliability)
    await asyncio.sleep(5)
    started = time.monotonic()
    tasks = [asyncio.create_task(one(i)) for i in range(BROKER_N)]
    recoveries: list[tuple[float, float, float]] = []  # (outage, endpoint, client) seconds
    for k in range(1, BROKER_KILLS + 1):
        while sent < k * BROKER_N // (BROKER_KILLS + 1):
            await asyncio.sleep(0.01)
        killed = time.monotonic()
        await asyncio.to_thread(broker.node.restart)
        ready = time.monotonic()
        while await consumer_count(amqp_url, "bledger") < 1:
            assert time.monotonic() - ready < 60, "the endpoint never consumed again"
            await asyncio.sleep(0.05)
        consuming = time.monotonic()
        while not replied_at or replied_at[-1] < killed:  # replies may resume before `ready`
            assert time.monotonic() - ready < 60, (
                f"the client never got a reply again: {len(replies)} replies;"
                f" endpoint log:\n{ep.log()}"
            )
            await asyncio.sleep(0.05)
        first_reply = next(t for t in replied_at if t > killed)
        recoveries.append((ready - killed, consuming - ready, max(0.0, first_reply - ready)))
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    elapsed = time.monotonic() - started

    if failures:  # say what became of each: effect run? journal row?
        effects = Counter(line.split()[0] for line in ledger.read_text().splitlines())
        journal = sqlite3.connect(ep.state_dir / "bledger" / "journal.sqlite")
        rows = journal.execute("SELECT request_id, state, args FROM requests").fetchall()
        known = {
            json.loads(a).get("token") or json.loads(a).get("value"): (r, st) for r, st, a in rows
        }
        report = [
            f"{i}: {exc!r}; effect ran {effects.get(f't{i}', 0)}x;"
            f" journal {known.get(f't{i}' if i % 2 else i)}"
            for i, exc in sorted(failures.items())
        ]
        raise AssertionError("requests without a reply:\n" + "\n".join(report))
    outcome, effects = check_replies(replies, ledger, restarted=False)
    lost = BROKER_N - len(replies)
    dup_effects = sum(1 for n in effects.values() if n > 1)
    print(
        f"\nbroker ledger: {BROKER_N} requests, {BROKER_KILLS} broker kill -9, {elapsed:.1f} s: "
        f"ok {outcome['ok']}, lost {lost}, duplicate effects {dup_effects}; after each restart "
        + "; ".join(
            f"node down {o:.1f} s, endpoint consuming +{e:.1f} s, client replies +{c:.1f} s"
            for o, e, c in recoveries
        )
    )
    assert lost == 0 and dup_effects == 0
    assert len(effects) == BROKER_N // 2  # every side effect ran (exactly once, above)
    for _, endpoint_s, client_s in recoveries:
        assert endpoint_s <= 5 and client_s <= 5, recoveries
