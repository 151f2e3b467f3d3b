"""A real OpenSSH ``sshd`` on 127.0.0.1 for tunnel tests (Debian ``openssh-server``).

It runs as the current user with its own host key, config, authorized_keys (a generated
client key) and pid file in a temp dir, so it touches nothing of the system's ssh setup.
``ssh_config`` maps every host name to it (``Host *``), which is how a "login node" and a
"compute node" of the fake Slurm both become this one sshd; ``known_hosts`` pins its host
key under ``HostKeyAlias orbit-test-sshd``, so ``StrictHostKeyChecking=yes`` is enforced.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
ALIAS = "orbit-test-sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "orbit-test", "-f", str(path)],
        check=True,
    )


class Sshd:
    """``Sshd(dir).start()``; ``ssh_config`` / ``known_hosts`` for clients; ``stop()``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.ssh_config = base / "ssh_config"
        self.known_hosts = base / "known_hosts"
        self.client_key = base / "client_key"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return os.path.exists(SSHD) and shutil.which("ssh") is not None

    def start(self, timeout: float = 10) -> Sshd:
        b = self.base
        b.mkdir(parents=True, exist_ok=True)
        _keygen(b / "host_key")
        _keygen(self.client_key)
        shutil.copy(b / "client_key.pub", b / "authorized_keys")
        if os.geteuid() == 0:  # root's sshd insists on its privilege separation directory
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        (b / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {b / 'host_key'}\n"
            f"PidFile {b / 'sshd.pid'}\nAuthorizedKeysFile {b / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "AllowTcpForwarding yes\nGatewayPorts no\nLogLevel VERBOSE\n"
        )
        host_key = (b / "host_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"{ALIAS} {' '.join(host_key)}\n")
        self.ssh_config.write_text(
            f"Host *\n  HostName 127.0.0.1\n  Port {self.port}\n  User {getpass.getuser()}\n"
            f"  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
            f"  HostKeyAlias {ALIAS}\n  UserKnownHostsFile {self.known_hosts}\n"
            "  ConnectTimeout 5\n"
        )
        log = open(b / "sshd.log", "ab")  # noqa: SIM115 (kept open for the daemon's lifetime)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(b / "sshd_config")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {self.log()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"sshd not listening on {self.port}: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        path = self.base / "sshd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
