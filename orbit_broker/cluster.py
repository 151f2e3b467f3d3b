"""A private RabbitMQ cluster on one machine: N :class:`LocalNode` s joined into one cluster.

For tests, demos and the ``docs/cluster.md`` recipe::

    cluster = LocalCluster.create(tmp_dir)        # 3 nodes orbit-c1..c3@localhost, free ports
    cluster.start()                               # boot, join c2/c3 to c1, wait: 3 running members
    cluster.url("orbit")                          # "amqp://…:p1/orbit,amqp://…:p2/orbit,…"
    leader = cluster.queue_leader("orbit", "orbit.ep.hpc1")   # "orbit-c2@localhost"
    cluster.node(leader).kill()                   # kill -9 that node; .start() brings it back
    cluster.stop()

The nodes share one Erlang cookie and one private epmd (their own port, never the system's
4369): nodes find each other through it, so a single node's stop or kill leaves it running
and :meth:`LocalCluster.stop` removes it last. Each node has its own AMQP, management and
distribution ports and its own data directory under the cluster's.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from orbit_protocol.errors import BrokerError

from .local import LocalNode
from .nodefiles import LOCAL_PASSWORD, LOCAL_USER
from .ports import free_port

log = logging.getLogger(__name__)

CTL_PORTS = 11
"""A node's distribution port plus the 10 that its ``rabbitmqctl`` uses (see LocalNode.env)."""


