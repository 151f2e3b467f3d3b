"""Idempotent provisioning of an Orbit vhost: topology, users and permissions (DESIGN §4).

::

    prov = Provisioner(management, "amqp://admin:pw@host:5672/", vhost="orbit")
    spec = ProvisionSpec(endpoints=[EndpointSpec("hpc1")], clients=[ClientSpec("alice", ["hpc1"])])
    print(prov.plan(spec))                  # dry run: what would change
    result = prov.provision_sync(spec)      # result.credentials: new passwords, shown once
    prov.grant("alice", "hpc2").hint        # 'allowed_users: [alice]' for hpc2's config

Permission rows are literal per-user regexes: RabbitMQ 3.10 does not expand ``{username}``
in configure/write/read. Every user gets a row on every topic exchange, because a user
without one may publish with any routing key. Which endpoints a client may call is kept in
the broker itself (its ``orbit.requests`` topic-write regex), so grant/revoke are idempotent.
Passwords are generated here, returned to the caller once and never logged or stored.
Every user also gets connection and channel limits (:class:`UserLimits`, reliability S7), so
one tenant opening connections in a loop cannot starve the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika

from orbit_protocol import naming
from orbit_protocol.errors import BrokerError
from orbit_protocol.topology import Topology

from .management import ManagementClient, Permissions, TopicPermission
from .topology import declare, full_topology, queue_differences

RESPONDER_USER: Final = "orbit-responder"
TOPIC_EXCHANGES: Final = (naming.REQUEST_EXCHANGE, naming.EVENT_EXCHANGE, naming.REPLY_EXCHANGE)
NOTHING: Final = "^$"

Role = Literal["endpoint", "client", "responder"]


@dataclass(frozen=True)
class UserLimits:
    """Per-user broker limits (``max-connections``, ``max-channels``; -1 = unlimited)."""

    max_connections: int
    max_channels: int = 200

    def as_dict(self) -> dict[str, int]:
        return {"max-connections": self.max_connections, "max-channels": self.max_channels}


# An endpoint needs 2 connections (consume + publish) and a hot standby 2 more.
CLIENT_LIMITS: Final = UserLimits(max_connections=50, max_channels=200)
ENDPOINT_LIMITS: Final = UserLimits(max_connections=5, max_channels=200)
RESPONDER_LIMITS: Final = UserLimits(max_connections=5, max_channels=50)

# -- permission rows (pure) -------------------------------------------------------------------


def endpoint_permissions(endpoint: str, pools: Iterable[str] = ()) -> Permissions:
    """configure ``^$``, write replies/events, read its own queue (and its pools' queues)."""
    naming.validate_name(endpoint)
    names = [f"ep\\.{endpoint}"] + [
        f"pool\\.{naming.validate_name(p, 'pool')}" for p in sorted(set(pools))
    ]
    read = f"^orbit\\.{names[0]}$" if len(names) == 1 else f"^orbit\\.({'|'.join(names)})$"
    return Permissions(NOTHING, r"^orbit\.(replies|events)$", read)


def endpoint_topic_permissions(endpoint: str) -> dict[str, TopicPermission]:
    naming.validate_name(endpoint)
    return _rows(
        requests=(NOTHING, NOTHING),
        events=(f"^{endpoint}\\.", NOTHING),
        replies=(r"^orbit\.reply\.", NOTHING),
    )


def client_permissions(client: str) -> Permissions:
    """Own reply/subscription queues; publish to ``orbit.requests``; read replies/events."""
    u = naming.validate_name(client, "user")
    own = f"orbit\\.(reply|sub)\\.{u}\\..+"
    return Permissions(
        configure=f"^{own}$",
        write=f"^(orbit\\.requests|{own})$",
        read=f"^(orbit\\.replies|orbit\\.events|{own})$",
    )


def client_topic_permissions(
    client: str, endpoints: Iterable[str] = (), pools: Iterable[str] = ()
) -> dict[str, TopicPermission]:
    """Requests only to the allowed endpoints/pools, events only from allowed endpoints."""
    u = naming.validate_name(client, "user")
    eps = sorted({naming.validate_name(e) for e in endpoints})
    keys = eps + [f"pool\\.{naming.validate_name(p, 'pool')}" for p in sorted(set(pools))]
    return _rows(
        requests=(f"^({'|'.join(keys)})$" if keys else NOTHING, NOTHING),
        events=(NOTHING, f"^({'|'.join(eps)})\\." if eps else NOTHING),
        replies=(NOTHING, f"^orbit\\.reply\\.{u}\\."),
    )


def responder_permissions() -> Permissions:
    """The dead-letter responder reads ``orbit.dead`` and writes ``orbit.replies``."""
    return Permissions(NOTHING, r"^orbit\.replies$", r"^orbit\.dead$")


def responder_topic_permissions() -> dict[str, TopicPermission]:
    return _rows(
        requests=(NOTHING, NOTHING),
        events=(NOTHING, NOTHING),
        replies=(r"^orbit\.reply\.", NOTHING),
    )


def _rows(
    *, requests: tuple[str, str], events: tuple[str, str], replies: tuple[str, str]
) -> dict[str, TopicPermission]:
    return {
        naming.REQUEST_EXCHANGE: TopicPermission(naming.REQUEST_EXCHANGE, *requests),
        naming.EVENT_EXCHANGE: TopicPermission(naming.EVENT_EXCHANGE, *events),
        naming.REPLY_EXCHANGE: TopicPermission(naming.REPLY_EXCHANGE, *replies),
    }


_GRANTS_RE: Final = re.compile(r"^\^\((?P<keys>[a-z0-9_\-|.\\]*)\)\$$")


def parse_grants(request_write: str) -> tuple[set[str], set[str]]:
    """(endpoints, pools) from a client's ``orbit.requests`` topic-write regex."""
    if request_write in ("", NOTHING):
        return set(), set()
    match = _GRANTS_RE.match(request_write)
    if not match:
        raise BrokerError(
            f"topic permission {request_write!r} on {naming.REQUEST_EXCHANGE} was not written "
            "by Orbit; fix or clear it before granting"
        )
    endpoints: set[str] = set()
    pools: set[str] = set()
    for key in match["keys"].split("|"):
        if key.startswith("pool\\."):
            pools.add(naming.validate_name(key.removeprefix("pool\\."), "pool"))
        else:
            endpoints.add(naming.validate_name(key))
    return endpoints, pools


# -- specs, plans, results --------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    pools: Sequence[str] = ()


@dataclass(frozen=True)
class ClientSpec:
    name: str
    endpoints: Sequence[str] = ()
    pools: Sequence[str] = ()


@dataclass(frozen=True)
class ProvisionSpec:
    """What should exist. Provisioning adds; it never revokes grants or deletes users."""

    endpoints: Sequence[EndpointSpec] = ()
    clients: Sequence[ClientSpec] = ()
    pools: Sequence[str] = ()
    responder: bool = True
    responder_user: str = RESPONDER_USER
    rotate_passwords: bool = False
    queue_options: dict[str, int] = field(default_factory=dict)
    client_limits: UserLimits | None = CLIENT_LIMITS
    endpoint_limits: UserLimits | None = ENDPOINT_LIMITS
    responder_limits: UserLimits | None = RESPONDER_LIMITS

    def limits(self, role: Role) -> UserLimits | None:
        return {
            "client": self.client_limits,
            "endpoint": self.endpoint_limits,
            "responder": self.responder_limits,
        }[role]

    def all_pools(self) -> list[str]:
        names = set(self.pools)
        for ep in self.endpoints:
            names.update(ep.pools)
        for cl in self.clients:
            names.update(cl.pools)
        return sorted(names)


@dataclass(frozen=True)
class Action:
    """One change; ``payload`` carries what :meth:`Provisioner.apply` needs (never secrets)."""

    kind: str
    target: str
    detail: str = ""
    payload: Any = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.kind:<20} {self.target}" + (f"  {self.detail}" if self.detail else "")


