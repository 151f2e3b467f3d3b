"""Moved to :mod:`orbit_plugins.tasks.client`; this alias keeps old imports working."""

from orbit_plugins.tasks.client_tasks import (
    RemoteTraceback,
    TaskFailed,
    VersionMismatch,
    check_versions,
    follow_tasks,
    function_spec,
    local_versions,
    map_specs,
    new_uid,
    outcome,
    pickled_function,
    pool_call,
    task_records,
)
from orbit_plugins.tasks.schema import FINAL_STATES

__all__ = [
    "FINAL_STATES",
    "RemoteTraceback",
    "TaskFailed",
    "VersionMismatch",
    "check_versions",
    "follow_tasks",
    "function_spec",
    "local_versions",
    "map_specs",
    "new_uid",
    "outcome",
    "pickled_function",
    "pool_call",
    "task_records",
]
