"""The Explorer's connection status and auto-reconnect across a gateway restart (real Chromium).

Sessions live in gateway memory (``orbit_gateway/auth.py``): a restarted gateway no longer
knows the browser's ``orbit_session`` cookie. The designed behaviour is therefore:

* while the gateway is down the status says ``reconnecting…`` (``EventSource`` retries by itself);
* once it is back, the stream is refused (401), the Explorer notices by itself (no page reload)
  and shows the login form with a "session ended" message;
* after logging in again the status is ``live`` on the same page and new events arrive.

A dropped connection to a gateway that stays up (a TCP proxy between browser and gateway is
stopped and started again on the same port) keeps the session: the Explorer goes back to ``live``
by itself and ``Last-Event-ID`` replays the event emitted while the browser was cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from orbit_broker.local import free_port

from .conftest import StartEndpoint
from .gateway_kit import GatewayProcess, browser_fixture, log_in  # noqa: F401 (fixture)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
HOME = str(Path.home())


class TcpProxy:
    """``127.0.0.1:port`` → ``127.0.0.1:target``; ``stop`` resets every open connection."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self.writers |= pair
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.writers -= pair

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()


async def emit(gateway: GatewayProcess, broker: Any, topic: str) -> None:
    """``testkit.emit`` through the gateway's JSON RPC (HTTP Basic, the same user)."""
    auth = (broker.user, broker.password)
    async with httpx.AsyncClient(base_url=gateway.base, auth=auth, timeout=30) as http:
        reply = await http.post("/api/ep1/testkit/emit", json={"topic": topic})
    assert reply.status_code == 200, reply.text
    assert reply.json()["ok"], reply.text


async def test_explorer_reconnects_after_gateway_restart(
    browser: Browser,
    amqp_url: str,
    broker: Any,
    start_endpoint: StartEndpoint,
    tmp_path: Path,
) -> None:
    gateway = await GatewayProcess(amqp_url, tmp_path / "gateway.log").start()
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, gateway.base, broker.user, broker.password)  # status "live"
        status = page.locator("#status")
        await expect(status).to_have_class(re.compile(r"\bon\b"))
        plugins = ["tests.testkit.plugin:KitPlugin", "tasks", "sysinfo", "psij", "staging"]
        await start_endpoint("ep1", plugins=[*plugins, "queue_info"])
        entry = page.locator("#endpoints li[data-endpoint=ep1]")
        await expect(entry.locator(".dot.online")).to_be_visible(timeout=15_000)
        await page.goto(gateway.base + "/#/ep1/sysinfo")  # its chart's history is the tab's
        await expect(page.locator("#chart-sysinfo .legend [data-series=cpu]")).to_contain_text("%")
        await page.locator("#page").evaluate(
            """() => fetch("api/ep1/tasks/submit_tasks", {method: "POST",
                 headers: {"Content-Type": "application/json"},
                 body: JSON.stringify({tasks: [{executable: "/bin/true"}]})})"""
        )
        work = entry.locator("li.work[data-batch]")
        await expect(work.locator(".badge")).to_have_text("DONE", timeout=20_000)
        await page.goto(gateway.base + "/#/events")  # a hash change: the same document
        await emit(gateway, broker, "before_restart")
        log = page.locator("#log li")
        await expect(log.filter(has_text="ep1.testkit.before_restart")).to_be_visible()
        # a marker on the window: it must survive everything below (no page reload)
        await page.evaluate("window.__orbitNoReload = true")

        gateway.stop()  # SIGTERM; uvicorn ends the SSE streams
        await expect(status).to_have_text("reconnecting…", timeout=15_000)
        await expect(status).to_have_class(re.compile(r"\bwait\b"))

        await gateway.start()  # the same port
        # the old cookie names a session the new process never had: login again, said plainly
        await expect(page.locator("#login")).to_be_visible(timeout=20_000)
        await expect(page.locator("#main")).to_be_hidden()
        await expect(page.locator("#login-error")).to_contain_text("session ended")
        await expect(status).to_have_text("logged out")
        assert await page.evaluate("window.__orbitNoReload === true")

        await page.fill("#login-form [name=user]", broker.user)
        await page.fill("#login-form [name=password]", broker.password)
        await page.click("#login-form button[type=submit]")
        await expect(status).to_have_text("live", timeout=15_000)
        await expect(page.locator("#login-error")).to_have_text("")
        await expect(entry.locator(".dot.online")).to_be_visible(timeout=15_000)
        await emit(gateway, broker, "after_restart")
        await expect(page.locator(".toast", has_text="ep1.testkit: after_restart")).to_be_visible()
        await expect(log.filter(has_text="ep1.testkit.after_restart")).to_be_visible()
        # the new session's pages: the sidebar's work, the overview, the charts' history
        await expect(work.locator(".badge")).to_have_text("DONE", timeout=20_000)
        await page.goto(gateway.base + "/#/")
        await expect(page.locator("#overview tr", has_text="ep1").locator(".badge")).to_have_text(
            "online"
        )
        await page.goto(gateway.base + "/#/ep1/sysinfo")
        points = page.locator("#chart-sysinfo polyline[data-series=cpu]")
        await expect(points).to_have_attribute("points", re.compile(r"\S+ \S+"), timeout=15_000)
        # and every other page of the endpoint works in the new session
        await page.goto(gateway.base + "/#/ep1/tasks")
        await expect(page.locator("#tasks-list tr", has_text="DONE")).to_have_count(1)
        await page.goto(gateway.base + "/#/ep1/psij")
        await expect(page.locator("#psij-jobs")).to_have_text("no jobs yet")
        await page.goto(gateway.base + "/#/ep1/queue_info")
        await expect(page.locator("#qi-backend")).to_have_text("batch system: none")
        await page.goto(gateway.base + "/#/ep1/staging")
        # the staging page opens the user's home directory
        await expect(page.locator("#staging-list")).to_have_attribute("data-path", HOME)
        await expect(page.locator("#staging-list tr", has_text="name")).to_have_count(1)
        await page.goto(gateway.base + "/#/ep1/testkit")
        echo = page.locator("#op-echo")
        await echo.locator("[name=value]").fill('"after the restart"')
        await echo.locator("button[type=submit]").click()
        await expect(echo.locator("pre.result.ok")).to_contain_text("after the restart")
        await page.goto(gateway.base + "/#/ep1")
        await expect(page.locator("#page")).to_contain_text("platform")
        assert await page.evaluate("window.__orbitNoReload === true"), "the page was reloaded"
        assert errors == []
        await page.close()
    finally:
        gateway.stop()