@dataclass
class Plan:
    vhost: str
    actions: list[Action] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    topology: Topology = field(default_factory=Topology)

    @property
    def empty(self) -> bool:
        return not self.actions and not self.conflicts

    def kinds(self) -> list[str]:
        return [a.kind for a in self.actions]

    def __str__(self) -> str:
        if self.empty:
            return f"vhost {self.vhost!r}: nothing to do"
        lines = [f"vhost {self.vhost!r}: {len(self.actions)} change(s)"]
        lines += [f"  {a}" for a in self.actions]
        lines += [f"  CONFLICT {c}" for c in self.conflicts]
        return "\n".join(lines)


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)

    def url(self, base_url: str, vhost: str) -> str:
        """``base_url`` with this user, password and ``vhost``."""
        return make_url(base_url, self.user, self.password, vhost)


@dataclass
class ProvisionResult:
    plan: Plan
    applied: bool
    credentials: dict[str, Credentials] = field(default_factory=dict)


@dataclass(frozen=True)
class GrantResult:
    client: str
    target: str
    changed: bool
    endpoints: tuple[str, ...]
    pools: tuple[str, ...]
    allowed_users: tuple[str, ...]

    @property
    def hint(self) -> str:
        """The endpoint-side allow-list line (endpoint config) matching the broker state."""
        return f"allowed_users: [{', '.join(self.allowed_users)}]"


