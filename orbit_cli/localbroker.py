"""The private local node of ``orbit broker up|down|status`` and its admin connection.

Node settings: flags > ``ORBIT_BROKER_*`` environment > the profile's ``broker`` section
> defaults. Admin access for provision/grant/revoke: ``--management-url``/``--admin-url``
flags (or ``ORBIT_MANAGEMENT_URL``/``ORBIT_ADMIN_URL``) > the local node of the profile.
"""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import profile

if TYPE_CHECKING:
    from orbit_broker.local import LocalNode
    from orbit_broker.management import ManagementClient
    from orbit_broker.provision import Provisioner

DEFAULT_AMQP_PORT = 35672


def node(data_dir: Path | None = None, port: int | None = None) -> LocalNode:
    """The :class:`LocalNode` these flags, the environment and the profile describe."""
    from orbit_broker.settings import BrokerSettings

    saved: dict[str, Any] = profile.load().get("broker", {})
    values: dict[str, Any] = {}
    if port is not None:
        values |= ports_for(port)
    else:
        for key in ("amqp_port", "management_port", "dist_port", "epmd_port", "node_name"):
            if f"ORBIT_BROKER_{key.upper()}" not in os.environ and key in saved:
                values[key] = saved[key]
    if data_dir is not None:
        values["data_dir"] = data_dir
    elif "ORBIT_BROKER_DATA_DIR" not in os.environ and "data_dir" in saved:
        values["data_dir"] = Path(saved["data_dir"])
    return BrokerSettings(**values).node()


def ports_for(port: int) -> dict[str, Any]:
    """AMQP on ``port``; management, distribution and epmd next to it (a second node fits)."""
    if port == DEFAULT_AMQP_PORT:
        return {"amqp_port": port}
    return {
        "amqp_port": port,
        "management_port": port + 1,
        "dist_port": port + 2,
        "epmd_port": port + 3,
        "node_name": f"orbit-{port}",
    }


def broker_section(n: LocalNode, vhost: str) -> dict[str, Any]:
    """What the profile remembers about the local node (no secrets: guest is loopback-only)."""
    return {
        "data_dir": str(n.data_dir),
        "node_name": n.name,
        "amqp_port": n.amqp_port,
        "management_port": n.management_port,
        "dist_port": n.dist_port,
        "epmd_port": n.epmd_port,
        "vhost": vhost,
        "management_url": n.management_url,
    }


def default_client_name() -> str:
    """The login name made into a valid Orbit user name (``me`` if nothing is left)."""
    try:
        raw = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        raw = ""
    name = re.sub(r"[^a-z0-9_-]", "-", raw.lower()).strip("-_")[:63]
    return name or "me"


def management(url: str | None = None) -> ManagementClient:
    """A management API client: ``url`` (with credentials) or the profile's local node."""
    from orbit_broker.management import ManagementClient
    from orbit_broker.nodefiles import LOCAL_PASSWORD, LOCAL_USER

    base = url or profile.load().get("broker", {}).get("management_url") or node().management_url
    return ManagementClient(base, LOCAL_USER, LOCAL_PASSWORD)


def provisioner(
    management_url: str | None = None, admin_url: str | None = None, vhost: str | None = None
) -> Provisioner:
    """Provisioner for the given admin URLs, defaulting to the local node's guest user."""
    from orbit_broker.provision import Provisioner
    from orbit_protocol import naming

    saved = profile.load().get("broker", {})
    vhost = vhost or saved.get("vhost") or naming.DEFAULT_VHOST
    return Provisioner(management(management_url), admin_url or node().amqp_url("/"), vhost)


__all__ = [
    "broker_section",
    "default_client_name",
    "management",
    "node",
    "ports_for",
    "provisioner",
]
