"""The permission rows of each Orbit role, as literal per-user regexes (``docs/security.md``).

RabbitMQ 3.10 does not expand ``{username}`` in configure/write/read, so each row names its
user. Every user gets a row on every topic exchange, because a user without one may
publish with any routing key. Which endpoints a client may call is kept in the broker
itself (its ``orbit.requests`` topic-write regex): :func:`parse_grants` reads it back.
Every user also gets connection and channel limits (:class:`UserLimits`), so one tenant
opening connections in a loop cannot starve the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from orbit_protocol import naming
from orbit_protocol.errors import BrokerError

from .management import Permissions, TopicPermission

RESPONDER_USER: Final = "orbit-responder"
TOPIC_EXCHANGES: Final = (naming.REQUEST_EXCHANGE, naming.EVENT_EXCHANGE, naming.REPLY_EXCHANGE)
NOTHING: Final = "^$"

Role = Literal["endpoint", "client", "responder"]


@dataclass(frozen=True)
class UserLimits:
    """Per-user broker limits (``max-connections``, ``max-channels``; -1 = unlimited)."""

    max_connections: int
    max_channels: int = 200

    def as_dict(self) -> dict[str, int]:
        return {"max-connections": self.max_connections, "max-channels": self.max_channels}


# An endpoint needs 2 connections (consume + publish) and a hot standby 2 more.
CLIENT_LIMITS: Final = UserLimits(max_connections=50, max_channels=200)
ENDPOINT_LIMITS: Final = UserLimits(max_connections=5, max_channels=200)
RESPONDER_LIMITS: Final = UserLimits(max_connections=5, max_channels=50)


def endpoint_permissions(endpoint: str, pools: Iterable[str] = ()) -> Permissions:
    """configure ``^$``, write replies/events, read its own queue (and its pools' queues)."""
    naming.validate_name(endpoint)
    names = [f"ep\\.{endpoint}"] + [
        f"pool\\.{naming.validate_name(p, 'pool')}" for p in sorted(set(pools))
    ]
    read = f"^orbit\\.{names[0]}$" if len(names) == 1 else f"^orbit\\.({'|'.join(names)})$"
    return Permissions(NOTHING, r"^orbit\.(replies|events)$", read)


def endpoint_topic_permissions(endpoint: str) -> dict[str, TopicPermission]:
    naming.validate_name(endpoint)
    return _rows(
        requests=(NOTHING, NOTHING),
        events=(f"^{endpoint}\\.", NOTHING),
        replies=(r"^orbit\.reply\.", NOTHING),
    )


def client_permissions(client: str) -> Permissions:
    """Own reply/subscription queues; publish to ``orbit.requests``; read replies/events."""
    u = naming.validate_name(client, "user")
    own = f"orbit\\.(reply|sub)\\.{u}\\..+"
    return Permissions(
        configure=f"^{own}$",
        write=f"^(orbit\\.requests|{own})$",
        read=f"^(orbit\\.replies|orbit\\.events|{own})$",
    )


def client_topic_permissions(
    client: str, endpoints: Iterable[str] = (), pools: Iterable[str] = ()
) -> dict[str, TopicPermission]:
    """Requests only to the allowed endpoints/pools, events only from allowed endpoints."""
    u = naming.validate_name(client, "user")
    eps = sorted({naming.validate_name(e) for e in endpoints})
    keys = eps + [f"pool\\.{naming.validate_name(p, 'pool')}" for p in sorted(set(pools))]
    return _rows(
        requests=(f"^({'|'.join(keys)})$" if keys else NOTHING, NOTHING),
        events=(NOTHING, f"^({'|'.join(eps)})\\." if eps else NOTHING),
        replies=(NOTHING, f"^orbit\\.reply\\.{u}\\."),
    )


def orchestrator_permissions(endpoint: str, pools: Iterable[str] = ()) -> Permissions:
    """An endpoint that also calls other endpoints (``orbit broker grant ENDPOINT TARGET``):
    its endpoint rows plus a client's own reply and subscription queues."""
    ep, own = endpoint_permissions(endpoint, pools), client_permissions(endpoint)
    return Permissions(
        configure=own.configure,
        write=f"^(?:{ep.write[1:-1]}|{own.write[1:-1]})$",  # each without its ^ and $
        read=f"^(?:{ep.read[1:-1]}|{own.read[1:-1]})$",
    )


def orchestrator_topic_permissions(
    endpoint: str, endpoints: Iterable[str] = (), pools: Iterable[str] = ()
) -> dict[str, TopicPermission]:
    """Its own events; requests to, and events from, the endpoints it was granted."""
    client = client_topic_permissions(endpoint, endpoints, pools)
    return _rows(
        requests=(client[naming.REQUEST_EXCHANGE].write, NOTHING),
        events=(f"^{endpoint}\\.", client[naming.EVENT_EXCHANGE].read),
        replies=(r"^orbit\.reply\.", client[naming.REPLY_EXCHANGE].read),
    )


def pools_of(permissions: Permissions) -> set[str]:
    """The pools an endpoint's read regex names (what :func:`endpoint_permissions` wrote)."""
    return set(re.findall(r"pool\\\.([a-z0-9_-]+)", permissions.read))


def responder_permissions() -> Permissions:
    """The dead-letter responder reads ``orbit.dead`` and writes ``orbit.replies``."""
    return Permissions(NOTHING, r"^orbit\.replies$", r"^orbit\.dead$")


def responder_topic_permissions() -> dict[str, TopicPermission]:
    return _rows(
        requests=(NOTHING, NOTHING),
        events=(NOTHING, NOTHING),
        replies=(r"^orbit\.reply\.", NOTHING),
    )


def _rows(
    *, requests: tuple[str, str], events: tuple[str, str], replies: tuple[str, str]
) -> dict[str, TopicPermission]:
    return {
        naming.REQUEST_EXCHANGE: TopicPermission(naming.REQUEST_EXCHANGE, *requests),
        naming.EVENT_EXCHANGE: TopicPermission(naming.EVENT_EXCHANGE, *events),
        naming.REPLY_EXCHANGE: TopicPermission(naming.REPLY_EXCHANGE, *replies),
    }


_GRANTS_RE: Final = re.compile(r"^\^\((?P<keys>[a-z0-9_\-|.\\]*)\)\$$")


def parse_grants(request_write: str) -> tuple[set[str], set[str]]:
    """(endpoints, pools) from a client's ``orbit.requests`` topic-write regex."""
    if request_write in ("", NOTHING):
        return set(), set()
    match = _GRANTS_RE.match(request_write)
    if not match:
        raise BrokerError(
            f"topic permission {request_write!r} on {naming.REQUEST_EXCHANGE} was not written "
            "by Orbit; fix or clear it before granting"
        )
    endpoints: set[str] = set()
    pools: set[str] = set()
    for key in match["keys"].split("|"):
        if key.startswith("pool\\."):
            pools.add(naming.validate_name(key.removeprefix("pool\\."), "pool"))
        else:
            endpoints.add(naming.validate_name(key))
    return endpoints, pools


__all__ = [
    "CLIENT_LIMITS",
    "ENDPOINT_LIMITS",
    "NOTHING",
    "RESPONDER_LIMITS",
    "RESPONDER_USER",
    "TOPIC_EXCHANGES",
    "Role",
    "UserLimits",
    "client_permissions",
    "client_topic_permissions",
    "endpoint_permissions",
    "endpoint_topic_permissions",
    "orchestrator_permissions",
    "orchestrator_topic_permissions",
    "parse_grants",
    "pools_of",
    "responder_permissions",
    "responder_topic_permissions",
]
