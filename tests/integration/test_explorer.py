"""The Explorer UI in a real headless Chromium (Debian ``chromium`` driven by playwright)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from .conftest import StartEndpoint
from .gateway_kit import GatewayProcess, browser_fixture, log_in  # noqa: F401 (fixture)

pytestmark = pytest.mark.rabbit

SHOTS = Path(os.environ.get("ORBIT_SCREENSHOT_DIR", "/tmp"))


async def shoot(page: Page, name: str, centre: str | None = None) -> None:
    await page.locator("main").evaluate("m => m.scrollTo(0, 0)")
    if centre:
        await page.locator(centre).evaluate("e => e.scrollIntoView({block: 'center'})")
    await page.screenshot(path=str(SHOTS / name))


async def test_explorer_end_to_end(
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
        await log_in(page, gateway.base, broker.user, broker.password)
        # the endpoint starts after the login: its presence makes it appear live
        await start_endpoint("ep1", plugins=["tests.testkit.plugin:KitPlugin", "sysinfo"])
        entry = page.locator("#endpoints li[data-endpoint=ep1]")
        await expect(entry.locator(".dot.online")).to_be_visible(timeout=15_000)

        await entry.locator("a", has_text="testkit").click()
        await expect(page).to_have_url(gateway.base + "/#/ep1/testkit")
        echo = page.locator("#op-echo")
        await echo.locator("[name=value]").fill('"hello from chromium"')
        await echo.locator("button[type=submit]").click()
        await expect(echo.locator("pre.result.ok")).to_contain_text("hello from chromium")
        await shoot(page, "orbit-explorer-testkit.png", "#op-echo")

        emit = page.locator("#op-emit")
        await emit.locator("[name=topic]").fill("ui_test")
        await emit.locator("button[type=submit]").click()
        await expect(page.locator(".toast", has_text="ep1.testkit: ui_test")).to_be_visible()

        failed = page.locator("#op-fail")
        await failed.locator("[name=kind]").select_option("not_found")
        await failed.locator("button[type=submit]").click()
        await expect(failed.locator("pre.result.fail")).to_contain_text("NOT_FOUND")

        await page.goto(gateway.base + "/#/events")
        await expect(page.locator("#log li", has_text="ep1.testkit.ui_test")).to_be_visible()

        await page.goto(gateway.base + "/#/ep1/sysinfo")  # deep link
        await expect(page.locator("#card-cpu")).to_be_visible(timeout=20_000)
        await expect(page.locator("#card-memory")).to_contain_text("GiB")
        await shoot(page, "orbit-explorer-sysinfo.png")
        assert errors == []
        await page.close()
    finally:
        gateway.stop()
