"""Provisioning's view of the topology: what Orbit declares, and how a broker differs.

Declaring goes through the transport (:func:`orbit_amqp.declare`, which names an
inequivalent queue and says how to fix it); :func:`queue_differences` compares arguments
read back from the management API before anything is declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orbit_amqp import connect, declare
from orbit_protocol import topology as spec
from orbit_protocol.errors import AuthenticationFailed, BrokerError
from orbit_protocol.topology import QueueSpec, Topology


def full_topology(
    endpoints: Iterable[str] = (), pools: Iterable[str] = (), **queue_options: int
) -> Topology:
    """Core topology plus each endpoint's and pool's request queue."""
    result = spec.core()
    for name in endpoints:
        result = result + spec.endpoint(name, **queue_options)
    for name in pools:
        result = result + spec.pool(name, **queue_options)
    return result


async def declare_all(
    amqp_url: str,
    endpoints: Iterable[str] = (),
    pools: Iterable[str] = (),
    **queue_options: int,
) -> Topology:
    """Connect to ``amqp_url`` (vhost included; a URL list tries each node), declare core +
    endpoints + pools, disconnect."""
    topology = full_topology(endpoints, pools, **queue_options)
    try:
        connection = await connect(amqp_url, name="orbit-provision")
    except AuthenticationFailed as exc:
        raise AuthenticationFailed(
            f"cannot declare topology: broker refused the login ({exc})"
        ) from None
    except BrokerError as exc:
        raise BrokerError(f"cannot declare topology: {exc}") from None
    try:
        await declare(await connection.channel(), topology)
    finally:
        await connection.close()
    return topology


def queue_differences(wanted: QueueSpec, existing: Mapping[str, Any]) -> list[str]:
    """Human lines describing how ``existing`` arguments differ from ``wanted``; [] if equal.

    The broker stores arguments as declared, so a missing key means "absent"; ``x-queue-type``
    absent is the same as ``classic``.
    """
    want = dict(wanted.args)
    have = dict(existing)
    want.setdefault("x-queue-type", "classic")
    have.setdefault("x-queue-type", "classic")
    lines: list[str] = []
    for key in sorted(set(want) | set(have)):
        if key not in have:
            lines.append(f"{key}: absent, Orbit wants {want[key]!r}")
        elif key not in want:
            lines.append(f"{key}: is {have[key]!r}, Orbit does not set it")
        elif have[key] != want[key]:
            lines.append(f"{key}: is {have[key]!r}, Orbit wants {want[key]!r}")
    return lines


__all__ = ["declare", "declare_all", "full_topology", "queue_differences"]
