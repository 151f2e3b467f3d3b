"""Throwaway RabbitMQ nodes for tests that need one of their own (a kill, a config, TLS).

``start_node(base, "orbit-tls", tls=True, plaintext=False)`` builds a
:class:`~orbit_broker.local.LocalNode` on free ports under ``base`` and starts it. Ports are
checked free, yet another process (another test worker's connection, say) may take one
before RabbitMQ binds it: then the node is built again on new ports, up to ``attempts``
times. Stop it with ``node.stop()``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from orbit_broker.local import LocalNode, free_port
from orbit_protocol.errors import BrokerError


def start_node(
    base: Path,
    prefix: str = "orbit-test",
    *,
    tls: bool = False,
    attempts: int = 3,
    timeout: float = 120,
    **options: Any,
) -> LocalNode:
    """A started node named ``<prefix>-<random>``; ``options`` are further ``LocalNode``
    arguments (``extra_config``, ``advanced_config``, ``plaintext``, ...)."""
    for attempt in range(1, attempts + 1):
        ports = {
            "amqp_port": free_port(),
            "management_port": free_port(),
            "dist_port": free_port(),
            "epmd_port": free_port(),
        }
        if tls:
            ports["tls_port"] = free_port()
        node = LocalNode(
            data_dir=base / f"node{attempt}",
            name=f"{prefix}-{secrets.token_hex(3)}",
            **ports,
            **options,
        )
        try:
            node.start(wait=True, timeout=timeout)
            return node
        except BrokerError as exc:
            node.stop(graceful=False)
            text = str(exc).lower()
            if attempt == attempts or not ("already_used" in text or "eaddrinuse" in text):
                raise
        except BaseException:
            node.stop(graceful=False)
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


__all__ = ["start_node"]
