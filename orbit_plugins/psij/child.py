"""Child endpoints inside batch jobs, and the ssh tunnels that carry their AMQP connection.

Parent side (the ``psij`` plugin of a login-node endpoint): :func:`submit` writes the job
dir (``child.env`` with the child's broker URL, mode 0600; ``child.json`` without secrets)
and submits a job running ``python -m orbit_plugins.psij.child JOB_DIR``; :class:`Children`
watches those jobs, opens ``ssh -R`` for reverse tunnels once the job's node is known,
and cancels the allocation when a tunnel fails (the reason lands in ``failure``, which
:func:`outcome` turns into the job's FAILED message).

In the job, :func:`main` reads and deletes ``child.env``, opens ``ssh -L`` for forward
tunnels (or waits for the parent's reverse port), then runs ``orbit endpoint start`` with
the URL in its environment only (never argv), and stops the tunnel after the endpoint has
published its offline presence.

:class:`ChildPlugin` (loaded into every child) answers ``child.info`` and emits
``<child>.child.online`` with the job's allocation (``queue_info.job_allocation``).
The job dir must be on a filesystem the compute nodes share with the login node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from orbit_plugins.base import Call, Plugin, PluginContext, operation
from orbit_protocol import Conflict, InvalidArgs, NotFound

from . import launch
from .child_schema import Announcement, ChildInfo, ChildMeta, ChildSettings, SubmitEndpointArgs
from .schema import TERMINAL, JobIdArgs, JobSpec, SubmitArgs

if TYPE_CHECKING:
    from .plugin import PsijPlugin
    from .store import JobRecord

ENV_FILE, META, NODE, PORT, FAILURE = "child.env", "child.json", "node", "tunnel.port", "failure"
TUNNEL_LOG, TUNNEL_STATE = "tunnel.log", "tunnel.json"
CHILD_PLUGIN = "orbit_plugins.psij.child:ChildPlugin"
ALLOCATED = re.compile(r"Allocated port (\d+) for remote forward")
FAILED_TUNNEL = 3
"""Exit code of the in-job launcher when its tunnel did not come up or closed."""
CANCEL_WAIT = 30.0
"""Seconds the in-job launcher waits, after its tunnel failed, for the parent's cancel."""


# -- ssh ---------------------------------------------------------------------------------------


