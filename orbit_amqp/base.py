"""The transport seam: what Orbit needs of an AMQP 0-9-1 broker, and nothing more.

Two implementations: :mod:`orbit_amqp.aiopika` (a real RabbitMQ, production) and
:mod:`orbit_amqp.memory` (an in-process broker for tests and demos). The conformance suite
``tests/contract`` runs the same cases against both. Method names follow AMQP
(``declare_queue``, ``bind``, ``consume``, ``ack``); failures raise
:mod:`orbit_amqp.errors`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ExchangeKind = Literal["topic", "direct", "fanout"]
PERSISTENT = 2
TRANSIENT = 1


@dataclass(frozen=True, slots=True)
class Properties:
    """The basic properties Orbit reads and writes (``docs/protocol.md`` lists their use)."""

    content_type: str | None = None
    delivery_mode: int | None = None
    correlation_id: str | None = None
    message_id: str | None = None
    reply_to: str | None = None
    user_id: str | None = None
    type: str | None = None
    expiration: str | None = None
    """Per-message TTL in milliseconds, as the wire carries it (a decimal string)."""
    timestamp: int | None = None
    """Epoch seconds."""
    headers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    """An outgoing message: body and properties."""

    body: bytes
    properties: Properties = Properties()


@dataclass(frozen=True, slots=True)
class QueueState:
    """What a (passive) ``queue.declare`` answers."""

    name: str
    messages: int
    consumers: int


class Delivery(ABC):
    """One message handed to a consumer; settle it once with ``ack`` or ``reject``."""

    body: bytes
    properties: Properties
    exchange: str
    routing_key: str
    redelivered: bool

    @property
    def correlation_id(self) -> str | None:
        return self.properties.correlation_id

    @property
    def message_id(self) -> str | None:
        return self.properties.message_id

    @property
    def reply_to(self) -> str | None:
        return self.properties.reply_to

    @property
    def user_id(self) -> str | None:
        return self.properties.user_id

    @property
    def type(self) -> str | None:
        return self.properties.type

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.headers

    @abstractmethod
    async def ack(self) -> None:
        """Acknowledge: the broker forgets the message."""

    @abstractmethod
    async def reject(self, *, requeue: bool = False) -> None:
        """Refuse: back to the queue (``requeue``) or dead-lettered."""


OnMessage = Callable[[Delivery], Awaitable[Any]]
OnClose = Callable[[BaseException | None], Any]


class Channel(ABC):
    """An AMQP channel. A channel error closes it (as in AMQP): open a new one after."""

    @property
    @abstractmethod
    def is_closed(self) -> bool: ...

    @abstractmethod
    def on_close(self, callback: OnClose) -> None:
        """Call ``callback(reason)`` once when the channel closes, for whatever reason."""

    @abstractmethod
    async def publish(
        self,
        exchange: str,
        routing_key: str,
        message: Message,
        *,
        mandatory: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Publish; on a confirming channel, return once the broker confirmed it.

        Raises ``Unroutable`` (returned ``mandatory``), ``PublishNacked``, ``AccessRefused``,
        ``PreconditionFailed`` (a forged ``user_id``), ``ConnectionLost``, ``TimeoutError``.
        """

    @abstractmethod
    async def declare_exchange(
        self, name: str, kind: ExchangeKind, *, durable: bool = True
    ) -> None:
        """Declare an exchange (``PreconditionFailed`` if it exists with another kind)."""

    @abstractmethod
    async def declare_queue(
        self,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        exclusive: bool = False,
        arguments: dict[str, Any] | None = None,
        passive: bool = False,
    ) -> QueueState:
        """Declare (or with ``passive`` only look up: ``EntityNotFound``) a queue."""

    @abstractmethod
    async def delete_queue(self, name: str) -> int:
        """Delete a queue; the number of messages it held."""

    @abstractmethod
    async def bind(self, queue: str, exchange: str, routing_key: str) -> None: ...

    @abstractmethod
    async def unbind(self, queue: str, exchange: str, routing_key: str) -> None: ...

    @abstractmethod
    async def set_prefetch(self, count: int) -> None:
        """Unacknowledged deliveries each *later* consumer of this channel may hold."""

    @abstractmethod
    async def consume(
        self, queue: str, callback: OnMessage, *, no_ack: bool = False, exclusive: bool = False
    ) -> str:
        """Start a consumer; ``callback`` runs as a task per delivery. Returns its tag."""

    @abstractmethod
    async def get(self, queue: str, *, no_ack: bool = False) -> Delivery | None:
        """``basic.get``: the queue's head message, or ``None`` when it holds none ready.

        Settle it like a consumer's delivery; ``reject(requeue=True)`` puts it back at
        the head of a classic queue, so a reader can look without taking.
        """

    @abstractmethod
    async def cancel(self, tag: str) -> None:
        """Stop a consumer; its unacknowledged deliveries stay with the channel."""

    @abstractmethod
    async def close(self) -> None:
        """Close; unacknowledged deliveries go back to their queues."""


class Connection(ABC):
    """One AMQP connection, as one user, to one vhost."""

    user: str

    @property
    @abstractmethod
    def is_closed(self) -> bool: ...

    @property
    @abstractmethod
    def blocked(self) -> bool:
        """``connection.blocked``: the broker refuses publishes (memory or disk alarm)."""

    @abstractmethod
    def on_close(self, callback: OnClose) -> None:
        """Call ``callback(reason)`` once when the connection closes or is lost."""

    @abstractmethod
    async def channel(self, *, confirms: bool = False) -> Channel:
        """A new channel; with ``confirms`` every publish waits for the broker's confirm."""

    @abstractmethod
    async def close(self) -> None: ...


class Transport(Protocol):
    """Opens connections for one URL scheme."""

    async def connect(
        self, url: str, *, name: str, heartbeat: int = 10, timeout: float = 10.0
    ) -> Connection:
        """Connect (``AuthenticationFailed`` for refused credentials, ``BrokerError`` else)."""
        ...


__all__ = [
    "PERSISTENT",
    "TRANSIENT",
    "Channel",
    "Connection",
    "Delivery",
    "ExchangeKind",
    "Message",
    "OnClose",
    "OnMessage",
    "Properties",
    "QueueState",
    "Transport",
]