async def test_explorer_reconnects_by_itself_after_a_dropped_connection(
    browser: Browser,
    amqp_url: str,
    broker: Any,
    start_endpoint: StartEndpoint,
    tmp_path: Path,
) -> None:
    gateway = await GatewayProcess(amqp_url, tmp_path / "gateway.log").start()
    proxy = TcpProxy(gateway.port)
    await proxy.start()
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, proxy.base, broker.user, broker.password)
        status = page.locator("#status")
        await start_endpoint("ep1", plugins=["tests.testkit.plugin:KitPlugin"])
        entry = page.locator("#endpoints li[data-endpoint=ep1]")
        await expect(entry.locator(".dot.online")).to_be_visible(timeout=15_000)
        await page.goto(proxy.base + "/#/events")
        log = page.locator("#log li")
        await emit(gateway, broker, "before_drop")
        await expect(log.filter(has_text="ep1.testkit.before_drop")).to_be_visible()
        await page.evaluate("window.__orbitNoReload = true")

        await proxy.stop()  # the gateway (and the session) stay; the browser is cut off
        await expect(status).to_have_text("reconnecting…", timeout=15_000)
        await emit(gateway, broker, "while_cut_off")  # kept in the user's ring buffer
        await asyncio.sleep(3)  # at least one refused reconnect attempt (retry: 2 s)
        await expect(status).to_have_text("reconnecting…")

        await proxy.start()  # the same port
        await expect(status).to_have_text("live", timeout=20_000)  # by itself
        # Last-Event-ID replays what was missed, once
        await expect(log.filter(has_text="ep1.testkit.while_cut_off")).to_have_count(1)
        await emit(gateway, broker, "after_reconnect")
        await expect(log.filter(has_text="ep1.testkit.after_reconnect")).to_be_visible()
        await expect(log.filter(has_text="ep1.testkit.before_drop")).to_have_count(1)
        await expect(page.locator("#login")).to_be_hidden()
        assert await page.evaluate("window.__orbitNoReload === true"), "the page was reloaded"
        assert errors == []
        await page.close()
    finally:
        await proxy.stop()
        gateway.stop()
