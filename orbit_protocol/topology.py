"""The broker objects of docs/protocol.md (names) as plain, hashable values (no I/O).

``orbit_broker.topology`` declares these through AMQP; provisioning, tests and the
AsyncAPI export read them from here so that every name and argument has one source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from . import naming

DEFAULT_MAX_LENGTH: Final = 100_000
DEFAULT_MESSAGE_TTL_MS: Final = 24 * 3600 * 1000
DEFAULT_DELIVERY_LIMIT: Final = 5
DEFAULT_CLIENT_QUEUE_EXPIRES_MS: Final = 3600 * 1000
DEFAULT_SUBSCRIPTION_MAX_LENGTH: Final = 10_000

ExchangeKind = Literal["topic", "direct"]


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    kind: ExchangeKind
    durable: bool = True


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: tuple[tuple[str, Any], ...] = ()
    durable: bool = True

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.arguments)


@dataclass(frozen=True)
class BindingSpec:
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    bindings: tuple[BindingSpec, ...] = field(default=())

    def __add__(self, other: Topology) -> Topology:
        return Topology(
            self.exchanges + other.exchanges,
            self.queues + other.queues,
            self.bindings + other.bindings,
        )


def work_queue_arguments(
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    message_ttl_ms: int = DEFAULT_MESSAGE_TTL_MS,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
) -> tuple[tuple[str, Any], ...]:
    """Arguments of an endpoint or pool request queue, exactly as docs/protocol.md lists them."""
    return (
        ("x-queue-type", "quorum"),
        ("x-single-active-consumer", True),
        ("x-delivery-limit", delivery_limit),
        ("x-dead-letter-exchange", naming.DEAD_LETTER_EXCHANGE),
        ("x-dead-letter-routing-key", naming.DEAD_LETTER_ROUTING_KEY),
        ("x-dead-letter-strategy", "at-least-once"),
        ("x-max-length", max_length),
        ("x-overflow", "reject-publish"),
        ("x-message-ttl", message_ttl_ms),
    )


def core() -> Topology:
    """Exchanges and the dead-letter queue shared by every endpoint."""
    return Topology(
        exchanges=(
            ExchangeSpec(naming.REQUEST_EXCHANGE, "topic"),
            ExchangeSpec(naming.REPLY_EXCHANGE, "topic"),
            ExchangeSpec(naming.EVENT_EXCHANGE, "topic"),
            ExchangeSpec(naming.DEAD_LETTER_EXCHANGE, "direct"),
        ),
        queues=(QueueSpec(naming.DEAD_LETTER_QUEUE, (("x-queue-type", "quorum"),)),),
        bindings=(
            BindingSpec(
                naming.DEAD_LETTER_EXCHANGE,
                naming.DEAD_LETTER_QUEUE,
                naming.DEAD_LETTER_ROUTING_KEY,
            ),
        ),
    )


def endpoint(name: str, **queue_options: int) -> Topology:
    """The request queue of one endpoint and its binding."""
    queue = naming.request_queue(name)
    return Topology(
        queues=(QueueSpec(queue, work_queue_arguments(**queue_options)),),
        bindings=(BindingSpec(naming.REQUEST_EXCHANGE, queue, name),),
    )


def pool_queue_arguments(**queue_options: int) -> tuple[tuple[str, Any], ...]:
    """A pool queue's arguments: an endpoint queue's minus ``x-single-active-consumer``, so
    its members are competing consumers (docs/protocol.md), not one active plus standbys."""
    return tuple(
        (k, v) for k, v in work_queue_arguments(**queue_options) if k != "x-single-active-consumer"
    )


def pool(name: str, **queue_options: int) -> Topology:
    """The shared request queue of a pool and its binding."""
    queue = naming.pool_queue(name)
    return Topology(
        queues=(QueueSpec(queue, pool_queue_arguments(**queue_options)),),
        bindings=(BindingSpec(naming.REQUEST_EXCHANGE, queue, naming.pool_routing_key(name)),),
    )


def client_queue_arguments(
    *, expires_ms: int = DEFAULT_CLIENT_QUEUE_EXPIRES_MS, subscription: bool = False
) -> dict[str, Any]:
    """Arguments of a client's reply queue, or of a subscription queue (bounded, drop-head)."""
    args: dict[str, Any] = {"x-expires": expires_ms}
    if subscription:
        args |= {"x-max-length": DEFAULT_SUBSCRIPTION_MAX_LENGTH, "x-overflow": "drop-head"}
    return args


LAST_VALUE_ARGUMENTS: Final = (("x-max-length", 1), ("x-overflow", "drop-head"))
"""A classic queue that keeps only its newest message (no ``x-expires``: it stays)."""


def directory(user: str, endpoints: tuple[str, ...] | list[str]) -> Topology:
    """A client's directory queue, and one last-seen queue per granted endpoint, bound to
    that endpoint's presence key: the broker keeps each endpoint's last presence event."""
    seen = [(naming.last_seen_queue(user, ep), ep) for ep in endpoints]
    return Topology(
        queues=(
            QueueSpec(naming.directory_queue(user), LAST_VALUE_ARGUMENTS),
            *(QueueSpec(queue, LAST_VALUE_ARGUMENTS) for queue, _ in seen),
        ),
        bindings=tuple(
            BindingSpec(naming.EVENT_EXCHANGE, queue, naming.presence_routing_key(ep))
            for queue, ep in seen
        ),
    )


__all__ = [
    "DEFAULT_CLIENT_QUEUE_EXPIRES_MS",
    "DEFAULT_DELIVERY_LIMIT",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MESSAGE_TTL_MS",
    "LAST_VALUE_ARGUMENTS",
    "BindingSpec",
    "ExchangeSpec",
    "QueueSpec",
    "Topology",
    "client_queue_arguments",
    "core",
    "directory",
    "endpoint",
    "pool",
    "pool_queue_arguments",
    "work_queue_arguments",
]
