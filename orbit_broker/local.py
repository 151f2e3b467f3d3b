"""A private RabbitMQ node run from the Debian ``rabbitmq-server`` package.

The node lives entirely in ``data_dir`` (config, Mnesia, logs, Erlang cookie), has its own
node name, ports and epmd, and never touches a system node (5672/15672/25672/4369)::

    node = LocalNode()            # dev defaults: AMQP 35672, management 35673
    node.start()                  # returns once AMQP and the management API answer
    node.amqp_url("orbit")        # amqp://guest:guest@127.0.0.1:35672/orbit
    node.kill()                   # SIGKILL (fault injection); start() again keeps durable queues
    node.stop()

With ``tls_port`` set the node also listens for AMQPS (TLS 1.2/1.3, ``verify_peer``, a client
certificate required, x509/EXTERNAL login available); its CA and certificates live in
``data_dir/tls`` (:mod:`orbit_broker.tls`, :mod:`orbit_broker.nodefiles`). ``plaintext=False``
turns the plain listener off. The data directory is kept across stop/kill so that a restart
recovers durable queues.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import quote

import httpx
import psutil

from orbit_amqp.probe import amqp_login_ok
from orbit_protocol.errors import BrokerError

from .nodefiles import LOCAL_PASSWORD, LOCAL_USER, NodeFiles
from .ports import free_port, port_in_use

RABBITMQ_HOME: Final = Path("/usr/lib/rabbitmq")
DEFAULT_AMQP_PORT: Final = 35672
DEFAULT_MANAGEMENT_PORT: Final = 35673
DEFAULT_DIST_PORT: Final = 35674
DEFAULT_EPMD_PORT: Final = 14369
DEFAULT_NODE_NAME: Final = "orbit-dev"
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024


def default_data_dir() -> Path:
    """``~/.local/state/orbit/broker`` (``$XDG_STATE_HOME/orbit/broker`` when set)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orbit" / "broker"


@dataclass(frozen=True)
class NodeStatus:
    """What :meth:`LocalNode.status` reports."""

    node: str
    running: bool
    ready: bool
    pid: int | None
    amqp_port: int
    management_port: int
    data_dir: Path
    version: str | None = None

    def __str__(self) -> str:
        state = "ready" if self.ready else ("starting/unresponsive" if self.running else "stopped")
        ver = f" RabbitMQ {self.version}" if self.version else ""
        return (
            f"{self.node}: {state}{ver} pid={self.pid} amqp=127.0.0.1:{self.amqp_port} "
            f"management=127.0.0.1:{self.management_port} data={self.data_dir}"
        )


