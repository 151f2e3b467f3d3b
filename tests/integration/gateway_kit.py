"""A gateway subprocess (``orbit gateway``) and the Chromium fixture for the gateway tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from orbit_broker.local import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ORBIT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).is_file()
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(name="browser")
async def browser_fixture() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium", pytrace=False)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


class GatewayProcess:
    """``python -m orbit_cli gateway --url URL --port N`` with its log in ``log_path``."""

    def __init__(
        self, url: str, log_path: Path, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.url, self.log_path, self.extra = url, log_path, extra
        self.env = env
        self.port = free_port()
        scheme = "https" if {"--tls-cert", "--ssl-certfile"} & set(extra) else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30) -> GatewayProcess:
        args = ["gateway", "--url", self.url, "--port", str(self.port), *self.extra]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orbit_cli", *args],
                cwd=ROOT,
                stdout=log,
                stderr=log,
                env=self.env,
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base, verify=False) as http:
            while True:
                try:
                    if (await http.get("/asyncapi.json")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway did not start:\n{self.log()}")
                await asyncio.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def log_in(page: Page, base: str, user: str, password: str) -> None:
    await page.goto(base + "/")
    await page.fill("#login-form [name=user]", user)
    await page.fill("#login-form [name=password]", password)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#status")).to_have_text("live", timeout=15_000)


@dataclass
class Explorer:
    """A gateway process and a logged-in Chromium page on it; ``errors``: the page's."""

    gateway: GatewayProcess
    page: Page
    errors: list[str]


@contextlib.asynccontextmanager
async def explorer(
    browser: Browser, amqp_url: str, broker: Any, log: Path, height: int = 860
) -> AsyncIterator[Explorer]:
    """Start a gateway, open a page, log in as the broker's admin; stop it all at the end."""
    gateway = await GatewayProcess(amqp_url, log).start()
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, gateway.base, broker.user, broker.password)
        yield Explorer(gateway, page, errors)
        await page.close()
    finally:
        gateway.stop()
