"""The ``transport`` fixture: every contract case runs on the memory model and on RabbitMQ."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orbit_broker.management import Permissions
from orbit_broker.topology import declare_all
from orbit_protocol.topology import core
from tests.contract.transports import MemoryTransport, RabbitTransport, Transport


@pytest_asyncio.fixture(params=["memory", "rabbitmq"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    if request.param == "memory":
        impl: Transport = MemoryTransport()
        await impl.declare(core())
        yield impl
        return
    broker = request.getfixturevalue("broker")  # the suite's real node (sync, session scope)
    vhost = f"contract-{secrets.token_hex(4)}"
    broker.management.create_vhost(vhost, "orbit contract test")
    broker.management.set_permissions(broker.user, vhost, Permissions(".*", ".*", ".*"))
    try:
        await declare_all(broker.amqp_url(vhost))
        impl = await RabbitTransport.connect(broker.amqp_url(vhost))
        try:
            yield impl
        finally:
            await impl.close()
    finally:
        broker.management.delete_vhost(vhost)
