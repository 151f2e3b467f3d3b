"""One vhost of the in-memory broker: exchanges, queues, bindings and delivery.

Modelled on RabbitMQ 3.10+ as Orbit uses it: topic, direct and fanout exchanges and the
default exchange; queues with ``x-max-length`` (``drop-head`` or ``reject-publish``; a
quorum queue holds one more than the limit before it refuses, as 3.10 does),
``x-message-ttl`` and per-message ``expiration`` (expired at the queue head),
``x-expires``, auto-delete and exclusive queues, dead-lettering with an ``x-death``
header, quorum ``x-delivery-limit`` with ``x-delivery-count``, and single active consumer
(a standby is not counted in ``consumer_count``). Not modelled: alternate exchanges,
exchange-to-exchange bindings, priorities, lazy queues.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..base import ExchangeKind, Properties, QueueState
from ..errors import AccessRefused, EntityNotFound, PreconditionFailed, ResourceLocked, Unroutable


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


@dataclass(eq=False)
class Stored:
    """A message sitting in (or delivered from) a queue."""

    body: bytes
    properties: Properties
    exchange: str
    routing_key: str
    expires_at: float | None = None
    delivery_count: int = 0
    redelivered: bool = False


@dataclass(eq=False)
class Consumer:
    """A consumer as the queue sees it; ``deliver`` hands a message to its channel."""

    tag: str
    prefetch: int
    no_ack: bool
    deliver: Callable[[Consumer, Queue, Stored], None]
    owner: object
    """The connection the consumer's channel belongs to."""
    exclusive: bool = False
    unacked: int = 0

    @property
    def has_room(self) -> bool:
        return self.no_ack or self.prefetch == 0 or self.unacked < self.prefetch


@dataclass(eq=False)
class Queue:
    name: str
    arguments: dict[str, Any]
    durable: bool
    auto_delete: bool
    owner: object | None = None
    """The connection of an exclusive queue."""
    ready: deque[Stored] = field(default_factory=deque)
    consumers: list[Consumer] = field(default_factory=list)
    had_consumer: bool = False
    last_used: float = field(default_factory=time.monotonic)

    @property
    def quorum(self) -> bool:
        return self.arguments.get("x-queue-type") == "quorum"

    def active(self) -> list[Consumer]:
        if self.arguments.get("x-single-active-consumer"):
            return self.consumers[:1]
        return self.consumers

    def state(self) -> QueueState:
        return QueueState(self.name, len(self.ready), len(self.active()))


