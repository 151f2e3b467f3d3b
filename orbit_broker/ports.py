"""Free and busy TCP ports on this host, for private nodes and tests."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path


def _ephemeral_low() -> int:
    """The first port the kernel hands out as a connection's source port (Linux: 32768)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (for tests and private nodes).

    Picked at random below the kernel's ephemeral range: a port the kernel hands out can be
    taken by any outgoing connection's source port between this check and the listener's
    bind (RabbitMQ then fails with ``dist_port_already_used``)."""
    low, high = 20000, _ephemeral_low() - 16
    for _ in range(100 if high > low else 0):
        port = random.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


__all__ = ["free_port", "port_in_use"]
