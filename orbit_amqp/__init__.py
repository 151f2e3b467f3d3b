"""The transport seam of Orbit: every byte Orbit sends to or reads from a broker passes here.

* :class:`Link` keeps one connection up (several URLs, fail-over, backoff, a refused login
  told apart from a network failure) and re-runs a setup hook after each reconnect;
* :mod:`orbit_amqp.messages` builds request, reply and event messages;
* :class:`Connection` / :class:`Channel` are the small interface Orbit needs, with two
  implementations chosen by URL scheme: aio-pika for ``amqp://``/``amqps://`` and the
  in-process broker of :mod:`orbit_amqp.memory` for ``memory://``.

See ``docs/architecture.md``.
"""

from .base import (
    PERSISTENT,
    TRANSIENT,
    Channel,
    Connection,
    Delivery,
    Message,
    Properties,
    QueueState,
    Transport,
)
from .errors import (
    AccessRefused,
    ChannelError,
    ConnectionLost,
    EntityNotFound,
    FatalLinkError,
    PreconditionFailed,
    PublishNacked,
    ResourceLocked,
    Unroutable,
)
from .lastvalue import peek, read_directory
from .link import Link, backoff_delays
from .messages import event_message, reply_message, request_message
from .registry import transport_for
from .topology import connect, declare, declare_at

__all__ = [
    "PERSISTENT",
    "TRANSIENT",
    "AccessRefused",
    "Channel",
    "ChannelError",
    "Connection",
    "ConnectionLost",
    "Delivery",
    "EntityNotFound",
    "FatalLinkError",
    "Link",
    "Message",
    "PreconditionFailed",
    "Properties",
    "PublishNacked",
    "QueueState",
    "ResourceLocked",
    "Transport",
    "Unroutable",
    "backoff_delays",
    "connect",
    "declare",
    "declare_at",
    "event_message",
    "peek",
    "read_directory",
    "reply_message",
    "request_message",
    "transport_for",
]
