"""``orbit stage put`` SIGKILLed mid-upload resumes: a real console-script process and node."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient
from tests.testkit.cli import argv, orbit
from tests.testkit.cli import cli_env as base_env

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit


async def test_stage_put_resumes_after_the_client_is_killed(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path, client: AsyncOrbitClient
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    await start_endpoint(
        "stage-kill", plugins=["staging"], plugin_settings={"staging": {"roots": [str(root)]}}
    )
    env = base_env(amqp_url, tmp_path)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(24 * 1024 * 1024))
    proc = await asyncio.create_subprocess_exec(
        *argv("stage", "put", "stage-kill", str(src), f"{root}/big.bin", "--parallel", "2"),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    received = 0
    async with asyncio.timeout(60):
        while received < 3 * 1024 * 1024:
            await asyncio.sleep(0.05)
            uploads = (await client.call("stage-kill", "staging.uploads"))["uploads"]
            received = uploads[0]["received_bytes"] if uploads else 0
    proc.kill()  # SIGKILL: no cleanup at all on the client side
    await proc.wait()
    assert not (root / "big.bin").exists()

    ran = await orbit(env, "stage", "put", "stage-kill", str(src), f"{root}/big.bin", "--json")
    assert ran.rc == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["resumed"] >= received and result["size"] == 24 * 1024 * 1024
    assert (root / "big.bin").read_bytes() == src.read_bytes()
