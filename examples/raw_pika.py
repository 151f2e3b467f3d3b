"""An Orbit call from a third-party tool: plain pika, no Orbit code, only docs/protocol.md.

    python examples/raw_pika.py amqp://USER:PASSWORD@127.0.0.1:35672/orbit demo

It declares its own reply queue, publishes ``orbit.ping`` and ``orbit.describe`` with
confirms, waits for the replies by ``correlation_id``, shows an error reply (an unknown
method), then reads one presence event of the endpoint from a subscription queue.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import pika


def call(
    channel: Any, reply_queue: str, user: str, endpoint: str, operation: str, **args: Any
) -> dict[str, Any]:
    plugin, method = operation.split(".", 1)
    corr = uuid.uuid4().hex
    props = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        correlation_id=corr,
        message_id=corr,
        reply_to=reply_queue,
        user_id=user,  # the broker checks it: this is who the endpoint sees
        expiration="60000",  # not picked up within 60 s: ENDPOINT_OFFLINE from the responder
        headers={"x-orbit-v": 1},
        type=operation,
    )
    body = json.dumps({"v": 1, "plugin": plugin, "method": method, "args": args})
    channel.basic_publish("orbit.requests", endpoint, body.encode(), props, mandatory=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got, reply_props, raw = channel.basic_get(reply_queue, auto_ack=True)
        if got is None:
            channel.connection.sleep(0.01)
        elif reply_props.correlation_id == corr:
            reply: dict[str, Any] = json.loads(raw)
            return reply
    raise TimeoutError(f"no reply to {operation} from {endpoint}")


def main(url: str, endpoint: str) -> None:
    params = pika.URLParameters(url)
    user = params.credentials.username  # type: ignore[union-attr]
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.confirm_delivery()  # an unroutable request (no such endpoint) raises at publish

    reply_queue = f"orbit.reply.{user}.{uuid.uuid4().hex[:12]}"
    channel.queue_declare(reply_queue, durable=True, arguments={"x-expires": 600_000})
    channel.queue_bind(reply_queue, "orbit.replies", routing_key=reply_queue)

    pong = call(channel, reply_queue, user, endpoint, "orbit.ping")
    print("orbit.ping ->", pong["result"])
    described = call(channel, reply_queue, user, endpoint, "orbit.describe")
    print("plugins:", ", ".join(sorted(described["result"]["plugins"])))
    wrong = call(channel, reply_queue, user, endpoint, "orbit.no_such_method")
    print("error reply:", wrong["error"]["code"], "-", wrong["error"]["message"])

    events = f"orbit.sub.{user}.{uuid.uuid4().hex[:12]}"
    channel.queue_declare(
        events, auto_delete=True, arguments={"x-expires": 600_000, "x-max-length": 10_000}
    )
    channel.queue_bind(events, "orbit.events", routing_key=f"{endpoint}.orbit.presence")
    print("waiting for the next presence event (sent every heartbeat, 10 s by default)...")
    for _method, _props, raw in channel.consume(events, auto_ack=True, inactivity_timeout=60):
        if raw is None:
            raise TimeoutError("no presence event within 60 s")
        event = json.loads(raw)
        print(f"{event['endpoint']} is {event['data']['state']} on {event['data']['host']}")
        break
    connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="AMQP URL of your broker user, vhost orbit")
    parser.add_argument("endpoint", nargs="?", default="demo")
    args = parser.parse_args()
    main(args.url, args.endpoint)
