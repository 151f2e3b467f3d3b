"""What provisioning is asked to do, what it plans, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from orbit_protocol.topology import Topology

from .permissions import (
    CLIENT_LIMITS,
    ENDPOINT_LIMITS,
    RESPONDER_LIMITS,
    RESPONDER_USER,
    Role,
    UserLimits,
)


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


__all__ = [
    "Action",
    "ClientSpec",
    "Credentials",
    "EndpointSpec",
    "GrantResult",
    "Plan",
    "ProvisionResult",
    "ProvisionSpec",
    "make_url",
]
