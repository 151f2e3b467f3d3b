"""Task helpers of the client: task specs from callables, results back to values or
exceptions, the pre-flight version check for cloudpickled code, and following tasks to their
final states (``orbit task wait``). The wire models are :mod:`.schema`'s.

cloudpickle is imported lazily (``pip install 'orbit[tasks]'``), so importing the client
side stays light.
"""

from __future__ import annotations

import base64
import importlib
import importlib.metadata
import itertools
import pickle
import platform
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .schema import FINAL_STATES

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient


class TaskFailed(Exception):
    """A remote task failed and its exception could not be rebuilt locally."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.uid: str = record.get("uid", "")
        self.exception: str | None = record.get("exception")
        self.traceback: str | None = record.get("traceback")
        super().__init__(f"task {self.uid} failed: {record.get('error') or record.get('state')}")


class RemoteTraceback(Exception):
    """Set as ``__cause__`` of a re-raised remote exception; its text is the remote traceback."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


class VersionMismatch(Exception):
    """The endpoint cannot safely load cloudpickled code from this client."""


def _cloudpickle() -> Any:
    try:
        return importlib.import_module("cloudpickle")
    except ImportError:
        raise ImportError(
            "sending Python callables needs cloudpickle: pip install 'orbit[tasks]'"
        ) from None


_UID_PREFIX = f"task.{uuid.uuid4().hex[:20]}."
_uid_counter = itertools.count()


def new_uid() -> str:
    """A task uid unique to this process (a random prefix and a counter: cheap per task)."""
    return f"{_UID_PREFIX}{next(_uid_counter)}"


def pickled_function(fn: Callable[..., Any]) -> str:
    """base64 cloudpickle of ``fn`` alone, for :func:`map_specs`."""
    return base64.b64encode(_cloudpickle().dumps(fn)).decode()


def map_specs(
    fn: Callable[..., Any] | str, arg_tuples: Iterable[tuple[Any, ...]], **extra: Any
) -> Iterator[dict[str, Any]]:
    """Task specs for ``fn(*args)`` per tuple; a callable is pickled once (``pickled`` is
    the same blob in every spec, arguments go in ``pickled_args``)."""
    opts = {k: v for k, v in extra.items() if v is not None}
    if isinstance(fn, str):
        for args in arg_tuples:
            yield {"uid": new_uid(), **opts, "function": fn, "args": list(args), "kwargs": {}}
        return
    blob, dumps = pickled_function(fn), _cloudpickle().dumps
    b64 = base64.b64encode
    for args in arg_tuples:
        # plain values pickle the same with the stdlib pickler, several times faster
        plain = all(type(a) in _PLAIN for a in args)
        packed = b64(pickle.dumps((args, {}), 5) if plain else dumps((args, {}))).decode()
        yield {"uid": new_uid(), **opts, "pickled": blob, "pickled_args": packed}


_PLAIN = frozenset({int, float, str, bytes, bool, type(None)})


