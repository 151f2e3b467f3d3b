"""The parent side of child endpoints: the ``psij`` plugin of a login-node endpoint.

:func:`submit` writes the job dir (``child.env`` with the child's broker URL, mode 0600;
``child.json`` without secrets) and submits a job running ``python -m
orbit_plugins.psij.child JOB_DIR`` (:mod:`.child`). :class:`Children` watches those jobs,
opens ``ssh -R`` for reverse tunnels once the job's node is known, and cancels the
allocation when a tunnel fails (the reason lands in ``failure``, which :func:`outcome` turns
into the job's FAILED message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orbit_plugins.base import Call
from orbit_protocol import Conflict, InvalidArgs, NotFound

from . import launch
from .child_schema import ChildInfo, ChildMeta, ChildSettings, SubmitEndpointArgs
from .jobdir import (
    ENV_FILE,
    FAILURE,
    META,
    NODE,
    PORT,
    TUNNEL_LOG,
    TUNNEL_STATE,
    load_meta,
    read,
    tail,
)
from .schema import TERMINAL, JobIdArgs, JobSpec, SubmitArgs
from .tunnel import ALLOCATED, broker_address, ended, spawn_ssh, ssh_options, stop_ssh

if TYPE_CHECKING:
    from .plugin import PsijPlugin
    from .store import JobRecord

CHILD_PLUGIN = "orbit_plugins.psij.child:ChildPlugin"
"""Loaded into every child endpoint besides the plugins asked for."""


# -- submit -------------------------------------------------------------------------------------


def _write_secret(path: Path, text: str) -> None:
    """Create or replace ``path`` readable by its owner only (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def child_url(cfg: ChildSettings, name: str) -> str:
    """The child's own broker URL from ``credentials_dir/NAME.url`` (must be mode 0600)."""
    path = Path(cfg.credentials_dir).expanduser() / f"{name}.url"
    try:
        st = path.stat()
        url = path.read_text().strip()
    except OSError:
        raise InvalidArgs(
            f"no credentials for child endpoint {name!r} on this endpoint: provision it"
            f" (orbit broker provision --endpoint {name}) and store its URL in {path}"
        ) from None
    if st.st_mode & 0o077:
        raise InvalidArgs(f"{path} is readable by others: chmod 600 it")
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname or not parts.username:
        raise InvalidArgs(f"{path} holds no amqp[s]://user:password@host:port/vhost URL")
    return url


def submit(plugin: PsijPlugin, args: SubmitEndpointArgs, call: Call) -> ChildInfo:
    """Submit the job that runs child endpoint ``args.name`` (its id is the request id)."""
    cfg = ChildSettings.model_validate(plugin.cfg.children)
    rec = plugin.store.get(call.request_id)
    if rec is None:
        url = child_url(cfg, args.name)
        _refuse_twins(plugin, args.name)
        broker_host, broker_port = broker_address(url)
        setup = args.setup if args.setup is not None else cfg.setup
        job_dir = Path(plugin.ctx.state_dir) / "jobs" / call.request_id
        job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        meta = ChildMeta(
            name=args.name,
            parent=plugin.ctx.endpoint,
            job_id=call.request_id,
            tunnel=args.tunnel,
            broker_host=broker_host,
            broker_port=broker_port,
            login_host=cfg.login_host or socket.gethostname(),
            ssh_options=ssh_options(cfg),
            tunnel_timeout=cfg.tunnel_timeout,
            python=cfg.python or ("python3" if setup else sys.executable),
        )
        plugins = [p for p in args.plugins if p != CHILD_PLUGIN] + [CHILD_PLUGIN]
        allowed = sorted({call.user, *args.allowed_users})
        env = {
            "ORBIT_ENDPOINT_URL": url,
            "ORBIT_ENDPOINT_PLUGINS": json.dumps(plugins),
            "ORBIT_ENDPOINT_ALLOWED_USERS": json.dumps(allowed),
            "ORBIT_ENDPOINT_ADMINS": json.dumps([call.user]),
            "ORBIT_ENDPOINT_STATE_DIR": str(job_dir / "state"),
        }
        _write_secret(job_dir / ENV_FILE, json.dumps(env))
        (job_dir / META).write_text(meta.model_dump_json(indent=1))
        executable, arguments = meta.python, ["-m", "orbit_plugins.psij.child", str(job_dir)]
        if setup:  # the seed's RADICAL_ORBIT_SETUP: bash runs it, then becomes the launcher
            launch = f'{setup}\nexec "$0" -m orbit_plugins.psij.child "$1"'
            executable, arguments = "/bin/bash", ["-c", launch, meta.python, str(job_dir)]
        spec = JobSpec(
            executable=executable,
            arguments=arguments,
            directory=args.spec.directory,
            environment=args.spec.environment,
            resources=args.spec.resources,
            attributes=args.spec.attributes,
        )
        plugin.submit_job(SubmitArgs(spec=spec, executor=args.executor), call)
        rec = plugin.store.get(call.request_id)
        assert rec is not None
    found = load_meta(Path(rec.job_dir))
    if found is None:
        raise NotFound(f"job {call.request_id} is not a child endpoint")
    return ChildInfo(
        job_id=rec.job_id,
        native_id=rec.native_id,
        name=found.name,
        tunnel=found.tunnel,
        executor=rec.executor,
        state=rec.state,
    )


def _refuse_twins(plugin: PsijPlugin, name: str) -> None:
    """One job per child name: a second would only be a standby consumer of the same queue."""
    for rec in plugin.store.list(active_only=True):
        meta = load_meta(Path(rec.job_dir))
        if meta is not None and meta.name == name:
            raise Conflict(
                f"child endpoint {name!r} already runs in job {rec.job_id}"
                f" ({rec.executor} {rec.native_id}, {rec.state}): cancel it or use another name"
            )


def outcome(
    rec: JobRecord, state: str, exit_code: int | None, message: str | None
) -> tuple[str, int | None, str | None]:
    """A child job that ended after a tunnel failure is FAILED with the reason as message."""
    if state in TERMINAL:
        with contextlib.suppress(OSError):
            reason = (Path(rec.job_dir) / FAILURE).read_text().strip()
            if reason:
                return "FAILED", exit_code, reason
    return state, exit_code, message


# -- watcher ------------------------------------------------------------------------------------


class _Reverse:
    """One parent-side ``ssh -R``; it outlives an endpoint restart (``tunnel.json``)."""

    def __init__(
        self, pid: int, started: float | None, node: str, proc: subprocess.Popen[bytes] | None
    ) -> None:
        self.pid, self.started, self.node, self.proc = pid, started, node, proc
        self.t0 = time.monotonic()
        self.port: int | None = None

    def exit_code(self) -> int | None:
        """None while it runs; its exit code after (-1: re-attached, code unknown)."""
        if self.proc is not None:
            return self.proc.poll()
        return None if launch.alive(self.pid, self.started) else -1

    def stop(self) -> None:
        if self.proc is not None:
            stop_ssh(self.proc)
        else:
            launch.kill_tree(self.pid, self.started)


class Children:
    """Watches the plugin's child-endpoint jobs: reverse tunnels, failures, cancellation."""

    def __init__(self, plugin: PsijPlugin) -> None:
        self.plugin = plugin
        self.cfg = ChildSettings.model_validate(plugin.cfg.children)
        self._reverse: dict[str, _Reverse] = {}
        self._failed: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="psij-children")

    async def stop(self) -> None:
        """Stop watching. Tunnels of running jobs stay up (the next start re-attaches them),
        those of jobs that just ended are closed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self._sweep)
        self._reverse.clear()

    def _sweep(self) -> None:
        """Close every reverse tunnel whose job has ended (also while we were down)."""
        for rec in self.plugin.store.list():
            state = Path(rec.job_dir) / TUNNEL_STATE
            if not rec.terminal or not state.exists():
                continue
            tunnel = self._reverse.pop(rec.job_id, None)
            if tunnel is None:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    saved = json.loads(state.read_text())
                    tunnel = _Reverse(saved["pid"], saved["started"], saved["node"], None)
            if tunnel is not None:
                tunnel.stop()
            state.unlink(missing_ok=True)

    async def _loop(self) -> None:
        await asyncio.to_thread(self._sweep)
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                self.plugin.ctx.logger.warning("child watcher tick failed", exc_info=True)
            await asyncio.sleep(0.5)

    def tick(self) -> None:
        active = {}
        for rec in self.plugin.store.list(active_only=True):
            meta = load_meta(Path(rec.job_dir))
            if meta is not None and rec.native_id is not None:
                active[rec.job_id] = (rec, meta)
        if any(job_id not in active for job_id in self._reverse):
            self._sweep()  # a job ended: its tunnel has nothing left to carry
        for rec, meta in active.values():
            job_dir = Path(rec.job_dir)
            failure = job_dir / FAILURE
            if failure.exists():
                self._fail(rec, meta, failure.read_text().strip())
            elif meta.tunnel == "reverse":
                self._reverse_tick(rec, meta, job_dir)

    def _reattach(self, rec: JobRecord, meta: ChildMeta, job_dir: Path) -> _Reverse | None:
        """The tunnel a previous run of this endpoint opened, if it still runs."""
        try:
            saved = json.loads((job_dir / TUNNEL_STATE).read_text())
        except (OSError, ValueError):
            return None
        tunnel = _Reverse(saved["pid"], saved["started"], saved["node"], None)
        with contextlib.suppress(OSError, ValueError):
            tunnel.port = int((job_dir / PORT).read_text())
        if tunnel.exit_code() is None:
            self.plugin.ctx.logger.info(
                "child %s: re-attached ssh -R pid %d", meta.name, tunnel.pid
            )
            return tunnel
        if tunnel.port is not None:  # it carried the child's connection: the child is cut off
            self._fail(rec, meta, self._why(tunnel, job_dir, -1))
            return None
        (job_dir / TUNNEL_STATE).unlink(missing_ok=True)  # never came up: open it again
        return None

    def _open(self, meta: ChildMeta, job_dir: Path) -> _Reverse | None:
        try:
            node = (job_dir / NODE).read_text().strip()
        except OSError:
            return None  # the job does not run yet
        if not node:
            return None
        forward = f"0:{meta.broker_host}:{meta.broker_port}"
        log = job_dir / TUNNEL_LOG
        log.unlink(missing_ok=True)
        proc = spawn_ssh([*meta.ssh_options, "-N", "-R", forward, node], log, die_with_us=False)
        started = launch.start_time(proc.pid)
        state = {"pid": proc.pid, "started": started, "node": node}
        (job_dir / TUNNEL_STATE).write_text(json.dumps(state))
        self.plugin.ctx.logger.info(
            "child %s: ssh -R %s %s (pid %d)", meta.name, forward, node, proc.pid
        )
        return _Reverse(proc.pid, started, node, proc)

    def _reverse_tick(self, rec: JobRecord, meta: ChildMeta, job_dir: Path) -> None:
        tunnel = self._reverse.get(rec.job_id)
        if tunnel is None:
            found = self._reattach(rec, meta, job_dir)
            if found is None and rec.job_id not in self._failed:
                found = self._open(meta, job_dir)
            if found is not None:
                self._reverse[rec.job_id] = found
            return
        code = tunnel.exit_code()
        if tunnel.port is None:
            allocated = ALLOCATED.search(read(job_dir / TUNNEL_LOG))
            if allocated:
                tunnel.port = int(allocated.group(1))
                tmp = job_dir / (PORT + ".tmp")
                tmp.write_text(str(tunnel.port))
                tmp.replace(job_dir / PORT)
                self._emit(rec, meta, "tunnel_up", port=tunnel.port, node=tunnel.node)
            elif code is not None:
                self._fail(rec, meta, self._why(tunnel, job_dir, code))
            elif time.monotonic() - tunnel.t0 > meta.tunnel_timeout:
                tunnel.stop()
                self._fail(
                    rec,
                    meta,
                    f"reverse tunnel to {tunnel.node} was not up within"
                    f" {meta.tunnel_timeout:.0f} s: {tail(job_dir / TUNNEL_LOG)}",
                )
        elif code is not None:
            self._fail(rec, meta, self._why(tunnel, job_dir, code))

    @staticmethod
    def _why(tunnel: _Reverse, job_dir: Path, code: int) -> str:
        what = "closed" if tunnel.port else "failed"
        how = ended(code) if tunnel.proc is not None else f"(pid {tunnel.pid}) ended"
        return (
            f"reverse tunnel to {tunnel.node} {what}: ssh -R {how}:"
            f" {tail(job_dir / TUNNEL_LOG) or 'no output'}"
        )

    def _fail(self, rec: JobRecord, meta: ChildMeta, reason: str) -> None:
        """Record why, cancel the now useless allocation, tell listeners (once)."""
        if rec.job_id in self._failed:
            return
        self._failed.add(rec.job_id)
        failure = Path(rec.job_dir) / FAILURE
        if not failure.exists():
            failure.write_text(reason + "\n")
        self.plugin.ctx.logger.warning("child %s: %s; cancelling its job", meta.name, reason)
        self._emit(rec, meta, "failed", reason=reason)
        tunnel = self._reverse.pop(rec.job_id, None)
        if tunnel is not None:
            tunnel.stop()
        admin = Call(f"child-{rec.job_id}", rec.user, self.plugin.ctx.endpoint, is_admin=True)
        self.plugin.cancel_job(JobIdArgs(job_id=rec.job_id), admin)

    def _emit(self, rec: JobRecord, meta: ChildMeta, state: str, **data: Any) -> None:
        event = {"job_id": rec.job_id, "name": meta.name, "tunnel": meta.tunnel, "state": state}
        self.plugin.ctx.emit("child_status", event | data, persistent=True)
