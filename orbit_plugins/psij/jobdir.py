"""The job dir of a child endpoint: the files through which the parent endpoint (submit,
watcher) and the batch job (launcher, child plugin) talk.

The dir must be on a filesystem the compute nodes share with the login node.
"""

from __future__ import annotations

from pathlib import Path

from .child_schema import ChildMeta

ENV_FILE = "child.env"
"""The child's broker URL and endpoint settings (mode 0600); the job reads and deletes it."""
META = "child.json"
""":class:`~.child_schema.ChildMeta`, without secrets."""
NODE = "node"
"""The compute node the job runs on, written by the job."""
PORT = "tunnel.port"
"""The job-side port of the parent's ``ssh -R``, written by the parent."""
FAILURE = "failure"
"""Why a tunnel failed (by either side): the job's FAILED message."""
TUNNEL_LOG, TUNNEL_STATE = "tunnel.log", "tunnel.json"
"""ssh's stderr; the parent's ``ssh -R`` (pid, start time, node), kept across restarts."""


def load_meta(job_dir: Path) -> ChildMeta | None:
    """``child.json`` of ``job_dir``; None for a job that is not a child endpoint."""
    try:
        return ChildMeta.model_validate_json((job_dir / META).read_text())
    except (OSError, ValueError):
        return None


def read(path: Path) -> str:
    """The text of a file, empty when it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, for error messages."""
    return " | ".join(line.strip() for line in read(path).strip().splitlines()[-lines:])