@dataclass
class ClusterNode(LocalNode):
    """A :class:`LocalNode` with the cluster's cookie, that leaves the shared epmd alone."""

    cookie: str = ""

    def _write_config(self) -> None:
        super()._write_config()
        path = self.data_dir / "home" / ".erlang.cookie"
        if not path.exists():
            path.write_text(self.cookie)
            path.chmod(0o400)

    def _kill_epmd(self) -> None:
        """The epmd is shared by the cluster's nodes: :meth:`LocalCluster.stop` removes it."""


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive TCP ports that are all free right now."""
    for _ in range(200):
        first = free_port(host)
        if first + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind((host, port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return first
    raise BrokerError(f"no block of {count} free ports on {host}")


@dataclass
class LocalCluster:
    """Start, join, inspect and break a cluster of private nodes (see module docstring)."""

    nodes: list[ClusterNode]
    epmd_port: int
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(auth=(LOCAL_USER, LOCAL_PASSWORD), timeout=5.0)

    @classmethod
    def create(
        cls,
        data_dir: Path,
        size: int = 3,
        *,
        prefix: str = "orbit-c",
        host: str = "127.0.0.1",
        **node_options: Any,
    ) -> LocalCluster:
        """``size`` nodes ``<prefix>1..N@localhost`` on free ports, data in ``data_dir/<name>``."""
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        data_dir = Path(data_dir).expanduser().resolve()
        epmd_port = free_port(host)
        cookie = secrets.token_hex(20).upper()
        nodes = []
        for i in range(1, size + 1):
            name = f"{prefix}{i}"
            nodes.append(
                ClusterNode(
                    data_dir=data_dir / name,
                    name=name,
                    amqp_port=free_port(host),
                    management_port=free_port(host),
                    dist_port=free_port_block(CTL_PORTS, host),
                    epmd_port=epmd_port,
                    host=host,
                    cookie=cookie,
                    **node_options,
                )
            )
        return cls(nodes, epmd_port)

    # -- names and URLs -----------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [n.nodename for n in self.nodes]

    def node(self, nodename: str) -> ClusterNode:
        for n in self.nodes:
            if n.nodename == nodename:
                return n
        raise KeyError(f"{nodename} is not a node of this cluster ({', '.join(self.names)})")

    def urls(self, vhost: str = "/") -> list[str]:
        """One admin AMQP URL per node, in node order."""
        return [n.amqp_url(vhost) for n in self.nodes]

    def url(self, vhost: str = "/", *, first: str | None = None) -> str:
        """All nodes' URLs comma-separated (the form Orbit's ``url`` settings accept);
        ``first`` names the node to put at the head of the list."""
        order = sorted(self.nodes, key=lambda n: n.nodename != first) if first else self.nodes
        return ",".join(n.amqp_url(vhost) for n in order)

    @property
    def management_url(self) -> str:
        """The management API of the first node that answers (any node serves the cluster)."""
        return self._live_node().management_url

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        """Boot every node, join the others to the first, wait until all are running members."""
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for n in self.nodes:
                n.start(wait=False)
            list(pool.map(lambda n: n.wait_ready(_left(deadline)), self.nodes))
            seed = self.nodes[0]
        # one join at a time: two nodes joining the seed at once can abort each other's
        # schema copy in mnesia ({aborted, ... sync_dump_log, schema_prepare}, seen in CI)
        for node in self.nodes[1:]:
            if node.nodename not in self._members(seed):
                self._join(node, seed, deadline)
        self.wait_members(len(self.nodes), _left(deadline))

    def _join(self, node: ClusterNode, seed: ClusterNode, deadline: float, tries: int = 3) -> None:
        """stop_app, reset, join_cluster, start_app; the whole sequence again if a step fails."""
        for attempt in range(1, tries + 1):
            try:
                for step in (["stop_app"], ["reset"], ["join_cluster", seed.nodename]):
                    node.rabbitmqctl("-q", *step, timeout=120)
                break
            except BrokerError as exc:
                if attempt == tries or time.monotonic() > deadline:
                    raise
                log.warning("%s could not join %s (%s); trying again", node.name, seed.name, exc)
                time.sleep(2)
        node.rabbitmqctl("-q", "start_app", timeout=120)
        node.wait_ready(_left(deadline))

    def stop(self, *, graceful: bool = True) -> None:
        """Stop every node (``graceful=False``: SIGKILL, see :meth:`LocalNode.stop`), then
        the cluster's epmd."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.stop(graceful=graceful), self.nodes))
        LocalNode._kill_epmd(self.nodes[0])
        self._http.close()

    # -- membership and queues ----------------------------------------------------------

    def members(self) -> dict[str, bool]:
        """Cluster members as the management API sees them: node name → running."""
        rows = self._get(self._live_node(), "/api/nodes")
        return {str(r["name"]): bool(r.get("running")) for r in rows}

    def running(self) -> list[str]:
        return sorted(name for name, up in self.members().items() if up)

    def wait_members(self, count: int, timeout: float = 60.0) -> None:
        """Block until ``count`` nodes are running members of one cluster."""
        deadline = time.monotonic() + timeout
        seen: dict[str, bool] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(BrokerError, httpx.HTTPError):
                seen = self.members()
                if sum(seen.values()) >= count:
                    return
            time.sleep(0.5)
        raise BrokerError(f"cluster has not {count} running members after {timeout:.0f} s: {seen}")

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        """The management API's row for a queue (``type``, ``leader``, ``members``, ``online``)."""
        path = f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}"
        row: dict[str, Any] = self._get(self._live_node(), path)
        return row

    def queue_leader(self, vhost: str, name: str) -> str:
        """The node holding a quorum queue's Raft leader (the home node of a classic queue)."""
        row = self.queue(vhost, name)
        leader = row.get("leader") or row.get("node")
        if not leader:
            raise BrokerError(f"queue {name} in {vhost} has no leader right now")
        return str(leader)

    def queue_members(self, vhost: str, name: str) -> list[str]:
        """The nodes holding a replica of a quorum queue."""
        return sorted(str(m) for m in self.queue(vhost, name).get("members") or [])

    def connections(self) -> list[dict[str, Any]]:
        """Open AMQP connections: ``name`` (client-given), ``user`` and ``node`` of each."""
        rows = self._get(self._live_node(), "/api/connections")
        return [
            {
                "name": str((r.get("client_properties") or {}).get("connection_name") or ""),
                "user": str(r.get("user") or ""),
                "node": str(r.get("node") or ""),
            }
            for r in rows
        ]

    # -- helpers ------------------------------------------------------------------------

    def _live_node(self) -> ClusterNode:
        for n in self.nodes:
            if n.pid is not None and n._management_ready(2.0):
                return n
        raise BrokerError(f"no node of {', '.join(self.names)} answers its management API")

    def _members(self, node: ClusterNode) -> set[str]:
        return {str(r["name"]) for r in self._get(node, "/api/nodes")}

    def _get(self, node: ClusterNode, path: str) -> Any:
        resp = self._http.get(f"{node.management_url}{path}")
        if resp.status_code >= 400:
            raise BrokerError(f"GET {path} on {node.nodename}: HTTP {resp.status_code}")
        return resp.json()


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


__all__ = ["ClusterNode", "LocalCluster", "free_port_block"]
