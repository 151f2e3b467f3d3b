"""What a third-party AMQP client sees: raw pika, docs/protocol.md properties, every error code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient
from orbit_protocol import ErrorCode

from .conftest import StartEndpoint
from .rawpika import RawCaller, request

pytestmark = pytest.mark.rabbit


@pytest.fixture
def raw(amqp_url: str) -> Iterator[RawCaller]:
    caller = RawCaller(amqp_url)
    yield caller
    caller.close()


async def test_raw_pika_request_and_reply_properties(
    start_endpoint: StartEndpoint, raw: RawCaller
) -> None:
    await start_endpoint("ep1")
    corr = await asyncio.to_thread(raw.publish, "ep1", request("testkit", "echo", value=42))
    props, body = await asyncio.to_thread(raw.reply)
    assert body == {"v": 1, "ok": True, "result": {"value": 42}}
    assert props.correlation_id == corr
    assert props.user_id == "guest"
    assert props.type == "reply"
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.headers["x-orbit-v"] == 1
    assert props.message_id and props.message_id != corr


async def test_republished_request_runs_once_answered_twice(
    start_endpoint: StartEndpoint, raw: RawCaller, tmp_path: Path
) -> None:
    await start_endpoint("ep1")
    ledger = tmp_path / "ledger.txt"
    args = request("testkit", "effect", ledger=str(ledger), token="t1")
    first = await asyncio.to_thread(raw.publish, "ep1", args, message_id="key-1")
    second = await asyncio.to_thread(raw.publish, "ep1", args, message_id="key-1")
    replies = await asyncio.to_thread(raw.replies, 2)
    assert sorted(p.correlation_id for p, _ in replies) == sorted([first, second])
    assert [b for _, b in replies] == [{"v": 1, "ok": True, "result": {"token": "t1"}}] * 2
    assert ledger.read_text().count("t1") == 1
    # the same key with other arguments is a conflict, and runs nothing
    other = request("testkit", "effect", ledger=str(ledger), token="t2")
    await asyncio.to_thread(raw.publish, "ep1", other, message_id="key-1")
    _, body = await asyncio.to_thread(raw.reply)
    assert body["error"]["code"] == "CONFLICT"
    assert "t2" not in ledger.read_text()


def code_of(body: dict) -> str:  # type: ignore[type-arg]
    assert body["v"] == 1 and body["ok"] is False, body
    assert body["error"]["message"]
    return str(body["error"]["code"])


async def test_error_codes_from_raw_messages(start_endpoint: StartEndpoint, raw: RawCaller) -> None:
    await start_endpoint("ep1", max_body=65536)
    cases: list[tuple[bytes | dict, dict, str]] = [  # type: ignore[type-arg]
        (b"this is not json", {}, "BAD_REQUEST"),
        ({"v": 2, "plugin": "orbit", "method": "ping", "args": {}}, {}, "BAD_REQUEST"),
        (request("nope", "x"), {}, "UNKNOWN_PLUGIN"),
        (request("testkit", "nope"), {}, "UNKNOWN_METHOD"),
        (request("testkit", "sleep", seconds="long"), {}, "INVALID_ARGS"),
        (request("testkit", "fail", kind="not_found"), {}, "NOT_FOUND"),
        (request("testkit", "fail", kind="unavailable"), {}, "UNAVAILABLE"),
        (request("testkit", "fail"), {}, "INTERNAL"),
        (request("orbit", "shutdown"), {}, "NOT_AUTHORIZED"),  # admins only
        (request("testkit", "echo", value="x" * 70000), {}, "PAYLOAD_TOO_LARGE"),
        (request("orbit", "ping"), {"headers": {"x-orbit-deadline": 1000}}, "DEADLINE_EXCEEDED"),
        (request("orbit", "ping"), {"user_id": None}, "NOT_AUTHORIZED"),
        (
            request("orbit", "ping"),
            {"headers": {"x-death": [{"reason": "expired"}]}},
            "NOT_AUTHORIZED",
        ),
    ]
    for body, options, expected in cases:
        await asyncio.to_thread(raw.publish, "ep1", body, **options)
        _, reply = await asyncio.to_thread(raw.reply)
        assert code_of(reply) == expected, (body, options, reply)
    # no correlation id: answered BAD_REQUEST (uncorrelated); no reply_to: dead-lettered
    await asyncio.to_thread(raw.publish, "ep1", request("orbit", "ping"), correlation_id="")
    props, reply = await asyncio.to_thread(raw.reply)
    assert code_of(reply) == "BAD_REQUEST" and not props.correlation_id
    # a result over the cap is refused as well, and the endpoint keeps serving
    await asyncio.to_thread(raw.publish, "ep1", request("testkit", "big", size=70000))
    _, reply = await asyncio.to_thread(raw.reply)
    assert code_of(reply) == "PAYLOAD_TOO_LARGE"
    await asyncio.to_thread(raw.publish, "ep1", request("orbit", "ping"))
    _, reply = await asyncio.to_thread(raw.reply)
    assert reply["ok"] is True


async def test_cancel_and_not_found(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("ep1")
    slow = asyncio.create_task(
        client.request("ep1", "testkit.sleep", {"seconds": 30}, request_id="r-slow")
    )
    await asyncio.sleep(0.5)
    result = await client.call("ep1", "orbit.cancel", request_id="r-slow")
    assert result == {"request_id": "r-slow", "cancelled": True, "state": "accepted"}
    reply = await slow
    assert reply.error is not None and reply.error.code is ErrorCode.CANCELLED
    reply = await client.request("ep1", "orbit.cancel", {"request_id": "nope"})
    assert reply.error is not None and reply.error.code is ErrorCode.NOT_FOUND
    journal = await client.call("ep1", "orbit.requests")
    assert {"orbit.cancel", "testkit.sleep"} <= {r["operation"] for r in journal}


async def test_unjournaled_arguments_never_reach_the_disk(
    start_endpoint: StartEndpoint, raw: RawCaller
) -> None:
    proc = await start_endpoint("ep1")
    body = request("testkit", "sealed", token="s3cr3t-token-value")
    corr = await asyncio.to_thread(raw.publish, "ep1", body, message_id="k-sealed")
    _, first = await asyncio.to_thread(raw.reply)
    assert first["result"] == {"calls": 1}
    # a duplicate of a request whose reply was not kept is run again (idempotent by contract)
    await asyncio.to_thread(raw.publish, "ep1", body, message_id="k-sealed")
    _, second = await asyncio.to_thread(raw.reply)
    assert second["result"] == {"calls": 2} and corr
    await proc.stop()
    for path in proc.state_dir.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-token-value" not in path.read_bytes(), path