def function_spec(
    fn: Callable[..., Any] | str, args: tuple[Any, ...], kwargs: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A task spec: ``"module:func"`` with JSON args, or a cloudpickled callable + args."""
    spec: dict[str, Any] = {"uid": new_uid(), **{k: v for k, v in extra.items() if v is not None}}
    if isinstance(fn, str):
        spec.update(function=fn, args=list(args), kwargs=kwargs)
    else:
        blob = _cloudpickle().dumps((fn, args, kwargs))
        spec["pickled"] = base64.b64encode(blob).decode()
    return spec


def outcome(record: dict[str, Any]) -> tuple[bool, Any]:
    """``(True, value)`` for DONE, ``(False, exception)`` for FAILED/CANCELED."""
    state = record.get("state")
    if state == "DONE":
        if record.get("return_encoding") == "cloudpickle":
            return True, _cloudpickle().loads(base64.b64decode(record["return_value"]))
        if record.get("kind") == "executable":
            return True, record.get("exit_code")
        return True, record.get("return_value")
    exc: BaseException = TaskFailed(record)
    if record.get("exception_pickled"):
        try:
            exc = _cloudpickle().loads(base64.b64decode(record["exception_pickled"]))
        except Exception:
            exc = TaskFailed(record)
    if record.get("traceback"):
        exc.__cause__ = RemoteTraceback(record["traceback"])
    return False, exc


async def pool_call(
    client: AsyncOrbitClient,
    pool: str,
    operation: str,
    args: dict[str, Any],
    timeout: float | None = None,
) -> Any:
    """Call ``operation`` on whichever member of pool ``pool`` takes it (routing key
    ``pool.<pool>``, docs/protocol.md); its result, or its error raised."""
    reply = await client.pool_request(pool, operation, args, timeout=timeout)
    return reply.unwrap()


def local_versions() -> dict[str, str | None]:
    try:
        cp: str | None = importlib.metadata.version("cloudpickle")
    except importlib.metadata.PackageNotFoundError:
        cp = None
    return {"python": platform.python_version(), "cloudpickle": cp}


def check_versions(endpoint: str, described: dict[str, Any]) -> None:
    """Raise :class:`VersionMismatch` unless cloudpickled code from here loads there."""
    remote = described.get("versions", {})
    local = local_versions()
    tasks = described.get("plugins", {}).get("tasks")
    if not tasks or not tasks.get("available"):
        raise VersionMismatch(f"endpoint {endpoint!r} has no available tasks plugin")
    problems = []
    rpy, lpy = str(remote.get("python")), str(local["python"])
    if rpy.split(".")[:2] != lpy.split(".")[:2]:
        problems.append(f"Python {rpy} there, {lpy} here")
    if remote.get("cloudpickle") is None:
        problems.append("cloudpickle is not installed there")
    elif remote.get("cloudpickle") != local["cloudpickle"]:
        problems.append(
            f"cloudpickle {remote.get('cloudpickle')} there, {local['cloudpickle']} here"
        )
    if problems:
        raise VersionMismatch(
            f"cannot send cloudpickled functions to {endpoint!r}: {'; '.join(problems)}."
            " Use matching versions, or an import path 'module:func' with JSON arguments,"
            " or pass check_versions=False to try anyway"
        )


async def task_records(
    client: AsyncOrbitClient, endpoint: str, uids: list[str], timeout: float = 0
) -> list[dict[str, Any]]:
    """``wait_tasks`` in chunks of 1000 (args as a dict: ``timeout`` is a ``call`` keyword)."""
    records: list[dict[str, Any]] = []
    for i in range(0, len(uids), 1000):
        reply = await client.request(
            endpoint, "tasks.wait_tasks", {"uids": uids[i : i + 1000], "timeout": timeout}
        )
        records += reply.unwrap()
    return records


async def follow_tasks(
    client: AsyncOrbitClient,
    endpoint: str,
    uids: list[str],
    *,
    timeout: float | None = None,
    on_final: Callable[[int], None] | None = None,
    sweep: float = 10.0,
) -> list[dict[str, Any]]:
    """Wait for ``uids`` to be final, driven by ``task_status`` events (a slow sweep as a
    safety net); ``on_final(n)`` reports progress. Returns the records, in order."""
    sub = await client.subscribe(endpoint, "tasks")
    try:
        left = {
            r["uid"]
            for r in await task_records(client, endpoint, uids)
            if r["state"] not in FINAL_STATES
        }
        if on_final:
            on_final(len(uids) - len(left))
        deadline = None if timeout is None else time.monotonic() + timeout
        next_sweep = time.monotonic() + sweep
        while left:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            wait = next_sweep - now if deadline is None else min(deadline, next_sweep) - now
            try:
                event = await sub.get(timeout=max(wait, 0.01))
            except TimeoutError:
                next_sweep = time.monotonic() + sweep
                done = [
                    r["uid"]
                    for r in await task_records(client, endpoint, sorted(left))
                    if r["state"] in FINAL_STATES
                ]
            else:
                batch = (
                    event.data.get("tasks", [])
                    if event.topic == "task_status_batch"
                    else [event.data]
                )
                done = [
                    c["uid"]
                    for c in batch
                    if c.get("uid") in left and c.get("state") in FINAL_STATES
                ]
            left.difference_update(done)
            if on_final and done:
                on_final(len(uids) - len(left))
    finally:
        await sub.close()
    return await task_records(client, endpoint, uids)


__all__ = [
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
