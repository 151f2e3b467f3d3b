"""A private RabbitMQ node run from the Debian ``rabbitmq-server`` package (reliability §6.0).

The node lives entirely in ``data_dir`` (config, Mnesia, logs, Erlang cookie), has its own
node name, ports and epmd, and never touches a system node (5672/15672/25672/4369)::

    node = LocalNode()            # dev defaults: AMQP 35672, management 35673
    node.start()                  # returns once AMQP and the management API answer
    node.amqp_url("orbit")        # amqp://guest:guest@127.0.0.1:35672/orbit
    node.kill()                   # SIGKILL (fault injection); start() again keeps durable queues
    node.stop()

With ``tls_port`` set the node also listens for AMQPS (TLS 1.2/1.3, ``verify_peer``, a client
certificate required, x509/EXTERNAL login available); its CA and certificates live in
``data_dir/tls`` (:mod:`orbit_broker.tls`). ``plaintext=False`` turns the plain listener off.

The data directory is kept across stop/kill so that a restart recovers durable queues.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import httpx
import pamqp.exceptions
import psutil
from pamqp import commands, frame, header

from orbit_protocol.errors import BrokerError

if TYPE_CHECKING:  # cryptography is optional (the tls extra)
    from .tls import CertificateAuthority

RABBITMQ_HOME: Final = Path("/usr/lib/rabbitmq")
DEFAULT_AMQP_PORT: Final = 35672
DEFAULT_MANAGEMENT_PORT: Final = 35673
DEFAULT_DIST_PORT: Final = 35674
DEFAULT_EPMD_PORT: Final = 14369
DEFAULT_NODE_NAME: Final = "orbit-dev"
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
_LOOPBACK_DIST: Final = "-kernel inet_dist_use_interface {127,0,0,1}"
LOCAL_USER: Final = "guest"
LOCAL_PASSWORD: Final = "guest"  # loopback-only dev user


def default_data_dir() -> Path:
    """``~/.local/state/orbit/broker`` (``$XDG_STATE_HOME/orbit/broker`` when set)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orbit" / "broker"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


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
class LocalNode:
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

    # -- names and paths -------------------------------------------------------------------

    @property
    def nodename(self) -> str:
        """Erlang node name, ``<name>@localhost``."""
        return self.name if "@" in self.name else f"{self.name}@localhost"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "node.pid"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

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

    # -- TLS -------------------------------------------------------------------------------

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    def certificate_authority(self) -> CertificateAuthority:
        """The node's :class:`~orbit_broker.tls.CertificateAuthority` (created when missing)."""
        try:
            from .tls import CertificateAuthority
        except ImportError:
            raise BrokerError(
                "TLS needs the 'cryptography' package: pip install 'orbit[tls]'"
            ) from None
        return CertificateAuthority.create(self.tls_dir, f"Orbit CA {self.nodename}")

    def amqps_url(
        self,
        vhost: str = "/",
        user: str = LOCAL_USER,
        password: str | None = LOCAL_PASSWORD,
        *,
        external: bool = False,
    ) -> str:
        """``amqps://user:password@127.0.0.1:<tls_port>/<vhost>?cafile=…&certfile=…&keyfile=…``
        with ``user``'s client certificate (issued on first use); ``external`` logs in by
        certificate (``auth=external``, no password)."""
        if self.tls_port is None:
            raise BrokerError(f"RabbitMQ node {self.nodename} has no TLS listener")
        ca = self.certificate_authority()
        pair = ca.client(user)
        secret = "" if external or password is None else ":" + quote(password, safe="")
        return (
            f"amqps://{quote(user, safe='')}{secret}@{self.host}:{self.tls_port}/"
            f"{quote(vhost, safe='')}?{pair.query(ca.cert, external=external)}"
        )

    def client_ssl_context(self, user: str = LOCAL_USER) -> ssl.SSLContext:
        """An SSL context that trusts the node's CA and presents ``user``'s certificate."""
        ca = self.certificate_authority()
        pair = ca.client(user)
        context = ssl.create_default_context(cafile=str(ca.cert))
        context.load_cert_chain(str(pair.cert), str(pair.key))
        return context

    # -- configuration ---------------------------------------------------------------------

    def _write_config(self) -> None:
        for sub in ("home", "mnesia", "log"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        lines: dict[str, str] = {}
        if self.plaintext or self.tls_port is None:
            lines["listeners.tcp.default"] = f"{self.host}:{self.amqp_port}"
        lines |= {
            "management.tcp.port": str(self.management_port),
            "management.tcp.ip": self.host,
            "loopback_users": "none",
            "heartbeat": str(self.heartbeat),
            "max_message_size": str(self.max_message_size),
            "collect_statistics_interval": str(self.stats_interval_ms),
            "log.console": "false",
            "log.file.level": "info",
        }
        plugins = ["rabbitmq_management"]
        if self.tls_port is not None:
            from .tls import node_config

            ca = self.certificate_authority()
            server = ca.issue_server("server", [self.host, "localhost"])
            ca.client(LOCAL_USER)
            lines |= node_config(
                ca, server, host=self.host, port=self.tls_port, plaintext=self.plaintext
            )
            plugins.append("rabbitmq_auth_mechanism_ssl")
        lines |= self.extra_config
        (self.data_dir / "rabbitmq.conf").write_text(
            "".join(f"{key} = {value}\n" for key, value in lines.items())
        )
        (self.data_dir / "advanced.config").write_text(self.advanced_config + "\n")
        (self.data_dir / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")
        (self.data_dir / "rabbitmq-env.conf").write_text("# private orbit node: no overrides\n")

    def env(self) -> dict[str, str]:
        """Environment for the server and for ``rabbitmqctl`` aimed at this node."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RABBITMQ_", "ERL_")) and k not in {"NODENAME", "HOME"}
        }
        d = self.data_dir
        # RABBITMQ_NODE_PORT would add a plain listener behind the config file's back
        plain = (
            {"RABBITMQ_NODE_IP_ADDRESS": self.host, "RABBITMQ_NODE_PORT": str(self.amqp_port)}
            if self.plaintext or self.tls_port is None
            else {}
        )
        return (
            base
            | plain
            | {
                "HOME": str(d / "home"),
                "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
                "RABBITMQ_NODENAME": self.nodename,
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "ERL_EPMD_PORT": str(self.epmd_port),
                "ERL_EPMD_ADDRESS": self.host,
                "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.log_dir),
                "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(self.pid_file),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": _LOOPBACK_DIST,
                # rabbitmqctl's own Erlang node: by default it binds 0.0.0.0:35672-35682 (our dev
                # AMQP port); keep it on loopback, right after our dist port.
                "RABBITMQ_CTL_ERL_ARGS": _LOOPBACK_DIST,
                "RABBITMQ_CTL_DIST_PORT_MIN": str(min(self.dist_port + 1, 65525)),
                "RABBITMQ_CTL_DIST_PORT_MAX": str(min(self.dist_port + 10, 65535)),
                "ERL_CRASH_DUMP": str(self.log_dir / "erl_crash.dump"),
            }
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

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (``rabbitmqctl stop``), then our epmd; SIGKILL as the last resort."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a frozen node cannot stop itself
            ctl = self.rabbitmq_home / "bin" / "rabbitmqctl"
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(
                    [str(ctl), "-n", self.nodename, "-q", "stop", str(self.pid_file)],
                    env=self.env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=timeout,
                    check=False,
                )
            if not _wait_gone(pid, 5.0):
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


def amqp_login_ok(
    host: str,
    port: int,
    user: str,
    password: str,
    timeout: float = 2.0,
    vhost: str = "/",
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> bool:
    """True when a full AMQP 0-9-1 handshake (login + ``connection.open``) succeeds."""
    error = amqp_login_error(host, port, user, password, timeout, vhost, ssl_context=ssl_context)
    return error is None


def amqp_login_error(
    host: str,
    port: int,
    user: str,
    password: str,
    timeout: float = 2.0,
    vhost: str = "/",
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> str | None:
    """None when login + ``connection.open`` succeed, else why not (the broker's own
    ``connection.close`` text when it sent one, e.g. a user's connection limit).

    A raw probe (pamqp frames over a socket, TLS with ``ssl_context``): quiet, no client
    library logging.
    """
    try:
        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
            sock = (
                stack.enter_context(ssl_context.wrap_socket(raw, server_hostname=host))
                if ssl_context is not None
                else raw
            )
            sock.settimeout(timeout)
            sock.sendall(frame.marshal(header.ProtocolHeader(), 0))
            buf = b""

            def expect(kind: type[Any]) -> Any:
                nonlocal buf
                while True:
                    try:
                        used, _channel, value = frame.unmarshal(buf)
                    except pamqp.exceptions.UnmarshalingException:
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise ConnectionError("closed by broker") from None
                        buf += chunk
                        continue
                    buf = buf[used:]
                    if isinstance(value, commands.Connection.Close):
                        raise ConnectionError(f"{value.reply_code} {value.reply_text}")
                    if not isinstance(value, kind):
                        raise ConnectionError(f"unexpected {value!r}")
                    return value

            expect(commands.Connection.Start)
            sock.sendall(
                frame.marshal(
                    commands.Connection.StartOk(
                        client_properties={"product": "orbit-probe"},
                        mechanism="PLAIN",
                        response=f"\0{user}\0{password}",
                    ),
                    0,
                )
            )
            tune = expect(commands.Connection.Tune)
            sock.sendall(
                frame.marshal(commands.Connection.TuneOk(tune.channel_max, tune.frame_max, 0), 0)
            )
            sock.sendall(frame.marshal(commands.Connection.Open(virtual_host=vhost), 0))
            expect(commands.Connection.OpenOk)
            sock.sendall(frame.marshal(commands.Connection.Close(200, "probe done", 0, 0), 0))
            expect(commands.Connection.CloseOk)
    except (OSError, ValueError, pamqp.exceptions.PAMQPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


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
    "amqp_login_error",
    "amqp_login_ok",
    "default_data_dir",
    "free_port",
    "port_in_use",
]
