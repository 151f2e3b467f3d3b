"""The worker subprocess: runs function tasks; the only place cloudpickle payloads are loaded.

Started with the ``spawn`` method, so it shares nothing with the endpoint but the pipe.
It receives chunks (lists) of ``(kind, target, args, kwargs, max_result)`` tuples and answers
lists of outcome dicts, in task order: a sender thread sends whatever has finished since its
last send, so a run of fast tasks costs one pipe message per batch, not per task, while
the outcome of a task followed by a long one leaves at once. For ``kind == "pickled_fn"``
the target is the cloudpickled function alone and ``args`` the cloudpickled
``(args, kwargs)``: a mapped function arrives as the same blob for every task and is
unpickled once (cached by blob).
It exits when the pipe closes or its parent (the endpoint) disappears.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import queue
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any


def _cloudpickle() -> Any:
    return importlib.import_module("cloudpickle")


_FUNCTIONS: dict[str, Any] = {}
"""Unpickled functions by their base64 blob (``pickled_fn`` tasks), bounded."""


def _unpickle(blob: str) -> Any:
    return _cloudpickle().loads(base64.b64decode(blob))


def _function(blob: str) -> Any:
    func = _FUNCTIONS.get(blob)
    if func is None:
        if len(_FUNCTIONS) >= 64:
            _FUNCTIONS.clear()
        func = _FUNCTIONS[blob] = _unpickle(blob)
    return func


def _load(kind: str, target: str, args: Any, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if kind in ("pickled", "pickled_fn"):
        try:
            if kind == "pickled_fn":
                func = _function(target)
                args, kwargs = _unpickle(args)
            else:
                func, args, kwargs = _unpickle(target)
        except Exception as exc:
            raise RuntimeError(
                f"could not unpickle the function ({type(exc).__name__}: {exc}); the client's"
                " Python or cloudpickle version probably differs from the endpoint's"
            ) from exc
        return func, tuple(args), dict(kwargs)
    module, _, name = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj, tuple(args), kwargs


_SCALARS = (type(None), bool, int, str)
"""Return types that JSON carries exactly (floats are pickled: JSON loses nan/inf)."""


def _encode(kind: str, value: Any, max_result: int) -> tuple[Any, str]:
    if kind != "function" and type(value) not in _SCALARS:
        cloudpickle = _cloudpickle()
        data = base64.b64encode(cloudpickle.dumps(value)).decode()
        size, encoded, encoding = len(data), data, "cloudpickle"
    else:
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the return value is not JSON-serializable: {exc}") from None
        encoded, encoding = value, "json"
    if size > max_result:
        raise ValueError(f"the return value is {size} bytes encoded, over the {max_result} cap")
    return encoded, encoding


def _exception(kind: str, exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ok": False,
        "error": f"{type(exc).__name__}: {exc}",
        "exception": type(exc).__name__,
        "traceback": traceback.format_exc(),
    }
    if kind != "function":
        try:
            cloudpickle = _cloudpickle()
            out["exception_pickled"] = base64.b64encode(cloudpickle.dumps(exc)).decode()
        except Exception:
            pass
    return out


def run_one(message: tuple[Any, ...]) -> dict[str, Any]:
    """Execute one task message; never raises."""
    kind, target, args, kwargs, max_result = message
    try:
        func, args, kwargs = _load(kind, target, args, kwargs)
        value = func(*args, **kwargs)
    except BaseException as exc:  # a task's SystemExit must not end the worker
        return _exception(kind, exc)
    try:
        encoded, encoding = _encode(kind, value, max_result)
    except Exception as exc:
        return {"ok": False, "error": str(exc), "exception": type(exc).__name__}
    return {"ok": True, "return_value": encoded, "return_encoding": encoding}


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _send_outcomes(conn: Connection, outbox: queue.SimpleQueue[dict[str, Any] | None]) -> None:
    """Send finished outcomes in batches, in order, until ``None``."""
    while True:
        item = outbox.get()
        batch: list[dict[str, Any]] = []
        while item is not None:
            batch.append(item)
            try:
                item = outbox.get_nowait()
            except queue.Empty:
                break
        if batch:
            try:
                conn.send(batch)
            except (OSError, ValueError):
                return
        if item is None:
            return


def main(conn: Connection, parent: int) -> None:
    """Worker loop (the target of the spawned process)."""
    sys.setswitchinterval(0.0005)  # the sender gets the GIL soon after a task ends
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_outcomes, args=(conn, outbox), daemon=True)
    sender.start()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            for one in message:
                outbox.put(run_one(one))
    finally:
        outbox.put(None)
        sender.join(5)
