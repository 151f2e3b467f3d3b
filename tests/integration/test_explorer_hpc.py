"""Explorer pages backed by outer fakes: queue_info on fake Slurm commands, Globus on a fake API."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from ..fakes.globus_api import FakeTransfer
from .conftest import StartEndpoint
from .gateway_kit import GatewayProcess, browser_fixture, log_in  # noqa: F401 (fixture)
from .test_explorer import shoot

pytestmark = pytest.mark.rabbit

FAKES = Path(__file__).resolve().parents[1] / "fakes"
LOCAL = "11111111-2222-3333-4444-555555555555"
REMOTE = "99999999-8888-7777-6666-555555555555"


@pytest.fixture
def token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def fakes(token: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeTransfer]:
    monkeypatch.setenv("PATH", f"{FAKES / 'slurm'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "fake-slurm"))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with FakeTransfer(token, duration=1.0) as service:
        monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", service.url)
        yield service


async def test_queue_info_and_globus_pages(
    browser: Browser,
    amqp_url: str,
    broker: Any,
    start_endpoint: StartEndpoint,
    fakes: FakeTransfer,
    token: str,
    tmp_path: Path,
) -> None:
    globus = {"transfer_base_url": fakes.url, "max_retries": 0, "poll_interval": 0.3}
    await start_endpoint(
        "hpc",
        plugins=["queue_info", "globus"],
        plugin_settings={"globus": {**globus, "local_collection": LOCAL}},
    )
    gateway = await GatewayProcess(amqp_url, tmp_path / "gateway.log").start()
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, gateway.base, broker.user, broker.password)

        await page.goto(gateway.base + "/#/hpc/queue_info")
        await expect(page.locator("#qi-backend")).to_have_text("batch system: slurm")
        queues = page.locator("#qi-queues")
        await expect(queues.locator("tr", has_text="debug (default)")).to_have_count(1)
        regular = queues.locator("tr", has_text="regular")
        await expect(regular).to_contain_text("/ 100")  # nodes idle / total
        await expect(page.locator("#qi-allocations")).not_to_have_text("…")
        await shoot(page, "explorer-queues.png")

        await page.goto(gateway.base + "/#/hpc/globus")
        await expect(page.locator("#globus-tasks")).to_contain_text("NOT_AUTHORIZED")
        reg = page.locator("#globus-register")
        await reg.locator("[name=access_token]").fill(token)
        await reg.locator("button[type=submit]").click()
        await expect(page.locator("#globus-tasks")).to_contain_text("no transfers")
        assert await reg.locator("[name=access_token]").input_value() == ""
        form = page.locator("#transfer-form")
        await form.locator("[name=source]").fill("local")
        await form.locator("[name=destination]").fill(REMOTE)
        await form.locator("[name=src]").fill("/~/in/")
        await form.locator("[name=dst]").fill("/data/in/")
        await form.locator("[name=recursive]").check()
        await form.locator("[name=label]").fill("from the explorer")
        await form.locator("button[type=submit]").click()
        row = page.locator("#globus-tasks tr", has_text="from the explorer")
        await expect(row).to_have_count(1)
        await expect(row.locator(".badge")).to_have_text("SUCCEEDED", timeout=20_000)  # by event
        body = [b for _, path, b in fakes.requests if path == "/v0.10/transfer"][-1]
        assert body["DATA"][0]["recursive"] is True and body["destination_endpoint"] == REMOTE
        await expect(page.locator("#endpoints li[data-endpoint=hpc] .dot.online")).to_be_visible()
        await shoot(page, "explorer-globus.png", "#globus-tasks")
        assert errors == []
        await page.close()
    finally:
        gateway.stop()
