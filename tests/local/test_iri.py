"""The IRI plugins in an endpoint on the memory broker, against a fake facility (real HTTP)."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient, OrbitClient
from orbit_plugins.iri.client import AsyncIri, Iri
from orbit_plugins.iri.schema import Job, JobSpec
from orbit_protocol import InvalidArgs, NotAuthorized, NotFound, Unavailable
from tests.fakes.iri_api import FakeIri
from tests.local.conftest import StartEndpoint
from tests.testkit.local import LocalEndpoint

EP = "iri-ep"
CPU = "perlmutter-cpu"


@pytest.fixture
def token() -> str:
    return "iri-" + secrets.token_hex(16)


@pytest.fixture
def fake(token: str) -> Iterator[FakeIri]:
    with FakeIri(token, queued_for=1.0, active_for=1.0) as service:
        yield service


@pytest.fixture
async def ep(start_endpoint: StartEndpoint, fake: FakeIri, tmp_path: Path) -> LocalEndpoint:
    with socket.socket() as s:  # a port nobody listens on: an unreachable facility
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}/api/v1"
    config = tmp_path / "facilities.toml"
    config.write_text(
        f'[facilities.nersc]\nlabel = "NERSC"\nurl = "{fake.url}"\nauth = "test token"\n\n'
        f'[facilities.olcf]\nlabel = "OLCF"\nurl = "{down}"\n'
    )
    settings = {"iri_connect": {"config": str(config), "timeout": 5}, "iri": {"poll_interval": 0.2}}
    return await start_endpoint(EP, plugins=["iri_connect", "iri"], plugin_settings=settings)


async def iri(client: AsyncOrbitClient, method: str, **args: Any) -> Any:
    return await client.call(EP, f"iri.{method}", **args)


async def con(client: AsyncOrbitClient, method: str, **args: Any) -> Any:
    return await client.call(EP, f"iri_connect.{method}", **args)


async def test_facilities_connect_and_site_calls(
    ep: LocalEndpoint, client: AsyncOrbitClient, token: str, fake: FakeIri
) -> None:
    described = await client.call(EP, "orbit.describe")
    assert (
        described["plugins"]["iri"]["available"]
        and described["plugins"]["iri_connect"]["available"]
    )
    listed = await con(client, "list_facilities")
    assert listed["config"].endswith("facilities.toml")
    assert [(f["site"], f["label"], f["connected"]) for f in listed["facilities"]] == [
        ("nersc", "NERSC", False),
        ("olcf", "OLCF", False),
    ]
    with pytest.raises(NotAuthorized, match=r"iri_connect\.connect"):
        await iri(client, "list_resources", site="nersc")

    connected = await con(client, "connect", site="nersc", token=token)
    assert connected == {"site": "nersc", "label": "NERSC", "url": fake.url, "status": "connected"}
    assert (await con(client, "get_status", site="nersc"))["connected"] is True

    compute = await iri(client, "list_resources", site="nersc")
    assert [r["id"] for r in compute["items"]] == [CPU, "broken"]
    everything = await iri(client, "list_resources", site="nersc", resource_type=None)
    assert len(everything["items"]) == 3
    cfs = await iri(client, "get_resource", site="nersc", resource_id="cfs")
    assert (cfs["resource_type"], cfs["current_status"]) == ("storage", "degraded")
    incidents = await iri(client, "list_incidents", site="nersc")
    assert [i["name"] for i in incidents["items"]] == ["CFS maintenance"]
    assert (await iri(client, "list_incidents", site="nersc", resource_id=CPU))["items"] == []
    projects = await iri(client, "list_projects", site="nersc")
    assert [p["id"] for p in projects["items"]] == ["m1234"]
    allocations = await iri(client, "list_allocations", site="nersc", project_id="m1234")
    assert allocations["items"][0]["entries"][0]["unit"] == "node_hours"

    assert (await con(client, "disconnect", site="nersc")) == {"site": "nersc", "forgotten_jobs": 0}
    with pytest.raises(NotAuthorized):
        await iri(client, "list_projects", site="nersc")


async def test_jobs_run_to_completion_with_events_and_cancel(
    ep: LocalEndpoint, client: AsyncOrbitClient, token: str, fake: FakeIri
) -> None:
    await con(client, "connect", site="nersc", token=token)
    events = await client.subscribe(EP, "iri", "job_status")
    spec = {
        "executable": "/bin/hostname",
        "name": "hello",
        "resources": {"node_count": 1},
        "attributes": {"duration": 60, "account": "m1234", "queue_name": "debug"},
    }
    job = await iri(client, "submit_job", site="nersc", resource_id=CPU, job_spec=spec)
    assert (job["site"], job["resource_id"], job["status"]["state"]) == ("nersc", CPU, "queued")
    posted = [r for r in fake.requests if r[0] == "POST" and r[1].endswith(f"/job/{CPU}")][-1]
    assert posted[3] == spec and posted[2]["Idempotency-Key"]

    states = []
    async with asyncio.timeout(30):
        async for event in events:
            assert event.data["job_id"] == job["id"] and event.data["user"] == client.user
            assert event.data["name"] == "hello" and event.data["site"] == "nersc"
            states.append(event.data["state"])
            if event.data["state"] == "completed":
                assert event.data["exit_code"] == 0
                break
    assert states[-1] == "completed" and set(states) <= {"queued", "active", "completed"}
    assert len(states) == len(set(states))  # one event per change, none repeated
    done = await iri(client, "get_job_status", site="nersc", resource_id=CPU, job_id=job["id"])
    assert done["status"]["state"] == "completed"

    fake.active_for = math.inf
    long = await iri(client, "submit_job", site="nersc", resource_id=CPU, job_spec={"name": "x"})
    running = await iri(client, "list_jobs", site="nersc", resource_id=CPU)
    assert [j["id"] for j in running["jobs"]] == [long["id"]]
    history = await iri(client, "list_jobs", site="nersc", resource_id=CPU, historical=True)
    assert {j["id"] for j in history["jobs"]} == {job["id"], long["id"]}
    cancelled = await iri(client, "cancel_job", site="nersc", resource_id=CPU, job_id=long["id"])
    assert cancelled["cancelled"] is True
    async with asyncio.timeout(30):
        async for event in events:
            if event.data["job_id"] == long["id"] and event.data["state"] == "canceled":
                break
    status = await con(client, "get_status", site="nersc")
    assert status["watched_jobs"] == 0 and status["last_error"] is None


async def test_errors_map_to_orbit_codes(
    ep: LocalEndpoint, client: AsyncOrbitClient, token: str, fake: FakeIri
) -> None:
    with pytest.raises(NotFound, match="configured: nersc, olcf"):
        await con(client, "connect", site="alcf", token=token)
    with pytest.raises(InvalidArgs):
        await con(client, "connect", site="Not A Site", token=token)
    with pytest.raises(Unavailable, match="cannot reach OLCF"):
        await con(client, "connect", site="olcf", token=token)
    with pytest.raises(NotAuthorized, match="HTTP 401") as refused:
        await con(client, "connect", site="nersc", token="wrong-" + token)
    assert token not in refused.value.message

    await con(client, "connect", site="nersc", token=token)
    with pytest.raises(NotFound, match="Item not found"):
        await iri(client, "get_resource", site="nersc", resource_id="nope")
    with pytest.raises(NotFound, match="not found"):
        await iri(client, "get_job_status", site="nersc", resource_id=CPU, job_id="1")
    with pytest.raises(NotFound, match="Project not found"):
        await iri(client, "list_allocations", site="nersc", project_id="x")
    with pytest.raises(Unavailable, match="HTTP 500") as broken:
        await iri(client, "list_jobs", site="nersc", resource_id="broken")
    assert broken.value.details == {
        "site": "nersc",
        "http_status": 500,
        "facility_detail": "Internal Server Error",
    }
    with pytest.raises(InvalidArgs) as bad_spec:
        await iri(client, "submit_job", site="nersc", resource_id=CPU, job_spec={"colour": 1})
    assert "colour" in json.dumps(bad_spec.value.details)

    fake.token = "rotated-" + secrets.token_hex(8)  # the facility expires the old token
    with pytest.raises(NotAuthorized, match="token was refused"):
        await iri(client, "list_projects", site="nersc")
    rotated = await con(client, "connect", site="nersc", token=fake.token)
    assert rotated["status"] == "token_updated"
    assert (await iri(client, "list_projects", site="nersc"))["items"]
    assert (await client.call(EP, "orbit.ping"))["endpoint"] == EP  # still serving


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_the_token_is_in_no_file_and_no_log(
    ep: LocalEndpoint, client: AsyncOrbitClient, token: str, fake: FakeIri
) -> None:
    fake.active_for = math.inf  # the job stays watched by the poller
    await con(client, "connect", site="nersc", token=token)
    await con(client, "connect", site="nersc", token=token)  # a rotation is not written either
    job = await iri(client, "submit_job", site="nersc", resource_id=CPU, job_spec={"name": "t"})
    await iri(client, "get_job_status", site="nersc", resource_id=CPU, job_id=job["id"])
    with pytest.raises(Unavailable):
        await iri(client, "list_jobs", site="nersc", resource_id="broken")
    fake.token = "other"  # the poller and calls now hit 401s, which are logged
    with pytest.raises(NotAuthorized):
        await iri(client, "list_projects", site="nersc")
    await asyncio.sleep(0.6)  # a few poller rounds fail with 401
    await ep.stop()
    log = ep.log_path.read_text()
    assert "connected to IRI site nersc" in log and "polling IRI job" in log  # the log is real
    assert token not in log
    assert list(ep.state_dir.rglob("journal.sqlite*"))  # the journal exists and was searched
    assert files_containing(ep.state_dir, token.encode()) == []


async def test_typed_clients_return_models(
    ep: LocalEndpoint, client: AsyncOrbitClient, token: str, fake: FakeIri, amqp_url: str
) -> None:
    typed = AsyncIri(client, EP)
    assert [f.site for f in (await typed.facilities()).facilities] == ["nersc", "olcf"]
    assert (await typed.connect("nersc", token)).status == "connected"
    assert (await typed.status("nersc")).connected
    assert [r["id"] for r in await typed.resources("nersc")] == [CPU, "broken"]
    assert len(await typed.resources("nersc", resource_type=None)) == 3
    assert (await typed.resource("nersc", "cfs"))["resource_type"] == "storage"
    assert [p["id"] for p in await typed.projects("nersc")] == ["m1234"]
    assert (await typed.allocations("nersc", "m1234"))[0]["entries"]
    job = await typed.submit_job("nersc", CPU, JobSpec(executable="/bin/hostname", name="t"))
    assert isinstance(job, Job) and job.status is not None and job.status.state == "queued"

    def blocking() -> tuple[str, list[str], bool, int]:
        with OrbitClient(url=amqp_url) as sync:
            iri_sync = Iri(sync, EP)
            state = iri_sync.job_status("nersc", CPU, job.id).status
            listed = [j.id for j in iri_sync.jobs("nersc", CPU, historical=True)]
            cancelled = iri_sync.cancel_job("nersc", CPU, job.id).cancelled
            return (
                state.state if state else "",
                listed,
                cancelled,
                iri_sync.disconnect("nersc").forgotten_jobs,
            )

    state, listed, cancelled, _ = await asyncio.to_thread(blocking)
    assert state in {"queued", "active", "completed"} and listed == [job.id] and cancelled
