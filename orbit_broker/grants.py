"""Grant and revoke: which endpoints and pools a user may call, kept in the broker itself.

A grant is the user's ``orbit.requests`` topic-write regex (:func:`parse_grants` reads it
back); the user's directory is rewritten with it. The user is a client, or an endpoint that
calls others (an orchestrator): its first grant adds a client's own reply and subscription
queues to its endpoint rows (:func:`orchestrator_permissions`), so its plugins' calls
(``ctx.client()``) leave as the endpoint's own broker user. Acting *for* another user is
not a grant of this kind (docs/plugins/orchestration.md).
"""

from __future__ import annotations

import contextlib
from typing import Literal

from orbit_protocol import naming
from orbit_protocol.errors import BrokerError

from . import directory
from .management import ManagementClient, Permissions, TopicPermission
from .permissions import (
    client_permissions,
    client_topic_permissions,
    endpoint_permissions,
    orchestrator_permissions,
    orchestrator_topic_permissions,
    parse_grants,
    pools_of,
)
from .plans import GrantResult

Caller = Literal["client", "endpoint"]


class Grants:
    """The grant half of :class:`~orbit_broker.provision.Provisioner`."""

    management: ManagementClient
    vhost: str

    def _store(self) -> directory.ManagementStore:
        return directory.ManagementStore(self.management, self.vhost)

    def grants(self, client: str) -> tuple[set[str], set[str]]:
        """(endpoints, pools) the client (or orchestrating endpoint) may call."""
        self._caller(client)
        return self._granted(client)

    def _granted(self, user: str) -> tuple[set[str], set[str]]:
        rows = self.management.get_topic_permissions(user, self.vhost)
        row = rows.get(naming.REQUEST_EXCHANGE)
        return parse_grants(row.write) if row else (set(), set())

    def allowed_users(self, endpoint: str) -> list[str]:
        """Users whose topic permission lets them call ``endpoint``."""
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
        caller, perms = self._caller(client)
        endpoints, pools = self._granted(client)
        chosen = pools if pool else endpoints
        changed = (target not in chosen) if add else (target in chosen)
        if add:
            chosen.add(target)
        else:
            chosen.discard(target)
        if changed:
            if caller == "endpoint":  # its first grant makes it an orchestrator
                wanted = orchestrator_permissions(client, pools_of(perms))
                if perms != wanted:
                    self.management.set_permissions(client, self.vhost, wanted)
            for row in self._rows(client, caller, endpoints, pools):
                self.management.set_topic_permission(client, self.vhost, row)
        # also when unchanged: a directory that is missing or stale is written again
        directory.blocking(directory.write(self._store(), client, endpoints, pools))
        if changed and not add and disconnect:
            self.management.close_user_connections(client, "orbit: permission revoked")
        return GrantResult(
            client=client,
            target=target,
            changed=changed,
            endpoints=tuple(sorted(endpoints)),
            pools=tuple(sorted(pools)),
            allowed_users=() if pool else tuple(self.allowed_users(target)),
        )

    @staticmethod
    def _rows(
        user: str, caller: Caller, endpoints: set[str], pools: set[str]
    ) -> list[TopicPermission]:
        """The topic rows a grant changes (an orchestrator's replies row too)."""
        if caller == "client":
            rows = client_topic_permissions(user, endpoints, pools)
            return [rows[naming.REQUEST_EXCHANGE], rows[naming.EVENT_EXCHANGE]]
        return list(orchestrator_topic_permissions(user, endpoints, pools).values())

    def _caller(self, user: str) -> tuple[Caller, Permissions]:
        """Whether ``user`` is an Orbit client or endpoint here, with its permissions."""
        naming.validate_name(user, "user")
        perms = self.management.get_permissions(user, self.vhost)
        if perms is None:
            raise BrokerError(
                f"user {user!r} has no permissions in vhost {self.vhost!r}: provision it first"
            )
        if perms == client_permissions(user):
            return "client", perms
        pools = pools_of(perms)
        if perms in (endpoint_permissions(user, pools), orchestrator_permissions(user, pools)):
            return "endpoint", perms
        raise BrokerError(f"user {user!r} is not an Orbit client or endpoint in {self.vhost!r}")


__all__ = ["Grants"]
