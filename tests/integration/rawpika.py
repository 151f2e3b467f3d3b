"""A third-party client written with plain pika and no orbit code: docs/protocol.md only."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika


class RawCaller:
    """Publishes requests to ``orbit.requests`` and reads replies from its own reply queue."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.user = pika.URLParameters(url).credentials.username  # type: ignore[attr-defined]
        self.reply_queue = f"orbit.reply.{self.user}.{uuid.uuid4().hex[:12]}"
        self.channel.queue_declare(self.reply_queue, durable=True, arguments={"x-expires": 600_000})
        self.channel.queue_bind(self.reply_queue, "orbit.replies", routing_key=self.reply_queue)

    def publish(
        self,
        endpoint: str,
        body: bytes | dict[str, Any],
        *,
        correlation_id: str | None = None,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
        user_id: str | None = "",
        reply_to: str | None = "",
        expiration_ms: int | None = None,
        routing_key: str | None = None,
    ) -> str:
        corr = uuid.uuid4().hex if correlation_id is None else correlation_id
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        props = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            correlation_id=corr or None,
            message_id=message_id or corr or uuid.uuid4().hex,
            reply_to=self.reply_queue if reply_to == "" else reply_to,
            user_id=self.user if user_id == "" else user_id,
            headers={"x-orbit-v": 1, **(headers or {})},
            expiration=None if expiration_ms is None else str(expiration_ms),
        )
        self.channel.basic_publish(
            "orbit.requests", routing_key or endpoint, raw, props, mandatory=True
        )
        return corr

    def replies(
        self, count: int, timeout: float = 20
    ) -> list[tuple[pika.BasicProperties, dict[str, Any]]]:
        got: list[tuple[pika.BasicProperties, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            method, props, body = self.channel.basic_get(self.reply_queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.02)
                continue
            got.append((props, json.loads(body)))
        return got

    def reply(self, timeout: float = 20) -> tuple[pika.BasicProperties, dict[str, Any]]:
        got = self.replies(1, timeout)
        if not got:
            raise TimeoutError("no reply")
        return got[0]

    def close(self) -> None:
        self.connection.close()


def request(plugin: str, method: str, **args: Any) -> dict[str, Any]:
    return {"v": 1, "plugin": plugin, "method": method, "args": args}
