"""Plugins as clients (``ctx.client()``, ``ctx.topology()``, ``on_topology_change``) on the
memory broker, which stamps and checks ``user_id`` as RabbitMQ does: an orchestrating plugin
calls another endpoint as its own endpoint's broker user, never as its caller, and hears
endpoints come and go."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orbit_client import AsyncOrbitClient, EndpointInfo, NotAuthorized
from orbit_plugins.base import Call, Plugin, operation
from tests.testkit.eventually import eventually
from tests.testkit.local import Local


class Target(BaseModel):
    target: str


class WhoPlugin(Plugin):
    """The target side: says which broker user called it."""

    name = "who"

    @operation
    async def who(self, call: Call) -> dict[str, str]:
        return {"user": call.user, "endpoint": call.endpoint}


class RelayPlugin(Plugin):
    """The orchestrating side: calls ``who.who`` on another endpoint, follows topology."""

    name = "relay"

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.changes: list[tuple[str, str]] = []

    @operation
    async def relay(self, args: Target) -> dict[str, Any]:
        client = await self.ctx.client()
        return await client.call(args.target, "who.who")

    @operation
    async def seen(self) -> dict[str, Any]:
        online = sorted(n for n, info in self.ctx.topology().items() if info.online)
        return {"changes": self.changes, "online": online}

    async def on_topology_change(self, endpoint: str, info: EndpointInfo) -> None:
        self.changes.append((endpoint, info.presence.state))


WHO = f"{__name__}:WhoPlugin"
RELAY = f"{__name__}:RelayPlugin"


async def test_a_plugin_calls_another_endpoint_as_its_own_endpoint(local: Local) -> None:
    await local.endpoint("target", plugins=[WHO], allowed_users=["orch"])
    await local.endpoint("orch", user="orch", plugins=[RELAY], allowed_users=["alice"])
    async with AsyncOrbitClient(url=local.url("alice"), timeout=10) as alice:
        seen = await alice.call("orch", "relay.relay", target="target")
        assert seen == {"user": "orch", "endpoint": "target"}  # the endpoint's user, not alice's
        # alice may not call the target herself, and the orchestrator does not lend her its right
        try:
            await alice.call("target", "who.who")
        except NotAuthorized:
            pass
        else:
            raise AssertionError("alice reached the target directly")


async def test_the_target_refuses_an_orchestrator_it_does_not_allow(local: Local) -> None:
    await local.endpoint("target", plugins=[WHO], allowed_users=["someone-else"])
    await local.endpoint("orch", user="orch", plugins=[RELAY], allowed_users=["alice"])
    async with AsyncOrbitClient(url=local.url("alice"), timeout=10) as alice:
        try:
            await alice.call("orch", "relay.relay", target="target")
        except NotAuthorized as exc:
            assert "'orch'" in exc.message  # the refusal names the orchestrator, not alice
        else:
            raise AssertionError("the target answered an orchestrator it does not allow")


async def test_on_topology_change_hears_endpoints_come_and_go(local: Local) -> None:
    await local.endpoint("orch", user="orch", plugins=[RELAY], allowed_users=["alice"])
    async with AsyncOrbitClient(url=local.url("alice"), timeout=10) as alice:
        later = await local.endpoint("later", plugins=[WHO], heartbeat=1)

        async def heard(state: str) -> bool:
            seen = await alice.call("orch", "relay.seen")
            return ["later", state] in seen["changes"]

        await eventually(lambda: heard("online"), timeout=10, what="later online")
        assert "later" in (await alice.call("orch", "relay.seen"))["online"]
        await later.stop()
        await eventually(lambda: heard("offline"), timeout=10, what="later offline")
