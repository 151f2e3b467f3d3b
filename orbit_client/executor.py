"""Moved to :mod:`orbit_plugins.tasks.client`; this alias keeps old imports working."""

from orbit_plugins.tasks.client_executor import (
    FETCH_CHUNK,
    POOL_BATCH,
    AsyncOrbitExecutor,
    Settle,
)
from orbit_plugins.tasks.client_sync import OrbitExecutor

__all__ = ["FETCH_CHUNK", "POOL_BATCH", "AsyncOrbitExecutor", "OrbitExecutor", "Settle"]
