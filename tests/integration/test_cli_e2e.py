"""The ``orbit`` command as a user runs it: real subprocesses against a real endpoint.

The commands' logic (errors, cards, events, describe) is tested in-process on the memory
broker in ``tests/local/test_cli.py``; here the console script, the endpoint process and
``endpoint start --detach``/``status``/``stop`` run for real.

The endpoint is ``python -m orbit_endpoint`` configured through ``ORBIT_ENDPOINT_*``; the
CLI reaches the per-test vhost through ``ORBIT_URL`` (the admin user, which is also the
endpoint's owner) and an empty profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbit_broker.topology import declare_all
from tests.testkit.cli import cli_env, orbit
from tests.testkit.eventually import eventually

pytestmark = pytest.mark.rabbit

ENDPOINT = "cli-e2e"


def base_env(amqp_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(amqp_url, tmp_path)


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

        async def answers() -> bool:
            if proc.returncode is not None:  # fails at once (pytest.fail is no Exception)
                pytest.fail("endpoint exited:\n" + (tmp_path / "endpoint.log").read_text())
            ran = await orbit(env, "call", ENDPOINT, "orbit.ping", "--timeout", "2")
            return ran.rc == 0

        await eventually(answers, timeout=30, interval=0.5, what="the endpoint answers a ping")
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
