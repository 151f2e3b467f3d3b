"""Orbit clients: :class:`AsyncOrbitClient` (aio-pika) and :class:`OrbitClient` (blocking).

Layering: imports ``orbit_protocol`` only (and plugin ``schema`` modules, which are
pydantic-only). The blocking client runs the async one on a private loop thread.
"""

from orbit_protocol.errors import (
    AuthenticationFailed,
    BadRequest,
    BrokerError,
    Cancelled,
    Conflict,
    DeadlineExceeded,
    EndpointBusy,
    EndpointOffline,
    InternalError,
    InvalidArgs,
    NotAuthorized,
    NotFound,
    OrbitError,
    PayloadTooLarge,
    PoisonMessage,
    Unavailable,
    UnknownMethod,
    UnknownPlugin,
)

from ._async import AsyncOrbitClient
from ._presence import EndpointInfo
from ._subscription import Subscription
from ._sync import OrbitClient, SyncSubscription
from .settings import ClientSettings

__all__ = [
    "AsyncOrbitClient",
    "AuthenticationFailed",
    "BadRequest",
    "BrokerError",
    "Cancelled",
    "ClientSettings",
    "Conflict",
    "DeadlineExceeded",
    "EndpointBusy",
    "EndpointInfo",
    "EndpointOffline",
    "InternalError",
    "InvalidArgs",
    "NotAuthorized",
    "NotFound",
    "OrbitClient",
    "OrbitError",
    "PayloadTooLarge",
    "PoisonMessage",
    "Subscription",
    "SyncSubscription",
    "Unavailable",
    "UnknownMethod",
    "UnknownPlugin",
]
