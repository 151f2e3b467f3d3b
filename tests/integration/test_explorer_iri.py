"""The Explorer page of the ``iri`` plugins in real Chromium, against the fake IRI Facility API:
pick a facility, connect (a wrong token first), the facility's tables, a job followed by
``job_status`` events to its end, another cancelled, disconnect."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, expect

from orbit_broker.ports import free_port

from ..fakes.iri_api import FakeIri
from .conftest import StartEndpoint
from .gateway_kit import browser_fixture, explorer  # noqa: F401 (fixture)
from .test_explorer import shoot

pytestmark = pytest.mark.rabbit

EP = "iri-gw"
EVENTS = 20_000  # ms for a state change to arrive by job_status event (the poller runs every 0.2 s)


@pytest.fixture
def token() -> str:
    return "iri-" + secrets.token_hex(16)


@pytest.fixture
def fake(token: str) -> Iterator[FakeIri]:
    # jobs stay active until the test moves them on (active_for), so no state is missed
    with FakeIri(token, queued_for=0.5, active_for=600) as service:
        yield service


def facilities_file(tmp_path: Path, fake: FakeIri) -> Path:
    down = f"http://127.0.0.1:{free_port()}/api/v1"  # nobody listens: a facility that is down
    config = tmp_path / "facilities.toml"
    config.write_text(
        f'[facilities.nersc]\nlabel = "NERSC"\nurl = "{fake.url}"\nauth = "a test token"\n\n'
        f'[facilities.olcf]\nlabel = "OLCF"\nurl = "{down}"\nauth = "OLCF S3M token"\n'
    )
    return config


def files_holding(root: Path, text: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


async def test_iri_page_connect_tables_jobs_events_cancel(
    browser: Browser,
    amqp_url: str,
    broker: Any,
    start_endpoint: StartEndpoint,
    fake: FakeIri,
    token: str,
    tmp_path: Path,
) -> None:
    settings = {
        "iri_connect": {"config": str(facilities_file(tmp_path, fake)), "timeout": 5},
        "iri": {"poll_interval": 0.2},
    }
    await start_endpoint(EP, plugins=["iri_connect", "iri"], plugin_settings=settings)
    async with explorer(browser, amqp_url, broker, tmp_path / "gateway.log", 1000) as ui:
        page, gateway, errors = ui.page, ui.gateway, ui.errors

        def on_console(msg: ConsoleMessage) -> None:  # page handlers' exceptions end up here
            if msg.type == "error" and "Failed to load resource" not in msg.text:
                errors.append(msg.text)

        page.on("console", on_console)
        await page.goto(f"{gateway.base}/#/{EP}/iri")

        # ---- the facility picker, before any connection
        facilities = page.locator("#iri-facilities")
        nersc = facilities.locator("tr", has_text="nersc")
        olcf = facilities.locator("tr", has_text="olcf")
        await expect(nersc).to_contain_text("NERSC")
        await expect(nersc).to_contain_text(fake.url)
        await expect(nersc.locator(".badge")).to_have_text("not connected")
        await expect(olcf.locator(".badge")).to_have_text("not connected")
        await expect(page.locator("#iri-site")).to_contain_text("NERSC (nersc)")
        await expect(page.locator("#iri-resources")).to_contain_text("not connected to NERSC")
        await olcf.click()
        await expect(page.locator("#iri-site")).to_contain_text("OLCF S3M token")
        await expect(page.locator("#iri-projects")).to_contain_text("not connected to OLCF")
        assert page.url.endswith("?site=olcf")
        await nersc.click()
        await expect(page.locator("#iri-site")).to_contain_text("NERSC (nersc)")

        # ---- connect: a wrong token is refused visibly, the right one is taken; neither stays
        connect = page.locator("#iri-connect")
        secret = connect.locator("[name=token]")
        assert await secret.get_attribute("type") == "password"
        result = page.locator("#iri-connect-result")
        await secret.fill("wrong-" + secrets.token_hex(8))
        await connect.locator("button[type=submit]").click()
        await expect(result).to_contain_text(
            "[NOT_AUTHORIZED] NERSC GET /account/projects: HTTP 401"
        )
        await expect(result).to_have_class("result fail")
        assert await secret.input_value() == ""
        await expect(nersc.locator(".badge")).to_have_text("not connected")

        await secret.fill(token)
        await connect.locator("button[type=submit]").click()
        await expect(result).to_have_text(f"connected to NERSC ({fake.url})")
        assert await secret.input_value() == ""
        await expect(nersc.locator(".badge.online")).to_have_text("connected")
        await expect(olcf.locator(".badge")).to_have_text("not connected")
        await expect(page.locator("#iri-status")).to_contain_text("connected since")

        # ---- the facility's tables, from the fake
        resources = page.locator("#iri-resources")
        await expect(resources.locator("tr", has_text="perlmutter-cpu")).to_contain_text("up")
        cfs = resources.locator("tr", has_text="Community File System")
        await expect(cfs).to_contain_text("storage")
        await expect(cfs.locator(".badge.stale")).to_have_text("degraded")
        await expect(resources.locator("tr", has_text="Broken machine")).to_contain_text("down")
        await cfs.click()
        await expect(page.locator("#iri-resource")).to_contain_text('"group": "storage"')
        incident = page.locator("#iri-incidents tr", has_text="inc-1")
        await expect(incident).to_contain_text("CFS maintenance")
        await expect(incident).to_contain_text("planned")
        await expect(incident.locator("td").last).to_have_text("cfs")
        await expect(page.locator("#iri-projects tr", has_text="m1234")).to_contain_text(
            "test project"
        )
        allocation = page.locator("#iri-allocations tr", has_text="m1234-cpu")
        await expect(allocation).to_contain_text("node_hours")
        await expect(allocation.locator("td").nth(3)).to_have_text("12.5")
        await expect(allocation.locator("td").nth(4)).to_have_text("1000")
        await expect(page.locator("#iri-jobs")).to_have_text("no jobs")
        note = page.locator("#iri-jobs-note")  # the fake's resource "broken" answers 500
        await expect(note).to_contain_text("jobs on broken: [UNAVAILABLE]")
        await expect(note).to_contain_text("HTTP 500")

        # ---- a job from the form, followed by events through queued, active, completed
        form = page.locator("#iri-job-form")
        await expect(form.locator("[name=resource_id]")).to_have_value("perlmutter-cpu")
        await expect(form.locator("[name=account]")).to_have_value("m1234")  # the only project
        await form.locator("[name=name]").fill("explorer-hello")
        await form.locator("[name=executable]").fill("/bin/hostname")
        await form.locator("[name=arguments]").fill("-s\n--long\n")
        await form.locator("[name=node_count]").fill("2")
        await form.locator("[name=duration]").fill("600")
        await form.locator("[name=queue_name]").fill("debug")
        await form.locator("#iri-env button", has_text="environment variable").click()
        await form.locator("#iri-env [name=key]").fill("ORBIT_UI_VAR")
        await form.locator("#iri-env [name=value]").fill("from-the-form")
        await form.locator("button[type=submit]").click()
        await expect(page.locator("#iri-job-result")).to_contain_text(
            "submitted job 100000 to perlmutter-cpu (queued)"
        )
        sent = [
            (h, b)
            for m, p, h, b in fake.requests
            if m == "POST" and p.endswith("/job/perlmutter-cpu")
        ]
        assert len(sent) == 1, fake.requests
        headers, body = sent[0]
        assert body == {
            "executable": "/bin/hostname",
            "name": "explorer-hello",
            "arguments": ["-s", "--long"],
            "environment": {"ORBIT_UI_VAR": "from-the-form"},
            "resources": {"node_count": 2},
            "attributes": {"duration": 600, "queue_name": "debug", "account": "m1234"},
        }
        assert headers.get("Idempotency-Key"), headers
        hello = page.locator("#iri-jobs tr", has_text="explorer-hello")
        await expect(hello).to_contain_text("/bin/hostname -s --long")
        await expect(hello.locator(".badge")).to_have_text("active", timeout=EVENTS)  # by event
        await expect(hello.locator("button", has_text="Cancel")).to_have_count(1)
        fake.active_for = 0  # let it finish
        await expect(hello.locator(".badge")).to_have_text("completed", timeout=EVENTS)
        await expect(hello).to_contain_text("finished with exit code 0")
        await expect(hello.locator("button")).to_have_count(0)  # nothing to cancel any more

        # ---- a long job, cancelled from its row
        fake.active_for = 600
        await form.locator("[name=name]").fill("explorer-long")
        await form.locator("[name=executable]").fill("/bin/sleep")
        await form.locator("[name=arguments]").fill("600")
        await form.locator("button[type=submit]").click()
        await expect(page.locator("#iri-job-result")).to_contain_text("submitted job 100001")
        long = page.locator("#iri-jobs tr", has_text="explorer-long")
        await expect(long.locator(".badge")).to_have_text("active", timeout=EVENTS)
        await long.locator("button", has_text="Cancel").click()
        await expect(long.locator(".badge")).to_have_text("canceled", timeout=EVENTS)
        await expect(long).to_contain_text("canceled by user")
        await expect(long.locator("button")).to_have_count(0)
        assert ("DELETE", "/api/v1/compute/cancel/perlmutter-cpu/100001") in [
            (m, p) for m, p, _, _ in fake.requests
        ]
        await expect(page.locator("#iri-job")).to_contain_text('"state": "canceled"')
        await hello.click()  # a job's own status
        detail = page.locator("#iri-job")
        await expect(detail).to_contain_text('"id": "100000"')
        await expect(detail).to_contain_text('"state": "completed"')
        await expect(page.locator("#iri-jobs tbody tr")).to_have_count(2)
        await shoot(page, "explorer-iri.png", "#iri-jobs")

        # a fresh listing (list_jobs, finished ones included) agrees with what events said
        jobs_card = page.locator(".card", has=page.locator("#iri-jobs"))
        await jobs_card.locator("button", has_text="Refresh").click()
        await expect(hello.locator(".badge")).to_have_text("completed")
        await expect(long.locator(".badge")).to_have_text("canceled")

        # ---- disconnect: the token is forgotten, the next call says so
        await page.locator("#iri-disconnect").click()
        await expect(result).to_contain_text("disconnected from nersc")
        await expect(nersc.locator(".badge")).to_have_text("not connected")
        await expect(page.locator("#iri-allocations")).to_contain_text("not connected to NERSC")
        await expect(page.locator("#iri-status")).to_contain_text("not connected")
        await form.locator("button[type=submit]").click()
        await expect(page.locator("#iri-job-result")).to_contain_text(
            "[NOT_AUTHORIZED] not connected to 'nersc'"
        )
        assert token not in await page.content()
        assert errors == []
    assert files_holding(tmp_path, token) == []  # gateway log, endpoint state, journal
