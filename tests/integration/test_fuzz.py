"""Fuzzed requests: the endpoint stays up, every answerable message gets its documented code.

``ORBIT_FUZZ_N`` sets the number of messages (2,000 in the default suite, 10,000 in
``make trust``). Seeded, so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections import Counter
from typing import Any

import aio_pika
import pytest

from orbit_client import AsyncOrbitClient
from orbit_protocol import naming

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit
N = int(os.environ.get("ORBIT_FUZZ_N", "1000"))
SEED = int(os.environ.get("ORBIT_FUZZ_SEED", "20261129"))
MAX_BODY = 65536


def case(rng: random.Random) -> tuple[str, bytes, dict[str, Any], str | None]:
    """(kind, body, extra properties, expected error code or None for no reply)."""
    kind = rng.choice(
        ["bytes", "json", "schema", "oversize", "no_reply_to", "plugin", "method",
         "deadline", "version", "args"]
    )  # fmt: skip
    ok = {"v": 1, "plugin": "testkit", "method": "echo", "args": {}}
    props: dict[str, Any] = {}
    if kind == "bytes":
        body, code = rng.randbytes(rng.randint(0, 300)), "BAD_REQUEST"
    elif kind == "json":
        body, code = json.dumps(ok).encode()[: rng.randint(1, 40)], "BAD_REQUEST"
    elif kind == "schema":
        broken = dict(ok)
        broken[rng.choice(["plugin", "method", "args"])] = rng.choice([5, None, [], "a.b"])
        body, code = json.dumps(broken).encode(), "BAD_REQUEST"
    elif kind == "oversize":
        body = json.dumps({**ok, "args": {"value": "x" * (MAX_BODY + rng.randint(1, 999))}})
        body, code = body.encode(), "PAYLOAD_TOO_LARGE"  # type: ignore[assignment]
    elif kind == "no_reply_to":
        body, code = json.dumps(ok).encode(), None
        props["reply_to"] = None
    elif kind == "plugin":
        body, code = (
            json.dumps({**ok, "plugin": f"p{rng.randint(0, 99)}"}).encode(),
            "UNKNOWN_PLUGIN",
        )
    elif kind == "method":
        body, code = (
            json.dumps({**ok, "method": f"m{rng.randint(0, 99)}"}).encode(),
            "UNKNOWN_METHOD",
        )
    elif kind == "deadline":
        body, code = json.dumps(ok).encode(), "DEADLINE_EXCEEDED"
        props["headers"] = {"x-orbit-v": 1, "x-orbit-deadline": rng.randint(0, 10**12)}
    elif kind == "version":
        body, code = json.dumps({**ok, "v": rng.choice([0, 2, "1", None])}).encode(), "BAD_REQUEST"
    else:
        bad_args = {**ok, "method": "sleep", "args": {"seconds": rng.choice([-1, "x", 10**6])}}
        body, code = json.dumps(bad_args).encode(), "INVALID_ARGS"
    return kind, body, props, code


async def test_fuzzed_messages(
    start_endpoint: StartEndpoint, amqp_url: str, client: AsyncOrbitClient
) -> None:
    proc = await start_endpoint("fuzz", max_body=MAX_BODY, prefetch=200)
    rng = random.Random(SEED)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.declare_queue(
            naming.reply_queue("guest"), arguments={"x-expires": 600000}
        )
        await replies.bind(naming.REPLY_EXCHANGE, replies.name)
        requests = await channel.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
        expected: dict[str, str] = {}
        kinds: Counter[str] = Counter()
        silent = 0
        for batch_start in range(0, N, 200):
            publishes = []
            for _ in range(batch_start, min(N, batch_start + 200)):
                kind, body, props, code = case(rng)
                kinds[kind] += 1
                corr = uuid.uuid4().hex
                message = aio_pika.Message(
                    body,
                    correlation_id=corr,
                    reply_to=props.get("reply_to", replies.name),
                    user_id="guest",
                    headers=props.get("headers", {"x-orbit-v": 1}),
                )
                publishes.append(requests.publish(message, "fuzz"))
                if code is None:
                    silent += 1
                else:
                    expected[corr] = code
            await asyncio.gather(*publishes)
        got: dict[str, str] = {}
        duplicates = 0
        async with replies.iterator(timeout=60) as it:
            async for delivery in it:
                await delivery.ack()
                corr = delivery.correlation_id or ""
                duplicates += corr in got
                got[corr] = json.loads(delivery.body)["error"]["code"]
                if len(got) == len(expected):
                    break
        dead = await channel.declare_queue(naming.DEAD_LETTER_QUEUE, passive=True)
        dead_count = dead.declaration_result.message_count
    wrong = {c: (expected[c], got.get(c)) for c in expected if got.get(c) != expected[c]}
    print(f"\nfuzz: {N} messages {dict(kinds)}; replies {len(got)}, wrong {len(wrong)}, "
          f"duplicates {duplicates}, dead-lettered {dead_count} (expected {silent})")  # fmt: skip
    assert not wrong, list(wrong.items())[:5]
    assert duplicates == 0
    assert dead_count == silent  # missing reply_to: rejected into orbit.dead, not looping
    assert proc.proc is not None and proc.proc.poll() is None
    assert (await client.call("fuzz", "orbit.ping"))["pong"] is True
