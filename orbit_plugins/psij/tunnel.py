"""The ssh tunnels that carry a child endpoint's AMQP connection.

``tunnel="forward"``: the job opens ``ssh -L`` from its compute node to the login host
(:func:`open_forward`). ``tunnel="reverse"``: the parent opens ``ssh -R`` to the node
(:class:`~.children.Children`) and writes the allocated port into the job dir, which the job
waits for (:func:`wait_reverse`). ssh runs in its own session: a job-wide SIGTERM must not cut
the tunnel before the endpoint has said goodbye.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .child_schema import ChildMeta, ChildSettings
from .jobdir import FAILURE, PORT, TUNNEL_LOG, tail

ALLOCATED = re.compile(r"Allocated port (\d+) for remote forward")
"""What ``ssh -R 0:…`` prints on stderr once the remote port is open."""


class TunnelError(Exception):
    """The tunnel did not come up; the message says why."""


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


def spawn_ssh(args: list[str], log: Path, *, die_with_us: bool) -> subprocess.Popen[bytes]:
    """Start ssh in its own session, stderr to ``log``; ``die_with_us``: killed when we die."""
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


def stop_ssh(proc: subprocess.Popen[bytes] | None) -> None:
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


def broker_address(url: str) -> tuple[str, int]:
    """The host and port an AMQP(S) ``url`` connects to (5671/5672 when it names none)."""
    parts = urlsplit(url)
    default_port = 5671 if parts.scheme == "amqps" else 5672
    return parts.hostname or "127.0.0.1", parts.port or default_port


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


# -- in the job ------------------------------------------------------------------------------


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
    return forward_port(
        meta.broker_host,
        meta.broker_port,
        meta.login_host,
        meta.ssh_options,
        job_dir / TUNNEL_LOG,
        meta.tunnel_timeout,
    )


def forward_port(
    broker_host: str,
    broker_port: int,
    via: str,
    options: list[str],
    log: Path,
    timeout: float,
    port: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """``ssh -N -L PORT:broker_host:broker_port via`` (a free PORT unless given), once PORT
    accepts connections; :class:`TunnelError` naming ssh's last words otherwise."""
    port = port or _free_port()
    spec = f"127.0.0.1:{port}:{broker_host}:{broker_port}"
    proc = spawn_ssh([*options, "-N", "-L", spec, via], log, die_with_us=True)
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise TunnelError(
                f"forward tunnel via {via} failed: ssh -L {ended(code)}: {tail(log) or 'no output'}"
            )
        if _accepts(port):
            return proc, port
        if time.monotonic() > deadline:
            stop_ssh(proc)
            raise TunnelError(
                f"forward tunnel via {via} was not up within {timeout:.0f} s: {tail(log)}"
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
