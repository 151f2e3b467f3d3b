"""What the monitor of :class:`~.plugin.PsijPlugin` sees: a job's state from PSI/J's report
and the job's own files, its new output, and the events that announce both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import launch
from .schema import TERMINAL, OutputChunk, StatusEvent, Stream
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


def decide(rec: JobRecord, seen: Observed | None, live: bool) -> tuple[str, int | None, str | None]:
    """State, exit code and message of an active job: a local one's from its files
    (:func:`local_outcome`; ``live``: PSI/J watches it in this process), a batch one's from
    PSI/J's latest report."""
    if rec.executor == "local":
        return local_outcome(rec, seen, live)
    if seen is None:
        return rec.state, rec.exit_code, rec.message
    if seen.state == "CANCELED" or (rec.cancel_requested and seen.state in TERMINAL):
        return "CANCELED", None, seen.message
    return seen.state, seen.exit_code, seen.message


def new_output(rec: JobRecord, chunk_bytes: int, final: bool) -> Iterator[OutputChunk]:
    """The output written after the offsets already sent, in chunks of at most ``chunk_bytes``
    (``final``: the job ended, so a trailing partial character is output too)."""
    streams: tuple[tuple[Stream, str, int], ...] = (
        ("stdout", rec.stdout_path, rec.stdout_sent),
        ("stderr", rec.stderr_path, rec.stderr_sent),
    )
    for stream, path, sent in streams:
        while True:
            text, end = launch.read_text(path, sent, chunk_bytes, final)
            if end == sent:
                break
            yield OutputChunk(job_id=rec.job_id, stream=stream, offset=sent, end=end, data=text)
            sent = end


def status_event(rec: JobRecord) -> StatusEvent:
    """The ``job_status`` event of ``rec`` (sizes: the output sent so far)."""
    return StatusEvent(
        job_id=rec.job_id,
        native_id=rec.native_id,
        state=rec.state,
        exit_code=rec.exit_code,
        message=rec.message,
        user=rec.user,
        stdout_size=rec.stdout_sent,
        stderr_size=rec.stderr_sent,
    )
