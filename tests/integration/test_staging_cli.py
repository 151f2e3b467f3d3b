"""``orbit stage`` as a user runs it, against a real endpoint with the staging plugin."""

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


async def test_stage_put_ls_get(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    await start_endpoint(
        "stage-cli", plugins=["staging"], plugin_settings={"staging": {"roots": [str(root)]}}
    )
    env = base_env(amqp_url, tmp_path)
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 5))

    ran = await orbit(env, "stage", "put", "stage-cli", str(src), f"{root}/in/")
    assert ran.rc == 0, ran.stderr
    assert "uploaded" in ran.stderr and (root / "in" / "data.bin").read_bytes() == src.read_bytes()

    ran = await orbit(env, "stage", "ls", "stage-cli", f"{root}/in", "--json")
    assert ran.rc == 0, ran.stderr
    [entry] = json.loads(ran.stdout)["entries"]
    assert (entry["name"], entry["type"], entry["size"]) == (
        "data.bin",
        "file",
        3 * 1024 * 1024 + 5,
    )

    ran = await orbit(env, "stage", "put", "stage-cli", str(src), f"{root}/in/data.bin")
    assert ran.rc == 1 and "[CONFLICT]" in ran.stderr

    out = tmp_path / "out"
    out.mkdir()
    ran = await orbit(env, "stage", "get", "stage-cli", f"{root}/in/data.bin", str(out), "--json")
    assert ran.rc == 0, ran.stderr
    assert json.loads(ran.stdout)["size"] == 3 * 1024 * 1024 + 5
    assert (out / "data.bin").read_bytes() == src.read_bytes()

    ran = await orbit(env, "stage", "ls", "stage-cli", "/etc")
    assert ran.rc == 2 and "[NOT_AUTHORIZED]" in ran.stderr and str(root) in ran.stderr


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
