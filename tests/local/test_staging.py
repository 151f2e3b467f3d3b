"""The staging plugin on the memory broker: sizes, checksums, resume, policy (the endpoint
kill is in tests/integration/test_staging.py)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient
from orbit_plugins.staging.client import download, sha256_of, upload
from orbit_protocol import Conflict, InvalidArgs, NotAuthorized, NotFound
from tests.local.conftest import StartEndpoint

MiB = 1024 * 1024


class Stop(Exception):
    """Raised from a progress callback to interrupt a transfer."""


def make_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def leftovers(directory: Path) -> list[Path]:
    return list(directory.glob("*.orbit-part*"))


def stop_after(limit: int) -> object:
    def progress(done: int, total: int) -> None:
        if done >= limit:
            raise Stop(done)

    return progress


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


@pytest.fixture
async def ep(start_endpoint: StartEndpoint, root: Path) -> object:
    return await start_endpoint(
        "stage", plugins=["staging"], plugin_settings={"staging": {"roots": [str(root)]}}
    )


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB + 1])
async def test_round_trip_edge_sizes(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path, size: int
) -> None:
    src = make_file(tmp_path / "src.bin", size)
    put = await upload(client, "stage", src, f"{root}/sub/dir/f.bin")
    assert put == {
        "path": f"{root}/sub/dir/f.bin",
        "size": size,
        "sha256": sha256_of(src),
        "resumed": 0,
    }
    got = await download(client, "stage", f"{root}/sub/dir/f.bin", tmp_path / "back.bin")
    assert got["sha256"] == sha256_of(tmp_path / "back.bin") == sha256_of(src)
    assert not leftovers(tmp_path)
    assert [p.name for p in (root / "sub" / "dir").iterdir()] == ["f.bin"]


async def test_20_mib_round_trip_with_events(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    src = make_file(tmp_path / "big.bin", 20 * MiB)
    events = await client.subscribe("stage", "staging", "progress")
    seen: list[int] = []
    t0 = time.perf_counter()
    put = await upload(
        client, "stage", src, f"{root}/big.bin", progress=lambda d, t: seen.append(d)
    )
    t1 = time.perf_counter()
    got = await download(client, "stage", f"{root}/big.bin", tmp_path / "back.bin")
    t2 = time.perf_counter()
    print(f"\n20 MiB put {20 / (t1 - t0):.1f} MiB/s, get {20 / (t2 - t1):.1f} MiB/s")
    assert put["sha256"] == got["sha256"] == sha256_of(src) == sha256_of(root / "big.bin")
    assert seen[-1] == 20 * MiB and len(seen) == 21
    finished: dict[str, dict[str, object]] = {}
    async with asyncio.timeout(10):
        async for event in events:
            if event.data["done"]:
                finished[event.data["direction"]] = event.data
                if len(finished) == 2:
                    break
    put_done, get_done = finished["put"], finished["get"]
    assert put_done["bytes"] == put_done["total"] == 20 * MiB
    assert put_done["path"] == get_done["path"] == f"{root}/big.bin"
    assert get_done["bytes"] == get_done["total"] == 20 * MiB
    assert get_done["user"] == put_done["user"] and get_done["download_id"]


async def test_200_mib_round_trip(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    """The size the seed could not move at all (its limit was ~3 MiB in one message)."""
    src = tmp_path / "200.bin"
    with open(src, "wb") as handle:
        for _ in range(25):
            handle.write(os.urandom(8 * MiB))
    put = await upload(client, "stage", src, f"{root}/200.bin")
    got = await download(client, "stage", f"{root}/200.bin", tmp_path / "200-back.bin")
    assert put["size"] == got["size"] == 200 * MiB
    assert put["sha256"] == got["sha256"] == sha256_of(src) == sha256_of(root / "200.bin")
    assert sha256_of(tmp_path / "200-back.bin") == put["sha256"]
    assert not leftovers(tmp_path) and os.listdir(root) == ["200.bin"]


async def test_upload_resumes_after_the_client_stops(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    src = make_file(tmp_path / "r.bin", 12 * MiB)
    with pytest.raises(Stop):
        await upload(client, "stage", src, f"{root}/r.bin", progress=stop_after(5 * MiB))
    assert not (root / "r.bin").exists()  # never a half file under the final name
    [open_upload] = (await client.call("stage", "staging.uploads"))["uploads"]
    assert open_upload["received_bytes"] >= 5 * MiB
    sent: list[int] = []
    put = await upload(client, "stage", src, f"{root}/r.bin", progress=lambda d, t: sent.append(d))
    # chunks still in flight when the client stopped may have landed since
    assert put["resumed"] >= open_upload["received_bytes"] and sent[0] == put["resumed"]
    assert sha256_of(root / "r.bin") == sha256_of(src)
    assert (await client.call("stage", "staging.uploads"))["uploads"] == []


async def test_download_resumes(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    src = make_file(root / "d.bin", 9 * MiB + 7)
    with pytest.raises(Stop):
        await download(
            client, "stage", f"{root}/d.bin", tmp_path / "d.bin", progress=stop_after(3 * MiB)
        )
    assert not (tmp_path / "d.bin").exists()
    got = await download(client, "stage", f"{root}/d.bin", tmp_path / "d.bin")
    assert got["resumed"] >= 3 * MiB
    assert sha256_of(tmp_path / "d.bin") == sha256_of(src)
    assert not leftovers(tmp_path)


async def test_a_download_of_a_file_changed_meanwhile_fails_and_leaves_nothing(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    src = make_file(root / "c.bin", 6 * MiB)
    touched = False

    def rewrite(done: int, total: int) -> None:  # same size, other bytes, later mtime
        nonlocal touched
        if done >= MiB and not touched:
            touched = True
            src.write_bytes(os.urandom(6 * MiB))
            os.utime(src, (time.time() + 5, time.time() + 5))

    with pytest.raises(Conflict, match=r"changed during the download|checksum mismatch"):
        await download(
            client, "stage", str(src), tmp_path / "c.bin", progress=rewrite, parallel=1
        )  # one chunk at a time: the chunks after the first come from the new bytes
    assert touched
    assert not (tmp_path / "c.bin").exists() and not leftovers(tmp_path)
    got = await download(client, "stage", str(src), tmp_path / "c.bin")  # afresh: all good
    assert got["resumed"] == 0 and got["sha256"] == sha256_of(src)


async def test_overwrite_needs_consent(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    (root / "x.txt").write_text("old")
    src = tmp_path / "x.txt"
    src.write_text("new")
    with pytest.raises(Conflict, match="exists"):
        await upload(client, "stage", src, f"{root}/x.txt")
    assert (root / "x.txt").read_text() == "old"
    await upload(client, "stage", src, f"{root}/x.txt", overwrite=True)
    assert (root / "x.txt").read_text() == "new"
    with pytest.raises(Conflict, match="exists"):
        await download(client, "stage", f"{root}/x.txt", src)
    (root / "y.txt").write_text("y")
    await download(client, "stage", f"{root}/y.txt", src, overwrite=True)
    assert src.read_text() == "y"


async def test_path_policy(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (root / "escape").symlink_to(outside)
    refused = [
        ("staging.stat", {"path": "/etc/passwd"}),
        ("staging.stat", {"path": f"{root}/escape/secret"}),
        ("staging.list", {"path": f"{root}/escape"}),
        ("staging.stat", {"path": f"{root}/../outside/secret"}),
        ("staging.get_chunk", {"path": f"{root}/escape/secret", "offset": 0, "size": 10}),
        ("staging.mkdir", {"path": f"{root}/escape/new"}),
        ("staging.remove", {"path": str(root)}),
        ("staging.stat", {"path": "~/anything"}),
    ]
    for op, args in refused:
        with pytest.raises(NotAuthorized):
            await client.call("stage", op, **args)
    with pytest.raises(NotAuthorized):
        await upload(client, "stage", outside / "secret", f"{root}/escape/new.txt")
    with pytest.raises(InvalidArgs, match="absolute"):
        await client.call("stage", "staging.stat", path="relative/path")
    with pytest.raises(NotFound):
        await client.call("stage", "staging.stat", path=f"{root}/missing")
    with pytest.raises(NotFound):
        await download(client, "stage", f"{root}/missing", tmp_path / "m")
    assert not (outside / "new.txt").exists()


async def test_browse_mkdir_remove(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    await client.call("stage", "staging.mkdir", path=f"{root}/a/b")
    (root / "a" / "f.txt").write_text("hello")
    listing = await client.call("stage", "staging.list", path=f"{root}/a")
    assert listing["path"] == f"{root}/a"
    assert [
        (e["name"], e["type"], e["size"] if e["type"] == "file" else None)
        for e in listing["entries"]
    ] == [
        ("b", "dir", None),
        ("f.txt", "file", 5),
    ]
    assert {"mtime"} <= set(listing["entries"][0])
    with pytest.raises(Conflict, match="non-empty"):
        await client.call("stage", "staging.remove", path=f"{root}/a")
    await client.call("stage", "staging.remove", path=f"{root}/a", recursive=True)
    assert not (root / "a").exists()
