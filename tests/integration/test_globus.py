"""The globus plugin in a real endpoint, with the real globus-sdk talking to a local fake."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient
from orbit_protocol import InvalidArgs, NotAuthorized

from ..fakes.globus_api import CONSENT_SCOPE, NEEDS_CONSENT, FakeTransfer
from .conftest import StartEndpoint
from .endpoints import EndpointProcess

pytestmark = pytest.mark.rabbit
LOCAL = "11111111-2222-3333-4444-555555555555"
REMOTE = "99999999-8888-7777-6666-555555555555"
EP = "globus-ep"


@pytest.fixture
def token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def fake(token: str) -> Iterator[FakeTransfer]:
    with FakeTransfer(token, duration=1.0) as service:
        yield service


@pytest.fixture
async def ep(start_endpoint: StartEndpoint, fake: FakeTransfer) -> EndpointProcess:
    settings = {
        "transfer_base_url": fake.url,
        "max_retries": 0,
        "poll_interval": 0.3,
        "local_collection": LOCAL,
    }
    return await start_endpoint(EP, plugins=["globus"], plugin_settings={"globus": settings})


async def g(client: AsyncOrbitClient, method: str, **args: Any) -> Any:
    return await client.call(EP, f"globus.{method}", **args)


async def test_transfer_lifecycle_and_events(
    ep: EndpointProcess, client: AsyncOrbitClient, fake: FakeTransfer, token: str
) -> None:
    with pytest.raises(NotAuthorized, match=r"globus\.register"):
        await g(client, "list_tasks")
    reg = await g(client, "register", access_token=token)
    assert reg == {"user": client.user, "auth": "access_token", "local_collection": LOCAL}
    events = await client.subscribe(EP, "globus", "transfer_status")

    items = [{"source": "/~/in/", "destination": "/data/in/", "recursive": True}]
    sub = await g(
        client,
        "submit_transfer",
        source="local",
        destination=REMOTE,
        items=items,
        label="run 1",
        sync_level="checksum",
    )
    assert sub["status"] == "Accepted" and sub["submission_id"]
    _, _, body = [r for r in fake.requests if r[1] == "/v0.10/transfer"][-1]
    assert (body["source_endpoint"], body["destination_endpoint"]) == (LOCAL, REMOTE)
    assert body["DATA"][0]["recursive"] is True and body["label"] == "run 1"

    async with asyncio.timeout(15):  # the background poller reports progress and the end
        async for event in events:
            assert event.data["task_id"] == sub["task_id"] and event.data["user"] == client.user
            if event.data["status"] == "SUCCEEDED":
                assert event.data["files_transferred"] == 1
                break
    waited = await g(client, "task_wait", task_id=sub["task_id"], timeout=5, polling_interval=0.2)
    assert waited["done"] is True and waited["task"]["status"] == "SUCCEEDED"
    task = await g(client, "get_task", task_id=sub["task_id"])
    assert task["label"] == "run 1" and task["bytes_transferred"] == 1000

    fake.duration = float("inf")
    slow = await g(client, "submit_transfer", source=REMOTE, destination="local", items=items)
    waited = await g(
        client, "task_wait", task_id=slow["task_id"], timeout=0.5, polling_interval=0.2
    )
    assert waited["done"] is False and waited["task"]["status"] == "ACTIVE"
    cancelled = await g(client, "cancel_task", task_id=slow["task_id"])
    assert cancelled["code"] == "Canceled"
    assert (await g(client, "get_task", task_id=slow["task_id"]))["status"] == "FAILED"
    listed = await g(client, "list_tasks", limit=10)
    assert {t["task_id"] for t in listed["tasks"]} == {sub["task_id"], slow["task_id"]}


async def test_collection_operations(
    ep: EndpointProcess, client: AsyncOrbitClient, fake: FakeTransfer, token: str
) -> None:
    await g(client, "register", access_token=token)
    listing = await g(client, "ls", collection="local", path="/~/")
    assert listing["collection"] == LOCAL
    assert [(e["name"], e["type"]) for e in listing["entries"]] == [
        ("data", "dir"),
        ("a.txt", "file"),
    ]
    assert (await g(client, "mkdir", collection=REMOTE, path="/x"))["code"] == "DirectoryCreated"
    renamed = await g(client, "rename", collection=REMOTE, oldpath="/x", newpath="/y")
    assert renamed["code"] == "FileRenamed"
    deleted = await g(client, "delete", collection=REMOTE, paths=["/y"], recursive=True)
    assert deleted["status"] == "Accepted"
    _, _, body = [r for r in fake.requests if r[1] == "/v0.10/delete"][-1]
    assert body["endpoint"] == REMOTE and body["recursive"] is True
    found = await g(client, "endpoint_search", filter_text="nersc", limit=5)
    assert found["items"][0]["display_name"] == "nersc collection"
    assert (await g(client, "get_endpoint", endpoint_id="local"))["id"] == LOCAL


async def test_consent_required_and_bad_token(
    ep: EndpointProcess, client: AsyncOrbitClient, fake: FakeTransfer, token: str
) -> None:
    await g(client, "register", access_token=token)
    with pytest.raises(NotAuthorized, match="consent") as info:
        await g(client, "ls", collection=NEEDS_CONSENT, path="/")
    assert info.value.details["required_scopes"] == [CONSENT_SCOPE]
    assert CONSENT_SCOPE in info.value.message
    await g(client, "register", access_token="wrong-token")
    with pytest.raises(NotAuthorized, match="HTTP 401"):
        await g(client, "get_endpoint", endpoint_id=REMOTE)
    with pytest.raises(InvalidArgs):
        await g(client, "register", refresh_token="r")  # needs client_id


def files_containing(root: Path, needle: bytes, skip: set[str]) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.name not in skip and needle in p.read_bytes()
    ]


async def test_token_stays_in_memory(
    ep: EndpointProcess, client: AsyncOrbitClient, token: str, tmp_path: Path
) -> None:
    await g(client, "register", access_token=token)
    await g(client, "ls", collection="local")
    with pytest.raises(NotAuthorized):
        await g(client, "ls", collection=NEEDS_CONSENT)
    await ep.stop()
    assert token not in ep.log_path.read_text()
    journal = {"journal.sqlite", "journal.sqlite-wal"}
    assert files_containing(ep.state_dir, token.encode(), skip=journal) == []


async def test_token_is_not_in_the_journal(
    ep: EndpointProcess, client: AsyncOrbitClient, token: str
) -> None:
    await g(client, "register", access_token=token)
    await ep.stop()
    assert files_containing(ep.state_dir, token.encode(), skip=set()) == []