@dataclass
class LocalNode(NodeFiles):
    """Start, stop, kill and inspect one private RabbitMQ node."""

    data_dir: Path = field(default_factory=default_data_dir)
    name: str = DEFAULT_NODE_NAME
    amqp_port: int = DEFAULT_AMQP_PORT
    management_port: int = DEFAULT_MANAGEMENT_PORT
    dist_port: int = DEFAULT_DIST_PORT
    epmd_port: int = DEFAULT_EPMD_PORT
    host: str = "127.0.0.1"
    heartbeat: int = 10
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    stats_interval_ms: int = 1000
    rabbitmq_home: Path = RABBITMQ_HOME
    extra_config: dict[str, str] = field(default_factory=dict)
    tls_port: int | None = None
    plaintext: bool = True
    advanced_config: str = "[]."
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()

    @property
    def nodename(self) -> str:
        """Erlang node name, ``<name>@localhost``."""
        return self.name if "@" in self.name else f"{self.name}@localhost"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "console.log"

    @property
    def management_url(self) -> str:
        """Base URL of the management HTTP API (no credentials)."""
        return f"http://{self.host}:{self.management_port}"

    @property
    def username(self) -> str:
        return LOCAL_USER

    @property
    def password(self) -> str:
        return LOCAL_PASSWORD

    def amqp_url(self, vhost: str = "/") -> str:
        """``amqp://guest:guest@127.0.0.1:<port>/<vhost>`` (vhost percent-encoded); the
        admin's ``amqps://`` URL when the plaintext listener is off."""
        if not self.plaintext:
            return self.amqps_url(vhost)
        return (
            f"amqp://{LOCAL_USER}:{LOCAL_PASSWORD}@{self.host}:{self.amqp_port}/"
            f"{quote(vhost, safe='')}"
        )

    # -- process state ---------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """OS pid of the node's ``beam.smp`` (for SIGKILL/SIGSTOP), or None when not running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_running(self) -> bool:
        """True while the node's Erlang VM exists (even if frozen or still booting)."""
        return self.pid is not None or (self._proc is not None and self._proc.poll() is None)

    def is_ready(self, timeout: float = 2.0) -> bool:
        """True when AMQP completes a handshake and the management API answers."""
        return self._amqp_ready(timeout) and self._management_ready(timeout)

    def status(self) -> NodeStatus:
        version: str | None = None
        ready = False
        if self.is_running() and self._amqp_ready(2.0):
            try:
                resp = httpx.get(
                    f"{self.management_url}/api/overview",
                    auth=(LOCAL_USER, LOCAL_PASSWORD),
                    timeout=2.0,
                )
                if resp.status_code == 200:
                    ready = True
                    version = str(resp.json().get("rabbitmq_version") or "") or None
            except httpx.HTTPError:
                pass
        return NodeStatus(
            node=self.nodename,
            running=self.is_running(),
            ready=ready,
            pid=self.pid,
            amqp_port=self.amqp_port,
            management_port=self.management_port,
            data_dir=self.data_dir,
            version=version,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, wait: bool = True, timeout: float = 60.0) -> None:
        """Start the node as a daemon in its own process group; idempotent when it runs."""
        server = self.rabbitmq_home / "bin" / "rabbitmq-server"
        if not server.exists():
            raise BrokerError(
                f"{server} not found: install the Debian package 'rabbitmq-server' "
                "(apt-get install -y rabbitmq-server) or set ORBIT_TEST_AMQP_URL"
            )
        if self.is_running():
            if wait:
                self.wait_ready(timeout)
            return
        for port, what in (
            (self.amqp_port, "AMQP"),
            (self.management_port, "management"),
            (self.dist_port, "distribution"),
            *([(self.tls_port, "AMQPS")] if self.tls_port is not None else []),
        ):
            if port_in_use(port, self.host):
                raise BrokerError(
                    f"cannot start {self.nodename}: {what} port {self.host}:{port} is already "
                    "in use by another process; choose other ports"
                )
        self._write_config()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        log = self.console_log.open("ab")
        try:
            self._proc = subprocess.Popen(
                [str(server)],
                env=self.env(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until :meth:`is_ready`; raise ``BrokerError`` (with the log tail) otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(
                    f"RabbitMQ node {self.nodename} exited with code {self._proc.returncode} "
                    f"while starting; log {self.console_log}:\n{self._log_tail()}"
                )
            if self.pid is not None and self.is_ready(timeout=2.0):
                return
            time.sleep(0.25)
        raise BrokerError(
            f"RabbitMQ node {self.nodename} not ready after {timeout:.0f} s; "
            f"log {self.console_log}:\n{self._log_tail()}"
        )

    def stop(self, timeout: float = 30.0, *, graceful: bool = True) -> None:
        """Stop the node (``rabbitmqctl stop``), then our epmd; SIGKILL as the last resort.

        ``graceful=False`` SIGKILLs at once: for a throwaway node whose data is deleted next
        (``rabbitmqctl`` costs a VM of its own)."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a frozen node cannot stop itself
            if graceful:
                with contextlib.suppress(BrokerError, OSError):
                    self.rabbitmqctl("stop", str(self.pid_file), timeout=timeout)
            if not graceful or not _wait_gone(pid, 5.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        self._reap()
        self._kill_epmd()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL) to the node's VM: fault injection for tests."""
        pid = self.pid
        if pid is None:
            raise BrokerError(f"RabbitMQ node {self.nodename} is not running")
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            _wait_gone(pid, 10.0)
            self._reap()

    def restart(self, timeout: float = 60.0) -> None:
        """SIGKILL the node and start it again on the same data (durable queues survive)."""
        if self.pid is not None:
            self.kill()
        self.start(wait=True, timeout=timeout)

    def rotate_server_certificate(self) -> Path:
        """A new server key and certificate from the node's CA, for new TLS connections from
        now on; connections already open keep their session (none is dropped). Returns the
        certificate's path."""
        if self.tls_port is None:
            raise BrokerError(f"RabbitMQ node {self.nodename} has no TLS listener")
        pair = self.certificate_authority().issue_server("server", [self.host, "localhost"])
        self.rabbitmqctl("eval", "ssl:clear_pem_cache().")  # else read again within 2 min
        return pair.cert

    def rabbitmqctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n <node> ARGS`` against this node; its output, or BrokerError."""
        ctl = self.rabbitmq_home / "bin" / "rabbitmqctl"
        try:
            done = subprocess.run(
                [str(ctl), "-n", self.nodename, *args],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BrokerError(f"rabbitmqctl {args[0] if args else ''}: timed out") from None
        out = (done.stdout + done.stderr).decode(errors="replace").strip()
        if done.returncode != 0:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} failed: {out}")
        return out

    # -- helpers ---------------------------------------------------------------------------

    def _amqp_ready(self, timeout: float) -> bool:
        if self.plaintext or self.tls_port is None:
            return amqp_login_ok(self.host, self.amqp_port, LOCAL_USER, LOCAL_PASSWORD, timeout)
        return amqp_login_ok(
            self.host,
            self.tls_port,
            LOCAL_USER,
            LOCAL_PASSWORD,
            timeout,
            ssl_context=self.client_ssl_context(),
        )

    def _management_ready(self, timeout: float) -> bool:
        try:
            resp = httpx.get(
                f"{self.management_url}/api/overview",
                auth=(LOCAL_USER, LOCAL_PASSWORD),
                timeout=timeout,
            )
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10.0)
            if self._proc.poll() is not None:
                self._proc = None

    def _kill_epmd(self) -> None:
        """Kill the epmd that serves our port (identified by ERL_EPMD_PORT in its environment)."""
        for proc in psutil.process_iter(["name", "pid"]):
            if proc.info["name"] != "epmd":
                continue
            try:
                env = proc.environ()
                cmdline = proc.cmdline()
            except (psutil.Error, OSError):
                continue
            ours = env.get("ERL_EPMD_PORT") == str(self.epmd_port) or (
                "-port" in cmdline and str(self.epmd_port) in cmdline
            )
            if ours:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
                    proc.wait(timeout=5)

    def _log_tail(self, lines: int = 30) -> str:
        chunks: list[str] = []
        for path in (self.console_log, self.log_dir / f"{self.nodename}.log"):
            with contextlib.suppress(OSError):
                chunks.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(chunks[-lines:])


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


__all__ = [
    "DEFAULT_AMQP_PORT",
    "DEFAULT_DIST_PORT",
    "DEFAULT_EPMD_PORT",
    "DEFAULT_MANAGEMENT_PORT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "LocalNode",
    "NodeStatus",
    "default_data_dir",
    "free_port",
    "port_in_use",
]
