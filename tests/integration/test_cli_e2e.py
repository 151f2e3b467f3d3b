"""The ``orbit`` command as a user runs it: real subprocesses against a real endpoint.

The endpoint is ``python -m orbit_endpoint`` configured through ``ORBIT_ENDPOINT_*``; the
CLI reaches the per-test vhost through ``ORBIT_URL`` (the admin user, which is also the
endpoint's owner) and an empty profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orbit_broker.topology import declare_all

pytestmark = pytest.mark.rabbit

ENDPOINT = "cli-e2e"


@dataclass
class Ran:
    rc: int
    stdout: str
    stderr: str


def base_env(amqp_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBIT_")}
    return env | {
        "ORBIT_URL": amqp_url,
        "ORBIT_PROFILE": str(tmp_path / "no-profile.json"),
        "COLUMNS": "140",
        "NO_COLOR": "1",
    }


async def orbit(env: dict[str, str], *args: str, timeout: float = 60) -> Ran:
    """Run ``orbit ARGS`` (the console script next to this Python, else ``-m orbit_cli``)."""
    script = Path(sys.executable).with_name("orbit")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "orbit_cli"]
    proc = await asyncio.create_subprocess_exec(
        *argv, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def endpoint(amqp_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A running endpoint ``cli-e2e`` with sysinfo; yields the CLI's environment."""
    await declare_all(amqp_url, [ENDPOINT])
    env = base_env(amqp_url, tmp_path)
    ep_env = env | {
        "ORBIT_ENDPOINT_NAME": ENDPOINT,
        "ORBIT_ENDPOINT_URL": amqp_url,
        "ORBIT_ENDPOINT_PLUGINS": '["sysinfo"]',
        "ORBIT_ENDPOINT_STATE_DIR": str(tmp_path / "state"),
        "ORBIT_ENDPOINT_HEARTBEAT": "2",
    }
    log = (tmp_path / "endpoint.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbit_endpoint", env=ep_env, stdout=log, stderr=log
    )
    try:
        for _ in range(60):
            ran = await orbit(env, "call", ENDPOINT, "orbit.ping", "--timeout", "2")
            if ran.rc == 0:
                break
            assert proc.returncode is None, (tmp_path / "endpoint.log").read_text()
            await asyncio.sleep(0.5)
        else:
            pytest.fail("endpoint never answered:\n" + (tmp_path / "endpoint.log").read_text())
        yield env
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 20)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def test_call_prints_the_result(endpoint: dict[str, str]) -> None:
    ran = await orbit(endpoint, "call", ENDPOINT, "orbit.ping", "--json")
    assert ran.rc == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["pong"] is True and result["endpoint"] == ENDPOINT

    pretty = await orbit(endpoint, "call", ENDPOINT, "sysinfo.metrics", 'sections=["cpu"]')
    assert pretty.rc == 0, pretty.stderr
    assert '"cores_logical"' in pretty.stdout


async def test_call_errors_are_codes_and_exit_status(endpoint: dict[str, str]) -> None:
    ran = await orbit(endpoint, "call", ENDPOINT, "sysinfo.nope")
    assert ran.rc == 1
    assert ran.stderr.startswith("[UNKNOWN_METHOD]")
    assert "Traceback" not in ran.stderr

    ran = await orbit(endpoint, "call", ENDPOINT, "sysinfo.metrics", "fresh=maybe")
    assert ran.rc == 1 and ran.stderr.startswith("[INVALID_ARGS]")

    ran = await orbit(endpoint, "call", "nobody-here", "orbit.ping")
    assert ran.rc == 1 and ran.stderr.startswith("[ENDPOINT_OFFLINE]")

    ran = await orbit(endpoint, "call", ENDPOINT, "orbit.ping", "not-a-pair")
    assert ran.rc == 2 and ran.stderr.startswith("[USAGE]")


async def test_sysinfo_cards_and_json(endpoint: dict[str, str]) -> None:
    from orbit_plugins.sysinfo.schema import Metrics

    ran = await orbit(endpoint, "sysinfo", ENDPOINT)
    assert ran.rc == 0, ran.stderr
    for title in ("System", "CPU", "Memory", "Disks", "Network"):
        assert title in ran.stdout

    raw = await orbit(endpoint, "sysinfo", ENDPOINT, "--json", "--fresh")
    assert raw.rc == 0, raw.stderr
    metrics = Metrics.model_validate_json(raw.stdout)
    assert metrics.system is not None and metrics.cpu is not None


async def test_events_count_one(endpoint: dict[str, str]) -> None:
    ran = await orbit(endpoint, "events", ENDPOINT, "--count", "1", "--timeout", "20", "--json")
    assert ran.rc == 0, ran.stderr
    lines = ran.stdout.strip().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["endpoint"] == ENDPOINT

    text = await orbit(endpoint, "events", ENDPOINT, "--topic", "presence", "-n", "1", "-t", "20")
    assert text.rc == 0, text.stderr
    assert f"{ENDPOINT}.orbit.presence" in text.stdout


async def test_describe_and_endpoints(endpoint: dict[str, str]) -> None:
    ran = await orbit(endpoint, "describe", ENDPOINT, "--json")
    assert ran.rc == 0, ran.stderr
    assert "metrics" in json.loads(ran.stdout)["plugins"]["sysinfo"]["operations"]

    table = await orbit(endpoint, "describe", ENDPOINT)
    assert "sysinfo.metrics" in table.stdout

    listed = await orbit(endpoint, "endpoints", "--wait", "5", "--json")
    assert listed.rc == 0, listed.stderr
    rows = {row["endpoint"]: row for row in json.loads(listed.stdout)}
    assert rows[ENDPOINT]["online"] is True
    assert "sysinfo" in rows[ENDPOINT]["plugins"]


async def test_endpoint_start_detach_status_stop(amqp_url: str, tmp_path: Path) -> None:
    name = "cli-detached"
    await declare_all(amqp_url, [name])
    env = base_env(amqp_url, tmp_path)
    state = str(tmp_path / "state")
    started = await orbit(
        env, "endpoint", "start", "--name", name, "--plugins", "sysinfo",
        "--url", amqp_url, "--state-dir", state, "--detach",
    )  # fmt: skip
    try:
        assert started.rc == 0, started.stderr
        assert "running, pid" in started.stderr
        status = await orbit(
            env, "endpoint", "status", "--name", name, "--state-dir", state, "--json"
        )
        assert status.rc == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["answering"] is True and report["pid"] and "sysinfo" in report["plugins"]
    finally:
        stopped = await orbit(env, "endpoint", "stop", "--name", name, "--state-dir", state)
    assert stopped.rc == 0, stopped.stderr
    assert "stopped" in stopped.stderr
    after = await orbit(env, "endpoint", "status", "--name", name, "--state-dir", state, "--json")
    assert after.rc == 1
    assert json.loads(after.stdout)["pid"] is None
