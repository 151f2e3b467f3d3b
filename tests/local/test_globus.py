"""The globus plugin in an endpoint on the memory broker, with the real globus-sdk talking to a
local fake Globus (Auth and Transfer)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient, OrbitClient
from orbit_plugins.globus.client import AsyncGlobus, Globus, GlobusTransfers
from orbit_plugins.globus.schema import TERMINAL, Item, Submitted, Task
from orbit_protocol import InvalidArgs, NotAuthorized
from tests.fakes.globus_api import CONSENT_SCOPE, NEEDS_CONSENT, FakeTransfer
from tests.local.conftest import StartEndpoint
from tests.testkit.local import LocalEndpoint

LOCAL = "11111111-2222-3333-4444-555555555555"
REMOTE = "99999999-8888-7777-6666-555555555555"
EP = "globus-ep"


@pytest.fixture
def token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def fake(token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTransfer]:
    with FakeTransfer(token, duration=1.0) as service:
        # globus-sdk's own setting: the endpoint subprocess inherits it and talks to the fake Auth
        monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", service.url)
        yield service


@pytest.fixture
async def ep(start_endpoint: StartEndpoint, fake: FakeTransfer) -> LocalEndpoint:
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
    ep: LocalEndpoint, client: AsyncOrbitClient, fake: FakeTransfer, token: str
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
    ep: LocalEndpoint, client: AsyncOrbitClient, fake: FakeTransfer, token: str
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
    ep: LocalEndpoint, client: AsyncOrbitClient, fake: FakeTransfer, token: str
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
    ep: LocalEndpoint, client: AsyncOrbitClient, token: str, tmp_path: Path
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
    ep: LocalEndpoint, client: AsyncOrbitClient, token: str
) -> None:
    await g(client, "register", access_token=token)
    await ep.stop()
    assert files_containing(ep.state_dir, token.encode(), skip=set()) == []


async def test_refresh_token_is_exchanged_renewed_and_kept_off_disk(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, fake: FakeTransfer
) -> None:
    settings = {"transfer_base_url": fake.url, "max_retries": 1, "local_collection": LOCAL}
    ep = await start_endpoint("globus-rt", plugins=["globus"], plugin_settings={"globus": settings})

    async def call(method: str, **args: Any) -> Any:
        return await client.call("globus-rt", f"globus.{method}", **args)

    with pytest.raises(NotAuthorized, match="refused the refresh token"):
        await call("register", refresh_token="ref-wrong", client_id=fake.client_id)
    first = fake.refresh_token
    reg = await call("register", refresh_token=first, client_id=fake.client_id)
    assert reg["auth"] == "refresh_token" and fake.grants == 1  # exchanged at once
    [grant] = [body for _, path, body in fake.requests if path == "/v2/oauth2/token"][1:]
    assert grant == {
        "grant_type": "refresh_token",
        "refresh_token": first,
        "client_id": fake.client_id,
    }
    await call("ls", collection="local")
    await call("get_endpoint", endpoint_id=REMOTE)
    assert fake.grants == 1  # the access token is reused while it is valid

    fake.revoke_access_tokens()  # it expires at Globus: Transfer answers 401
    assert (await call("get_endpoint", endpoint_id=REMOTE))["id"] == REMOTE
    assert fake.grants == 2  # renewed with the (rotated) refresh token, the call retried

    fake.expires_in = 30  # inside globus-sdk's 60 s margin: stale as soon as issued
    fake.revoke_access_tokens()
    await call("ls", collection="local")  # 401 → renew (a 30 s token)
    await call("ls", collection="local")  # about to expire → renewed before the call
    assert fake.grants == 4
    assert fake.requests[-1][1] == "/v0.10/operation/endpoint/" + LOCAL + "/ls"

    await ep.stop()  # every token that was ever valid: in no log line and no file
    secrets_ = [*fake.refresh_tokens, *fake.issued]
    assert len(secrets_) == 5 + 4
    log = ep.log_path.read_text()
    assert [s for s in secrets_ if s in log] == []
    for secret in secrets_:
        assert files_containing(ep.state_dir, secret.encode(), skip=set()) == [], secret


async def test_typed_clients_return_models(
    ep: LocalEndpoint, client: AsyncOrbitClient, fake: FakeTransfer, token: str, amqp_url: str
) -> None:
    globus = AsyncGlobus(client, EP)
    registered = await globus.register(access_token=token)
    assert (registered.auth, registered.local_collection) == ("access_token", LOCAL)
    sub = await globus.submit("local", REMOTE, [("/~/in/", "/data/in/", True)], label="typed")
    assert isinstance(sub, Submitted) and sub.status == "Accepted"
    task = await globus.wait(sub.task_id, timeout=15, polling_interval=0.2)
    assert isinstance(task, Task) and task.status in TERMINAL
    assert (task.status, task.label, task.bytes_transferred) == ("SUCCEEDED", "typed", 1000)

    def blocking() -> tuple[list[str], str]:
        with OrbitClient(url=amqp_url) as sync:
            blocked = Globus(sync, EP)
            slow = blocked.submit("local", REMOTE, [Item(source="/a", destination="/b")])
            return [t.task_id for t in blocked.tasks(5)], blocked.cancel(slow.task_id).code

    fake.duration = float("inf")
    listed, code = await asyncio.to_thread(blocking)
    assert sub.task_id in listed and len(listed) == 2 and code == "Canceled"
    assert GlobusTransfers is AsyncGlobus  # the old name
