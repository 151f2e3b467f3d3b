"""A client that disconnects after sending and comes back gets all its replies."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from orbit_client import AsyncOrbitClient
from tests.testkit.eventually import eventually

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit
AWAY_S = float(os.environ.get("ORBIT_SESSION_AWAY_S", "2"))
"""How long the client stays away (suite 2 s; ``make soak`` 600 s, reliability.md R11)."""


@pytest.mark.timeout(AWAY_S + 120)
async def test_replies_wait_for_a_returning_session(
    start_endpoint: StartEndpoint, amqp_url: str
) -> None:
    await start_endpoint("ep1")
    async with AsyncOrbitClient(url=amqp_url, session="nightly") as first:
        ids = [
            await first.send("ep1", "testkit.echo", {"value": i, "delay": 0.5}) for i in range(50)
        ]
    # gone before any reply could arrive; the durable session queue keeps them
    left = time.monotonic()
    await asyncio.sleep(AWAY_S)
    async with AsyncOrbitClient(url=amqp_url, session="nightly") as second:
        replies = [await second.collect(i, timeout=30) for i in ids]
    assert [r.unwrap() for r in replies] == [{"value": i} for i in range(50)]
    print(
        f"\nsession: away {time.monotonic() - left:.0f} s, {len(replies)} of 50 replies collected"
    )


async def test_session_names_are_validated(amqp_url: str) -> None:
    with pytest.raises(ValueError, match="invalid session name"):
        AsyncOrbitClient(url=amqp_url, session="../x")


async def test_replies_received_but_not_collected_go_back_to_the_session(
    start_endpoint: StartEndpoint, amqp_url: str
) -> None:
    """The first client stays until its replies have reached it, then leaves without
    collect(): they must wait in the session queue for the next client."""
    await start_endpoint("ep1")
    async with AsyncOrbitClient(url=amqp_url, session="stay") as first:
        ids = [await first.send("ep1", "testkit.echo", {"value": i}) for i in range(5)]
        await eventually(  # until all five replies have arrived in this client
            lambda: all(i in first._inbox._unclaimed for i in ids), what="five replies in"
        )
    async with AsyncOrbitClient(url=amqp_url, session="stay") as second:
        replies = [await second.collect(i, timeout=30) for i in ids]
    assert [r.unwrap() for r in replies] == [{"value": i} for i in range(5)]
