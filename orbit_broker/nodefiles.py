"""What a private node is made of on disk: its config files, environment and TLS material.

:class:`NodeFiles` is the part of :class:`~orbit_broker.local.LocalNode` that writes
``rabbitmq.conf``, ``advanced.config`` and ``enabled_plugins`` into the data directory,
builds the environment that points the server and ``rabbitmqctl`` at them, and hands out
the node's CA, client certificates and ``amqps://`` URLs.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from orbit_protocol.errors import BrokerError

if TYPE_CHECKING:  # cryptography is optional (the tls extra)
    from .tls import CertificateAuthority

LOCAL_USER: Final = "guest"
LOCAL_PASSWORD: Final = "guest"  # loopback-only dev user
_LOOPBACK_DIST: Final = "-kernel inet_dist_use_interface {127,0,0,1}"
_NO_BUSY_WAIT: Final = "+sbwt none +sbwtdcpu none +sbwtdio none"
"""Schedulers sleep instead of spinning when idle (RabbitMQ's advice for shared hosts): a few
private nodes beside a test suite leave it the CPU."""


class NodeFiles:
    """Config, environment and TLS of a node (mixed into ``LocalNode``, which has the fields)."""

    data_dir: Path
    host: str
    amqp_port: int
    management_port: int
    dist_port: int
    epmd_port: int
    heartbeat: int
    max_message_size: int
    stats_interval_ms: int
    extra_config: dict[str, str]
    tls_port: int | None
    plaintext: bool
    advanced_config: str

    @property
    def nodename(self) -> str:
        raise NotImplementedError

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "node.pid"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

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
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"{_LOOPBACK_DIST} {_NO_BUSY_WAIT}",
                # rabbitmqctl's own Erlang node: by default it binds 0.0.0.0:35672-35682 (our dev
                # AMQP port); keep it on loopback, right after our dist port.
                "RABBITMQ_CTL_ERL_ARGS": _LOOPBACK_DIST,
                "RABBITMQ_CTL_DIST_PORT_MIN": str(min(self.dist_port + 1, 65525)),
                "RABBITMQ_CTL_DIST_PORT_MAX": str(min(self.dist_port + 10, 65535)),
                "ERL_CRASH_DUMP": str(self.log_dir / "erl_crash.dump"),
            }
        )


__all__ = ["LOCAL_PASSWORD", "LOCAL_USER", "NodeFiles"]