def ssh_options(cfg: ChildSettings) -> list[str]:
    """Options every tunnel uses: no prompts, exit when forwarding fails, checked host keys."""
    opts = ["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes"]
    opts += ["-o", f"StrictHostKeyChecking={cfg.strict_host_key_checking}"]
    opts += ["-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]
    if cfg.known_hosts:
        opts += ["-o", f"UserKnownHostsFile={Path(cfg.known_hosts).expanduser()}"]
    if cfg.ssh_config:
        opts = ["-F", str(Path(cfg.ssh_config).expanduser()), *opts]
    return opts


def ended(code: int) -> str:
    """How a process ended, from its ``Popen.returncode``: ``exited with 255``,
    ``was killed by SIGKILL``."""
    if code >= 0:
        return f"exited with {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _spawn_ssh(args: list[str], log: Path, *, die_with_us: bool) -> subprocess.Popen[bytes]:
    """Start ssh in its own session (a job-wide SIGTERM must not cut the tunnel before the
    endpoint has said goodbye), stderr to ``log``; ``die_with_us``: killed when we die."""
    with open(log, "ab") as err:
        return subprocess.Popen(
            ["ssh", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_us else None,
        )


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG(SIGTERM) on Linux; a no-op elsewhere."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop an ssh we started and its session (a ``ProxyCommand`` would outlive it)."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def with_address(url: str, host: str, port: int) -> str:
    """``url`` with another host and port (user, password and vhost kept)."""
    parts = urlsplit(url)
    cred = ""
    if parts.username is not None:
        cred = quote(unquote(parts.username), safe="")
        if parts.password is not None:
            cred += ":" + quote(unquote(parts.password), safe="")
        cred += "@"
    return urlunsplit((parts.scheme, f"{cred}{host}:{port}", parts.path, parts.query, ""))


# -- parent side: submit -----------------------------------------------------------------------


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
        parts = urlsplit(url)
        default_port = 5671 if parts.scheme == "amqps" else 5672
        job_dir = Path(plugin.ctx.state_dir) / "jobs" / call.request_id
        job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        meta = ChildMeta(
            name=args.name,
            parent=plugin.ctx.endpoint,
            job_id=call.request_id,
            tunnel=args.tunnel,
            broker_host=parts.hostname or "127.0.0.1",
            broker_port=parts.port or default_port,
            login_host=cfg.login_host or socket.gethostname(),
            ssh_options=ssh_options(cfg),
            tunnel_timeout=cfg.tunnel_timeout,
            python=cfg.python or sys.executable,
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
        spec = JobSpec(
            executable=meta.python,
            arguments=["-m", "orbit_plugins.psij.child", str(job_dir)],
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


def load_meta(job_dir: Path) -> ChildMeta | None:
    try:
        return ChildMeta.model_validate_json((job_dir / META).read_text())
    except (OSError, ValueError):
        return None


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


# -- parent side: watcher ----------------------------------------------------------------------


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
            _stop(self.proc)
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
        proc = _spawn_ssh([*meta.ssh_options, "-N", "-R", forward, node], log, die_with_us=False)
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
            allocated = ALLOCATED.search(_read(job_dir / TUNNEL_LOG))
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


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# -- in the job ------------------------------------------------------------------------------


class TunnelError(Exception):
    """The tunnel did not come up; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def open_forward(meta: ChildMeta, job_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``ssh -N -L PORT:BROKER login_host`` from this node; wait until PORT accepts."""
    port = _free_port()
    spec = f"127.0.0.1:{port}:{meta.broker_host}:{meta.broker_port}"
    log = job_dir / TUNNEL_LOG
    proc = _spawn_ssh([*meta.ssh_options, "-N", "-L", spec, meta.login_host], log, die_with_us=True)
    deadline = time.monotonic() + meta.tunnel_timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise TunnelError(
                f"forward tunnel via {meta.login_host} failed: ssh -L {ended(code)}:"
                f" {tail(log) or 'no output'}"
            )
        if _accepts(port):
            return proc, port
        if time.monotonic() > deadline:
            _stop(proc)
            raise TunnelError(
                f"forward tunnel via {meta.login_host} was not up within"
                f" {meta.tunnel_timeout:.0f} s: {tail(log)}"
            )
        time.sleep(0.2)


def wait_reverse(meta: ChildMeta, job_dir: Path) -> int:
    """Wait for the parent to write the port of its ``ssh -R`` into ``tunnel.port``."""
    deadline = time.monotonic() + meta.tunnel_timeout + 10
    while time.monotonic() < deadline:
        if (job_dir / FAILURE).exists():
            raise TunnelError((job_dir / FAILURE).read_text().strip())
        with contextlib.suppress(OSError, ValueError):
            return int((job_dir / PORT).read_text())
        time.sleep(0.2)
    raise TunnelError(f"the parent opened no reverse tunnel within {meta.tunnel_timeout:.0f} s")


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
        _stop(tunnel)
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
        _stop(tunnel)


def _await_cancel(stopping: list[int]) -> None:
    """After a tunnel failure, wait (up to :data:`CANCEL_WAIT`) for the parent's cancel to
    signal us. Exiting at once would race the parent's watcher: a job that already ended is
    no longer watched, so the failure would be neither reported (``child_status``) nor its
    allocation cancelled (on a cluster the rest of a multi-node allocation)."""
    deadline = time.monotonic() + CANCEL_WAIT
    while not stopping and time.monotonic() < deadline:
        time.sleep(0.2)


# -- in the child endpoint ---------------------------------------------------------------------


def job_allocation() -> dict[str, Any] | None:
    """``queue_info.job_allocation`` of the job this process runs in (None outside one)."""
    from orbit_plugins.queue_info.plugin import QueueInfoPlugin, detect_backend

    info = QueueInfoPlugin()
    info.backend_name = detect_backend()
    found = info.job_allocation().allocation
    return None if found is None else found.model_dump()


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
            allocation = await asyncio.to_thread(job_allocation)
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
