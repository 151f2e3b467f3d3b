"""``orbit stage`` in-process against an endpoint on the memory broker with the staging plugin."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.local.conftest import StartEndpoint
from tests.testkit.local import local_env as base_env
from tests.testkit.local import orbit_inprocess as orbit


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
