"""A third-party plugin distribution (``examples/orbit-hello``) installed beside Orbit adds an
operation, an ``orbit`` command and an Explorer page, all through entry points.

The package is installed with pip into a directory of its own (not into the suite's venv),
and every process that should see it gets that directory on ``PYTHONPATH``: the endpoint,
the ``orbit`` CLI and the gateway, which a real Chromium then drives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.testkit.cli import Ran, orbit_sync

from .conftest import StartEndpoint
from .gateway_kit import ROOT, GatewayProcess, browser_fixture, log_in  # noqa: F401 (fixture)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
EXAMPLE = ROOT / "examples" / "orbit-hello"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``pip install`` the example into a fresh directory; nothing else sees it."""
    target = tmp_path_factory.mktemp("orbit-hello-site")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(target), str(EXAMPLE)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    assert list(target.glob("orbit_hello-*.dist-info/entry_points.txt"))
    yield target


def env_with(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}


def orbit(site: Path, *args: str) -> Ran:
    return orbit_sync(env_with(site), *args)


def test_without_the_package_orbit_knows_nothing_of_hello() -> None:
    out = orbit_sync(None, "--help")
    assert out.rc == 0 and "hello" not in out.stdout


async def test_the_example_adds_an_operation_a_command_and_a_page(
    site: Path,
    start_endpoint: StartEndpoint,
    amqp_url: str,
    broker: Any,
    browser: Browser,
    tmp_path: Path,
) -> None:
    await start_endpoint("ep1", plugins=["hello"], pythonpath=[site])

    # the CLI command, from the orbit.cli entry point
    assert "hello" in orbit(site, "--help").stdout
    out = orbit(site, "hello", "greet", "ep1", "Ada", "--json", "--url", amqp_url)
    assert out.rc == 0, out.stderr
    assert json.loads(out.stdout) == {"text": "Hello, Ada!", "endpoint": "ep1", "count": 1}
    shout = orbit(site, "hello", "greet", "ep1", "Bo", "--shout", "--url", amqp_url)
    assert shout.rc == 0 and "HELLO, BO!" in shout.stdout and "greeting 2" in shout.stdout
    bad = orbit(site, "call", "ep1", "hello.greet", "name=", "--url", amqp_url)
    assert bad.rc != 0 and "INVALID_ARGS" in bad.stderr + bad.stdout

    # the Explorer page, from the orbit.explorer entry point
    gateway = GatewayProcess(amqp_url, tmp_path / "gateway.log", env=env_with(site))
    await gateway.start()
    try:
        async with httpx.AsyncClient(base_url=gateway.base) as http:
            assert "hello" in (await http.get("/api/pages")).json()
            script = await http.get("/pages/hello.js")
            assert script.status_code == 200 and "export default" in script.text
            assert (await http.get("/pages/nope.js")).status_code == 404
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, gateway.base, broker.user, broker.password)
        await page.goto(f"{gateway.base}/#/ep1/hello")
        await page.fill("#hello-name", "Cy")
        await page.click("#hello-greet")
        await expect(page.locator("#hello-answer")).to_have_text("Hello, Cy!", timeout=15_000)
        await expect(page.locator("#hello-events li").first).to_contain_text("greeted Cy")
        assert errors == []
    finally:
        gateway.stop()