def make_url(base_url: str, user: str, password: str, vhost: str) -> str:
    """Replace credentials and vhost of an AMQP URL."""
    parts = urlsplit(base_url)
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}{port}"
    return urlunsplit((parts.scheme, netloc, "/" + quote(vhost, safe=""), parts.query, ""))


# -- the provisioner --------------------------------------------------------------------------


class Provisioner:
    """Plans and applies changes through the management API (+ AMQP for the topology)."""

    def __init__(
        self,
        management: ManagementClient,
        amqp_url: str,
        vhost: str = naming.DEFAULT_VHOST,
    ) -> None:
        self.management = management
        self.amqp_url = amqp_url  # an admin URL; its vhost path is replaced
        self.vhost = vhost
        self.admin_user = unquote(urlsplit(amqp_url).username or "guest")

    def _admin_url(self) -> str:
        parts = urlsplit(self.amqp_url)
        return make_url(self.amqp_url, self.admin_user, unquote(parts.password or ""), self.vhost)

    # -- planning -------------------------------------------------------------------------

    def plan(self, spec: ProvisionSpec) -> Plan:
        """Read the broker and list what :meth:`apply` would change (a dry run)."""
        roles = self._roles(spec)
        m, vhost = self.management, self.vhost
        pools = spec.all_pools()
        topology = full_topology([e.name for e in spec.endpoints], pools, **spec.queue_options)
        plan = Plan(vhost, topology=topology)
        exists = m.vhost_exists(vhost)
        if not exists:
            plan.actions.append(Action("create-vhost", vhost))
        if not exists or m.get_permissions(self.admin_user, vhost) is None:
            plan.actions.append(
                Action(
                    "set-permissions",
                    self.admin_user,
                    "(admin) .* .* .*",
                    Permissions(".*", ".*", ".*"),
                )
            )
        self._plan_topology(plan, exists)
        users = set(m.list_users())
        topic_rows = m.list_topic_permissions(vhost) if exists else {}
        for name, role in roles.items():
            if name not in users or spec.rotate_passwords:
                verb = "create-user" if name not in users else "rotate-password"
                plan.actions.append(Action(verb, name, f"({role})"))
            want = self._wanted(name, role, spec, topic_rows.get(name, {}))
            perms, topics = want
            have = m.get_permissions(name, vhost) if exists and name in users else None
            if have != perms:
                plan.actions.append(
                    Action(
                        "set-permissions",
                        name,
                        f"configure {perms.configure} write {perms.write} read {perms.read}",
                        perms,
                    )
                )
            limits = spec.limits(role)
            if limits is not None:
                have_limits = m.get_user_limits(name) if name in users else {}
                for key, value in limits.as_dict().items():
                    if have_limits.get(key) != value:
                        plan.actions.append(
                            Action("set-user-limit", name, f"{key} {value}", (key, value))
                        )
            for exchange, row in topics.items():
                if topic_rows.get(name, {}).get(exchange) != row:
                    plan.actions.append(
                        Action(
                            "set-topic-permission",
                            name,
                            f"{exchange}: write {row.write} read {row.read}",
                            row,
                        )
                    )
        return plan

    def _roles(self, spec: ProvisionSpec) -> dict[str, Role]:
        roles: dict[str, Role] = {}
        if spec.responder:
            roles[naming.validate_name(spec.responder_user, "user")] = "responder"
        for ep in spec.endpoints:
            roles[naming.validate_name(ep.name)] = "endpoint"
        for cl in spec.clients:
            name = naming.validate_name(cl.name, "user")
            if roles.get(name, "client") != "client":
                raise ValueError(f"{name!r} cannot be both a client and an {roles[name]}")
            roles[name] = "client"
        return roles

    def _wanted(
        self, name: str, role: Role, spec: ProvisionSpec, current: dict[str, TopicPermission]
    ) -> tuple[Permissions, dict[str, TopicPermission]]:
        if role == "responder":
            return responder_permissions(), responder_topic_permissions()
        if role == "endpoint":
            ep = next(e for e in spec.endpoints if e.name == name)
            return endpoint_permissions(name, ep.pools), endpoint_topic_permissions(name)
        endpoints: set[str] = set()
        pools: set[str] = set()
        if naming.REQUEST_EXCHANGE in current:
            endpoints, pools = parse_grants(current[naming.REQUEST_EXCHANGE].write)
        for cl in spec.clients:
            if cl.name == name:
                endpoints.update(cl.endpoints)
                pools.update(cl.pools)
        return client_permissions(name), client_topic_permissions(name, endpoints, pools)

    def _plan_topology(self, plan: Plan, vhost_exists: bool) -> None:
        m, vhost, topo = self.management, self.vhost, plan.topology
        queues = {q.name: q for q in m.list_queues(vhost)} if vhost_exists else {}
        bindings = m.list_all_bindings(vhost) if vhost_exists else set()
        for ex in topo.exchanges:
            info = m.get_exchange(vhost, ex.name) if vhost_exists else None
            if info is None:
                plan.actions.append(Action("declare-exchange", ex.name, ex.kind))
            elif info.type != ex.kind or info.durable != ex.durable:
                plan.conflicts.append(
                    f"exchange {ex.name!r} is {info.type} (durable={info.durable}), Orbit wants "
                    f"{ex.kind} (durable={ex.durable}): delete and re-create it"
                )
        for q in topo.queues:
            have = queues.get(q.name)
            if have is None:
                args = " ".join(f"{k}={v}" for k, v in q.arguments)
                plan.actions.append(Action("declare-queue", q.name, args))
                continue
            diffs = queue_differences(q, have.arguments)
            if diffs:
                plan.conflicts.append(
                    f"queue {q.name!r} has other arguments ({'; '.join(diffs)}): delete and "
                    "re-create it (its messages are lost) or change the setting by policy"
                )
        for b in topo.bindings:
            if (b.exchange, b.queue, b.routing_key) not in bindings:
                plan.actions.append(Action("bind", b.queue, f"{b.exchange} key {b.routing_key!r}"))

    # -- applying -------------------------------------------------------------------------

    async def apply(self, plan: Plan) -> ProvisionResult:
        """Apply ``plan``; refuse (nothing changed) when it has conflicts."""
        if plan.conflicts:
            raise BrokerError(
                "provisioning refused, existing objects differ:\n  " + "\n  ".join(plan.conflicts),
                {"conflicts": plan.conflicts},
            )
        m, vhost = self.management, self.vhost
        credentials: dict[str, Credentials] = {}
        declared = False
        for action in plan.actions:
            if action.kind == "create-vhost":
                m.create_vhost(vhost, "Orbit")
            elif action.kind in ("create-user", "rotate-password"):
                password = secrets.token_urlsafe(24)
                m.create_user(action.target, password)
                credentials[action.target] = Credentials(action.target, password)
            elif action.kind == "set-permissions":
                m.set_permissions(action.target, vhost, action.payload)
            elif action.kind == "set-topic-permission":
                m.set_topic_permission(action.target, vhost, action.payload)
            elif action.kind == "set-user-limit":
                m.set_user_limit(action.target, *action.payload)
            elif action.kind in ("declare-exchange", "declare-queue", "bind") and not declared:
                await _declare(self._admin_url(), plan.topology)
                declared = True
        return ProvisionResult(plan, applied=True, credentials=credentials)

    async def provision(self, spec: ProvisionSpec, *, dry_run: bool = False) -> ProvisionResult:
        """Plan, then apply unless ``dry_run``."""
        plan = self.plan(spec)
        if dry_run:
            return ProvisionResult(plan, applied=False)
        return await self.apply(plan)

    def provision_sync(self, spec: ProvisionSpec, *, dry_run: bool = False) -> ProvisionResult:
        """:meth:`provision` for synchronous callers (the CLI); not inside a running loop."""
        return asyncio.run(self.provision(spec, dry_run=dry_run))

    # -- grants ---------------------------------------------------------------------------

    def grants(self, client: str) -> tuple[set[str], set[str]]:
        """(endpoints, pools) the client may call, read back from the broker."""
        self._require_client(client)
        rows = self.management.get_topic_permissions(client, self.vhost)
        row = rows.get(naming.REQUEST_EXCHANGE)
        return parse_grants(row.write) if row else (set(), set())

    def allowed_users(self, endpoint: str) -> list[str]:
        """Clients whose topic permission lets them call ``endpoint``."""
        naming.validate_name(endpoint)
        users = []
        for user, rows in self.management.list_topic_permissions(self.vhost).items():
            row = rows.get(naming.REQUEST_EXCHANGE)
            if row is None:
                continue
            with contextlib.suppress(BrokerError, ValueError):
                if endpoint in parse_grants(row.write)[0]:
                    users.append(user)
        return sorted(users)

    def grant(self, client: str, endpoint: str, *, pool: bool = False) -> GrantResult:
        """Let ``client`` call ``endpoint`` (or pool ``endpoint`` when ``pool``); idempotent."""
        return self._update(client, endpoint, pool=pool, add=True, disconnect=False)

    def revoke(
        self, client: str, endpoint: str, *, pool: bool = False, disconnect: bool = True
    ) -> GrantResult:
        """Stop ``client`` calling ``endpoint``; idempotent.

        RabbitMQ caches permission checks per channel, so by default the client's
        connections are closed to make the revocation take effect now (clients reconnect).
        """
        return self._update(client, endpoint, pool=pool, add=False, disconnect=disconnect)

    def _update(
        self, client: str, target: str, *, pool: bool, add: bool, disconnect: bool
    ) -> GrantResult:
        naming.validate_name(target, "pool" if pool else "endpoint")
        endpoints, pools = self.grants(client)
        chosen = pools if pool else endpoints
        changed = (target not in chosen) if add else (target in chosen)
        if add:
            chosen.add(target)
        else:
            chosen.discard(target)
        if changed:
            rows = client_topic_permissions(client, endpoints, pools)
            for exchange in (naming.REQUEST_EXCHANGE, naming.EVENT_EXCHANGE):
                self.management.set_topic_permission(client, self.vhost, rows[exchange])
            if not add and disconnect:
                self.management.close_user_connections(client, "orbit: permission revoked")
        return GrantResult(
            client=client,
            target=target,
            changed=changed,
            endpoints=tuple(sorted(endpoints)),
            pools=tuple(sorted(pools)),
            allowed_users=() if pool else tuple(self.allowed_users(target)),
        )

    def _require_client(self, client: str) -> None:
        naming.validate_name(client, "user")
        perms = self.management.get_permissions(client, self.vhost)
        if perms is None:
            raise BrokerError(
                f"user {client!r} has no permissions in vhost {self.vhost!r}: provision it first"
            )
        if perms != client_permissions(client):
            raise BrokerError(f"user {client!r} is not an Orbit client in vhost {self.vhost!r}")

    # -- removal --------------------------------------------------------------------------

    def revoke_user(self, name: str) -> int:
        """Delete user ``name`` and close its connections; returns the connections closed."""
        conns = self.management.list_connections(name)
        self.management.delete_user(name)
        for conn in conns:
            self.management.close_connection(conn.name, "orbit: user revoked")
        return len(conns)


