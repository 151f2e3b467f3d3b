"""Staging survives a SIGKILLed endpoint process on a real broker (the plugin's logic is tested
on the memory broker in tests/local/test_staging.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient
from orbit_plugins.staging.client import sha256_of, upload
from tests.local.test_staging import MiB, make_file

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


@pytest.fixture
async def ep(start_endpoint: StartEndpoint, root: Path) -> object:
    return await start_endpoint(
        "stage", plugins=["staging"], plugin_settings={"staging": {"roots": [str(root)]}}
    )


async def test_upload_resumes_after_the_endpoint_is_killed(
    ep: object, client: AsyncOrbitClient, tmp_path: Path, root: Path
) -> None:
    from .endpoints import EndpointProcess

    assert isinstance(ep, EndpointProcess)
    src = make_file(tmp_path / "k.bin", 12 * MiB)
    reached = asyncio.Event()

    def progress(done: int, total: int) -> None:
        if done >= 4 * MiB:
            reached.set()

    task = asyncio.create_task(upload(client, "stage", src, f"{root}/k.bin", progress=progress))
    await asyncio.wait_for(reached.wait(), 30)
    ep.kill()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (root / "k.bin").exists()
    await ep.start()
    put = await upload(client, "stage", src, f"{root}/k.bin")
    assert put["resumed"] >= 4 * MiB
    assert sha256_of(root / "k.bin") == sha256_of(src)
