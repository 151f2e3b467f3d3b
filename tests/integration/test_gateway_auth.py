"""Through the gateway a user acts with its own broker rights only (docs/security.md)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from playwright.async_api import Browser, expect

from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_protocol import Event, naming
from tests.testkit.sse import frames, take

from .endpoints import EndpointProcess
from .gateway_kit import GatewayProcess, browser_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.rabbit


async def publish_event(url: str, endpoint: str, topic: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        exchange = await (await connection.channel()).get_exchange(naming.EVENT_EXCHANGE)
        body = Event(endpoint=endpoint, plugin="testkit", topic=topic, data={})
        key = naming.event_routing_key(endpoint, "testkit", topic)
        await exchange.publish(aio_pika.Message(body.to_bytes()), key)


@pytest.fixture
async def world(broker: Any, vhost: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Endpoints a-<tag> and b-<tag>; client c-<tag> is granted a only; a gateway."""
    tag = secrets.token_hex(2)
    a, b, c = f"a-{tag}", f"b-{tag}", f"c-{tag}"
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    result = await prov.provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(a), EndpointSpec(b)],
            clients=[ClientSpec(c, [a], pools=[f"p-{tag}"])],
            responder_user=f"responder-{tag}",
        )
    )
    url = {name: cred.url(broker.amqp_url(), vhost) for name, cred in result.credentials.items()}
    procs = [
        await EndpointProcess(ep, url[ep], tmp_path / ep, allowed_users=[c]).start()
        for ep in (a, b)
    ]
    gateway = await GatewayProcess(broker.amqp_url(vhost), tmp_path / "gateway.log").start()
    try:
        yield {
            "a": a,
            "b": b,
            "pool": f"p-{tag}",
            "user": c,
            "password": result.credentials[c].password,
            "gateway": gateway,
            "admin_url": broker.amqp_url(vhost),
            "management": broker.management,
            "vhost": vhost,
        }
    finally:
        gateway.stop()
        for proc in procs:
            await proc.stop()
        for name in result.credentials:
            broker.management.delete_user(name)


async def test_a_user_sees_and_calls_only_granted_endpoints(world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    auth = (world["user"], world["password"])
    async with httpx.AsyncClient(base_url=world["gateway"].base, auth=auth, timeout=30) as http:
        assert (await http.get("/api/whoami")).json() == {
            "user": world["user"],
            "follows_all": True,  # every endpoint of the user's directory, without naming it
            "directory": True,
        }
        listed = (await http.get("/api/directory")).json()
        pool = world["pool"]
        assert [(e["endpoint"], e["state"]) for e in listed] == [(a, "online"), (pool, "offline")]
        assert set((await http.get("/api/endpoints")).json()) == {a}
        ok = await http.post(f"/api/{a}/testkit/echo", json={"value": 1})
        assert ok.json() == {"v": 1, "ok": True, "result": {"value": 1}}
        refused = await http.post(f"/api/{b}/testkit/echo", json={"value": 1})
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "NOT_AUTHORIZED")
        assert (await http.get(f"/events?endpoint={b}")).status_code == 403
        async with http.stream("GET", "/events") as response:  # the directory's endpoints
            stream = frames(response)
            await take(stream, 1, "hello")
            await publish_event(world["admin_url"], b, "secret")  # B's event, by the admin
            await http.post(f"/api/{a}/testkit/emit", json={"topic": "mine"})
            seen = []
            async with asyncio.timeout(20):
                async for frame in stream:
                    seen.append(frame)
                    if frame.data["topic"] == "mine":
                        break
        assert {f.data["endpoint"] for f in seen} == {a}  # nothing of B, presence included
        again = await http.post(f"/api/{a}/testkit/echo", json={"value": 2})
        assert again.status_code == 200  # the refused call did not break the user's session


async def test_a_restricted_user_follows_granted_endpoints_in_the_explorer(
    world: dict[str, Any], browser: Browser
) -> None:
    page = await browser.new_page()
    await page.goto(world["gateway"].base + "/")
    await page.fill("#login-form [name=user]", world["user"])
    await page.fill("#login-form [name=password]", world["password"])
    await page.click("#login-form button[type=submit]")
    # the directory lists the granted endpoint at once: nothing to type
    await expect(page.locator("#status")).to_have_text("live")
    granted = page.locator(f"#endpoints li[data-endpoint={world['a']}]")
    await expect(granted.locator(".dot.online")).to_be_visible()
    await expect(page.locator("#follow")).to_be_hidden()
    await expect(page.locator("#overview")).to_contain_text(world["a"])
    pool = page.locator("#pools tr", has_text=world["pool"])  # a pool with no member yet
    await expect(pool).to_contain_text("offline")
    legend = page.locator(f"#chart-pools .legend [data-series='{world['pool']} backlog']")
    await expect(legend).to_have_text(f"{world['pool']} backlog 0")
    await expect(page.locator(f"#endpoints li[data-endpoint={world['b']}]")).to_have_count(0)
    await page.click("#logout")  # the next login makes a new session
    await expect(page.locator("#login-form")).to_be_visible()
    await page.close()

    # a user the broker keeps no directory for names the endpoints to follow
    world["management"].delete_queue(world["vhost"], naming.directory_queue(world["user"]))
    page = await browser.new_page()
    await page.goto(world["gateway"].base + "/")
    await page.fill("#login-form [name=user]", world["user"])
    await page.fill("#login-form [name=password]", world["password"])
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#status")).to_have_text("follow an endpoint")
    follow = page.locator("#follow")
    await follow.locator("[name=endpoint]").fill(world["b"])
    await follow.locator("button").click()
    await expect(page.locator("#follow-error")).to_contain_text("NOT_AUTHORIZED")
    await follow.locator("[name=endpoint]").fill(world["a"])
    await follow.locator("button").click()
    await expect(page.locator("#status")).to_have_text("live")
    entry = page.locator(f"#endpoints li[data-endpoint={world['a']}]")
    await expect(entry.locator("a", has_text="testkit")).to_be_visible()
    await expect(page.locator(f"#endpoints li[data-endpoint={world['b']}]")).to_have_count(0)
