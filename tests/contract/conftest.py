"""The ``transport`` fixture: every contract case runs on the memory broker and on RabbitMQ.

``transport.users.add(name, password, configure=, write=, read=, topics={exchange: (w, r)})``
creates a user with permissions on the case's vhost, on either broker.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from orbit_amqp.memory import MemoryBroker, Permissions, TopicPermissions
from orbit_broker.management import Permissions as MgmtPermissions
from orbit_broker.management import TopicPermission
from orbit_broker.topology import declare_all
from tests.contract.transports import Harness


@dataclass
class Users:
    """Adds users to the broker under test (memory or RabbitMQ management API)."""

    kind: str
    vhost: str
    broker: Any
    url_of: Any

    def add(
        self,
        name: str,
        password: str = "pw",
        *,
        configure: str = ".*",
        write: str = ".*",
        read: str = ".*",
        topics: dict[str, tuple[str, str]] | None = None,
    ) -> str:
        if self.kind == "memory":
            self.broker.add_user(name, password)
            self.broker.set_permissions(name, self.vhost, Permissions(configure, write, read))
            for exchange, (w, r) in (topics or {}).items():
                rows = TopicPermissions(w, r)
                self.broker.set_topic_permissions(name, self.vhost, exchange, rows)
        else:
            mgmt = self.broker.management
            mgmt.create_user(name, password)
            mgmt.set_permissions(name, self.vhost, MgmtPermissions(configure, write, read))
            for exchange, (w, r) in (topics or {}).items():
                mgmt.set_topic_permission(name, self.vhost, TopicPermission(exchange, w, r))
        return str(self.url_of(name, password))


@pytest_asyncio.fixture(params=["memory", "rabbitmq"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    vhost = f"contract-{secrets.token_hex(4)}"
    if request.param == "memory":
        broker = MemoryBroker(f"contract-{secrets.token_hex(4)}")
        broker.add_user("admin", "admin")
        broker.set_permissions("admin", vhost, Permissions())
        url = broker.url("admin", "admin", vhost)
        await declare_all(url)
        harness = await Harness.open("memory", url)
        harness.users = Users("memory", vhost, broker, lambda u, p: broker.url(u, p, vhost))
        try:
            yield harness
        finally:
            await harness.close()
            broker.close()
        return
    real = request.getfixturevalue("broker")  # the suite's real node (sync, session scope)
    real.management.create_vhost(vhost, "orbit contract test")
    real.management.set_permissions(real.user, vhost, MgmtPermissions(".*", ".*", ".*"))
    created: list[str] = []

    def url_of(user: str, password: str) -> str:
        created.append(user)
        return str(real.amqp_url(vhost)).replace(
            f"{real.user}:{real.password}@", f"{user}:{password}@", 1
        )

    try:
        await declare_all(real.amqp_url(vhost))
        harness = await Harness.open("rabbitmq", real.amqp_url(vhost))
        harness.users = Users("rabbitmq", vhost, real, url_of)
        try:
            yield harness
        finally:
            await harness.close()
    finally:
        for user in created:
            real.management.delete_user(user)
        real.management.delete_vhost(vhost)
