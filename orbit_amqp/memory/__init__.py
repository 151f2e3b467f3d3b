"""An in-process AMQP broker with the RabbitMQ semantics Orbit relies on.

A supported transport, not a test mock: the conformance suite (``tests/contract``) runs
every case against it and against a real RabbitMQ node. Use it to run clients, endpoints
and plugins in one process without a broker::

    broker = MemoryBroker("lab")
    url = broker.url("alice")          # memory://alice:guest@lab/orbit
"""

from .auth import Permissions, TopicPermissions, User
from .broker import MemoryBroker
from .transport import MemoryConnection, MemoryTransport
from .vhost import VHost, topic_matches

__all__ = [
    "MemoryBroker",
    "MemoryConnection",
    "MemoryTransport",
    "Permissions",
    "TopicPermissions",
    "User",
    "VHost",
    "topic_matches",
]
