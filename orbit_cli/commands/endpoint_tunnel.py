"""``orbit endpoint start --tunnel forward --tunnel-via HOST``: the endpoint's AMQP connection
through ``ssh -L`` (a compute node whose only way out is ssh to the login node).

:class:`ForwardTunnel` opens the tunnel on a free local port, rewrites the endpoint's URL to
it, and keeps it up while the endpoint runs: when ssh exits it is started again on the same
port (back-off 1 s to 30 s), so the endpoint's own reconnect finds the broker again. The port
is written to ``STATE_DIR/NAME/tunnel.port`` for ``--detach``'s readiness check.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

from .. import render

PORT_FILE = "tunnel.port"


@dataclass
class ForwardTunnel:
    """``ssh -N -L 127.0.0.1:PORT:BROKER via`` for one endpoint process."""

    url: str
    via: str
    work_dir: Path
    ssh_config: Path | None = None
    timeout: float = 60.0
    port: int | None = None
    _proc: Popen[bytes] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    @property
    def log(self) -> Path:
        return self.work_dir / "tunnel.log"

    def _options(self) -> list[str]:
        from orbit_plugins.psij.child_schema import ChildSettings
        from orbit_plugins.psij.tunnel import ssh_options

        config = str(self.ssh_config) if self.ssh_config else None
        return ssh_options(ChildSettings(ssh_config=config))

    def _open(self) -> None:
        from orbit_plugins.psij.tunnel import broker_address, forward_port

        self._proc, self.port = forward_port(
            *broker_address(self.url),
            self.via,
            self._options(),
            self.log,
            self.timeout,
            self.port,
        )

    def open(self) -> str:
        """Open the tunnel (raises ``TunnelError``); the endpoint URL through it."""
        from orbit_plugins.psij.tunnel import with_address

        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._open()
        assert self.port is not None
        (self.work_dir / PORT_FILE).write_text(f"{self.port}\n")
        self._watcher = threading.Thread(target=self._watch, name="tunnel-watch", daemon=True)
        self._watcher.start()
        return with_address(self.url, "127.0.0.1", self.port)

    def _watch(self) -> None:
        from orbit_plugins.psij.jobdir import tail
        from orbit_plugins.psij.tunnel import TunnelError, ended

        pause = 1.0
        while not self._stop.wait(0.5):
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            render.err_console.print(
                f"[yellow]tunnel via {self.via} {ended(proc.returncode)}[/]"
                f" ({tail(self.log) or 'no output'}); opening it again"
            )
            while not self._stop.is_set():
                try:
                    self._open()
                    pause = 1.0
                    break
                except TunnelError as exc:
                    render.err_console.print(f"[yellow]{exc}[/]; next try in {pause:.0f} s")
                    self._stop.wait(pause)
                    pause = min(30.0, pause * 2)

    def close(self) -> None:
        from orbit_plugins.psij.tunnel import stop_ssh

        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(10)
        stop_ssh(self._proc)
        (self.work_dir / PORT_FILE).unlink(missing_ok=True)


__all__ = ["PORT_FILE", "ForwardTunnel"]
