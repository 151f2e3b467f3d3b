"""Plugins as clients on a real RabbitMQ with provisioned users: an endpoint's plugin calls
another endpoint only after ``grant ORCH TARGET``, as the orchestrator's own broker user,
never an endpoint it was not granted, and not any more once revoked (docs/plugins/
orchestration.md). The plugins are the ones of tests/local/test_orchestration.py."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_client import AsyncOrbitClient, NotAuthorized, OrbitError
from tests.testkit.eventually import eventually

from ..local.test_orchestration import RELAY, WHO
from .endpoints import EndpointProcess

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]


@pytest_asyncio.fixture
async def world(broker: Any, vhost: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    tag = secrets.token_hex(2)
    orch, target, other, alice = f"orch-{tag}", f"tgt-{tag}", f"oth-{tag}", f"al-{tag}"
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    result = await prov.provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(orch), EndpointSpec(target), EndpointSpec(other)],
            clients=[ClientSpec(alice, [orch])],
            responder_user=f"responder-{tag}",
        )
    )
    url = {n: c.url(broker.amqp_url(), vhost) for n, c in result.credentials.items()}
    procs = [
        await EndpointProcess(
            ep, url[ep], tmp_path / ep, plugins=[WHO], allowed_users=[orch]
        ).start()
        for ep in (target, other)
    ]
    procs.append(
        await EndpointProcess(
            orch, url[orch], tmp_path / orch, plugins=[RELAY], allowed_users=[alice]
        ).start()
    )
    try:
        yield {"prov": prov, "orch": orch, "target": target, "other": other, "url": url[alice]}
    finally:
        for proc in procs:
            await proc.stop()
        for name in result.credentials:
            broker.management.delete_user(name)


async def test_an_orchestrator_reaches_only_what_it_was_granted(world: dict[str, Any]) -> None:
    prov, orch, target, other = world["prov"], world["orch"], world["target"], world["other"]
    async with AsyncOrbitClient(url=world["url"], timeout=20) as alice:
        # an endpoint user may not make calls until granted: said plainly, nothing runs
        with pytest.raises(OrbitError) as refused:
            await alice.call(orch, "relay.relay", target=target)
        assert "refused" in refused.value.message.lower(), refused.value.message

        prov.grant(orch, target)  # the endpoint's first grant makes it an orchestrator
        assert prov.grants(orch) == ({target}, set())
        assert await alice.call(orch, "relay.relay", target=target) == {
            "user": orch,  # the broker-stamped user is the orchestrator's, not alice's
            "endpoint": target,
        }
        with pytest.raises(NotAuthorized):  # the broker refuses the route to the other one
            await alice.call(orch, "relay.relay", target=other)

        prov.revoke(orch, target)  # closes the orchestrator's connections: they come back

        async def refused_again() -> bool:
            try:
                await alice.call(orch, "relay.relay", target=target)
            except NotAuthorized:
                return True
            except OrbitError:  # the endpoint is reconnecting after the forced close
                return False
            return False

        await eventually(refused_again, timeout=30, what="the revoked route refused")
