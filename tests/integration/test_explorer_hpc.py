"""Explorer pages backed by outer fakes: queue_info on fake Slurm commands, Globus on a fake API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from ..fakes.globus_api import FakeTransfer
from .conftest import StartEndpoint
from .gateway_kit import browser_fixture, explorer  # noqa: F401 (fixture)
from .test_child_endpoints import SCANCEL
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
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    globus = {"transfer_base_url": fakes.url, "max_retries": 0, "poll_interval": 0.3}
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # the endpoint runs inside a (fake) batch job
    await start_endpoint(
        "hpc",
        plugins=["queue_info", "globus"],
        plugin_settings={"globus": {**globus, "local_collection": LOCAL}},
    )
    async with explorer(browser, amqp_url, broker, tmp_path / "gateway.log", 860) as ui:
        page, gateway = ui.page, ui.gateway

        await page.goto(gateway.base + "/#/hpc/queue_info")
        await expect(page.locator("#qi-backend")).to_have_text("batch system: slurm")
        queues = page.locator("#qi-queues")
        await expect(queues.locator("tr", has_text="debug (default)")).to_have_count(1)
        regular = queues.locator("tr", has_text="regular")
        await expect(regular).to_contain_text("/ 100")  # nodes idle / total
        await expect(page.locator("#qi-allocations")).not_to_have_text("…")
        job = page.locator("#qi-job")  # the node-allocation card of the endpoint's own job
        await expect(job).to_contain_text("4242 (orbit-ep)")
        await expect(job.locator(".node")).to_have_text(["nid001", "nid002"])
        await expect(job).to_contain_text("1 min of 30 min")
        await shoot(page, "explorer-queues.png")

        await page.goto(gateway.base + "/#/hpc/globus")
        await expect(page.locator("#globus-tasks")).to_contain_text("NOT_AUTHORIZED")
        reg = page.locator("#globus-register")
        await reg.locator("[name=access_token]").fill(token)
        await reg.locator("button[type=submit]").click()
        await expect(page.locator("#globus-tasks")).to_contain_text("no transfers")
        assert await reg.locator("[name=access_token]").input_value() == ""
        form = page.locator("#transfer-form")
        # the collection browser: search, walk into a directory, pick a file as the source
        search = page.locator("#globus-search")
        await search.locator("[name=filter_text]").fill("lab")
        await search.locator("button[type=submit]").click()
        await page.locator("#globus-found tr", has_text="lab collection").click()
        entries = page.locator("#globus-entries")
        await expect(entries.locator("tr", has_text="a.txt")).to_contain_text("12 B")
        await entries.locator("tr", has_text="data/").click()
        await expect(page.locator("#globus-where")).to_contain_text(": /~/data/")
        await entries.locator("tr", has_text="run1.h5").click()
        await page.locator("#globus-use-source").click()
        await expect(form.locator("[name=src]")).to_have_value("/~/data/run1.h5")
        await expect(form.locator("[name=source]")).not_to_have_value("")
        await page.locator("#globus-use-destination").click()
        await expect(form.locator("[name=dst]")).to_have_value("/~/data/")
        listed = [p for _, p, _ in fakes.requests if p.endswith("/ls")]
        assert len(listed) == 2, listed
        await shoot(page, "explorer-globus-browser.png", "#globus-listing")
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
        assert ui.errors == []


async def test_psij_forms_prefilled_from_queue_info_and_a_child_launched(
    browser: Browser,
    amqp_url: str,
    broker: Any,
    start_endpoint: StartEndpoint,
    fakes: FakeTransfer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The job form takes executor, queues and the default queue from queue_info, sends
    environment rows and custom attributes into the batch script; a child endpoint launched
    from the page comes online in the sidebar and goes when its job is cancelled."""
    slurm = tmp_path / "fake-slurm" / "jobs"
    creds, bin_dir = tmp_path / "children", tmp_path / "bin"
    creds.mkdir()
    bin_dir.mkdir()
    (bin_dir / "scancel").write_text(SCANCEL % (FAKES / "slurm" / "scancel"))  # SIGTERM first
    (bin_dir / "scancel").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (creds / "kid.url").write_text(amqp_url)
    (creds / "kid.url").chmod(0o600)
    psij = {"slurm_polling_interval": 1, "children": {"credentials_dir": str(creds)}}
    await start_endpoint(
        "hpc", plugins=["queue_info", "psij"], plugin_settings={"psij": psij}, heartbeat=2
    )
    try:
        async with explorer(browser, amqp_url, broker, tmp_path / "gateway.log", 1100) as ui:
            page, gateway = ui.page, ui.gateway
            await page.goto(gateway.base + "/#/hpc/psij")
            await expect(page.locator("#job-prefill")).to_contain_text("from queue_info: slurm")
            form = page.locator("#job-form")
            await expect(form.locator("[name=queue_name]")).to_have_value("debug")  # the default
            await expect(form.locator("[name=executor]")).to_have_value("slurm")
            await expect(form.locator("#job-queues option")).to_have_count(3)
            await form.locator("[name=executable]").fill("/bin/echo")
            await form.locator("[name=arguments]").fill("hi")
            await form.locator("#job-env button", has_text="environment variable").click()
            await form.locator("#job-env [name=key]").fill("ORBIT_UI_VAR")
            await form.locator("#job-env [name=value]").fill("from-the-form")
            await form.locator("#job-custom button", has_text="custom attribute").click()
            await form.locator("#job-custom [name=key]").fill("slurm.constraint")
            await form.locator("#job-custom [name=value]").fill("a100")
            await shoot(page, "explorer-psij-form.png", "#job-form")
            await form.locator("button[type=submit]").click()
            await expect(page.locator("#job-monitor .state .badge")).to_be_visible(timeout=20_000)
            script = await _first_script(slurm)
            assert '#SBATCH --partition="debug"' in script, script
            assert '#SBATCH --constraint="a100"' in script, script
            assert "ORBIT_UI_VAR" in script and "from-the-form" in script, script

            child = page.locator("#child-launch")
            await child.locator("summary").click()
            cform = child.locator("#child-form")
            await expect(cform.locator("[name=queue_name]")).to_have_value("debug")
            await cform.locator("[name=name]").fill("kid")
            await cform.locator("button[type=submit]").click()
            await expect(child.locator("pre.result.ok")).to_contain_text("child kid in job")
            kid = page.locator("#endpoints li[data-endpoint=kid]")
            await expect(kid.locator(".dot.online")).to_be_visible(timeout=60_000)
            await page.locator("#job-cancel").click()  # the monitor shows the child's job
            await expect(kid).to_have_attribute("data-state", "offline", timeout=30_000)
            assert ui.errors == []
    finally:
        _kill_jobs(slurm)


async def _first_script(jobs: Path) -> str:
    for _ in range(100):
        if script := _script(jobs):
            return script
        await asyncio.sleep(0.2)
    raise AssertionError(f"no batch script under {jobs}")


def _script(jobs: Path) -> str | None:
    found = sorted(jobs.glob("*.job")) if jobs.exists() else []
    return found[0].read_text() if found else None


def _kill_jobs(jobs: Path) -> None:
    """Whatever the fake sbatch started and the test did not cancel."""
    for pid in jobs.glob("*.pid") if jobs.exists() else []:
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.killpg(int(pid.read_text()), signal.SIGKILL)
