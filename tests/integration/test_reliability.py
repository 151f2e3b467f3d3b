"""Nothing accepted is lost, nobody waits forever: crashes, dead letters, limits, strangers."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pika
import pytest

from orbit_broker.management import Permissions
from orbit_broker.responder import Responder
from orbit_client import (
    AsyncOrbitClient,
    DeadlineExceeded,
    EndpointBusy,
    NotAuthorized,
    PoisonMessage,
)
from orbit_protocol import ErrorCode, naming

from .conftest import StartEndpoint
from .endpoints import declare_endpoint
from .rawpika import RawCaller, request

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]


def url_as(amqp_url: str, user: str, password: str) -> str:
    parts = urlsplit(amqp_url)
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture
async def responder(amqp_url: str) -> AsyncIterator[Responder]:
    stop = asyncio.Event()
    service = Responder(amqp_url)
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(0.5)
    yield service
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_stranger_is_not_authorized(
    start_endpoint: StartEndpoint, amqp_url: str, vhost: str, broker: Any, tmp_path: Path
) -> None:
    await start_endpoint("ep1", admins=["guest"])
    broker.management.create_user("mallory", "mallory-pw")
    broker.management.set_permissions("mallory", vhost, Permissions(".*", ".*", ".*"))
    ledger = tmp_path / "ledger"
    try:
        async with AsyncOrbitClient(url=url_as(amqp_url, "mallory", "mallory-pw")) as stranger:
            with pytest.raises(NotAuthorized, match="'mallory' may not call"):
                await stranger.call("ep1", "testkit.effect", ledger=str(ledger), token="x")
        # a forged user_id is refused by RabbitMQ itself (channel closed, nothing delivered)
        raw = RawCaller(url_as(amqp_url, "mallory", "mallory-pw"))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="user_id"):
            raw.publish(
                "ep1", request("testkit", "effect", ledger=str(ledger), token="y"), user_id="guest"
            )
        raw.connection.close()
    finally:
        broker.management.delete_user("mallory")
    assert not ledger.exists()


async def test_expired_request_answered_endpoint_offline(
    amqp_url: str, responder: Responder
) -> None:
    await declare_endpoint(amqp_url, "later")  # nobody consumes it
    raw = RawCaller(amqp_url)
    try:
        corr = await asyncio.to_thread(
            raw.publish, "later", request("orbit", "ping"), expiration_ms=300
        )
        props, body = await asyncio.to_thread(raw.reply, 30)
    finally:
        raw.close()
    assert props.correlation_id == corr
    assert body["error"]["code"] == "ENDPOINT_OFFLINE"
    assert body["error"]["details"]["reason"] == "expired"


async def test_poison_request_dead_lettered_and_answered(
    amqp_url: str, responder: Responder
) -> None:
    """A request that crashes its consumer every time ends as POISON_MESSAGE, not a loop."""
    await declare_endpoint(amqp_url, "crashy")
    deliveries = 0
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(naming.request_queue("crashy"), passive=True)

        async def crash(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal deliveries
            deliveries += 1
            await message.nack(requeue=True)

        await queue.consume(crash)
        raw = RawCaller(amqp_url)
        try:
            await asyncio.to_thread(raw.publish, "crashy", request("orbit", "ping"))
            _, body = await asyncio.to_thread(raw.reply, 30)
        finally:
            raw.close()
    assert body["error"]["code"] == "POISON_MESSAGE"
    assert body["error"]["details"]["reason"] == "delivery_limit"
    assert deliveries == 6  # the first delivery plus x-delivery-limit=5 redeliveries


async def test_full_queue_is_endpoint_busy(amqp_url: str, client: AsyncOrbitClient) -> None:
    await declare_endpoint(amqp_url, "busy", max_length=3)
    connection = await aio_pika.connect(amqp_url)
    async with connection:  # a consumer that takes one request and never finishes it
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(naming.request_queue("busy"), passive=True)

        async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            pass  # never acked: the queue stays full

        await queue.consume(hold)
        calls = []
        for _ in range(15):  # one at a time, so the queue's length is known at each publish
            calls.append(asyncio.create_task(client.call("busy", "orbit.ping", timeout=3)))
            await asyncio.sleep(0.05)
        results = await asyncio.gather(*calls, return_exceptions=True)
    # RabbitMQ enforces a quorum queue's max-length approximately: some calls are queued
    # (and time out here, nobody answers them), the rest are refused at once with a nack.
    busy = [r for r in results if isinstance(r, EndpointBusy)]
    assert busy and "full request queue" in str(busy[0]), results
    assert all(isinstance(r, EndpointBusy | DeadlineExceeded) for r in results), results


async def test_sigkill_mid_stream_loses_nothing(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    proc = await start_endpoint("ep1")
    ledger = tmp_path / "effects.txt"
    echoes = [
        asyncio.create_task(client.call("ep1", "testkit.echo", value=i, delay=0.02, timeout=60))
        for i in range(300)
    ]
    effects = [
        asyncio.create_task(
            client.request(
                "ep1",
                "testkit.effect",
                {"ledger": str(ledger), "token": f"e{i}", "delay": 1.0},
                timeout=60,
            )
        )
        for i in range(20)
    ]
    while sum(t.done() for t in echoes) < 60:
        await asyncio.sleep(0.01)
    proc.kill()
    done_before = sum(t.done() for t in echoes)
    await asyncio.sleep(0.5)
    await proc.start()
    results = await asyncio.gather(*echoes)
    assert [r["value"] for r in results] == list(range(300))
    assert done_before < 300  # the kill really happened mid-stream
    replies = await asyncio.gather(*effects)
    tokens = ledger.read_text().split() if ledger.exists() else []
    executed = [t for t in tokens if t.startswith("e")]
    assert len(executed) == len(set(executed)), "a non-idempotent request ran twice"
    for i, reply in enumerate(replies):
        if reply.ok:
            assert f"e{i}" in executed
        else:
            assert reply.error is not None and reply.error.code is ErrorCode.INTERNAL
            assert reply.error.details.get("interrupted") is True


async def test_graceful_stop_finishes_in_flight_work(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    proc = await start_endpoint("ep1")
    slow = asyncio.create_task(client.call("ep1", "testkit.sleep", seconds=1.5))
    await asyncio.sleep(0.3)
    assert await proc.stop() == 0
    assert await slow == {"slept": 1.5}
    with contextlib.suppress(Exception):
        await proc.stop()


async def test_broker_killed_and_restarted(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, broker: Any
) -> None:
    """kill -9 of the broker: endpoint and client reconnect by themselves and serve again."""
    if broker.node is None:
        pytest.skip("needs the suite's own private node (ORBIT_TEST_AMQP_URL points elsewhere)")
    await start_endpoint("ep1", reconnect_max=2.0)
    assert await client.call("ep1", "testkit.echo", value="before") == {"value": "before"}
    # RabbitMQ 3.10.8 can lose a quorum queue declared just before a kill -9 ("leader not
    # known" for minutes); a few seconds of age make it durable, as in production.
    await asyncio.sleep(5)
    await asyncio.to_thread(broker.node.restart)
    started = asyncio.get_running_loop().time()
    while True:  # the endpoint re-consumes after its backoff; the client's link is robust
        try:
            result = await client.call("ep1", "testkit.echo", value="after", timeout=5)
            break
        except Exception:
            if asyncio.get_running_loop().time() - started > 60:
                raise
            await asyncio.sleep(0.5)
    assert result == {"value": "after"}
    assert asyncio.get_running_loop().time() - started < 30


async def test_handler_that_kills_the_endpoint_is_poisoned_not_looped(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    """An accepted request whose handler kills the endpoint (a segfault, an OOM kill) is
    re-run after each restart at most ``resume_limit`` times (6 runs in all, as the queue's
    x-delivery-limit=5 allows), then answered POISON_MESSAGE; the requests accepted beside it
    are all answered, and the endpoint serves again."""
    ep = await start_endpoint("crasher")
    ledger = tmp_path / "poison-ledger"

    async def innocent(i: int) -> Any:
        return await client.call("crasher", "testkit.echo", value=i, delay=1.0, timeout=240)

    before = [asyncio.create_task(innocent(i)) for i in range(8)]
    await asyncio.sleep(0.2)
    poison = asyncio.create_task(
        client.call("crasher", "testkit.die", ledger=str(ledger), token="p", delay=0.3, timeout=240)
    )
    await asyncio.sleep(0.05)
    after = [asyncio.create_task(innocent(i)) for i in range(8, 16)]
    restarts = 0
    while not poison.done():
        assert ep.proc is not None
        if ep.proc.poll() is not None:  # the supervisor's part: start it again
            restarts += 1
            assert restarts <= 10, f"still crashing after {restarts} restarts:\n{ep.log()}"
            with contextlib.suppress(RuntimeError):  # it may die before it consumes
                await ep.start()
        await asyncio.sleep(0.1)
    with pytest.raises(PoisonMessage, match="cut short by 6 endpoint restarts") as caught:
        await poison
    assert caught.value.details["reason"] == "resume_limit"
    assert ledger.read_text().count("p ") == 6  # the first run + resume_limit (5) re-runs
    results = await asyncio.gather(*before, *after)
    assert [r["value"] for r in results] == list(range(16))  # no innocent request poisoned
    resumed = Counter(re.findall(r"resuming (\S+) \(testkit\.echo\)", ep.log_path.read_text()))
    assert max(resumed.values()) >= 2, resumed  # innocents were cut short beside the poison
    assert await client.call("crasher", "testkit.echo", value="still here") == {
        "value": "still here"
    }
