"""Executable tasks: a child process per task, in its own session (so a kill reaches its
children), output captured and truncated, killed on timeout or cancel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from typing import Any

from .schema import TaskSpec


def _tail(data: bytes, limit: int) -> str:
    text = data[-limit:] if limit else b""
    prefix = "…[truncated]\n" if len(data) > limit else ""
    return prefix + text.decode(errors="replace")


def kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_executable(
    spec: TaskSpec,
    timeout: float | None,
    max_output: int,
    procs: dict[str, asyncio.subprocess.Process],
    uid: str,
    cancelled: set[str],
    mpi_launcher: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``spec`` (an MPI task under ``mpi_launcher``); the result fields of the task
    (``state`` included). Its process is in ``procs`` while it runs, and killed at once if
    ``uid`` is in ``cancelled`` by then."""
    assert spec.executable is not None
    env = {**os.environ, **spec.environment} if spec.environment else None
    argv = [spec.executable, *spec.arguments]
    if spec.type == "mpi":
        ranks = str(spec.ranks or 1)
        argv = [part.replace("{ranks}", ranks) for part in mpi_launcher] + argv
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=spec.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return {"state": "FAILED", "error": f"cannot start {argv[0]!r}: {exc}"}
    procs[uid] = proc
    if uid in cancelled:
        kill_group(proc)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        kill_group(proc)
        out, err = await proc.communicate()
        return {
            "state": "FAILED",
            "exit_code": proc.returncode,
            "stdout": _tail(out, max_output),
            "stderr": _tail(err, max_output),
            "error": f"timed out after {timeout:g} s; the process was killed",
            "exception": "TimeoutError",
        }
    except asyncio.CancelledError:
        kill_group(proc)
        raise
    finally:
        procs.pop(uid, None)
    code = proc.returncode
    result: dict[str, Any] = {
        "state": "DONE" if code == 0 else "FAILED",
        "exit_code": code,
        "stdout": _tail(out, max_output),
        "stderr": _tail(err, max_output),
    }
    if code != 0:
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        result["error"] = f"{spec.executable} failed ({how})"
    return result