class VHost:
    """Exchanges, queues and bindings of one vhost; every method runs to completion."""

    def __init__(self, name: str, lock: threading.RLock | None = None) -> None:
        self.name = name
        self._lock = lock or threading.RLock()
        self.exchanges: dict[str, str] = {"": "direct"}
        self.queues: dict[str, Queue] = {}
        self.bindings: dict[str, set[tuple[str, str]]] = {}
        """exchange → {(queue, binding key)}."""
        self._turn = itertools.count()

    # -- declarations ------------------------------------------------------------------

    def declare_exchange(self, name: str, kind: ExchangeKind) -> None:
        if self.exchanges.setdefault(name, kind) != kind:
            raise PreconditionFailed(
                f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{name}' in vhost"
                f" '{self.name}': received '{kind}' but current is '{self.exchanges[name]}'"
            )

    def exchange_kind(self, name: str) -> str:
        kind = self.exchanges.get(name)
        if kind is None:
            raise EntityNotFound(f"NOT_FOUND - no exchange '{name}' in vhost '{self.name}'")
        return kind

    def queue(self, name: str) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            raise EntityNotFound(f"NOT_FOUND - no queue '{name}' in vhost '{self.name}'")
        return queue

    def declare_queue(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        durable: bool,
        auto_delete: bool,
        owner: object | None,
    ) -> Queue:
        existing = self.queues.get(name)
        if existing is None:
            queue = Queue(name, dict(arguments), durable, auto_delete, owner)
            self.queues[name] = queue
            self._schedule_expiry(queue)
            return queue
        if existing.owner is not None and existing.owner is not owner:
            raise ResourceLocked(
                f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}'"
            )
        if existing.arguments != dict(arguments) or existing.durable != durable:
            raise PreconditionFailed(
                f"PRECONDITION_FAILED - inequivalent arg for queue '{name}' in vhost '{self.name}'"
            )
        existing.last_used = time.monotonic()
        return existing

    def delete_queue(self, name: str) -> int:
        queue = self.queues.pop(name, None)
        if queue is None:
            return 0
        for bound in self.bindings.values():
            bound -= {b for b in bound if b[0] == name}
        return len(queue.ready)

    def bind(self, queue: str, exchange: str, key: str) -> None:
        self.queue(queue)
        self.exchange_kind(exchange)
        self.bindings.setdefault(exchange, set()).add((queue, key))

    def unbind(self, queue: str, exchange: str, key: str) -> None:
        self.bindings.get(exchange, set()).discard((queue, key))

    # -- publishing --------------------------------------------------------------------

    def publish(
        self, exchange: str, key: str, body: bytes, props: Properties, *, mandatory: bool
    ) -> bool:
        """Route and enqueue; ``False`` is a nack (a full ``reject-publish`` queue)."""
        queues = self._route(exchange, key)
        if mandatory and not queues:
            raise Unroutable(f"NO_ROUTE - exchange '{exchange}' has no binding for '{key}'")
        confirmed = True
        for queue in queues:
            confirmed &= self._enqueue(queue, Stored(body, props, exchange, key))
        return confirmed

    def _route(self, exchange: str, key: str) -> list[Queue]:
        kind = self.exchange_kind(exchange)
        if exchange == "":
            return [self.queues[key]] if key in self.queues else []
        names = {
            q
            for q, bound in self.bindings.get(exchange, ())
            if kind == "fanout" or (bound == key if kind == "direct" else topic_matches(bound, key))
        }
        return [self.queues[n] for n in sorted(names) if n in self.queues]

    def _enqueue(self, queue: Queue, msg: Stored) -> bool:
        ttls = [queue.arguments.get("x-message-ttl"), msg.properties.expiration]
        ttl_ms = min((int(t) for t in ttls if t is not None), default=None)
        if ttl_ms is not None:
            msg.expires_at = time.monotonic() + ttl_ms / 1000
            self._later(ttl_ms / 1000, queue)
        limit = queue.arguments.get("x-max-length")
        if limit is not None and queue.arguments.get("x-overflow") == "reject-publish":
            if len(queue.ready) >= int(limit) + queue.quorum:
                return False
        elif limit is not None and len(queue.ready) >= int(limit):
            self._dead_letter(queue, queue.ready.popleft(), "maxlen")  # drop-head
        queue.ready.append(msg)
        self.pump(queue)
        return True

    # -- consuming ---------------------------------------------------------------------

    def add_consumer(self, queue: Queue, consumer: Consumer) -> None:
        if queue.owner is not None and queue.owner is not consumer.owner:
            raise ResourceLocked(f"RESOURCE_LOCKED - queue '{queue.name}' is exclusive")
        if (consumer.exclusive and queue.consumers) or any(c.exclusive for c in queue.consumers):
            raise AccessRefused(
                f"ACCESS_REFUSED - queue '{queue.name}' in vhost '{self.name}' in exclusive use"
            )
        queue.consumers.append(consumer)
        queue.had_consumer = True
        self.pump(queue)

    def remove_consumer(self, queue: Queue, consumer: Consumer, *, pump: bool = True) -> None:
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)
        queue.last_used = time.monotonic()
        if queue.auto_delete and queue.had_consumer and not queue.consumers:
            self.delete_queue(queue.name)
            return
        self._schedule_expiry(queue)
        if pump:
            self.pump(queue)

    def settle(self, queue: Queue, msg: Stored, how: str) -> None:
        """``ack``, ``requeue`` (nack/reject with requeue) or ``reject`` (dead-letter)."""
        if how == "requeue":
            self.give_back(queue, [msg], front=not queue.quorum)
        elif how == "reject":
            self._dead_letter(queue, msg, "rejected")
        self.pump(queue)

    def give_back(self, queue: Queue, msgs: list[Stored], *, front: bool) -> None:
        """Unacknowledged messages return (a channel closed, or a requeue)."""
        if queue.name not in self.queues:
            return
        for msg in reversed(msgs) if front else msgs:
            msg.redelivered = True
            if queue.quorum:
                msg.delivery_count += 1
                limit = queue.arguments.get("x-delivery-limit")
                if limit is not None and msg.delivery_count > int(limit):
                    self._dead_letter(queue, msg, "delivery_limit")
                    continue
            if front:
                queue.ready.appendleft(msg)
            else:
                queue.ready.append(msg)
        limit = queue.arguments.get("x-max-length")
        if limit is not None and queue.arguments.get("x-overflow", "drop-head") == "drop-head":
            while len(queue.ready) > int(limit):  # a requeue does not overfill the queue
                self._dead_letter(queue, queue.ready.popleft(), "maxlen")
        self.pump(queue)

    def _expire_head(self, queue: Queue) -> None:
        while queue.ready:
            head = queue.ready[0]
            if head.expires_at is None or head.expires_at > time.monotonic():
                return
            queue.ready.popleft()
            self._dead_letter(queue, head, "expired")

    def take(self, queue: Queue) -> Stored | None:
        """``basic.get``: the head message (after expiring the head), or ``None``."""
        self._expire_head(queue)
        queue.last_used = time.monotonic()
        return queue.ready.popleft() if queue.ready else None

    def pump(self, queue: Queue) -> None:
        """Deliver ready messages to active consumers with room; expire at the head."""
        active = queue.active()
        while True:
            self._expire_head(queue)
            if not queue.ready:
                return
            room = [c for c in active if c.has_room]
            if not room:
                return
            consumer = room[next(self._turn) % len(room)]
            msg = queue.ready.popleft()
            queue.last_used = time.monotonic()
            consumer.deliver(consumer, queue, msg)

    def _dead_letter(self, queue: Queue, msg: Stored, reason: str) -> None:
        dlx = queue.arguments.get("x-dead-letter-exchange")
        if dlx is None or dlx not in self.exchanges:
            return
        key = queue.arguments.get("x-dead-letter-routing-key", msg.routing_key)
        death = {
            "count": 1,
            "reason": reason,
            "queue": queue.name,
            "time": int(time.time()),
            "exchange": msg.exchange,
            "routing-keys": [msg.routing_key],
        }
        if msg.properties.expiration is not None:
            death["original-expiration"] = msg.properties.expiration
        headers = {k: v for k, v in msg.properties.headers.items() if k != "x-delivery-count"}
        headers["x-death"] = [death, *headers.get("x-death", [])]
        props = dataclasses.replace(msg.properties, expiration=None, headers=headers)
        self.publish(dlx, key, msg.body, props, mandatory=False)

    # -- timers ------------------------------------------------------------------------

    def _later(self, delay: float, queue: Queue) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: expiry happens at the next pump
            return
        loop.call_later(max(delay, 0.0) + 0.001, self._tick, queue.name)

    def _tick(self, name: str) -> None:
        with self._lock:
            self._tick_locked(name)

    def _tick_locked(self, name: str) -> None:
        queue = self.queues.get(name)
        if queue is None:
            return
        expires = queue.arguments.get("x-expires")
        idle = time.monotonic() - queue.last_used
        if expires is not None and not queue.consumers and idle * 1000 >= int(expires):
            self.delete_queue(name)
            return
        self.pump(queue)

    def _schedule_expiry(self, queue: Queue) -> None:
        expires = queue.arguments.get("x-expires")
        if expires is not None and not queue.consumers:
            self._later(int(expires) / 1000, queue)

    def drop_owner(self, owner: object) -> None:
        """An exclusive queue dies with its connection."""
        for name in [n for n, q in self.queues.items() if q.owner is owner]:
            self.delete_queue(name)


__all__ = ["Consumer", "Queue", "Stored", "VHost", "topic_matches"]
