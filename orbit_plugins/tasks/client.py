"""The client side of the ``tasks`` feature: :class:`OrbitExecutor` (blocking, a
:class:`concurrent.futures.Executor`) and :class:`AsyncOrbitExecutor` run Python callables on
an endpoint's ``tasks`` plugin or on a pool's members; a failed task raises its exception
(with a :class:`RemoteTraceback` cause) or :class:`TaskFailed`; :class:`VersionMismatch`
is the pre-flight refusal of cloudpickled code.

    with OrbitExecutor("ep1") as ex:
        print(list(ex.map(pow, range(10), range(10))))

Modules: :mod:`.client_executor` (asyncio), :mod:`.client_sync` (blocking),
:mod:`.client_tasks` (specs, outcomes, version check, following tasks). Also importable from
``orbit_client`` (loaded on first use).
"""

from .client_executor import AsyncOrbitExecutor
from .client_sync import OrbitExecutor
from .client_tasks import RemoteTraceback, TaskFailed, VersionMismatch

__all__ = [
    "AsyncOrbitExecutor",
    "OrbitExecutor",
    "RemoteTraceback",
    "TaskFailed",
    "VersionMismatch",
]
