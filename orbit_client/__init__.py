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
from .executor import AsyncOrbitExecutor, OrbitExecutor
from .jobs import AsyncJobs, JobHandle, Jobs, SyncJobHandle, job_spec
from .settings import ClientSettings
from .tasks import RemoteTraceback, TaskFailed, VersionMismatch

__all__ = [
    "AsyncJobs",
    "AsyncOrbitClient",
    "AsyncOrbitExecutor",
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
    "JobHandle",
    "Jobs",
    "NotAuthorized",
    "NotFound",
    "OrbitClient",
    "OrbitError",
    "OrbitExecutor",
    "PayloadTooLarge",
    "PoisonMessage",
    "RemoteTraceback",
    "Subscription",
    "SyncJobHandle",
    "SyncSubscription",
    "TaskFailed",
    "Unavailable",
    "UnknownMethod",
    "UnknownPlugin",
    "VersionMismatch",
    "job_spec",
]
