"""The browser gateway on the memory broker: SSE, replay, RPC, auth, files.

The gateway runs in this process (uvicorn on a loopback port), its per-user clients and the
endpoint on the memory transport; ``tests/integration`` keeps TLS, broker permissions and
the browser end to end on real nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orbit_amqp.memory import Permissions
from tests.testkit.local import Local, LocalGateway
from tests.testkit.sse import frames, take

USER, PASSWORD = "guest", "guest"


@pytest.fixture
async def gateway(local: Local) -> LocalGateway:
    """A gateway on a broker that checks passwords (guest/guest has every right)."""
    local.broker.add_user(USER, PASSWORD)
    local.broker.set_permissions(USER, "orbit", Permissions())
    return await local.gateway(ping=0.5)


@pytest.fixture
async def http(gateway: LocalGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base, auth=(USER, PASSWORD), timeout=30) as c:
        yield c


async def test_unauthenticated_requests_get_401(gateway: LocalGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base) as anon:
        assert (await anon.get("/api/endpoints")).status_code == 401
        assert (await anon.get("/events")).status_code == 401
        assert (await anon.post("/api/ep1/orbit/ping")).status_code == 401
        bad = await anon.get("/api/endpoints", auth=(USER, "wrong"))
        assert bad.status_code == 401
        assert bad.json()["detail"]["code"] == "NOT_AUTHENTICATED"
        assert (await anon.get("/asyncapi.json")).json()["asyncapi"] == "3.0.0"
        assert "Orbit Explorer" in (await anon.get("/")).text


async def test_login_token_and_cookie(gateway: LocalGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base) as web:
        login = await web.post("/api/login", json={"user": USER, "password": PASSWORD})
        assert login.status_code == 200
        token = login.json()["token"]
        assert (await web.get("/api/whoami")).json()["user"] == USER  # cookie
        web.cookies.clear()
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await web.get("/api/whoami", headers=bearer)).status_code == 200
        refused = await web.post("/api/login", json={"user": USER, "password": "x"})
        assert refused.status_code == 401


async def test_rpc_and_error_mapping(http: httpx.AsyncClient, local: Local) -> None:
    await local.endpoint("ep1")
    ok = await http.post("/api/ep1/testkit/echo", json={"value": {"a": [1, 2]}})
    assert ok.status_code == 200
    assert ok.json() == {"v": 1, "ok": True, "result": {"value": {"a": [1, 2]}}}
    cases = [
        ("/api/ep1/testkit/nope", {}, 404, "UNKNOWN_METHOD"),
        ("/api/ep1/nope/echo", {}, 404, "UNKNOWN_PLUGIN"),
        ("/api/ep1/testkit/sleep", {"seconds": -1}, 422, "INVALID_ARGS"),
        ("/api/ep1/testkit/fail", {"kind": "not_found"}, 404, "NOT_FOUND"),
        ("/api/ep1/testkit/fail", {"kind": "unavailable"}, 503, "UNAVAILABLE"),
        ("/api/ep1/testkit/fail", {"kind": "crash"}, 500, "INTERNAL"),
        ("/api/nobody/testkit/echo", {}, 503, "ENDPOINT_OFFLINE"),
        ("/api/Bad.Name/testkit/echo", {}, 400, "BAD_REQUEST"),
    ]
    for path, body, status, code in cases:
        reply = await http.post(path, json=body)
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), path
        assert reply.json()["ok"] is False
    not_json = await http.post("/api/ep1/testkit/echo", content=b"{nope")
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "BAD_REQUEST")
    deadline = await http.post("/api/ep1/testkit/sleep?timeout=0.5", json={"seconds": 1.5})
    assert (deadline.status_code, deadline.json()["error"]["code"]) == (504, "DEADLINE_EXCEEDED")


async def test_sse_events_in_order_and_replay_after_reconnect(
    http: httpx.AsyncClient, local: Local
) -> None:
    await local.endpoint("ep1")
    url = "/events?endpoint=ep1&plugin=testkit"
    async with http.stream("GET", url) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = frames(response)
        hello = await take(stream, 1, "hello")
        assert hello[0].data["user"]
        emitted = await http.post("/api/ep1/testkit/emit", json={"topic": "tick", "count": 3})
        assert emitted.json()["result"] == {"emitted": 3}
        first = await take(stream, 3)
    assert [f.data["data"]["i"] for f in first] == [0, 1, 2]
    assert {(f.data["endpoint"], f.data["plugin"], f.data["topic"]) for f in first} == {
        ("ep1", "testkit", "tick")
    }
    ids = [int(f.id or 0) for f in first]
    assert ids == sorted(ids) and len(set(ids)) == 3
    # disconnected: these two arrive while no browser listens
    await http.post("/api/ep1/testkit/emit", json={"topic": "tock", "count": 2})
    headers = {"Last-Event-ID": str(ids[-1])}
    async with http.stream("GET", url, headers=headers) as response:
        stream = frames(response)
        await http.post("/api/ep1/testkit/emit", json={"topic": "tack", "count": 1})
        resumed = await take(stream, 3)
    got = [(f.data["topic"], f.data["data"]["i"]) for f in resumed]
    assert got == [("tock", 0), ("tock", 1), ("tack", 0)]  # none lost, none repeated
    later = [int(f.id or 0) for f in resumed]
    assert later == sorted(later) and later[0] > ids[-1]


async def test_presence_arrives_as_topology_frames(http: httpx.AsyncClient, local: Local) -> None:
    async with http.stream("GET", "/events?topic=presence") as response:
        stream = frames(response)
        await take(stream, 1, "hello")
        await local.endpoint("ep2")
        topo = await take(stream, 1, "topology")
    assert topo[0].data["endpoint"] == "ep2"
    assert topo[0].data["data"]["state"] == "online"
    assert "testkit" in topo[0].data["data"]["plugins"]
    listing = (await http.get("/api/endpoints")).json()
    assert listing["ep2"]["online"] is True


async def test_keep_alive_pings_on_an_idle_stream(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", "/events?plugin=nothing-here") as response:
        lines = response.aiter_lines()
        async with asyncio.timeout(10):
            while not (await anext(lines)).startswith(": ping"):
                pass


async def test_a_reader_that_never_reads_blocks_nobody(
    http: httpx.AsyncClient, local: Local
) -> None:
    await local.endpoint("ep1")
    url = "/events?endpoint=ep1&plugin=testkit"
    async with contextlib.AsyncExitStack() as stack:
        stuck = await stack.enter_async_context(http.stream("GET", url))
        await take(frames(stuck), 1, "hello")  # then never read again
        readers = []
        for _ in range(10):
            response = await stack.enter_async_context(http.stream("GET", url))
            stream = frames(response)
            await take(stream, 1, "hello")
            readers.append(stream)
        for _ in range(3):
            await http.post("/api/ep1/testkit/emit", json={"topic": "load", "count": 500})
        results = await asyncio.gather(*(take(s, 1500, timeout=60) for s in readers))
    for got in results:
        assert [int(f.id or 0) for f in got] == sorted(int(f.id or 0) for f in got)
        assert [f.data["data"]["i"] for f in got] == [i for _ in range(3) for i in range(500)]


async def test_file_upload_and_download_through_staging(
    http: httpx.AsyncClient, local: Local, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    settings = {"staging": {"roots": [str(root)], "max_chunk": 65536}}
    await local.endpoint("ep1", plugins=["staging"], plugin_settings=settings)
    payload = os.urandom(200_000)  # several 64 KiB chunks
    target = str(root / "up.bin")
    put = await http.put("/api/ep1/files", params={"path": target}, content=payload)
    assert put.status_code == 200, put.text
    assert put.json()["result"]["sha256"] == hashlib.sha256(payload).hexdigest()
    assert (root / "up.bin").read_bytes() == payload
    again = await http.put("/api/ep1/files", params={"path": target}, content=b"x")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "CONFLICT")
    replaced = await http.put(
        "/api/ep1/files", params={"path": target, "overwrite": "true"}, content=b"new"
    )
    assert replaced.json()["result"]["size"] == 3
    got = await http.get("/api/ep1/files", params={"path": target})
    assert (got.status_code, got.content) == (200, b"new")
    assert "up.bin" in got.headers["content-disposition"]
    (root / "big.bin").write_bytes(payload)
    big = await http.get("/api/ep1/files", params={"path": str(root / "big.bin")})
    assert big.content == payload
    cases = [
        (str(root), 400, "BAD_REQUEST"),  # a directory
        (str(root / "nope"), 404, "NOT_FOUND"),
        ("/etc/passwd", 403, "NOT_AUTHORIZED"),  # outside the staging roots
    ]
    for path, status, code in cases:
        reply = await http.get("/api/ep1/files", params={"path": path})
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), path
    outside = await http.put("/api/ep1/files", params={"path": "/etc/orbit-x"}, content=b"x")
    assert (outside.status_code, outside.json()["error"]["code"]) == (403, "NOT_AUTHORIZED")
