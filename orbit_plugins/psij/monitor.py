"""How the monitor decides a job's state from PSI/J's report and the job's own files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import launch
from .schema import TERMINAL
from .store import JobRecord

LOST = "the job ended without recording an exit code (killed outside Orbit?)"


@dataclass(frozen=True)
class Observed:
    """A PSI/J status as its callback delivered it."""

    state: str
    exit_code: int | None
    message: str | None


def read_exit_code(rec: JobRecord) -> int | None:
    """The exit code the launcher wrapper wrote, if the command has finished."""
    try:
        return int((Path(rec.job_dir) / "exit_code").read_text().strip())
    except (OSError, ValueError):
        return None


def _from_exit_code(rec: JobRecord, code: int) -> tuple[str, int | None, str | None]:
    if rec.cancel_requested:
        return "CANCELED", None, None
    return ("COMPLETED" if code == 0 else "FAILED"), code, None


def local_outcome(
    rec: JobRecord, seen: Observed | None, live: bool
) -> tuple[str, int | None, str | None]:
    """State, exit code and message of a local job.

    The exit-code file is the truth; PSI/J's own report is used only when it is missing
    (an attached local job always "completes with 0" in PSI/J).
    """
    code = read_exit_code(rec)
    if code is not None:
        return _from_exit_code(rec, code)
    if seen is not None and seen.state in TERMINAL:
        if seen.state == "CANCELED" or rec.cancel_requested:
            return "CANCELED", None, None
        psij_code = seen.exit_code if live and seen.exit_code else None
        return "FAILED", psij_code, seen.message or LOST
    assert rec.native_id is not None
    if not launch.alive(int(rec.native_id), rec.started):
        code = read_exit_code(rec)
        if code is not None:
            return _from_exit_code(rec, code)
        if rec.cancel_requested:
            return "CANCELED", None, None
        return "FAILED", None, LOST
    return "ACTIVE", None, None
