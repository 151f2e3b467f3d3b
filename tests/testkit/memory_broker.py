"""An in-memory model of the broker semantics Orbit relies on (DESIGN §1, §6).

It is the "in-memory transport" of the contract tests: ``tests/contract`` runs the same
cases against it and against a real RabbitMQ node, so every broker behaviour the endpoint,
the client and the dead-letter responder depend on is written down once, executable, and
checked against the real broker version in CI. Modelled: topic and direct exchanges,
durable queues with the DESIGN §1 arguments (``x-max-length`` with ``reject-publish`` or
``drop-head``, ``x-message-ttl`` and per-message ``expiration``, dead-lettering with an
``x-death`` header, quorum ``x-delivery-limit`` with ``x-delivery-count``, single active
consumer), consumers with manual ack / nack / reject and prefetch.

Not modelled (not relied on): alternate exchanges, exchange-to-exchange bindings, priority,
permissions, connection-level behaviour.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from orbit_protocol.topology import Topology


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    want, words = pattern.split("."), key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(words)
        if want[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(words) + 1))
        return j < len(words) and want[i] in ("*", words[j]) and match(i + 1, j + 1)

    return match(0, 0)


class Unroutable(Exception):
    """``basic.return``: a ``mandatory`` publish that no queue is bound for."""


@dataclass
class Message:
    body: bytes
    exchange: str
    routing_key: str
    properties: dict[str, Any]
    headers: dict[str, Any]
    expires_at: float | None = None
    delivery_count: int = 0
    redelivered: bool = False


@dataclass
class _Consumer:
    tag: str
    prefetch: int
    inbox: asyncio.Queue[tuple[int, Message]] = field(default_factory=asyncio.Queue)
    unacked: dict[int, Message] = field(default_factory=dict)


@dataclass
class _Queue:
    name: str
    arguments: dict[str, Any]
    ready: deque[Message] = field(default_factory=deque)
    consumers: list[_Consumer] = field(default_factory=list)

    @property
    def quorum(self) -> bool:
        return self.arguments.get("x-queue-type") == "quorum"

    def active(self) -> list[_Consumer]:
        if self.arguments.get("x-single-active-consumer"):
            return self.consumers[:1]
        return self.consumers


class MemoryBroker:
    """One vhost's worth of exchanges, queues and bindings, in process memory."""

    def __init__(self) -> None:
        self.exchanges: dict[str, str] = {}
        self.queues: dict[str, _Queue] = {}
        self.bindings: set[tuple[str, str, str]] = set()
        self._tags = itertools.count(1)

    # -- declarations ------------------------------------------------------------------

    def declare(self, topology: Topology) -> None:
        for ex in topology.exchanges:
            self.declare_exchange(ex.name, ex.kind)
        for q in topology.queues:
            self.declare_queue(q.name, q.args)
        for b in topology.bindings:
            self.bind(b.queue, b.exchange, b.routing_key)

    def declare_exchange(self, name: str, kind: str) -> None:
        if self.exchanges.setdefault(name, kind) != kind:
            raise ValueError(f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange {name!r}")

    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        existing = self.queues.get(name)
        if existing is None:
            self.queues[name] = _Queue(name, dict(arguments))
        elif existing.arguments != dict(arguments):
            raise ValueError(f"PRECONDITION_FAILED - inequivalent arg for queue {name!r}")

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.bindings.add((exchange, queue, routing_key))

    # -- publishing --------------------------------------------------------------------

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        *,
        mandatory: bool = False,
    ) -> bool:
        """Route and enqueue; False is a publisher nack (a ``reject-publish`` queue was full).

        Raises :class:`Unroutable` for a ``mandatory`` message that reaches no queue.
        """
        properties = dict(properties or {})
        confirmed = True
        queues = self._route(exchange, routing_key)
        if mandatory and not queues:
            raise Unroutable(f"NO_ROUTE - {exchange!r} has no binding for {routing_key!r}")
        for queue in queues:
            msg = Message(body, exchange, routing_key, properties, dict(headers or {}))
            confirmed &= self._enqueue(queue, msg)
        return confirmed

    def _route(self, exchange: str, routing_key: str) -> list[_Queue]:
        kind = self.exchanges.get(exchange)
        if kind is None:
            raise ValueError(f"NOT_FOUND - no exchange {exchange!r}")
        names = {
            q
            for ex, q, key in self.bindings
            if ex == exchange
            and (key == routing_key if kind == "direct" else topic_matches(key, routing_key))
        }
        return [self.queues[n] for n in sorted(names)]

    def _enqueue(self, queue: _Queue, msg: Message) -> bool:
        ttls = [queue.arguments.get("x-message-ttl"), msg.properties.get("expiration")]
        ttl_ms = min((int(t) for t in ttls if t is not None), default=None)
        msg.expires_at = None if ttl_ms is None else time.monotonic() + ttl_ms / 1000
        limit = queue.arguments.get("x-max-length")
        if limit is not None and queue.arguments.get("x-overflow") == "reject-publish":
            # A quorum queue checks before it enqueues: it refuses only once it is *over*
            # the limit, so it holds limit + 1 (RabbitMQ 3.10); a classic queue holds limit.
            if len(queue.ready) >= int(limit) + queue.quorum:
                return False
        elif limit is not None and len(queue.ready) >= int(limit):
            queue.ready.popleft()  # drop-head (the default overflow)
        queue.ready.append(msg)
        self._pump(queue)
        return True

    # -- consuming ---------------------------------------------------------------------

    def consume(self, queue_name: str, prefetch: int = 10) -> _Consumer:
        queue = self.queues[queue_name]
        consumer = _Consumer(f"mem-{next(self._tags)}", prefetch)
        queue.consumers.append(consumer)
        self._pump(queue)
        return consumer

    def cancel(self, queue_name: str, consumer: _Consumer) -> None:
        """Cancel a consumer (as a closed channel does): its unacked messages go back."""
        queue = self.queues[queue_name]
        queue.consumers.remove(consumer)
        while not consumer.inbox.empty():
            consumer.inbox.get_nowait()
        for tag in sorted(consumer.unacked, reverse=True):
            self._return(queue, consumer.unacked.pop(tag), front=True)
        self._pump(queue)

    def ack(self, queue_name: str, consumer: _Consumer, tag: int) -> None:
        consumer.unacked.pop(tag)
        self._pump(self.queues[queue_name])

    def nack(self, queue_name: str, consumer: _Consumer, tag: int, *, requeue: bool) -> None:
        queue = self.queues[queue_name]
        msg = consumer.unacked.pop(tag)
        if requeue:
            self._return(queue, msg, front=not queue.quorum)
        else:
            self._dead_letter(queue, msg, "rejected")
        self._pump(queue)

    def _return(self, queue: _Queue, msg: Message, *, front: bool) -> None:
        msg.redelivered = True
        if queue.quorum:
            msg.delivery_count += 1
            limit = queue.arguments.get("x-delivery-limit")
            if limit is not None and msg.delivery_count > int(limit):
                self._dead_letter(queue, msg, "delivery_limit")
                return
        if front:
            queue.ready.appendleft(msg)
        else:
            queue.ready.append(msg)

    def _pump(self, queue: _Queue) -> None:
        """Deliver ready messages to active consumers with prefetch room; expire at the head."""
        active = queue.active()
        turn = itertools.cycle(active)
        while queue.ready:
            head = queue.ready[0]
            if head.expires_at is not None and head.expires_at <= time.monotonic():
                queue.ready.popleft()
                self._dead_letter(queue, head, "expired")
                continue
            room = [c for c in active if len(c.unacked) < c.prefetch]
            if not room:
                return
            consumer = next(c for c in turn if c in room)
            msg = queue.ready.popleft()
            tag = next(self._tags)
            consumer.unacked[tag] = msg
            if queue.quorum and msg.delivery_count:
                msg.headers["x-delivery-count"] = msg.delivery_count
            consumer.inbox.put_nowait((tag, msg))

    def expire(self) -> None:
        """Run head expiry on every queue (RabbitMQ does this on its own timers)."""
        for queue in list(self.queues.values()):
            self._pump(queue)

    def _dead_letter(self, queue: _Queue, msg: Message, reason: str) -> None:
        dlx = queue.arguments.get("x-dead-letter-exchange")
        if dlx is None:
            return
        key = queue.arguments.get("x-dead-letter-routing-key", msg.routing_key)
        death = {
            "count": 1,
            "reason": reason,
            "queue": queue.name,
            "exchange": msg.exchange,
            "routing-keys": [msg.routing_key],
        }
        headers = dict(msg.headers)
        headers.pop("x-delivery-count", None)
        headers["x-death"] = [death, *headers.get("x-death", [])]
        properties = dict(msg.properties)
        properties.pop("expiration", None)
        self.publish(dlx, key, msg.body, properties, headers)
