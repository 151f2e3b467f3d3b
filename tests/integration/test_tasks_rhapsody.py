"""An endpoint process without rhapsody-py keeps running, its tasks plugin unavailable (the
backend itself is tested in tests/local/test_tasks_rhapsody.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orbit_client import AsyncOrbitClient

from .endpoints import EndpointProcess, declare_endpoint

pytest.importorskip("rhapsody", reason="rhapsody-py is not installed (pip install rhapsody-py)")
pytestmark = pytest.mark.rabbit
TASKS = "orbit_plugins.tasks.plugin:TasksPlugin"
SYSINFO = "orbit_plugins.sysinfo.plugin:SysinfoPlugin"
RHAPSODY = {"backend": "rhapsody", "workers": 1, "allow_cloudpickle": True}


async def test_missing_rhapsody_makes_the_plugin_unavailable_not_the_endpoint(
    amqp_url: str, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "rhapsody"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('simulated: rhapsody-py is absent')\n")

    class Shadowed(EndpointProcess):
        def env(self) -> dict[str, str]:
            env = super().env()
            env["PYTHONPATH"] = os.pathsep.join([str(shadow.parent), env["PYTHONPATH"]])
            return env

    await declare_endpoint(amqp_url, "ep1")
    proc = Shadowed(
        "ep1", amqp_url, tmp_path / "ep1", plugins=[SYSINFO, TASKS],
        plugin_settings={"tasks": RHAPSODY},
    )  # fmt: skip
    await proc.start()
    try:
        described = await client.call("ep1", "orbit.describe")
        info = described["plugins"]["tasks"]
        assert not info["available"] and "pip install rhapsody-py" in info["error"]
        assert described["plugins"]["sysinfo"]["available"]
    finally:
        await proc.stop()