async def _declare(admin_url: str, topology: Topology) -> None:
    async with await aio_pika.connect(admin_url) as connection:
        channel = await connection.channel()
        await declare(channel, topology)


# -- profile file -----------------------------------------------------------------------------


def write_profile(
    path: str | os.PathLike[str], url: str, *, section: str = "client", **fields: Any
) -> Path:
    """Write ``{section: {"url": url, **fields}}`` into a JSON profile with mode 0600.

    Other sections already in the file are kept. The file is replaced atomically and is
    never readable by group or others, also not for an instant.
    """
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data: dict[str, Any] = {}
    if target.is_file():
        with contextlib.suppress(ValueError, OSError):
            loaded = json.loads(target.read_text())
            if isinstance(loaded, dict):
                data = loaded
    data[section] = {**data.get(section, {}), "url": url, **fields}
    fd, tmp = tempfile.mkstemp(prefix=".profile-", dir=target.parent)  # created 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


__all__ = [
    "CLIENT_LIMITS",
    "ENDPOINT_LIMITS",
    "RESPONDER_LIMITS",
    "RESPONDER_USER",
    "TOPIC_EXCHANGES",
    "Action",
    "ClientSpec",
    "Credentials",
    "EndpointSpec",
    "GrantResult",
    "Plan",
    "ProvisionResult",
    "ProvisionSpec",
    "Provisioner",
    "UserLimits",
    "client_permissions",
    "client_topic_permissions",
    "endpoint_permissions",
    "endpoint_topic_permissions",
    "make_url",
    "parse_grants",
    "responder_permissions",
    "responder_topic_permissions",
    "write_profile",
]
