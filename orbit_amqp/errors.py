"""Transport failures, as members of Orbit's one error tree (``orbit_protocol.errors``).

They never travel on the wire: the client and the endpoint turn each into the documented
error a caller acts on (``Unroutable`` → ``EndpointOffline``, ``PublishNacked`` →
``EndpointBusy``, ``AccessRefused`` → ``NotAuthorized``; see ``docs/protocol.md``).
"""

from __future__ import annotations

from orbit_protocol.errors import AuthenticationFailed, BrokerError


class ConnectionLost(BrokerError):
    """The connection (or the channel) closed under an operation; retry once reconnected."""


class ChannelError(BrokerError):
    """The broker closed the channel for this operation (a soft error); open a new one."""


class AccessRefused(ChannelError, PermissionError):
    """403: the user's permissions do not allow the operation."""


class EntityNotFound(ChannelError, LookupError):
    """404: no such queue or exchange."""


class PreconditionFailed(ChannelError):
    """406: inequivalent declare arguments, a forged ``user_id``, a bad delivery tag."""


class ResourceLocked(ChannelError):
    """405: an exclusive queue or consumer held by another connection."""


class Unroutable(BrokerError):
    """``basic.return``: a ``mandatory`` publish reached no queue."""


class PublishNacked(BrokerError):
    """``basic.nack``: the broker refused the message (a full ``reject-publish`` queue)."""


class FatalLinkError(AuthenticationFailed):
    """The broker refused the credentials: a link stops instead of retrying."""


__all__ = [
    "AccessRefused",
    "AuthenticationFailed",
    "ChannelError",
    "ConnectionLost",
    "EntityNotFound",
    "FatalLinkError",
    "PreconditionFailed",
    "PublishNacked",
    "ResourceLocked",
    "Unroutable",
]
