"""Orbit clients: :class:`AsyncOrbitClient` and :class:`OrbitClient` (blocking).

Layering: imports ``orbit_protocol`` and the transport ``orbit_amqp`` only. The blocking
client runs the async one on a private loop thread. The typed helpers of the features
(``Jobs``, ``OrbitExecutor``, ...) live in their feature packages (``orbit_plugins.<f>.client``);
the names below stay importable from here, loaded on first use.
"""

import importlib
from typing import Any

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
from ._directory import DirectoryEntry
from ._presence import EndpointInfo
from ._subscription import Subscription
from ._sync import OrbitClient, SyncSubscription
from .settings import ClientSettings

_MOVED = {
    **dict.fromkeys(
        ("AsyncJobs", "JobHandle", "Jobs", "SyncJobHandle", "job_spec"), "orbit_plugins.psij.client"
    ),
    **dict.fromkeys(("AsyncQueueInfo", "QueueInfo"), "orbit_plugins.queue_info.client"),
    **dict.fromkeys(("AsyncSysinfo", "Sysinfo"), "orbit_plugins.sysinfo.client"),
    **dict.fromkeys(("AsyncGlobus", "Globus"), "orbit_plugins.globus.client"),
    **dict.fromkeys(("AsyncIri", "Iri"), "orbit_plugins.iri.client"),
    **dict.fromkeys(("AsyncStaging", "Staging"), "orbit_plugins.staging.client_typed"),
    **dict.fromkeys(("AsyncTasks", "Tasks"), "orbit_plugins.tasks.client_typed"),
    **dict.fromkeys(
        ("AsyncOrbitExecutor", "OrbitExecutor", "RemoteTraceback", "TaskFailed", "VersionMismatch"),
        "orbit_plugins.tasks.client",
    ),
}
"""Names of feature clients, by the module they moved to."""


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'orbit_client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AsyncGlobus",
    "AsyncIri",
    "AsyncJobs",
    "AsyncOrbitClient",
    "AsyncOrbitExecutor",
    "AsyncQueueInfo",
    "AsyncStaging",
    "AsyncSysinfo",
    "AsyncTasks",
    "AuthenticationFailed",
    "BadRequest",
    "BrokerError",
    "Cancelled",
    "ClientSettings",
    "Conflict",
    "DeadlineExceeded",
    "DirectoryEntry",
    "EndpointBusy",
    "EndpointInfo",
    "EndpointOffline",
    "Globus",
    "InternalError",
    "InvalidArgs",
    "Iri",
    "JobHandle",
    "Jobs",
    "NotAuthorized",
    "NotFound",
    "OrbitClient",
    "OrbitError",
    "OrbitExecutor",
    "PayloadTooLarge",
    "PoisonMessage",
    "QueueInfo",
    "RemoteTraceback",
    "Staging",
    "Subscription",
    "SyncJobHandle",
    "SyncSubscription",
    "Sysinfo",
    "TaskFailed",
    "Tasks",
    "Unavailable",
    "UnknownMethod",
    "UnknownPlugin",
    "VersionMismatch",
    "job_spec",
]
