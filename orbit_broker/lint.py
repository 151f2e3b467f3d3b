"""Definitions lint (reliability S2): read a live broker's definitions and flag unsafe grants.

::

    findings = lint_broker(management, "orbit")       # [] when the vhost is safe
    for f in findings: print(f)

Rules, for every user with permissions in the vhost except the admins (users tagged
``administrator``, plus any named):

* ``topic-permission``: a topic exchange of the vhost (or a built-in one the user may read
  or write, ``amq.topic``) has no topic-permission row for the user (without one RabbitMQ
  allows every routing key);
* ``configure-shared``: the configure regex matches a shared object (``orbit.requests``,
  ``orbit.events``, ``orbit.replies``, ``orbit.dlx``, ``orbit.dead``, endpoint and pool queues);
* ``default-exchange``: the write regex matches ``amq.default`` (publishing straight to any queue);
* ``tags``: the user carries management tags.

Regexes are matched like RabbitMQ does (unanchored search; ``""`` matches nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from orbit_protocol import naming

from .management import ManagementClient

DEFAULT_EXCHANGE: Final = "amq.default"
BUILTIN_TOPIC: Final = ("amq.topic",)
SHARED: Final = (
    naming.REQUEST_EXCHANGE,
    naming.EVENT_EXCHANGE,
    naming.REPLY_EXCHANGE,
    "orbit.dlx",
    "orbit.dead",
    "orbit.ep.any-endpoint",  # probes: a regex that would let a user create these
    "orbit.pool.any-pool",
)


@dataclass(frozen=True)
class Finding:
    rule: str
    user: str
    target: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule:<17} {self.user:<20} {self.target:<22} {self.message}"


def matches(regex: str, name: str) -> bool:
    """RabbitMQ's permission match: ``re:run`` search; the empty regex matches nothing."""
    return bool(regex) and re.search(regex, name) is not None


def lint_definitions(
    definitions: dict[str, Any], vhost: str, admins: Iterable[str] = ()
) -> list[Finding]:
    """Findings for ``vhost`` in a ``GET /api/definitions`` document."""
    users = {u["name"]: u for u in definitions.get("users", [])}
    admin_names = set(admins) | {
        name for name, u in users.items() if "administrator" in _tags(u.get("tags"))
    }
    topic_exchanges = {
        e["name"]
        for e in definitions.get("exchanges", [])
        if e.get("vhost") == vhost and e.get("type") == "topic"
    }
    shared = set(SHARED) | {
        q["name"]
        for q in definitions.get("queues", [])
        if q.get("vhost") == vhost and q["name"].startswith(("orbit.ep.", "orbit.pool."))
    }
    topic_rows: dict[str, set[str]] = {}
    for row in definitions.get("topic_permissions", []):
        if row.get("vhost") == vhost:
            topic_rows.setdefault(row["user"], set()).add(row["exchange"])
    findings: list[Finding] = []
    for perm in definitions.get("permissions", []):
        user = perm["user"]
        if perm.get("vhost") != vhost or user in admin_names:
            continue
        configure, write, read = perm["configure"], perm["write"], perm["read"]
        builtin = {x for x in BUILTIN_TOPIC if matches(write, x) or matches(read, x)}
        for exchange in sorted(topic_exchanges | builtin):
            if exchange not in topic_rows.get(user, set()):
                findings.append(
                    Finding(
                        "topic-permission",
                        user,
                        exchange,
                        "no topic-permission row: any routing key is allowed",
                    )
                )
        for name in sorted(shared):
            if matches(configure, name):
                findings.append(
                    Finding(
                        "configure-shared",
                        user,
                        name,
                        f"configure {configure!r} lets it declare or delete a shared object",
                    )
                )
        if matches(write, DEFAULT_EXCHANGE):
            findings.append(
                Finding(
                    "default-exchange",
                    user,
                    DEFAULT_EXCHANGE,
                    f"write {write!r} lets it publish straight to any queue",
                )
            )
        tags = _tags(users.get(user, {}).get("tags"))
        if tags:
            findings.append(Finding("tags", user, ",".join(tags), "management tags on a tenant"))
    return findings


def lint_broker(
    management: ManagementClient, vhost: str = naming.DEFAULT_VHOST, admins: Iterable[str] = ()
) -> list[Finding]:
    """Read the live definitions through the management API and lint ``vhost``."""
    return lint_definitions(management.definitions(), vhost, {management.username, *admins})


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t) for t in value if t]
    return [t for t in str(value or "").split(",") if t]


__all__ = ["Finding", "lint_broker", "lint_definitions", "matches"]
