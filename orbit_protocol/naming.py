"""Every exchange, queue, routing key and user name of the topology (docs/protocol.md).

All names are derived here; no other module spells them out.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

DEFAULT_VHOST: Final = "orbit"
REQUEST_EXCHANGE: Final = "orbit.requests"
REPLY_EXCHANGE: Final = "orbit.replies"
EVENT_EXCHANGE: Final = "orbit.events"
DEAD_LETTER_EXCHANGE: Final = "orbit.dlx"
DEAD_LETTER_QUEUE: Final = "orbit.dead"
DEAD_LETTER_ROUTING_KEY: Final = "orbit.dead"
BUILTIN_PLUGIN: Final = "orbit"
PRESENCE_TOPIC: Final = "presence"
RESPONDER_USER: Final = "orbit-responder"
"""Service user of the dead-letter responder; clients accept its error replies."""

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_NAME_RE: Final = re.compile(NAME_PATTERN)
_WORD_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_valid_name(name: str) -> bool:
    """True when ``name`` is a legal endpoint, pool or user name."""
    return bool(_NAME_RE.fullmatch(name))


def validate_name(name: str, kind: str = "endpoint") -> str:
    """Return ``name`` unchanged, or raise ``ValueError`` saying what is wrong with it."""
    if not is_valid_name(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use 1-63 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit (no dots, no capitals)"
        )
    return name


def request_queue(endpoint: str) -> str:
    """``orbit.ep.<endpoint>``: the endpoint's quorum request queue."""
    return f"orbit.ep.{validate_name(endpoint)}"


def pool_queue(pool: str) -> str:
    """``orbit.pool.<pool>``: a shared queue consumed by several endpoints."""
    return f"orbit.pool.{validate_name(pool, 'pool')}"


def pool_routing_key(pool: str) -> str:
    """``pool.<pool>``: the routing key that reaches a pool's queue."""
    return f"pool.{validate_name(pool, 'pool')}"


def reply_queue(user: str, token: str | None = None) -> str:
    """``orbit.reply.<user>.<random>``: a client's durable reply queue."""
    return f"orbit.reply.{validate_name(user, 'user')}.{token or secrets.token_hex(8)}"


def subscription_queue(user: str, token: str | None = None) -> str:
    """``orbit.sub.<user>.<random>``: a client's event subscription queue."""
    return f"orbit.sub.{validate_name(user, 'user')}.{token or secrets.token_hex(8)}"


def directory_queue(user: str) -> str:
    """``orbit.sub.<user>.directory``: holds one message, the user's :class:`Directory`."""
    return f"orbit.sub.{validate_name(user, 'user')}.directory"


def last_seen_queue(user: str, endpoint: str) -> str:
    """``orbit.sub.<user>.seen.<endpoint>``: the last presence event of a granted endpoint."""
    return f"orbit.sub.{validate_name(user, 'user')}.seen.{validate_name(endpoint)}"


def event_routing_key(endpoint: str, plugin: str, topic: str) -> str:
    """``<endpoint>.<plugin>.<topic>``: routing key of an event."""
    for word, kind in ((plugin, "plugin"), (topic, "topic")):
        if not _WORD_RE.fullmatch(word):
            raise ValueError(f"invalid event {kind} {word!r}: one topic word without dots")
    return f"{validate_name(endpoint)}.{plugin}.{topic}"


def presence_routing_key(endpoint: str) -> str:
    """``<endpoint>.orbit.presence``."""
    return event_routing_key(endpoint, BUILTIN_PLUGIN, PRESENCE_TOPIC)


def event_pattern(
    endpoint: str | None = None, plugin: str | None = None, topic: str | None = None
) -> str:
    """Binding pattern on ``orbit.events``; ``None`` parts match any word."""
    return ".".join(part or "*" for part in (endpoint, plugin, topic))


def split_event_key(routing_key: str) -> tuple[str, str, str]:
    """Inverse of :func:`event_routing_key`; raises ``ValueError`` on a malformed key."""
    parts = routing_key.split(".")
    if len(parts) != 3:
        raise ValueError(f"not an event routing key: {routing_key!r}")
    return parts[0], parts[1], parts[2]


__all__ = [
    "BUILTIN_PLUGIN",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "DEAD_LETTER_ROUTING_KEY",
    "DEFAULT_VHOST",
    "EVENT_EXCHANGE",
    "NAME_PATTERN",
    "PRESENCE_TOPIC",
    "REPLY_EXCHANGE",
    "REQUEST_EXCHANGE",
    "RESPONDER_USER",
    "event_pattern",
    "event_routing_key",
    "is_valid_name",
    "pool_queue",
    "pool_routing_key",
    "presence_routing_key",
    "reply_queue",
    "request_queue",
    "split_event_key",
    "subscription_queue",
    "validate_name",
]
