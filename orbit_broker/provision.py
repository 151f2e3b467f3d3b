"""Idempotent provisioning of an Orbit vhost: topology, users and permissions.

::

    prov = Provisioner(management, "amqp://admin:pw@host:5672/", vhost="orbit")
    spec = ProvisionSpec(endpoints=[EndpointSpec("hpc1")], clients=[ClientSpec("alice", ["hpc1"])])
    print(prov.plan(spec))                  # dry run: what would change
    result = prov.provision_sync(spec)      # result.credentials: new passwords, shown once
    prov.grant("alice", "hpc2").hint        # 'allowed_users: [alice]' for hpc2's config

The rows each role gets are in :mod:`orbit_broker.permissions` (``docs/security.md``);
the requests and answers in :mod:`orbit_broker.plans`. Grant and revoke are idempotent.
Passwords are generated here, returned to the caller once and never logged or stored.
"""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import unquote, urlsplit

from orbit_amqp import declare_at
from orbit_protocol import naming
from orbit_protocol.errors import BrokerError

from . import directory
from .grants import Grants
from .management import ManagementClient, Permissions, TopicPermission
from .permissions import (
    CLIENT_LIMITS,
    ENDPOINT_LIMITS,
    RESPONDER_LIMITS,
    RESPONDER_USER,
    TOPIC_EXCHANGES,
    Role,
    UserLimits,
    client_permissions,
    client_topic_permissions,
    endpoint_permissions,
    endpoint_topic_permissions,
    orchestrator_permissions,
    orchestrator_topic_permissions,
    parse_grants,
    responder_permissions,
    responder_topic_permissions,
)
from .plans import (
    Action,
    ClientSpec,
    Credentials,
    EndpointSpec,
    GrantResult,
    Plan,
    ProvisionResult,
    ProvisionSpec,
    make_url,
)
from .profilefile import write_profile
from .topology import full_topology, queue_differences

# -- the provisioner --------------------------------------------------------------------------


class Provisioner(Grants):
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
            if role == "client":
                self._plan_directory(plan, name, spec, topic_rows.get(name, {}), exists)
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
            reaches = self._client_grants(name, spec, current)
            if any(reaches):  # an orchestrator keeps its grants (provisioning never revokes)
                return (
                    orchestrator_permissions(name, ep.pools),
                    orchestrator_topic_permissions(name, *reaches),
                )
            return endpoint_permissions(name, ep.pools), endpoint_topic_permissions(name)
        endpoints, pools = self._client_grants(name, spec, current)
        return client_permissions(name), client_topic_permissions(name, endpoints, pools)

    @staticmethod
    def _client_grants(
        name: str, spec: ProvisionSpec, current: dict[str, TopicPermission]
    ) -> tuple[set[str], set[str]]:
        """The grants a client keeps (provisioning never revokes) plus the spec's."""
        endpoints: set[str] = set()
        pools: set[str] = set()
        if naming.REQUEST_EXCHANGE in current:
            endpoints, pools = parse_grants(current[naming.REQUEST_EXCHANGE].write)
        for cl in spec.clients:
            if cl.name == name:
                endpoints.update(cl.endpoints)
                pools.update(cl.pools)
        return endpoints, pools

    def _plan_directory(
        self,
        plan: Plan,
        name: str,
        spec: ProvisionSpec,
        current: dict[str, TopicPermission],
        vhost_exists: bool,
    ) -> None:
        endpoints, pools = self._client_grants(name, spec, current)
        want = (tuple(sorted(endpoints)), tuple(sorted(pools)))
        queue = naming.directory_queue(name)
        have = directory.parse(self.management.peek(self.vhost, queue) if vhost_exists else None)
        if have is None or (have.endpoints, have.pools) != want:
            listed = ", ".join(want[0]) or "–"
            plan.actions.append(Action("write-directory", name, f"endpoints {listed}", want))

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
                await declare_at(self._admin_url(), plan.topology, name="orbit-provision")
                declared = True
        for action in plan.actions:  # after the topology: last-seen queues bind to orbit.events
            if action.kind == "write-directory":
                await directory.write(self._store(), action.target, *action.payload)
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

    # -- removal --------------------------------------------------------------------------

    def revoke_user(self, name: str) -> int:
        """Delete user ``name`` and close its connections; returns the connections closed."""
        conns = self.management.list_connections(name)
        self.management.delete_user(name)
        directory.blocking(directory.remove(self._store(), name))
        for conn in conns:
            self.management.close_connection(conn.name, "orbit: user revoked")
        return len(conns)


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
