"""What runs inside a child endpoint's batch job: the launcher and the ``child`` plugin.

:func:`main` (``python -m orbit_plugins.psij.child JOB_DIR``, submitted by
:func:`.children.submit`) reads and deletes ``child.env``, opens ``ssh -L`` for forward
tunnels (or waits for the parent's reverse port, :mod:`.tunnel`), then runs ``orbit endpoint
start`` with the URL in its environment only (never argv), and stops the tunnel after the
endpoint has published its offline presence.

:class:`ChildPlugin` (loaded into every child) answers ``child.info`` and emits
``<child>.child.online`` with the job's allocation (``queue_info.job_allocation``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orbit_plugins.base import Call, Plugin, PluginContext, operation

from .child_schema import Announcement
from .jobdir import ENV_FILE, FAILURE, META, NODE, TUNNEL_LOG, load_meta, tail
from .tunnel import TunnelError, ended, open_forward, stop_ssh, wait_reverse, with_address

FAILED_TUNNEL = 3
"""Exit code of the in-job launcher when its tunnel did not come up or closed."""
CANCEL_WAIT = 30.0
"""Seconds the in-job launcher waits, after its tunnel failed, for the parent's cancel."""
ALLOCATION_PLUGIN = "queue_info"
"""The plugin (entry point of ``orbit.plugins``) whose ``job_allocation`` a child announces."""


# -- the launcher ------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """``python -m orbit_plugins.psij.child JOB_DIR``: the child endpoint's job script."""
    job_dir = Path(argv[1])
    meta = load_meta(job_dir)
    if meta is None:
        print(f"no {META} in {job_dir}", file=sys.stderr)
        return 2
    env = json.loads((job_dir / ENV_FILE).read_text())
    (job_dir / ENV_FILE).unlink()  # from now on the URL lives only in the processes' memory
    url: str = env["ORBIT_ENDPOINT_URL"]
    host = socket.gethostname()
    (job_dir / NODE).write_text(host + "\n")
    stopping: list[int] = []
    endpoint: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        if endpoint is not None and endpoint.poll() is None:
            endpoint.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    tunnel: subprocess.Popen[bytes] | None = None
    try:
        if meta.tunnel == "forward":
            tunnel, port = open_forward(meta, job_dir)
            url = with_address(url, "127.0.0.1", port)
        elif meta.tunnel == "reverse":
            url = with_address(url, "127.0.0.1", wait_reverse(meta, job_dir))
    except TunnelError as exc:
        with contextlib.suppress(OSError):
            (job_dir / FAILURE).write_text(f"{exc}\n")
        print(f"orbit child {meta.name}: {exc}", file=sys.stderr)
        _await_cancel(stopping)
        return FAILED_TUNNEL
    if stopping:
        stop_ssh(tunnel)
        return 0
    child_env = os.environ | env | {"ORBIT_ENDPOINT_URL": url, "ORBIT_CHILD_JOB_DIR": str(job_dir)}
    cmd = [meta.python, "-m", "orbit_cli", "endpoint", "start", "--name", meta.name]
    print(f"orbit child {meta.name} on {host}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    closed = False
    try:
        endpoint = subprocess.Popen(cmd, env=child_env)
        while endpoint.poll() is None:
            if tunnel is not None and tunnel.poll() is not None and not stopping:
                reason = (
                    f"forward tunnel via {meta.login_host} closed: ssh -L"
                    f" {ended(tunnel.returncode)}: {tail(job_dir / TUNNEL_LOG) or 'no output'}"
                )
                (job_dir / FAILURE).write_text(reason + "\n")
                print(f"orbit child {meta.name}: {reason}", file=sys.stderr, flush=True)
                endpoint.send_signal(signal.SIGTERM)
                stopping.append(0)
                closed = True
            time.sleep(0.2)
        if closed:
            stopping.remove(0)
            _await_cancel(stopping)
            return FAILED_TUNNEL
        return endpoint.returncode
    finally:
        stop_ssh(tunnel)


def _await_cancel(stopping: list[int]) -> None:
    """After a tunnel failure, wait (up to :data:`CANCEL_WAIT`) for the parent's cancel to
    signal us. Exiting at once would race the parent's watcher: a job that already ended is
    no longer watched, so the failure would be neither reported (``child_status``) nor its
    allocation cancelled (on a cluster the rest of a multi-node allocation)."""
    deadline = time.monotonic() + CANCEL_WAIT
    while not stopping and time.monotonic() < deadline:
        time.sleep(0.2)


# -- the child plugin --------------------------------------------------------------------------


async def job_allocation(ctx: PluginContext) -> dict[str, Any] | None:
    """``queue_info.job_allocation`` of the job this process runs in (None outside one).

    The ``queue_info`` plugin is found by its entry point and run through the plugin contract
    (``setup``, the operation, ``stop``) as an endpoint runs it; its code is not imported, so
    a child works, without allocation details, where it is not installed."""
    from importlib.metadata import entry_points

    found = entry_points(group="orbit.plugins", name=ALLOCATION_PLUGIN)
    if not found:
        raise LookupError(f"no plugin named {ALLOCATION_PLUGIN!r} is installed")
    cls = next(iter(found)).load()
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise TypeError(f"{ALLOCATION_PLUGIN!r} is not an orbit_plugins.Plugin subclass")
    plugin = cls()
    await plugin.setup(ctx)
    try:
        spec = plugin.operations()["job_allocation"]
        call = Call("child-allocation", "", ctx.endpoint)
        result = await plugin.invoke(spec, spec.args_model(), call)
    finally:
        await plugin.stop()
    allocation: dict[str, Any] | None = result["allocation"]
    return allocation


class ChildPlugin(Plugin):
    """Loaded into every child endpoint: where it runs and which allocation it holds."""

    name = "child"
    version = "0.1.0"
    description = "A child endpoint's parent, job, tunnel and batch allocation."

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self._info: Announcement | None = None

    async def setup(self, ctx: PluginContext) -> None:
        await super().setup(ctx)
        job_dir = os.environ.get("ORBIT_CHILD_JOB_DIR")
        meta = load_meta(Path(job_dir)) if job_dir else None
        try:
            allocation = await job_allocation(ctx)
        except Exception as exc:
            ctx.logger.warning("no allocation details: %s", exc)
            allocation = None
        url = urlsplit(os.environ.get("ORBIT_ENDPOINT_URL", ""))
        self._info = Announcement(
            name=ctx.endpoint,
            parent=meta.parent if meta else None,
            job_id=meta.job_id if meta else None,
            host=socket.gethostname(),
            broker=f"{url.hostname}:{url.port}",
            tunnel=meta.tunnel if meta else "none",
            allocation=allocation,
        )

    async def start(self) -> None:
        self.ctx.emit("online", self.info().model_dump(), persistent=True)

    @operation(idempotent=True)
    def info(self) -> Announcement:
        """Parent, job, host, broker address (tunnel end) and batch allocation."""
        assert self._info is not None
        return self._info


if __name__ == "__main__":
    sys.exit(main(sys.argv))
