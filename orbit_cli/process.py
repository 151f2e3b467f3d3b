"""Background processes of the CLI (endpoints, the dead-letter responder): pid files, logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import CliError


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def spawn(
    args: list[str], *, env: dict[str, str], pid_file: Path, log_file: Path
) -> subprocess.Popen[bytes]:
    """Start ``python args…`` in its own session, output appended to ``log_file``."""
    running = read_pid(pid_file)
    if running is not None:
        raise CliError(f"already running with pid {running} (pid file {pid_file})", code="CONFLICT")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def stop(pid_file: Path, *, timeout: float = 20.0) -> int | None:
    """SIGTERM the process of ``pid_file``, wait, SIGKILL after ``timeout``; its pid or None."""
    pid = read_pid(pid_file)
    if pid is None:
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 5.0)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return pid


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


__all__ = ["alive", "read_pid", "spawn", "stop", "tail", "wait_gone"]
