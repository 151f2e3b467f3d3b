"""The aio-pika adapter's own logic, where a real node cannot stage the case on demand."""

from __future__ import annotations

import asyncio

import pytest

from orbit_amqp import ConnectionLost
from orbit_amqp.aiopika import _settle


async def test_an_ack_stuck_in_the_write_queue_fails_when_the_link_dies() -> None:
    """aiormq never resolves the drain of a frame still queued when its connection dies;
    the adapter must turn that into ``ConnectionLost`` at once, not wait forever."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()
    channel_closed, connection_lost = loop.create_future(), loop.create_future()
    settle = asyncio.create_task(_settle(lambda: never, (channel_closed, connection_lost)))
    await asyncio.sleep(0.05)
    assert not settle.done()
    connection_lost.set_result(None)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(settle, 1)
    assert never.cancelled()


async def test_a_sent_ack_returns() -> None:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await asyncio.wait_for(_settle(lambda: done, (lost,)), 1)


async def test_an_ack_on_a_closed_channel_fails_without_sending() -> None:
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    lost.set_result(None)
    sent: list[bool] = []

    async def ack() -> None:
        sent.append(True)

    with pytest.raises(ConnectionLost):
        await _settle(ack, (lost,))
    assert sent == []


async def test_a_cancelled_ack_stays_cancelled() -> None:
    """A shutdown that cancels the task mid-ack is not reported as a lost connection."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    settle = asyncio.create_task(_settle(lambda: never, (lost,)))
    await asyncio.sleep(0.05)
    settle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settle
    lost.set_result(None)  # a late loss must not cancel anything any more
    await asyncio.sleep(0)
