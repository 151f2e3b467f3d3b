"""Users and permissions of the in-memory broker, checked the way RabbitMQ checks them.

Resource permissions are three regular expressions per vhost (configure, write, read; an
empty one allows nothing); a topic permission row limits the routing keys a user may
publish with (write) or bind with (read) on one topic exchange. Without a row for an
exchange, every routing key is allowed, as in RabbitMQ. A broker with no users at all is
*open*: any name and password log in with full rights (the dev ``guest`` of a real node).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ..errors import AccessRefused

Access = Literal["configure", "write", "read"]


@dataclass(frozen=True)
class Permissions:
    configure: str = ".*"
    write: str = ".*"
    read: str = ".*"


@dataclass(frozen=True)
class TopicPermissions:
    write: str = ".*"
    read: str = ".*"


@dataclass
class User:
    name: str
    password: str
    permissions: dict[str, Permissions] = field(default_factory=dict)
    """vhost → resource permissions."""
    topics: dict[tuple[str, str], TopicPermissions] = field(default_factory=dict)
    """(vhost, exchange) → topic permissions."""


def _allows(pattern: str, name: str) -> bool:
    return bool(pattern) and re.search(pattern, name) is not None


class Grants:
    """What one logged-in user may do in one vhost (``None`` user: an open broker)."""

    def __init__(self, user: User | None, vhost: str) -> None:
        self.name = user.name if user else ""
        self._user = user
        self._vhost = vhost

    def check(self, access: Access, kind: str, name: str) -> None:
        """Raise ``AccessRefused`` unless the user has ``access`` to the resource."""
        if self._user is None:
            return
        perms = self._user.permissions.get(self._vhost)
        resource = name or "amq.default"
        if perms is None or not _allows(getattr(perms, access), resource):
            raise AccessRefused(
                f"ACCESS_REFUSED - {access} access to {kind} '{resource}' in vhost"
                f" '{self._vhost}' refused for user '{self.name}'"
            )

    def check_topic(self, access: Literal["write", "read"], exchange: str, key: str) -> None:
        """Raise ``AccessRefused`` unless a topic row (if any) allows ``key``."""
        if self._user is None:
            return
        row = self._user.topics.get((self._vhost, exchange))
        if row is not None and not _allows(getattr(row, access), key):
            raise AccessRefused(
                f"ACCESS_REFUSED - {access} access to topic '{key}' in exchange"
                f" '{exchange}' in vhost '{self._vhost}' refused for user '{self.name}'"
            )


__all__ = ["Grants", "Permissions", "TopicPermissions", "User"]
